//! Session ids bound to their user: another user's id is answered like an unknown one (404)
//! and audited as `foreign_session`; an altered id is `unknown_session`; ids keep verifying
//! across a restart; untagged (legacy) ids go to the caller's actor unchanged.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn audit_lines(app: &TestApp) -> Vec<Value> {
    std::fs::read_to_string(app.data.join("audit/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every audit line is JSON"))
        .collect()
}

fn events(app: &TestApp, event: &str) -> Vec<Value> {
    audit_lines(app)
        .into_iter()
        .filter(|l| l["event"] == event)
        .collect()
}

/// The status and body of a `ping` on `sid`.
async fn ping(app: &TestApp, token: &str, sid: &str) -> (StatusCode, Value) {
    let resp = app
        .post(token, Some(sid))
        .json(&json!({"jsonrpc":"2.0","id":7,"method":"ping"}))
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

/// `sid` with one character of its MAC changed.
fn tampered(sid: &str) -> String {
    let last = if sid.ends_with('A') { 'B' } else { 'A' };
    format!("{}{last}", &sid[..sid.len() - 1])
}

#[tokio::test]
async fn another_users_session_id_is_404_and_audited_once_as_foreign_without_the_id() {
    let app = spawn_app().await;
    let alice = app.token("alice");
    let bob = app.token("bob");
    let alice_sid = app.session(&alice).await;
    let bob_sid = app.session(&bob).await;

    let (status, foreign) = ping(&app, &bob, &alice_sid).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Exactly the answer to an id nobody ever had, so nothing leaks.
    let never = "00112233445566778899aabbccddeeff0011223344556677";
    let (status, unknown) = ping(&app, &bob, never).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(foreign, unknown);

    let found = events(&app, "foreign_session");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["user"], "bob");
    assert_eq!(found[0]["ip"], "127.0.0.1");
    let text = std::fs::read_to_string(app.data.join("audit/audit.jsonl")).unwrap();
    let inner = alice_sid.split('.').next().unwrap();
    assert!(
        !text.contains(inner),
        "the session id reached the audit log"
    );

    // GET and DELETE with it are refused the same way, and audited too.
    let stream = app.get_stream(&bob, &alice_sid, "text/event-stream").await;
    assert_eq!(stream.status(), StatusCode::NOT_FOUND);
    let del = app
        .client
        .delete(format!("{}/mcp", app.base))
        .bearer_auth(&bob)
        .header("mcp-session-id", &alice_sid)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NOT_FOUND);
    assert_eq!(events(&app, "foreign_session").len(), 3);

    // Both sessions still work for their owners.
    assert_eq!(ping(&app, &alice, &alice_sid).await.0, StatusCode::OK);
    assert_eq!(ping(&app, &bob, &bob_sid).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_altered_session_id_is_unknown_not_foreign() {
    let app = spawn_app().await;
    let alice = app.token("alice");
    let bob = app.token("bob");
    let alice_sid = app.session(&alice).await;

    for (token, user) in [(&bob, "bob"), (&alice, "alice")] {
        let (status, body) = ping(&app, token, &tampered(&alice_sid)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{user}");
        assert_eq!(body["error"]["code"], -32001);
        let last = events(&app, "unknown_session").pop().unwrap();
        assert_eq!(last["user"], user);
    }
    assert_eq!(events(&app, "unknown_session").len(), 2);
    assert!(events(&app, "foreign_session").is_empty());
    assert_eq!(ping(&app, &alice, &alice_sid).await.0, StatusCode::OK);
}

#[tokio::test]
async fn session_ids_are_tagged_and_keep_verifying_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir.path(), |_| {}).await;
    let alice = app.token("alice");
    let sid = app.session(&alice).await;
    assert_eq!(sid.split('.').count(), 3, "{sid}");
    app.ok(
        &alice,
        &sid,
        "write_note",
        json!({"path": "a.md", "body": "kept"}),
    )
    .await;
    app.stop().await;

    let app = spawn_in(dir.path(), |_| {}).await;
    let alice = app.token("alice");
    let read = app
        .ok(&alice, &sid, "read_note", json!({"path": "a.md"}))
        .await;
    assert_eq!(read["body"], "kept");
    let bob = app.token("bob");
    assert_eq!(ping(&app, &bob, &sid).await.0, StatusCode::NOT_FOUND);
    assert_eq!(events(&app, "foreign_session").len(), 1);
}

#[tokio::test]
async fn an_untagged_legacy_id_goes_to_the_callers_actor_unchanged() {
    let app = spawn_app().await;
    let alice = app.token("alice");
    let sid = app.session(&alice).await;
    // The id as the actor stores it: what sessions minted before tagging look like.
    let legacy = sid.split('.').next().unwrap().to_string();
    assert_eq!(ping(&app, &alice, &legacy).await.0, StatusCode::OK);
    let bob = app.token("bob");
    assert_eq!(ping(&app, &bob, &legacy).await.0, StatusCode::NOT_FOUND);
    assert_eq!(events(&app, "unknown_session").len(), 1);
    assert!(events(&app, "foreign_session").is_empty());
}
