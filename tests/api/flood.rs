//! A tenant flooding far over its per-user rate limit: it is refused with 429 and Retry-After,
//! gets no more than its bucket allows, and another tenant reading at the same time, within
//! its own rate, gets every answer right.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_env_in, TestApp};

const RATE: f64 = 5.0;
const BURST: f64 = 5.0;
/// The flooding user's requests, spread over tasks that each send one, then the next
/// `FLOOD_GAP` after its answer: 200 in about 2.5 s, 16 times the rate, in bursts of 8 at once,
/// over the same window as the paced user's reads.
const FLOOD: u64 = 200;
const FLOOD_TASKS: u64 = 8;
const FLOOD_GAP: Duration = Duration::from_millis(100);
/// The paced user's reads, each at least `B_GAP` after the previous answer: 4 per second at
/// most, under its 5, so its bucket never runs dry however the scheduler bunches them.
const B_READS: usize = 10;
const B_GAP: Duration = Duration::from_millis(250);

/// What the flooding user got.
#[derive(Default)]
struct Flood {
    ok: AtomicU64,
    limited: AtomicU64,
    sent: AtomicU64,
}

fn read_note(id: u64, path: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "read_note", "arguments": {"path": path}}})
}

/// One flooding task: its share of read_note calls, `FLOOD_GAP` apart.
async fn flood(app: &TestApp, token: &str, sid: &str, task: u64, out: &Flood) {
    for n in 0..FLOOD / FLOOD_TASKS {
        if n > 0 {
            tokio::time::sleep(FLOOD_GAP).await;
        }
        out.sent.fetch_add(1, Ordering::Relaxed);
        // Ids unique among the session's requests in flight.
        let id = 1000 + task * 1000 + n;
        let resp = app
            .post(token, Some(sid))
            .json(&read_note(id, "a.md"))
            .send()
            .await
            .expect("A's request gets an answer");
        match resp.status() {
            StatusCode::OK => {
                out.ok.fetch_add(1, Ordering::Relaxed);
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let retry: u64 = resp.headers()["retry-after"]
                    .to_str()
                    .expect("ascii")
                    .parse()
                    .expect("Retry-After in seconds");
                assert!(retry >= 1, "Retry-After {retry}");
                let body: Value = resp.json().await.expect("a JSON-RPC body");
                assert_eq!(body["error"]["data"]["code"], "rate_limited");
                out.limited.fetch_add(1, Ordering::Relaxed);
            }
            other => panic!("A got {other}"),
        }
    }
}

#[tokio::test]
async fn a_flooding_user_is_held_to_its_rate_and_a_paced_user_gets_every_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (rate, burst) = (RATE.to_string(), BURST.to_string());
    let env = [
        ("RATE_LIMIT_PER_SECOND", rate.as_str()),
        ("RATE_LIMIT_BURST", burst.as_str()),
    ];
    let app = spawn_env_in(dir.path(), &env, |_| {}).await;
    let (a, b) = (app.token("flooder"), app.token("reader"));
    // Three of each user's five tokens: initialize, initialized, one write.
    let sid_a = app.session(&a).await;
    app.ok(
        &a,
        &sid_a,
        "write_note",
        json!({"path": "a.md", "body": "A's"}),
    )
    .await;
    let sid_b = app.session(&b).await;
    app.ok(
        &b,
        &sid_b,
        "write_note",
        json!({"path": "b.md", "body": "B's own note"}),
    )
    .await;

    let out = Flood::default();
    let started = Instant::now();
    let flooding = join_all((0..FLOOD_TASKS).map(|t| flood(&app, &a, &sid_a, t, &out)));
    let reading = async {
        let mut answers = Vec::new();
        for i in 0..B_READS {
            tokio::time::sleep(B_GAP).await;
            let resp = app
                .post(&b, Some(&sid_b))
                .json(&read_note(i as u64 + 1, "b.md"))
                .send()
                .await
                .expect("B's request gets an answer");
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            answers.push((status, body));
        }
        answers
    };
    let (_, answers) = tokio::join!(flooding, reading);
    let elapsed = started.elapsed();

    for (i, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, StatusCode::OK, "B's read {i}: {body}");
        let result = &body["result"];
        assert_eq!(result["isError"], json!(false), "B's read {i}: {body}");
        assert_eq!(result["structuredContent"]["body"], "B's own note");
    }
    let (ok, limited, sent) = (
        out.ok.into_inner(),
        out.limited.into_inner(),
        out.sent.into_inner(),
    );
    assert_eq!((sent, ok + limited), (FLOOD, FLOOD));
    assert!(limited > 0, "A was never refused");
    // Its bucket held at most the burst when the flood began, and refills at the rate.
    let bound = (BURST + RATE * elapsed.as_secs_f64()).floor() as u64 + 1;
    assert!(
        ok <= bound,
        "A got {ok} answers in {:.2} s, more than {bound}",
        elapsed.as_secs_f64()
    );
}
