//! What operators see: `/metrics` (behind `METRICS_TOKEN`, or on its own listener), `/health`,
//! `/ready`, and JSON log lines.
//!
//! The metrics recorder is one per process, shared by every server the tests start, so these
//! tests compare a series before and after their own requests rather than expect exact values.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use vault_mcp::app::Application;
use vault_mcp::auth::TokenKeys;
use vault_mcp::health::PROBE_FILE;

use crate::helpers::{header, spawn_app, spawn_env_in, status_json, test_config_with_env, TestApp};

const METRICS_TOKEN: &str = "scrape-secret-for-tests";

async fn app_with_metrics_token() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(dir.path(), &[("METRICS_TOKEN", METRICS_TOKEN)], |_| {}).await;
    (app, dir)
}

async fn scrape(app: &TestApp) -> String {
    let resp = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(header(resp.headers(), "content-type").starts_with("text/plain"));
    resp.text().await.unwrap()
}

/// The sum of the samples of `name` whose labels include all of `labels` (`None`: no such
/// sample at all).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let has_all = labels
            .iter()
            .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
        if has_all {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap();
        }
    }
    found
}

#[tokio::test]
async fn metrics_is_not_on_the_main_port_without_a_token() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_on_the_main_port_need_the_metrics_token() {
    let (app, _dir) = app_with_metrics_token().await;
    let url = format!("{}/metrics", app.base);
    let none = app.client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let wrong = app
        .client
        .get(&url)
        .bearer_auth("scrape-secret-for-test")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // A user's MCP token is not a metrics token.
    let user = app
        .client
        .get(&url)
        .bearer_auth(app.token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), StatusCode::UNAUTHORIZED);
    let text = scrape(&app).await;
    assert!(text.contains("# TYPE vault_mcp_http_requests_total counter"));
}

#[tokio::test]
async fn series_are_present_and_move_as_requests_arrive() {
    let (app, _dir) = app_with_metrics_token().await;
    let before = scrape(&app).await;
    let tool_calls = [
        ("route", "/mcp"),
        ("method", "POST"),
        ("rpc_method", "tools/call"),
        ("tool", "list_notes"),
        ("status", "200"),
    ];
    let bad_signature = [("reason", "bad_signature")];
    let missing = [("reason", "missing")];
    let count =
        |text: &str, name: &str, labels: &[(&str, &str)]| sample(text, name, labels).unwrap_or(0.0);

    let token = app.token("metrics-alice");
    let sid = app.session(&token).await;
    app.ok(&token, &sid, "list_notes", json!({})).await;
    app.ok(&token, &sid, "list_notes", json!({})).await;
    // An open stream, counted while it stays open.
    let stream = app.get_stream(&token, &sid, "text/event-stream").await;
    assert_eq!(stream.status(), StatusCode::OK);
    // A token signed with another secret, and no token at all.
    let forged = TokenKeys::new(&[9u8; 40], &app.public_url, &app.public_url)
        .mint(
            &vault_actors::UserId::parse("mallory").unwrap(),
            Duration::from_secs(60),
            &[],
        )
        .unwrap();
    let refused = app
        .post(&forged, None)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let refused = app
        .client
        .post(format!("{}/mcp", app.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let after = scrape(&app).await;
    let name = "vault_mcp_http_requests_total";
    assert!(
        count(&after, name, &tool_calls) >= count(&before, name, &tool_calls) + 2.0,
        "{after}"
    );
    let failures = "vault_mcp_auth_failures_total";
    assert!(
        count(&after, failures, &bad_signature) >= count(&before, failures, &bad_signature) + 1.0
    );
    assert!(count(&after, failures, &missing) >= count(&before, failures, &missing) + 1.0);
    // Every reason has a series from the start.
    for reason in ["malformed", "expired", "wrong_audience", "revoked", "other"] {
        assert!(
            sample(&after, failures, &[("reason", reason)]).is_some(),
            "{reason}"
        );
    }
    let active = |window| sample(&after, "vault_mcp_active_users", &[("window", window)]);
    assert!(active("1d") >= Some(1.0), "{after}");
    assert!(active("7d") >= active("1d"));
    assert!(sample(&after, "vault_mcp_live_actors", &[]) >= Some(1.0));
    assert!(sample(&after, "vault_mcp_open_streams", &[]) >= Some(1.0));
    assert!(sample(&after, "vault_mcp_actor_crashes_total", &[]).is_some());
    // Latency histograms, with buckets; vault sizes observed when the actor opened the vault.
    let seconds = "vault_mcp_http_request_duration_seconds_bucket";
    let labels = [("route", "/mcp"), ("tool", "list_notes"), ("le", "+Inf")];
    assert!(sample(&after, seconds, &labels) >= Some(2.0), "{after}");
    assert!(sample(&after, seconds, &[("le", "0.005")]).is_some());
    assert!(sample(&after, "vault_mcp_vault_notes_bucket", &[("le", "+Inf")]) >= Some(1.0));
    assert!(sample(&after, "vault_mcp_vault_bytes_bucket", &[("le", "+Inf")]) >= Some(1.0));
    // No label names a user.
    assert!(!after.contains("metrics-alice"));
    drop(stream);
}

#[tokio::test]
async fn rate_limit_refusals_are_counted_by_scope() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("METRICS_TOKEN", METRICS_TOKEN),
        ("RATE_LIMIT_PER_SECOND", "0.5"),
        ("RATE_LIMIT_BURST", "2"),
    ];
    let app = spawn_env_in(dir.path(), &env, |_| {}).await;
    let labels = [("scope", "user_requests")];
    let before = sample(&scrape(&app).await, "vault_mcp_rate_limited_total", &labels);
    let token = app.token("metrics-limited");
    let mut limited = false;
    for _ in 0..10 {
        let resp = app
            .post(&token, None)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "never refused");
    let after = sample(&scrape(&app).await, "vault_mcp_rate_limited_total", &labels);
    assert!(after >= Some(before.unwrap_or(0.0) + 1.0), "{after:?}");
}

#[tokio::test]
async fn health_is_ok_and_ready_follows_the_data_folder() {
    let app = spawn_app().await;
    let health = app
        .client
        .get(format!("{}/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok");

    let ready = || async {
        let resp = app
            .client
            .get(format!("{}/ready", app.base))
            .send()
            .await
            .unwrap();
        status_json(resp).await
    };
    let (status, body) = ready().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ready"], json!(true));
    for check in ["serving", "supervisor", "data_dir", "accounts"] {
        assert_eq!(body["checks"][check], json!("ok"), "{body}");
    }

    // A folder where the probe writes its file: nobody, root included, can write it. (A
    // read-only mode would not stop root, which runs the tests in CI.)
    let blocker = app.data.join(PROBE_FILE);
    std::fs::create_dir_all(blocker.join("keep")).unwrap();
    // A good probe is trusted for a few seconds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    let (refused, last) = loop {
        let (status, body) = ready().await;
        if status == StatusCode::SERVICE_UNAVAILABLE || tokio::time::Instant::now() > deadline {
            break (status == StatusCode::SERVICE_UNAVAILABLE, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(refused, "still ready: {last}");
    assert_eq!(last["ready"], json!(false));
    assert!(
        last["checks"]["data_dir"]
            .as_str()
            .is_some_and(|s| s.contains("cannot be written")),
        "{last}"
    );
    assert_eq!(last["checks"]["supervisor"], json!("ok"));

    std::fs::remove_dir_all(&blocker).unwrap();
    let (status, body) = ready().await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a failure is not remembered: {body}"
    );
}

#[tokio::test]
async fn the_metrics_listener_serves_metrics_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config_with_env(dir.path(), &[("METRICS_LISTEN", "127.0.0.1:0")]);
    let app = Application::build(config).await.expect("server builds");
    let port = app.port();
    let metrics_port = app.metrics_port().expect("a metrics listener");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let resp = client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(sample(&text, "vault_mcp_active_users", &[("window", "7d")]).is_some());
    assert!(sample(&text, "vault_mcp_live_actors", &[]).is_some());
    // Only /metrics there; and the main port still hides it (no METRICS_TOKEN).
    let other = client
        .get(format!("http://127.0.0.1:{metrics_port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let main = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), StatusCode::NOT_FOUND);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[test]
fn log_format_json_writes_one_json_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vault-mcp"))
        .current_dir(dir.path())
        .env_clear()
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait for the banner, then stop the server: it logs that it is shutting down.
    let stdout = child.stdout.take().unwrap();
    let mut banner = BufReader::new(stdout).lines();
    assert!(banner
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.starts_with("listening on ")));
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = child.wait();
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == "INFO"
            && l["fields"]["message"] == "shutting down"
            && l["timestamp"].is_string()),
        "{stderr}"
    );
}

#[tokio::test]
async fn after_the_stop_signal_requests_are_still_answered_and_told_to_close_the_connection() {
    let mut app = spawn_app().await;
    let token = app.token("drainer");
    let sid = app.session(&token).await;
    let before = app
        .client
        .get(format!("{}/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(before.status(), StatusCode::OK);
    assert!(before.headers().get("connection").is_none());
    app.begin_stop();
    // Let the server see the signal; the drain lasts longer than this.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The kept-alive connection still gets its answer, with `Connection: close`.
    let during = app
        .client
        .get(format!("{}/health", app.base))
        .send()
        .await
        .expect("answered during the drain");
    assert_eq!(during.status(), StatusCode::OK);
    assert_eq!(during.headers()["connection"], "close");
    assert_eq!(app.ping_status(&token, &sid).await, StatusCode::OK);
    app.stop().await;
}
