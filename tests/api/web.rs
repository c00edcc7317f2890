//! The web app over HTTP: its changes go through the user's actor like MCP's (so subscribed MCP
//! sessions hear of them), its saves keep the version precondition, and its pages are safe.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_env_in, status_json, SseReader, TestApp};
use crate::signin::{csrf_of, sign_in_local, Browser};

async fn signed_in() -> (TestApp, Browser, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(dir.path(), &[("MODE", "local")], |_| {}).await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    let csrf = csrf_of(&mut browser, &app).await;
    (app, browser, csrf, dir)
}

async fn save(
    browser: &mut Browser,
    app: &TestApp,
    csrf: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let resp = browser
        .send(Method::POST, &format!("{}/api/notes", app.base), |r| {
            r.header("x-csrf-token", csrf).json(&body)
        })
        .await;
    status_json(resp).await
}

#[tokio::test]
async fn a_change_made_in_the_page_reaches_subscribed_mcp_sessions() {
    let (app, mut browser, csrf, _dir) = signed_in().await;
    let t = app.token("local");
    let watcher = app.session(&t).await;
    app.ok(
        &t,
        &watcher,
        "write_note",
        json!({"path": "watched.md", "body": "v1"}),
    )
    .await;
    let sub = app
        .rpc(
            &t,
            &watcher,
            "resources/subscribe",
            json!({"uri": "note:///watched.md"}),
        )
        .await;
    assert_eq!(sub["result"], json!({}));
    let mut reader = SseReader::new(app.get_stream(&t, &watcher, "text/event-stream").await);
    let (status, written) = save(
        &mut browser,
        &app,
        &csrf,
        json!({"path": "watched.md", "body": "v2 from the page", "if_version": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(written["version"], 2);
    let mut updated = None;
    for _ in 0..5 {
        let msg = reader.next().await.expect("a notification");
        if msg["method"] == "notifications/resources/updated" {
            updated = Some(msg);
            break;
        }
    }
    assert_eq!(
        updated.expect("resources/updated")["params"]["uri"],
        "note:///watched.md"
    );
    let read = app
        .ok(&t, &watcher, "read_note", json!({"path": "watched.md"}))
        .await;
    assert_eq!(read["body"].as_str().unwrap().trim(), "v2 from the page");
}

#[tokio::test]
async fn a_save_from_a_stale_page_is_a_conflict_that_shows_the_current_note() {
    let (app, mut browser, csrf, _dir) = signed_in().await;
    let t = app.token("local");
    let sid = app.session(&t).await;
    app.ok(
        &t,
        &sid,
        "write_note",
        json!({"path": "a.md", "body": "first"}),
    )
    .await;
    // Changed elsewhere after the page read version 1.
    app.ok(
        &t,
        &sid,
        "write_note",
        json!({"path": "a.md", "body": "from MCP"}),
    )
    .await;
    let (status, err) = save(
        &mut browser,
        &app,
        &csrf,
        json!({"path": "a.md", "body": "from the page", "if_version": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "conflict");
    assert_eq!(err["current"]["version"], 2);
    assert_eq!(err["current"]["body"].as_str().unwrap().trim(), "from MCP");
    let read = app.ok(&t, &sid, "read_note", json!({"path": "a.md"})).await;
    assert_eq!(
        read["body"].as_str().unwrap().trim(),
        "from MCP",
        "nothing overwritten"
    );
    // A save that names the version it saw goes through.
    let (status, _) = save(
        &mut browser,
        &app,
        &csrf,
        json!({"path": "a.md", "body": "from the page", "if_version": 2}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_note_with_a_script_renders_without_it_under_a_strict_policy() {
    let (app, mut browser, _csrf, _dir) = signed_in().await;
    let t = app.token("local");
    let sid = app.session(&t).await;
    let evil =
        "# Hi\n\n## Section\n\n<script>alert(1)</script>\n\n<img src=x onerror=\"alert(2)\">\n\n\
                [click](javascript:alert(3))\n\n<iframe src=\"https://example.com\"></iframe>\n";
    app.ok(
        &t,
        &sid,
        "write_note",
        json!({"path": "evil.md", "body": evil}),
    )
    .await;
    let resp = browser.get(&format!("{}/note/evil.md", app.base)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = resp
        .headers()
        .get("content-security-policy")
        .expect("a Content-Security-Policy")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let page = resp.text().await.unwrap();
    let body = &page[page.find("id=\"note-body\"").expect("the note body")..];
    // Shown as text is fine; an element or attribute that runs is not.
    for bad in [
        "<script",
        "<img src=x onerror",
        "href=\"javascript:",
        "<iframe",
    ] {
        assert!(!body.contains(bad), "{bad} survived: {body}");
    }
    assert!(
        body.contains("<h2"),
        "the markdown itself is rendered: {body}"
    );
}

#[tokio::test]
async fn pages_need_a_session_and_send_the_signed_out_to_the_start_page() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(dir.path(), &[("MODE", "local")], |_| {}).await;
    let mut browser = Browser::new();
    for path in ["/browse", "/note/a.md", "/account", "/search?q=x"] {
        let resp = browser.get(&format!("{}{path}", app.base)).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        let to = resp.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/?next="), "{path} → {to}");
    }
    let resp = browser.get(&format!("{}/api/tokens", app.base)).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_folder_page_lists_subfolders_and_the_notes_directly_in_it() {
    let (app, mut browser, _csrf, _dir) = signed_in().await;
    let t = app.token("local");
    let sid = app.session(&t).await;
    for path in [
        "top.md",
        "projects/plan.md",
        "projects/2026/q1.md",
        "projects/2026/q2.md",
    ] {
        app.ok(&t, &sid, "write_note", json!({"path": path, "body": "x"}))
            .await;
    }
    let page = browser.get(&format!("{}/browse/projects", app.base)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("/browse/projects/2026"), "the subfolder");
    assert!(page.contains("/note/projects/plan.md"), "the note in it");
    assert!(
        !page.contains("/note/projects/2026/q1.md"),
        "not the notes of subfolders"
    );
    assert!(!page.contains("/note/top.md"), "not the notes above");
    let listed = app
        .ok(
            &t,
            &sid,
            "list_notes",
            json!({"folder": "projects", "recursive": false}),
        )
        .await;
    assert_eq!(
        listed["folders"],
        json!([{"path": "projects/2026", "notes": 2}])
    );
    assert_eq!(listed["notes"].as_array().unwrap().len(), 1);
}
