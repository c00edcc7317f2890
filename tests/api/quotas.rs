//! Quotas: notes and bytes per vault, sessions and tokens per user. Going over is refused with
//! `quota_exceeded`, the limit and the numbers; nothing stored is lost or changed; and
//! `vault_info` (and the account page) report the same usage.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_env_in, status_json, TestApp, LATEST};
use crate::signin::{csrf_of, sign_in_local, Browser};

async fn app_with(env: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(dir.path(), env, |_| {}).await;
    (app, dir)
}

/// A tool call that must fail with `quota_exceeded`; its structured content.
async fn quota_refusal(app: &TestApp, t: &str, s: &str, tool: &str, args: Value) -> Value {
    let result = app.call(t, s, tool, args).await;
    assert_eq!(
        result["isError"], true,
        "{tool} should be refused: {result}"
    );
    let details = result["structuredContent"].clone();
    assert_eq!(details["code"], "quota_exceeded", "{details}");
    details
}

async fn write(app: &TestApp, t: &str, s: &str, path: &str, body: &str) -> Value {
    app.ok(t, s, "write_note", json!({"path": path, "body": body}))
        .await
}

fn file_bytes(app: &TestApp, user: &str, path: &str) -> Vec<u8> {
    std::fs::read(app.vault_dir(user).join(path)).unwrap()
}

#[tokio::test]
async fn a_note_beyond_notes_per_vault_is_refused_with_the_numbers_and_nothing_is_lost() {
    let (app, _dir) = app_with(&[("MAX_NOTES_PER_VAULT", "3")]).await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    for name in ["a", "b", "c"] {
        write(&app, &t, &s, &format!("{name}.md"), &format!("note {name}")).await;
    }
    let before: Vec<Vec<u8>> = ["a.md", "b.md", "c.md"]
        .iter()
        .map(|p| file_bytes(&app, "alice", p))
        .collect();

    let refused = quota_refusal(
        &app,
        &t,
        &s,
        "write_note",
        json!({"path": "d.md", "body": "one too many"}),
    )
    .await;
    assert_eq!(
        (&refused["limit"], &refused["max"], &refused["current"]),
        (&json!("notes_per_vault"), &json!(3), &json!(3))
    );
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("notes_per_vault is 3") && message.contains("has 3 notes"),
        "{message}"
    );
    assert!(!app.vault_dir("alice").join("d.md").exists());
    let after: Vec<Vec<u8>> = ["a.md", "b.md", "c.md"]
        .iter()
        .map(|p| file_bytes(&app, "alice", p))
        .collect();
    assert_eq!(before, after, "the stored notes are untouched");

    // A rewrite of a note already there is not a new note.
    let rewritten = write(&app, &t, &s, "a.md", "note a, revised").await;
    assert_eq!(rewritten["version"], 2);
    // Deleting one makes room.
    app.ok(&t, &s, "delete_note", json!({"path": "b.md"})).await;
    let created = write(&app, &t, &s, "d.md", "now it fits").await;
    assert_eq!(created["created_note"], true);
    // Another user's vault has its own quota.
    let bob = app.token("bob");
    let bs = app.session(&bob).await;
    write(&app, &bob, &bs, "x.md", "bob's").await;
}

#[tokio::test]
async fn a_write_past_vault_bytes_is_refused_and_the_stored_note_stays_byte_for_byte() {
    let (app, _dir) = app_with(&[("MAX_VAULT_BYTES", "2000")]).await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    let written = write(&app, &t, &s, "a.md", &"a".repeat(500)).await;
    let used = written["size"].as_u64().unwrap();
    let stored = file_bytes(&app, "alice", "a.md");
    assert_eq!(stored.len() as u64, used);

    // Growing the note past the quota: refused, and the file is exactly as it was.
    let refused = quota_refusal(
        &app,
        &t,
        &s,
        "write_note",
        json!({"path": "a.md", "body": "b".repeat(3000)}),
    )
    .await;
    assert_eq!(
        (&refused["limit"], &refused["max"], &refused["current"]),
        (&json!("vault_bytes"), &json!(2000), &json!(used))
    );
    assert_eq!(file_bytes(&app, "alice", "a.md"), stored);
    let read = app.ok(&t, &s, "read_note", json!({"path": "a.md"})).await;
    assert_eq!(
        (read["version"].as_u64(), read["body"].as_str()),
        (Some(1), Some("a".repeat(500).as_str()))
    );
    // A new note that does not fit is refused too; one that fits is not.
    let refused = quota_refusal(
        &app,
        &t,
        &s,
        "write_note",
        json!({"path": "big.md", "body": "c".repeat(1800)}),
    )
    .await;
    assert_eq!(refused["limit"], "vault_bytes");
    assert!(!app.vault_dir("alice").join("big.md").exists());
    write(&app, &t, &s, "small.md", "fits").await;
    // Shrinking is always allowed; deleting frees room.
    write(&app, &t, &s, "a.md", "short now").await;
    app.ok(&t, &s, "delete_note", json!({"path": "small.md"}))
        .await;
    write(&app, &t, &s, "big.md", &"c".repeat(1500)).await;
}

#[tokio::test]
async fn notes_copied_in_beyond_the_quota_are_kept_listed_and_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vaults/alice");
    std::fs::create_dir_all(&vault).unwrap();
    for i in 0..4 {
        std::fs::write(
            vault.join(format!("n{i}.md")),
            format!("# Copied {i}\nsharedword"),
        )
        .unwrap();
    }
    let app = spawn_env_in(dir.path(), &[("MAX_NOTES_PER_VAULT", "2")], |_| {}).await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    let listed = app.ok(&t, &s, "list_notes", json!({})).await;
    assert_eq!(listed["notes"].as_array().unwrap().len(), 4);
    let found = app
        .ok(&t, &s, "search_notes", json!({"query": "sharedword"}))
        .await;
    assert_eq!(found["results"].as_array().unwrap().len(), 4);
    let info = app.ok(&t, &s, "vault_info", json!({})).await;
    assert_eq!(
        info["quota"]["notes_per_vault"],
        json!({"max": 2, "used": 4})
    );

    let refused = quota_refusal(
        &app,
        &t,
        &s,
        "write_note",
        json!({"path": "new.md", "body": "x"}),
    )
    .await;
    assert_eq!(refused["current"], 4);
    // The notes already there can still be edited.
    write(&app, &t, &s, "n0.md", "# Edited").await;
}

async fn initialize(app: &TestApp, token: &str) -> reqwest::Response {
    app.post(token, None)
        .json(
            &json!({"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {
            "protocolVersion": LATEST, "capabilities": {},
            "clientInfo": {"name": "tests", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn initialize_beyond_sessions_per_user_is_a_json_rpc_error_and_open_sessions_keep_working() {
    let (app, _dir) = app_with(&[("MAX_SESSIONS_PER_USER", "2")]).await;
    let t = app.token("alice");
    let first = app.session(&t).await;
    let second = app.session(&t).await;

    let resp = initialize(&app, &t).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers().get("mcp-session-id").is_none(),
        "no session is made"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], 7);
    assert!(body.get("result").is_none(), "{body}");
    assert_eq!(body["error"]["code"], -32003);
    let data = &body["error"]["data"];
    assert_eq!(
        (
            &data["code"],
            &data["limit"],
            &data["max"],
            &data["current"]
        ),
        (
            &json!("quota_exceeded"),
            &json!("sessions_per_user"),
            &json!(2),
            &json!(2)
        )
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sessions_per_user is 2"));

    // The sessions already open keep working, and report the quota as full.
    assert_eq!(app.ping_status(&t, &first).await, StatusCode::OK);
    let info = app.ok(&t, &second, "vault_info", json!({})).await;
    assert_eq!(
        info["quota"]["sessions_per_user"],
        json!({"max": 2, "used": 2})
    );
    assert_eq!(info["sessions"], 2);
    // Another user is not affected.
    app.session(&app.token("bob")).await;
    // Ending a session makes room for a new one.
    let ended = app
        .client
        .delete(format!("{}/mcp", app.base))
        .bearer_auth(&t)
        .header("mcp-session-id", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let third = app.session(&t).await;
    assert_eq!(app.ping_status(&t, &third).await, StatusCode::OK);
}

#[tokio::test]
async fn the_sessions_quota_counts_sessions_made_before_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("MAX_SESSIONS_PER_USER", "1")];
    let app = spawn_env_in(dir.path(), &env, |_| {}).await;
    let t = app.token("alice");
    let before = app.session(&t).await;
    app.stop().await;

    let app = spawn_env_in(dir.path(), &env, |_| {}).await;
    let t = app.token("alice");
    let body: Value = initialize(&app, &t).await.json().await.unwrap();
    assert_eq!(body["error"]["data"]["current"], 1, "{body}");
    assert_eq!(app.ping_status(&t, &before).await, StatusCode::OK);
}

async fn create_token(browser: &mut Browser, app: &TestApp, csrf: &str) -> (StatusCode, Value) {
    let resp = browser
        .send(Method::POST, &format!("{}/api/tokens", app.base), |r| {
            r.header("x-csrf-token", csrf)
                .json(&json!({ "name": "client", "ttl": "7d", "scope": "read" }))
        })
        .await;
    status_json(resp).await
}

#[tokio::test]
async fn a_token_beyond_tokens_per_user_is_refused_with_403_and_the_numbers() {
    let (app, _dir) = app_with(&[("MODE", "local"), ("MAX_TOKENS_PER_USER", "2")]).await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    let csrf = csrf_of(&mut browser, &app).await;
    let (_, listed) = status_json(browser.get(&format!("{}/api/tokens", app.base)).await).await;
    let existing = listed["tokens"].as_array().unwrap().len();
    assert!(existing < 2, "{listed}");
    let mut made = Vec::new();
    for _ in existing..2 {
        let (status, body) = create_token(&mut browser, &app, &csrf).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        made.push(body["id"].as_str().unwrap().to_string());
    }

    let (status, body) = create_token(&mut browser, &app, &csrf).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        (
            &body["error"],
            &body["limit"],
            &body["max"],
            &body["current"]
        ),
        (
            &json!("quota_exceeded"),
            &json!("tokens_per_user"),
            &json!(2),
            &json!(2)
        )
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("tokens_per_user is 2"));
    let (_, listed) = status_json(browser.get(&format!("{}/api/tokens", app.base)).await).await;
    assert_eq!(
        listed["tokens"].as_array().unwrap().len(),
        2,
        "nothing was made"
    );

    // Revoking one makes room.
    let id = made.last().expect("made at least one token");
    let resp = browser
        .send(
            Method::DELETE,
            &format!("{}/api/tokens/{id}", app.base),
            |r| r.header("x-csrf-token", &csrf),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, _) = create_token(&mut browser, &app, &csrf).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn vault_info_reports_counts_quotas_index_and_last_change_after_writes() {
    let (app, _dir) =
        app_with(&[("MAX_NOTES_PER_VAULT", "10"), ("MAX_VAULT_BYTES", "100000")]).await;
    let t = app.token("alice");
    let s = app.session(&t).await;

    let listed = app.rpc(&t, &s, "tools/list", json!({})).await;
    let described = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "vault_info")
        .cloned()
        .expect("vault_info is in the catalog");
    assert_eq!(described["annotations"]["readOnlyHint"], true);
    assert_eq!(described["outputSchema"]["type"], "object");

    let empty = app.ok(&t, &s, "vault_info", json!({})).await;
    assert_eq!(
        (empty["notes"].as_u64(), empty["bytes"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(empty["last_change"], Value::Null);
    assert_eq!(empty["index"]["healthy"], true);

    write(&app, &t, &s, "a.md", "alpha #one").await;
    write(&app, &t, &s, "f/b.md", "beta #one #two").await;
    let last = write(&app, &t, &s, "f/c.md", "gamma").await;
    app.ok(&t, &s, "delete_note", json!({"path": "f/c.md"}))
        .await;

    let info = app.ok(&t, &s, "vault_info", json!({})).await;
    let on_disk: u64 = ["a.md", "f/b.md"]
        .iter()
        .map(|p| file_bytes(&app, "alice", p).len() as u64)
        .sum();
    assert_eq!(info["notes"], 2);
    assert_eq!(info["bytes"], on_disk);
    assert_eq!(info["tags"], 2);
    assert_eq!(info["sessions"], 1);
    assert_eq!(
        info["quota"],
        json!({
            "notes_per_vault": {"max": 10, "used": 2},
            "vault_bytes": {"max": 100000, "used": on_disk},
            "sessions_per_user": {"max": 32, "used": 1},
        })
    );
    assert_eq!(info["index"]["healthy"], true);
    assert_eq!(info["index"]["indexed_notes"], 2);
    assert_eq!(info["index"]["skipped_at_last_scan"], 0);
    assert!(info["index"]["last_scan"].is_string(), "{info}");
    let changed = info["last_change"].as_str().expect("a last change");
    assert!(
        changed >= last["updated"].as_str().unwrap(),
        "the delete came after the last write: {changed}"
    );

    // A read-only token may ask too.
    let reader = app
        .keys
        .mint(
            &vault_actors::UserId::parse("alice").unwrap(),
            std::time::Duration::from_secs(600),
            &["notes:read".to_string()],
        )
        .unwrap();
    let rs = app.session(&reader).await;
    let seen = app.ok(&reader, &rs, "vault_info", json!({})).await;
    assert_eq!(seen["notes"], 2);
    assert_eq!(seen["sessions"], 2);
}

#[tokio::test]
async fn the_account_page_shows_the_usage_and_the_page_api_refuses_past_the_quota() {
    let (app, _dir) = app_with(&[("MODE", "local"), ("MAX_NOTES_PER_VAULT", "1")]).await;
    let t = app.token("local");
    let s = app.session(&t).await;
    write(&app, &t, &s, "only.md", "the one note").await;

    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    let page = browser.get(&format!("{}/account", app.base)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Your vault"), "{html}");
    assert!(html.contains("1 of 1"), "notes used of max: {html}");
    assert!(html.contains("1 open, at most 32"), "{html}");

    let csrf = csrf_of(&mut browser, &app).await;
    let resp = browser
        .send(Method::POST, &format!("{}/api/notes", app.base), |r| {
            r.header("x-csrf-token", &csrf)
                .json(&json!({"path": "second.md", "body": "no room", "if_version": 0}))
        })
        .await;
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        (
            &body["code"],
            &body["limit"],
            &body["max"],
            &body["current"]
        ),
        (
            &json!("quota_exceeded"),
            &json!("notes_per_vault"),
            &json!(1),
            &json!(1)
        )
    );
    assert!(!app.vault_dir("local").join("second.md").exists());
}
