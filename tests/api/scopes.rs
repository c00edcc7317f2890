//! Folder-scoped tokens over the real server: a token limited to `work/` (write) and `shared/`
//! (read) reads, writes, lists, searches, completes, prompts and hears of changes only inside
//! those folders; the command line and the account page issue such tokens.

use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use vault_actors::UserId;

use crate::helpers::{hit_paths, spawn_app, spawn_env_in, status_json, SseReader, TestApp, SECRET};
use crate::signin::{csrf_of, sign_in_local, Browser};

/// `work/` in write, `shared/` in read.
fn scoped_token(app: &TestApp, user: &str) -> String {
    token_with(app, user, &["notes:write:work", "notes:read:shared"])
}

fn token_with(app: &TestApp, user: &str, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    app.keys
        .mint(
            &UserId::parse(user).unwrap(),
            Duration::from_secs(3600),
            &scopes,
        )
        .unwrap()
}

/// A vault with notes inside and outside the scope; the tag `#proj` and the word `common` are
/// in every note, and `shared/c.md` and `private/d.md` link to `work/a.md`.
async fn seeded(app: &TestApp, user: &str) {
    let t = app.token(user);
    let sid = app.session(&t).await;
    for (path, body) in [
        ("work/a.md", "common alpha #proj"),
        ("work/deep/b.md", "common beta #proj"),
        ("shared/c.md", "common gamma #proj [[a]] [[d]]"),
        ("private/d.md", "common delta #proj #secret [[a]]"),
        ("workshop/e.md", "common epsilon #proj"),
        ("top.md", "common top #proj"),
    ] {
        app.ok(&t, &sid, "write_note", json!({"path": path, "body": body}))
            .await;
    }
}

/// The JSON-RPC error `data.code` of a method call (or the `result` when it succeeded).
async fn rpc_code(app: &TestApp, t: &str, sid: &str, method: &str, params: Value) -> String {
    let answer = app.rpc(t, sid, method, params).await;
    match answer["error"]["data"]["code"].as_str() {
        Some(code) => code.to_string(),
        None => format!("ok: {answer}"),
    }
}

fn paths(notes: &Value) -> Vec<String> {
    notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_folder_token_reads_and_writes_only_inside_its_folders() {
    let app = spawn_app().await;
    seeded(&app, "alice").await;
    let t = scoped_token(&app, "alice");
    let sid = app.session(&t).await;
    for inside in ["work/a.md", "work/deep/b.md", "shared/c.md"] {
        app.ok(&t, &sid, "read_note", json!({"path": inside})).await;
    }
    for outside in ["private/d.md", "top.md", "workshop/e.md"] {
        let code = app
            .err_code(&t, &sid, "read_note", json!({"path": outside}))
            .await;
        assert_eq!(code, "insufficient_scope", "{outside}");
    }
    app.ok(
        &t,
        &sid,
        "write_note",
        json!({"path": "work/new/n.md", "body": "x"}),
    )
    .await;
    for (tool, args) in [
        ("write_note", json!({"path": "shared/c.md", "body": "x"})),
        ("write_note", json!({"path": "private/new.md", "body": "x"})),
        ("write_note", json!({"path": "work.md", "body": "x"})),
        ("delete_note", json!({"path": "private/d.md"})),
        ("delete_note", json!({"path": "shared/c.md"})),
        ("get_backlinks", json!({"path": "private/d.md"})),
        ("get_links", json!({"path": "private/d.md"})),
        ("vault_info", json!({})),
        ("rebuild_index", json!({})),
    ] {
        let code = app.err_code(&t, &sid, tool, args.clone()).await;
        assert_eq!(code, "insufficient_scope", "{tool} {args}");
    }
    let d = std::fs::read_to_string(app.vault_dir("alice").join("private/d.md")).unwrap();
    assert!(d.contains("delta"), "the note outside was left alone");
    let backlinks = app
        .ok(&t, &sid, "get_backlinks", json!({"path": "work/a.md"}))
        .await;
    assert_eq!(paths(&backlinks["backlinks"]), ["shared/c.md"]);
    let links = app
        .ok(&t, &sid, "get_links", json!({"path": "shared/c.md"}))
        .await;
    let resolved: Vec<Value> = links["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["resolved"].clone())
        .collect();
    assert_eq!(resolved, [json!("work/a.md"), Value::Null], "{links}");
    app.ok(&t, &sid, "delete_note", json!({"path": "work/new/n.md"}))
        .await;
}

#[tokio::test]
async fn listings_searches_tags_and_completions_show_only_the_folders_notes() {
    let app = spawn_app().await;
    seeded(&app, "alice").await;
    let t = scoped_token(&app, "alice");
    let sid = app.session(&t).await;
    let inside = ["shared/c.md", "work/a.md", "work/deep/b.md"];

    let listed = app.ok(&t, &sid, "list_notes", json!({})).await;
    assert_eq!(paths(&listed["notes"]), inside);
    // A page at a time, the cursor carries on across folders.
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = app
            .ok(
                &t,
                &sid,
                "list_notes",
                json!({"limit": 1, "cursor": cursor}),
            )
            .await;
        seen.extend(paths(&page["notes"]));
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(seen, inside);
    let work = app
        .ok(&t, &sid, "list_notes", json!({"folder": "work"}))
        .await;
    assert_eq!(paths(&work["notes"]), ["work/a.md", "work/deep/b.md"]);
    let top = app
        .ok(&t, &sid, "list_notes", json!({"recursive": false}))
        .await;
    assert_eq!(paths(&top["notes"]), Vec::<String>::new());
    assert_eq!(
        top["folders"],
        json!([{"path": "shared", "notes": 1}, {"path": "work", "notes": 2}])
    );
    for folder in ["private", "workshop"] {
        for tool in ["list_notes", "search_notes"] {
            let args = json!({"folder": folder, "query": "common"});
            let code = app.err_code(&t, &sid, tool, args).await;
            assert_eq!(code, "insufficient_scope", "{tool} in {folder}");
        }
    }

    let found = app
        .ok(&t, &sid, "search_notes", json!({"query": "common"}))
        .await;
    let mut hits = hit_paths(&found);
    hits.sort();
    assert_eq!(hits, inside);
    let limited = app
        .ok(
            &t,
            &sid,
            "search_notes",
            json!({"query": "common", "limit": 2}),
        )
        .await;
    assert_eq!(hit_paths(&limited).len(), 2);
    let tagged = app
        .ok(
            &t,
            &sid,
            "search_notes",
            json!({"query": "", "tags": ["proj"]}),
        )
        .await;
    let mut hits = hit_paths(&tagged);
    hits.sort();
    assert_eq!(hits, inside);
    let secret = app
        .ok(&t, &sid, "search_notes", json!({"query": "delta"}))
        .await;
    assert!(hit_paths(&secret).is_empty());

    let tags = app.ok(&t, &sid, "get_tags", json!({})).await;
    assert_eq!(tags["tags"], json!([{"tag": "proj", "count": 3}]));

    let resources = app.rpc(&t, &sid, "resources/list", json!({})).await;
    let uris: Vec<&str> = resources["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        [
            "note:///shared/c.md",
            "note:///work/a.md",
            "note:///work/deep/b.md"
        ]
    );

    let complete = |value: &str, prompt: &str, argument: &str| {
        json!({"ref": {"type": "ref/prompt", "name": prompt},
               "argument": {"name": argument, "value": value}})
    };
    let paths_done = app
        .rpc(
            &t,
            &sid,
            "completion/complete",
            complete("", "summarize_note", "path"),
        )
        .await;
    assert_eq!(
        paths_done["result"]["completion"],
        json!({"values": inside, "total": 3, "hasMore": false})
    );
    let work_done = app
        .rpc(
            &t,
            &sid,
            "completion/complete",
            complete("w", "summarize_note", "path"),
        )
        .await;
    assert_eq!(
        work_done["result"]["completion"]["values"],
        json!(["work/a.md", "work/deep/b.md"])
    );
    let tags_done = app
        .rpc(
            &t,
            &sid,
            "completion/complete",
            complete("", "notes_about", "tag"),
        )
        .await;
    assert_eq!(tags_done["result"]["completion"]["values"], json!(["proj"]));
}

#[tokio::test]
async fn resources_and_prompts_outside_the_folders_are_refused() {
    let app = spawn_app().await;
    seeded(&app, "alice").await;
    let t = scoped_token(&app, "alice");
    let sid = app.session(&t).await;
    let read = app
        .rpc(
            &t,
            &sid,
            "resources/read",
            json!({"uri": "note:///work/a.md"}),
        )
        .await;
    assert!(read["result"]["contents"][0]["text"]
        .as_str()
        .unwrap()
        .contains("alpha"));
    for (method, params) in [
        ("resources/read", json!({"uri": "note:///private/d.md"})),
        ("resources/read", json!({"uri": "note:///top.md"})),
        (
            "resources/subscribe",
            json!({"uri": "note:///private/d.md"}),
        ),
        (
            "prompts/get",
            json!({"name": "summarize_note", "arguments": {"path": "private/d.md"}}),
        ),
    ] {
        let code = rpc_code(&app, &t, &sid, method, params.clone()).await;
        assert_eq!(code, "insufficient_scope", "{method} {params}");
    }
    let prompt = app
        .rpc(
            &t,
            &sid,
            "prompts/get",
            json!({"name": "summarize_note", "arguments": {"path": "shared/c.md"}}),
        )
        .await;
    assert!(prompt["result"]["messages"].is_array(), "{prompt}");
    let about = app
        .rpc(
            &t,
            &sid,
            "prompts/get",
            json!({"name": "notes_about", "arguments": {"tag": "proj"}}),
        )
        .await;
    let text = about["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("work/a.md") && text.contains("shared/c.md"));
    assert!(!text.contains("private/d.md") && !text.contains("top.md"));
    let secret = app
        .rpc(
            &t,
            &sid,
            "prompts/get",
            json!({"name": "notes_about", "arguments": {"tag": "secret"}}),
        )
        .await;
    let text = secret["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(text.starts_with("No note carries"), "{text}");
}

#[tokio::test]
async fn a_token_without_any_read_scope_is_refused_by_every_read_method() {
    let app = spawn_app().await;
    seeded(&app, "alice").await;
    // Grants nothing this server knows.
    let t = token_with(&app, "alice", &["profile"]);
    let sid = app.session(&t).await;
    for (method, params) in [
        ("resources/read", json!({"uri": "note:///work/a.md"})),
        ("resources/list", json!({})),
        ("resources/subscribe", json!({"uri": "note:///work/a.md"})),
        (
            "prompts/get",
            json!({"name": "summarize_note", "arguments": {"path": "work/a.md"}}),
        ),
        (
            "prompts/get",
            json!({"name": "notes_about", "arguments": {"tag": "proj"}}),
        ),
        (
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "summarize_note"},
                   "argument": {"name": "path", "value": ""}}),
        ),
    ] {
        let code = rpc_code(&app, &t, &sid, method, params.clone()).await;
        assert_eq!(code, "insufficient_scope", "{method} {params}");
    }
    for tool in ["list_notes", "get_tags", "search_notes"] {
        let code = app
            .err_code(&t, &sid, tool, json!({"query": "common"}))
            .await;
        assert_eq!(code, "insufficient_scope", "{tool}");
    }
}

/// A session of `alice` (full token) subscribed to a note inside `work/` and one outside.
async fn subscribed_watcher(app: &TestApp, full: &str) -> String {
    let watcher = app.session(full).await;
    for uri in ["note:///private/d.md", "note:///work/a.md"] {
        let sub = app
            .rpc(full, &watcher, "resources/subscribe", json!({"uri": uri}))
            .await;
        assert_eq!(sub["result"], json!({}));
    }
    watcher
}

/// Another session writes both subscribed notes; the URIs `reader` is told of, up to the
/// `work/` one (which every token here may read, so it always comes).
async fn updates_after_both_writes(
    app: &TestApp,
    full: &str,
    reader: &mut SseReader,
) -> Vec<Value> {
    let writer = app.session(full).await;
    for path in ["private/d.md", "work/a.md"] {
        app.ok(
            full,
            &writer,
            "write_note",
            json!({"path": path, "body": "v2"}),
        )
        .await;
    }
    let mut updated = Vec::new();
    for _ in 0..6 {
        let msg = reader.next().await.expect("a notification");
        if msg["method"] == "notifications/resources/updated" {
            updated.push(msg["params"]["uri"].clone());
            if msg["params"]["uri"] == "note:///work/a.md" {
                break;
            }
        }
    }
    updated
}

#[tokio::test]
async fn a_session_hears_only_of_notes_its_current_token_may_read() {
    let app = spawn_app().await;
    seeded(&app, "alice").await;
    let full = app.token("alice");
    let scoped = scoped_token(&app, "alice");
    let watcher = subscribed_watcher(&app, &full).await;
    let mut reader = SseReader::new(app.get_stream(&full, &watcher, "text/event-stream").await);
    // The session goes on with the folder token: from now on it is told of its folders only.
    assert_eq!(app.ping_status(&scoped, &watcher).await, StatusCode::OK);
    let updated = updates_after_both_writes(&app, &full, &mut reader).await;
    assert_eq!(updated, [json!("note:///work/a.md")]);
    // Back on the full token, the other note is announced again.
    assert_eq!(app.ping_status(&full, &watcher).await, StatusCode::OK);
    let writer = app.session(&full).await;
    app.ok(
        &full,
        &writer,
        "write_note",
        json!({"path": "private/d.md", "body": "v3"}),
    )
    .await;
    let mut heard = false;
    for _ in 0..6 {
        let msg = reader.next().await.expect("a notification");
        if msg["params"]["uri"] == "note:///private/d.md" {
            heard = true;
            break;
        }
    }
    assert!(heard);
}

#[tokio::test]
async fn the_token_command_issues_a_folder_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app().await;
    seeded(&app, "alice").await;
    let out = Command::new(env!("CARGO_BIN_EXE_vault-mcp"))
        .current_dir(dir.path())
        .env_clear()
        .env("JWT_SECRET_KEY", SECRET)
        .env("PUBLIC_URL", &app.public_url)
        .args(["token", "--user", "alice", "--scope", "notes:write:work/"])
        .args(["--scope", "notes:read:shared"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let sid = app.session(&t).await;
    app.ok(
        &t,
        &sid,
        "write_note",
        json!({"path": "work/cli.md", "body": "x"}),
    )
    .await;
    app.ok(&t, &sid, "read_note", json!({"path": "shared/c.md"}))
        .await;
    for (tool, path) in [("write_note", "shared/c.md"), ("read_note", "private/d.md")] {
        let code = app
            .err_code(&t, &sid, tool, json!({"path": path, "body": "x"}))
            .await;
        assert_eq!(code, "insufficient_scope", "{tool} {path}");
    }
    for bad in ["notes:read:../up", "notes:read:", "notes:admin"] {
        let out = Command::new(env!("CARGO_BIN_EXE_vault-mcp"))
            .current_dir(dir.path())
            .env_clear()
            .env("JWT_SECRET_KEY", SECRET)
            .args(["token", "--user", "alice", "--scope", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--scope"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_account_page_issues_and_refreshes_a_folder_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(dir.path(), &[("MODE", "local")], |_| {}).await;
    seeded(&app, "local").await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    let csrf = csrf_of(&mut browser, &app).await;
    let mut create = async |body: Value| {
        let resp = browser
            .send(Method::POST, &format!("{}/api/tokens", app.base), |r| {
                r.header("x-csrf-token", &csrf).json(&body)
            })
            .await;
        status_json(resp).await
    };
    let (status, made) = create(json!({"name": "work laptop", "ttl": "1d", "scope": "write",
                                        "folders": ["work"], "read_folders": ["shared/"]}))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["scope"], "notes:write:work notes:read:shared");
    for bad in [json!(["../x"]), json!([""]), json!(["a\u{0}b"])] {
        let (status, refused) = create(json!({"name": "bad", "ttl": "1d", "scope": "read",
                                               "folders": bad}))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(refused["error"], "invalid_scope");
    }

    let t = made["token"].as_str().unwrap().to_string();
    let check = async |t: &str| {
        let sid = app.session(t).await;
        app.ok(
            t,
            &sid,
            "write_note",
            json!({"path": "work/page.md", "body": "x"}),
        )
        .await;
        let code = app
            .err_code(
                t,
                &sid,
                "write_note",
                json!({"path": "shared/c.md", "body": "x"}),
            )
            .await;
        assert_eq!(code, "insufficient_scope");
        let code = app
            .err_code(t, &sid, "read_note", json!({"path": "private/d.md"}))
            .await;
        assert_eq!(code, "insufficient_scope");
        app.ok(t, &sid, "read_note", json!({"path": "shared/c.md"}))
            .await;
    };
    check(&t).await;
    // A refreshed token keeps exactly the folders.
    let resp = app
        .client
        .post(format!("{}/api/tokens/refresh", app.base))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    let (status, fresh) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(fresh["scope"], "notes:write:work notes:read:shared");
    check(fresh["token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn a_stream_opened_with_a_folder_token_hears_only_of_its_folders() {
    let app = spawn_app().await;
    seeded(&app, "alice").await;
    let full = app.token("alice");
    let scoped = scoped_token(&app, "alice");
    let watcher = subscribed_watcher(&app, &full).await;
    // The session's requests use the full token; its stream was opened with the folder one.
    let mut reader = SseReader::new(app.get_stream(&scoped, &watcher, "text/event-stream").await);
    assert_eq!(app.ping_status(&full, &watcher).await, StatusCode::OK);
    let updated = updates_after_both_writes(&app, &full, &mut reader).await;
    assert_eq!(updated, [json!("note:///work/a.md")]);
}
