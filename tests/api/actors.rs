//! Actor semantics seen from outside: crash and restart, idle shutdown, sessions that outlive
//! actors and processes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use vault_actors::UserId;

use crate::helpers::*;

#[tokio::test]
async fn crash_mid_writes_loses_no_acknowledged_write_and_disturbs_no_one_else() {
    let app = spawn_app().await;
    let alice = app.token("alice");
    let bob = app.token("bob");
    let sid = app.session(&alice).await;
    let bob_sid = app.session(&bob).await;
    app.ok(
        &bob,
        &bob_sid,
        "write_note",
        json!({"path":"bob.md","body":"bob's note"}),
    )
    .await;

    let writer = {
        let (client, url, token, sid) = (
            app.client.clone(),
            format!("{}/mcp", app.base),
            alice.clone(),
            sid.clone(),
        );
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut failed = 0;
            for i in 0..60 {
                let resp = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-session-id", &sid)
                    .json(&json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{"name":"write_note",
                        "arguments":{"path":format!("w/{i}.md"),"body":format!("entry number{i} crashword")}}}))
                    .send()
                    .await
                    .unwrap();
                if resp.status() == StatusCode::OK {
                    let body: serde_json::Value = resp.json().await.unwrap();
                    if body["result"]["isError"] == json!(false) {
                        acknowledged.push(i);
                    }
                } else {
                    assert_eq!(
                        resp.status(),
                        StatusCode::SERVICE_UNAVAILABLE,
                        "a crash is answered 503"
                    );
                    failed += 1;
                }
            }
            (acknowledged, failed)
        })
    };
    let user = UserId::parse("alice").unwrap();
    let supervisor = app.supervisor.clone();
    let crashes = || {
        let supervisor = supervisor.clone();
        async move { supervisor.stats().await.crashes }
    };
    for (n, in_worker) in [false, true, false].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(15)).await;
        app.supervisor.crash_user(&user, in_worker).await;
        // The next crash is for the restarted actor, not for one already dying.
        assert!(
            eventually(Duration::from_secs(5), || async {
                crashes().await == n as u64 + 1
            })
            .await,
            "crash {} was not counted",
            n + 1
        );
    }
    let (acknowledged, _failed) = writer.await.unwrap();
    assert!(!acknowledged.is_empty());
    assert_eq!(crashes().await, 3, "the actor really crashed three times");

    // The same session keeps working after the restarts.
    let list = app
        .ok(
            &alice,
            &sid,
            "list_notes",
            json!({"folder":"w","limit":1000}),
        )
        .await;
    let listed: Vec<String> = list["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap().to_string())
        .collect();
    let found = app
        .ok(
            &alice,
            &sid,
            "search_notes",
            json!({"query":"crashword","limit":100}),
        )
        .await;
    let searchable = hit_paths(&found);
    for i in &acknowledged {
        let path = format!("w/{i}.md");
        let on_disk = std::fs::read_to_string(app.vault_dir("alice").join(&path)).unwrap();
        assert!(
            on_disk.contains(&format!("entry number{i} ")),
            "{path} on disk"
        );
        assert!(listed.contains(&path), "{path} listed");
        assert!(searchable.contains(&path), "{path} searchable");
    }
    // Bob was not disturbed.
    let bob_read = app
        .ok(&bob, &bob_sid, "read_note", json!({"path":"bob.md"}))
        .await;
    assert_eq!(bob_read["body"], "bob's note");
}

#[tokio::test]
async fn repeated_crashes_trip_the_crash_loop_guard_with_retry_after() {
    let app = spawn_app().await;
    let alice = app.token("alice");
    let sid = app.session(&alice).await;
    let user = UserId::parse("alice").unwrap();
    let mut saw_guard = false;
    for _ in 0..12 {
        app.supervisor.crash_user(&user, true).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let resp = app
            .post(&alice, Some(&sid))
            .json(&json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE
            && !header(resp.headers(), "retry-after").is_empty()
        {
            saw_guard = true;
            break;
        }
    }
    assert!(
        saw_guard,
        "after repeated crashes the supervisor refuses for a while"
    );
    // Other users are served meanwhile.
    let bob = app.token("bob");
    let bob_sid = app.session(&bob).await;
    assert_eq!(
        app.rpc(&bob, &bob_sid, "ping", json!({})).await["result"],
        json!({})
    );
}

#[tokio::test]
async fn idle_actor_stops_and_its_session_still_works_afterwards() {
    let app = spawn_app_with(|c| c.actor_idle_timeout = Duration::from_millis(300)).await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"a.md","body":"persisted"}),
    )
    .await;
    assert_eq!(app.supervisor.live_actors().await, 1);
    let sup = app.supervisor.clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            let sup = sup.clone();
            async move { sup.live_actors().await == 0 }
        })
        .await,
        "actor idled out"
    );
    let r = app.ok(&t, &s, "read_note", json!({"path":"a.md"})).await;
    assert_eq!(r["body"], "persisted");
    assert_eq!(app.supervisor.live_actors().await, 1);
}

#[tokio::test]
async fn open_stream_does_not_keep_an_idle_actor_alive() {
    let app = spawn_app_with(|c| c.actor_idle_timeout = Duration::from_millis(300)).await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    let stream = app.get_stream(&t, &s, "text/event-stream").await;
    assert_eq!(stream.status(), StatusCode::OK);
    let sup = app.supervisor.clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            let sup = sup.clone();
            async move { sup.live_actors().await == 0 }
        })
        .await
    );
    drop(stream);
}

#[tokio::test]
async fn session_survives_a_process_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = spawn_in(dir.path(), |_| {}).await;
    let t = first.token("alice");
    let s = first.session(&t).await;
    first
        .ok(
            &t,
            &s,
            "write_note",
            json!({"path":"keep.md","body":"still here"}),
        )
        .await;
    let public_url = first.public_url.clone();
    first.stop().await;

    let second = spawn_in(dir.path(), |c| c.public_url = Some(public_url)).await;
    let r = second
        .ok(&t, &s, "read_note", json!({"path":"keep.md"}))
        .await;
    assert_eq!(r["body"], "still here");
    second.stop().await;
}

#[tokio::test]
async fn live_actors_are_capped_and_evicted_users_keep_their_sessions() {
    let app = spawn_app_with(|c| c.max_live_actors = 3).await;
    let mut users = Vec::new();
    for i in 0..6 {
        let t = app.token(&format!("user{i}"));
        let s = app.session(&t).await;
        app.ok(
            &t,
            &s,
            "write_note",
            json!({"path":"n.md","body":format!("mine {i}")}),
        )
        .await;
        users.push((t, s));
        assert!(app.supervisor.live_actors().await <= 3);
    }
    assert_eq!(app.supervisor.live_actors().await, 3);
    for (i, (t, s)) in users.iter().enumerate() {
        let r = app.ok(t, s, "read_note", json!({"path":"n.md"})).await;
        assert_eq!(
            r["body"],
            format!("mine {i}"),
            "an evicted user's session and notes are intact"
        );
    }
    assert_eq!(app.supervisor.stats().await.crashes, 0);
}

#[tokio::test]
async fn a_restarted_actor_waits_until_its_predecessor_has_let_go_of_the_vault() {
    let app = spawn_app_with(|c| c.confirm_deletes = true).await;
    let t = app.token("alice");
    let a = app.session_with(&t, json!({"elicitation":{}})).await;
    let b = app.session(&t).await;
    app.ok(&t, &a, "write_note", json!({"path":"keep.md","body":"x"}))
        .await;
    // A's delete is running in the vault's worker, waiting for the user's confirmation.
    let resp = app
        .post(&t, Some(&a))
        .json(&json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"delete_note","arguments":{"path":"keep.md"}}}))
        .send()
        .await
        .unwrap();
    let mut reader = SseReader::new(resp);
    let ask = reader.next().await.expect("elicitation request");
    // The actor dies; its job still holds the vault.
    app.supervisor
        .crash_user(&UserId::parse("alice").unwrap(), false)
        .await;
    let sup = app.supervisor.clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            let sup = sup.clone();
            async move { sup.stats().await.crashes == 1 }
        })
        .await
    );
    // B's request starts a new actor, which must wait for the old job to let go.
    let read = {
        let req = app
            .post(&t, Some(&b))
            .json(&json!({"jsonrpc":"2.0","id":9,"method":"tools/call",
            "params":{"name":"read_note","arguments":{"path":"keep.md"}}}));
        tokio::spawn(async move {
            req.send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !read.is_finished(),
        "the new actor does not touch the vault while the old job runs"
    );
    let answered = app
        .post(&t, Some(&a))
        .json(&json!({"jsonrpc":"2.0","id":ask["id"],"result":{"action":"accept","content":{"confirm":true}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), StatusCode::ACCEPTED);
    let last = reader.rest().await.pop().expect("A's answer");
    assert_eq!(
        last["result"]["isError"], false,
        "the old job finished and answered: {last}"
    );
    let seen = read.await.unwrap();
    assert_eq!(
        seen["result"]["structuredContent"]["code"], "not_found",
        "B saw the vault after A's delete"
    );
}
