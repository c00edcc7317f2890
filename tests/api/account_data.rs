//! Taking your data with you: a vault exported and imported elsewhere is the same files byte
//! for byte; an Obsidian vault zipped imports without its settings, and unsafe entries are
//! refused and reported while the rest imports; deleting an account leaves nothing behind and
//! needs its confirmation; each is audited once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::signin::{csrf_of, sign_in_local, Browser};

const BIN: &str = env!("CARGO_BIN_EXE_vault-mcp");

/// Every file below `dir` that is not hidden, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                let name = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(name, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn audit_events(app: &TestApp, event: &str) -> Vec<Value> {
    std::fs::read_to_string(app.data.join("audit/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["event"] == event)
        .collect()
}

async fn export(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/api/export", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn import(app: &TestApp, token: &str, archive: Vec<u8>) -> (StatusCode, Value) {
    let resp = app
        .client
        .post(format!("{}/api/import", app.base))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(archive)
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

fn reasons(report: &Value) -> BTreeMap<String, String> {
    report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn imported(report: &Value) -> Vec<String> {
    let mut paths: Vec<String> = report["imported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths
}

#[tokio::test]
async fn an_export_imported_into_a_fresh_user_is_the_same_files_byte_for_byte() {
    let app = spawn_app().await;
    let alice = app.token("alice");
    let s = app.session(&alice).await;
    app.ok(
        &alice,
        &s,
        "write_note",
        json!({"path": "plan.md", "body": "See [[ideas/é]] #work", "metadata": {"owner": "a"}}),
    )
    .await;
    app.ok(
        &alice,
        &s,
        "write_note",
        json!({"path": "ideas/é.md", "body": "ünïcode\r\nand CRLF\n"}),
    )
    .await;
    // An attachment and a note without frontmatter put there by another program, and a
    // server temp file that is not part of the vault.
    let vault = app.vault_dir("alice");
    std::fs::create_dir_all(vault.join("img")).unwrap();
    let png: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(vault.join("img/pic.png"), &png).unwrap();
    std::fs::write(vault.join("raw.md"), "no frontmatter, \u{0}kept\n").unwrap();
    std::fs::write(vault.join(".plan.md.123.tmp"), "half a write").unwrap();

    let resp = export(&app, &alice).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(resp.headers(), "content-type"), "application/gzip");
    assert!(header(resp.headers(), "content-disposition").contains(".tar.gz"));
    let archive = resp.bytes().await.unwrap().to_vec();

    let bob = app.token("bob");
    let (status, report) = import(&app, &bob, archive).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        imported(&report),
        ["ideas/é.md", "img/pic.png", "plan.md", "raw.md"]
    );
    assert!(reasons(&report).is_empty(), "{report}");
    let original = files(&vault);
    assert_eq!(original.len(), 4);
    assert_eq!(files(&app.vault_dir("bob")), original);
    assert!(!app.vault_dir("bob").join(".plan.md.123.tmp").exists());

    // The notes are bob's notes now: listed, read and searched through his actor.
    let bs = app.session(&bob).await;
    let found = app
        .ok(&bob, &bs, "search_notes", json!({"query": "work"}))
        .await;
    assert_eq!(hit_paths(&found), ["plan.md"]);
    let listed = app.ok(&bob, &bs, "list_notes", json!({})).await;
    assert_eq!(listed["notes"].as_array().unwrap().len(), 3, "{listed}");

    assert_eq!(audit_events(&app, "account_exported").len(), 1);
    let exported = &audit_events(&app, "account_exported")[0];
    assert_eq!(exported["user"], "alice");
    assert_eq!(exported["detail"]["files"], 4);
    let imported_line = audit_events(&app, "account_imported");
    assert_eq!(imported_line.len(), 1);
    assert_eq!(imported_line[0]["user"], "bob");
    assert_eq!(imported_line[0]["detail"]["notes"], 3);

    // Importing the same archive again replaces nothing: every file is reported as existing.
    let archive = export(&app, &alice).await.bytes().await.unwrap().to_vec();
    let (_, again) = import(&app, &bob, archive).await;
    assert!(imported(&again).is_empty());
    assert!(reasons(&again).values().all(|r| r == "exists"), "{again}");
}

#[tokio::test]
async fn export_needs_read_and_import_needs_write_over_the_whole_vault() {
    let app = spawn_app().await;
    let read_only = app
        .keys
        .mint(
            &vault_actors::UserId::parse("alice").unwrap(),
            Duration::from_secs(600),
            &["notes:read".to_string()],
        )
        .unwrap();
    assert_eq!(export(&app, &read_only).await.status(), StatusCode::OK);
    let (status, body) = import(&app, &read_only, b"PK\x03\x04".to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
    let no_auth = app
        .client
        .get(format!("{}/api/export", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = import(&app, &app.token("alice"), b"not an archive".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unknown_format");
}

/// An Obsidian vault folder zipped whole, with its settings, trash, an entry that climbs out
/// of the vault and a symlink.
fn obsidian_zip() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, body) in [
        ("MyVault/.obsidian/app.json", &b"{}"[..]),
        ("MyVault/.obsidian/plugins/x/main.js", b"code"),
        ("MyVault/.trash/old.md", b"old"),
        ("MyVault/notes/today.md", b"# Today\n[[pic.png]]\n"),
        ("MyVault/attachments/pic.png", b"\x89PNG\r\n\x1a\nbytes"),
        ("MyVault/../escaped.md", b"evil"),
        ("MyVault/notes/.hidden.md", b"hidden"),
    ] {
        zip.start_file(name, opts).unwrap();
        zip.write_all(body).unwrap();
    }
    zip.add_symlink("MyVault/passwd.md", "/etc/passwd", opts)
        .unwrap();
    zip.finish().unwrap().into_inner()
}

#[tokio::test]
async fn an_obsidian_zip_imports_without_settings_and_unsafe_entries_are_refused_and_reported() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let (status, report) = import(&app, &t, obsidian_zip()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["stripped_folder"], "MyVault");
    assert_eq!(imported(&report), ["attachments/pic.png", "notes/today.md"]);
    let skipped = reasons(&report);
    assert_eq!(skipped["MyVault/.obsidian/app.json"], "obsidian_settings");
    assert_eq!(
        skipped["MyVault/.obsidian/plugins/x/main.js"],
        "obsidian_settings"
    );
    assert_eq!(skipped["MyVault/.trash/old.md"], "trash");
    assert_eq!(skipped["MyVault/../escaped.md"], "unsafe_path");
    assert_eq!(skipped["MyVault/notes/.hidden.md"], "hidden");
    assert_eq!(skipped["MyVault/passwd.md"], "symlink");
    // Nothing landed outside the vault, and no link inside it.
    assert!(!app.data.join("vaults/escaped.md").exists());
    assert!(!app.data.join("escaped.md").exists());
    let vault = app.vault_dir("alice");
    assert!(std::fs::symlink_metadata(vault.join("passwd.md")).is_err());
    assert_eq!(
        std::fs::read(vault.join("attachments/pic.png")).unwrap(),
        b"\x89PNG\r\n\x1a\nbytes"
    );
    let s = app.session(&t).await;
    let read = app
        .ok(&t, &s, "read_note", json!({"path": "notes/today.md"}))
        .await;
    assert!(read["body"].as_str().unwrap().contains("# Today"));
}

#[test]
fn the_command_line_imports_an_obsidian_folder_and_reports_it() {
    let data = tempfile::tempdir().unwrap();
    let source = tempfile::tempdir().unwrap();
    let src = source.path();
    std::fs::create_dir_all(src.join(".obsidian")).unwrap();
    std::fs::write(src.join(".obsidian/app.json"), "{}").unwrap();
    std::fs::create_dir_all(src.join("daily")).unwrap();
    std::fs::write(src.join("daily/2024-01-01.md"), "day one").unwrap();
    std::fs::write(src.join("photo.jpg"), [0xffu8, 0xd8, 0xff]).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("link.md")).unwrap();
    let out = std::process::Command::new(BIN)
        .env_clear()
        .env("DATA_DIR", data.path())
        .arg("import")
        .arg(src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(imported(&report), ["daily/2024-01-01.md", "photo.jpg"]);
    let skipped = reasons(&report);
    assert_eq!(skipped[".obsidian"], "obsidian_settings");
    assert_eq!(skipped["link.md"], "symlink");
    let vault = data.path().join("vaults/local");
    assert_eq!(
        std::fs::read(vault.join("daily/2024-01-01.md")).unwrap(),
        b"day one"
    );
    assert!(!vault.join(".obsidian").exists());
}

/// Rows still naming `user` in the accounts file.
/// Every path under `data` with a component named for `user` (`local`, `local.sqlite`, ...).
fn files_named_for(data: &Path, user: &str) -> Vec<String> {
    fn walk(dir: &Path, user: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == user || name.starts_with(&format!("{user}.")) {
                out.push(path.display().to_string());
            }
            if path.is_dir() {
                walk(&path, user, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(data, user, &mut out);
    out
}

fn account_rows(data: &Path, user: &str) -> i64 {
    let conn = rusqlite::Connection::open(data.join("accounts.sqlite")).unwrap();
    ["web_sessions", "tokens", "grants"]
        .iter()
        .map(|table| {
            conn.query_row(
                &format!("SELECT count(*) FROM {table} WHERE user_id = ?1"),
                [user],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
        })
        .sum::<i64>()
}

/// Local mode with an issuer and audience that do not change with the port, so tokens outlive
/// a restart.
const FIXED_ISSUER: &[(&str, &str)] = &[
    ("MODE", "local"),
    ("JWT_ISSUER", "vault-test"),
    ("JWT_AUDIENCE", "vault-test"),
];

/// A full-access token for `user` under [`FIXED_ISSUER`], minted (like the command line of
/// another node would) without being recorded in the accounts file.
fn token(user: &str) -> String {
    vault_mcp::auth::TokenKeys::new(SECRET.as_bytes(), "vault-test", "vault-test")
        .mint(
            &vault_actors::UserId::parse(user).unwrap(),
            Duration::from_secs(600),
            &[],
        )
        .unwrap()
}

async fn delete_account(
    browser: &mut Browser,
    app: &TestApp,
    csrf: &str,
    body: Value,
) -> (StatusCode, Value) {
    let resp = browser
        .send(
            Method::POST,
            &format!("{}/api/account/delete", app.base),
            |r| r.header("x-csrf-token", csrf).json(&body),
        )
        .await;
    status_json(resp).await
}

#[tokio::test]
async fn deleting_an_account_needs_its_confirmation_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(dir.path(), FIXED_ISSUER, |_| {}).await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    let csrf = csrf_of(&mut browser, &app).await;
    let resp = browser
        .send(Method::POST, &format!("{}/api/tokens", app.base), |r| {
            r.header("x-csrf-token", &csrf)
                .json(&json!({"name": "laptop", "ttl": "1d", "scope": "write"}))
        })
        .await;
    let (_, created) = status_json(resp).await;
    let page_token = created["token"].as_str().unwrap().to_string();
    let minted = token("local");
    let s = app.session(&page_token).await;
    app.ok(
        &page_token,
        &s,
        "write_note",
        json!({"path": "a.md", "body": "mine"}),
    )
    .await;
    // A second write leaves the first version in the note's history.
    app.ok(
        &page_token,
        &s,
        "write_note",
        json!({"path": "a.md", "body": "mine, again"}),
    )
    .await;
    let vault = app.vault_dir("local");
    let index = app.data.join("index/local.sqlite");
    assert!(vault.join("a.md").exists());
    assert!(index.exists(), "the index lives at {}", index.display());
    assert!(
        !files_named_for(&app.data, "local").is_empty(),
        "the user's files are found by name"
    );
    assert!(account_rows(&app.data, "local") >= 2);

    // Without the confirmation, or with a wrong one, nothing goes.
    for body in [
        json!({}),
        json!({"confirm": "someone"}),
        json!({"confirm": ""}),
    ] {
        let (status, answer) = delete_account(&mut browser, &app, &csrf, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"], "confirmation_required");
    }
    let (status, _) =
        delete_account(&mut browser, &app, "wrong", json!({"confirm": "local"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(vault.join("a.md").exists());
    assert_eq!(app.ping_status(&page_token, &s).await, StatusCode::OK);
    assert!(audit_events(&app, "account_deleted").is_empty());

    let (status, answer) =
        delete_account(&mut browser, &app, &csrf, json!({"confirm": "local"})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!vault.exists(), "the vault folder is gone");
    assert_eq!(
        files_named_for(&app.data, "local"),
        Vec::<String>::new(),
        "no file of the user's is left in the data folder"
    );
    for suffix in ["", "-wal", "-shm"] {
        let f = app.data.join(format!("index/local.sqlite{suffix}"));
        assert!(!f.exists(), "{} is left", f.display());
    }
    assert_eq!(account_rows(&app.data, "local"), 0);
    for token in [&page_token, &minted] {
        let resp = app
            .post(token, None)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = browser.get(&format!("{}/api/tokens", app.base)).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the web session ended"
    );
    let deleted = audit_events(&app, "account_deleted");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["user"], "local");

    // A token issued after the deletion starts over on an empty vault.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = token("local");
    let s = app.session(&fresh).await;
    let listed = app.ok(&fresh, &s, "list_notes", json!({})).await;
    assert_eq!(listed["notes"], json!([]));
    app.ok(
        &fresh,
        &s,
        "write_note",
        json!({"path": "new.md", "body": "again"}),
    )
    .await;
    assert!(vault.join("new.md").exists());

    // Still refused after a restart: the deletion is durable.
    app.stop().await;
    let app = spawn_env_in(dir.path(), FIXED_ISSUER, |_| {}).await;
    assert_eq!(
        app.post(&minted, None)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let resp = app
        .post(&fresh, Some(&s))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_account_page_offers_export_import_and_deletion_through_the_web_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(dir.path(), &[("MODE", "local")], |_| {}).await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    let csrf = csrf_of(&mut browser, &app).await;
    let page = browser
        .get(&format!("{}/account", app.base))
        .await
        .text()
        .await
        .unwrap();
    for part in [
        "href=\"/api/export\"",
        "id=\"import-form\"",
        "data-user-id=\"local\"",
        "id=\"delete-confirm\"",
    ] {
        assert!(page.contains(part), "{part} missing from the account page");
    }
    let t = app.token("local");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path": "n.md", "body": "page"}),
    )
    .await;
    let resp = browser.get(&format!("{}/api/export", app.base)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let archive = resp.bytes().await.unwrap().to_vec();
    assert_eq!(&archive[..2], b"\x1f\x8b", "a gzip stream");
    // An upload from the page must carry the CSRF token.
    let url = format!("{}/api/import", app.base);
    let resp = browser
        .send(Method::POST, &url, |r| r.body(archive.clone()))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = browser
        .send(Method::POST, &url, |r| {
            r.header("x-csrf-token", &csrf).body(archive)
        })
        .await;
    let (status, report) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(reasons(&report)["n.md"], "exists");
}
