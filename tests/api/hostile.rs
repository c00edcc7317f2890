//! Hostile input from strangers (DESIGN §6): each is answered with a clear error (an HTTP
//! status, a JSON-RPC error, or a tool error with a stable `code`), every note already stored
//! stays byte-for-byte as it was, and the server keeps answering.
//!
//! Names that differ only in case or in Unicode normalization (`Plan.md` / `plan.md`, `café.md`
//! spelled with U+00E9 / with `e` + U+0301) are two distinct notes: a note path is compared
//! byte for byte, as the Linux file system and the index's `UNIQUE` (binary) column compare
//! it, so write, read, list and search agree on them, and neither ever replaces the other.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::signin::{csrf_of, sign_in_local, Browser};

/// Every file and symlink under `dir` with its bytes (a symlink: its target), to prove nothing
/// changed.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let kind = e.file_type().unwrap();
            let name = p.strip_prefix(root).unwrap().display().to_string();
            if kind.is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                out.insert(name, format!("-> {}", target.display()).into_bytes());
            } else if kind.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(name, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A server on a fresh data folder configured by `env`; the folder goes with the app.
async fn app_with(env: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(dir.path(), env, |_| {}).await;
    (app, dir)
}

/// Alice's token and session, with `keep.md` stored (the note nothing may touch).
async fn alice_with_a_note(app: &TestApp) -> (String, String) {
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"keep.md","body":"keep this #safe","metadata":{"owner":"alice"}}),
    )
    .await;
    (t, s)
}

/// The vault is exactly as `before`, `keep.md` reads back as written, and the server answers.
async fn nothing_lost(app: &TestApp, t: &str, s: &str, before: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(
        &snapshot(&app.vault_dir("alice")),
        before,
        "the vault changed"
    );
    let r = app.ok(t, s, "read_note", json!({"path":"keep.md"})).await;
    assert_eq!(
        (r["body"].as_str(), r["metadata"]["owner"].as_str()),
        (Some("keep this #safe"), Some("alice"))
    );
    assert_eq!(app.ping_status(t, s).await, StatusCode::OK);
}

/// A raw POST to /mcp on a session: status and JSON body.
async fn post_raw(
    app: &TestApp,
    t: &str,
    s: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    status_json(app.post(t, Some(s)).body(body).send().await.unwrap()).await
}

/// A `tools/call` envelope around `arguments` spelled as raw JSON text.
fn call_text(tool: &str, arguments: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
    )
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_413_with_or_without_a_length_and_changes_nothing() {
    let (app, _dir) = app_with(&[("MAX_BODY_BYTES", "8192")]).await;
    let (t, s) = alice_with_a_note(&app).await;
    let before = snapshot(&app.vault_dir("alice"));
    let over = call_text(
        "write_note",
        &json!({"path":"keep.md","body":"x".repeat(9000)}).to_string(),
    );
    // With a Content-Length that says it all up front.
    let (status, body) = post_raw(&app, &t, &s, over.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["jsonrpc"], "2.0", "a JSON-RPC error: {body}");
    assert_eq!(body["error"]["code"], -32600);
    assert!(body["error"]["message"].as_str().unwrap().contains("8192"));
    // Streamed in chunks with no length: the server stops reading at the limit.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = over
        .into_bytes()
        .chunks(1000)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let streamed = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let (status, body) = post_raw(&app, &t, &s, streamed).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], -32600);
    // An endless stream is cut off too.
    let endless = futures_util::stream::repeat_with(|| {
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(&[b' '; 4096]))
    });
    let (status, _) = post_raw(&app, &t, &s, reqwest::Body::wrap_stream(endless)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    nothing_lost(&app, &t, &s, &before).await;
    // Just under the limit is an ordinary request.
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"small.md","body":"y".repeat(7000)}),
    )
    .await;
}

#[tokio::test]
async fn a_note_over_max_note_bytes_is_too_large_and_the_stored_one_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    // A note file already on disk over the limit (copied in): never indexed, never truncated.
    let vault = dir.path().join("vaults/alice");
    std::fs::create_dir_all(&vault).unwrap();
    std::fs::write(vault.join("big.md"), "b".repeat(5000)).unwrap();
    let app = spawn_env_in(dir.path(), &[("MAX_NOTE_BYTES", "2048")], |_| {}).await;
    let (t, s) = alice_with_a_note(&app).await;
    let before = snapshot(&app.vault_dir("alice"));
    for (args, why) in [
        (
            json!({"path":"keep.md","body":"x".repeat(2049)}),
            "body over",
        ),
        (
            json!({"path":"keep.md","body":"x".repeat(2000),"metadata":{"pad":"p".repeat(60)}}),
            "body under, file over",
        ),
        (json!({"path":"new.md","body":"x".repeat(4000)}), "new note"),
    ] {
        let result = app.call(&t, &s, "write_note", args).await;
        assert_eq!(result["isError"], true, "{why}");
        assert_eq!(result["structuredContent"]["code"], "too_large", "{why}");
    }
    assert_eq!(
        app.err_code(&t, &s, "read_note", json!({"path":"big.md"}))
            .await,
        "too_large"
    );
    let list = app.ok(&t, &s, "list_notes", json!({})).await;
    assert_eq!(list["notes"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["notes"][0]["path"], "keep.md");
    nothing_lost(&app, &t, &s, &before).await;
    assert!(!app.vault_dir("alice").join("new.md").exists());
}

/// `[[[…]]]` nested `depth` deep around `inner`.
fn nested(depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn json_nested_ten_thousand_deep_is_refused_before_it_is_parsed() {
    let app = spawn_app().await;
    let (t, s) = alice_with_a_note(&app).await;
    let before = snapshot(&app.vault_dir("alice"));
    let deep = nested(10_000, "1");
    let objects = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let bodies = [
        deep.clone(),
        // Never closed: refused without waiting for the end of it.
        "[".repeat(10_000),
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{deep}}}}}"#),
        call_text(
            "write_note",
            &format!(r#"{{"path":"keep.md","body":"evil","metadata":{{"x":{objects}}}}}"#),
        ),
        call_text(
            "write_note",
            &format!(r#"{{"path":"keep.md","body":"evil","if_version":{deep}}}"#),
        ),
    ];
    for body in bodies {
        let (status, answer) = post_raw(&app, &t, &s, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", &body[..60]);
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["error"]["code"], -32600, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("nested deeper than 64"),
            "{answer}"
        );
    }
    // Before a session exists, too.
    let resp = app.post(&t, None).body(deep).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    nothing_lost(&app, &t, &s, &before).await;
    // Just inside the limit, nested metadata becomes nested YAML and reads back the same.
    let mut metadata = json!("bottom");
    for _ in 0..56 {
        metadata = json!({ "k": metadata });
    }
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"nest.md","body":"b","metadata":{"m": metadata}}),
    )
    .await;
    let r = app.ok(&t, &s, "read_note", json!({"path":"nest.md"})).await;
    assert_eq!(r["metadata"]["m"], metadata);
}

/// `keep.md`'s vault, the person's tokens and the registered clients, to prove that a refused
/// request on the page's API, the token API or `/register` stored nothing.
async fn page_state(app: &TestApp, browser: &mut Browser) -> (BTreeMap<String, Vec<u8>>, Value) {
    let resp = browser.get(&format!("{}/api/tokens", app.base)).await;
    let (_, tokens) = status_json(resp).await;
    (snapshot(&app.vault_dir("local")), tokens["tokens"].clone())
}

#[tokio::test]
async fn deep_json_and_invalid_utf8_on_the_page_api_tokens_and_register_are_clear_errors() {
    let (app, _dir) = app_with(&[("MODE", "local")]).await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    let csrf = csrf_of(&mut browser, &app).await;
    let t = app.token("local");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"keep.md","body":"keep this"}),
    )
    .await;
    let before = page_state(&app, &mut browser).await;
    let deep = nested(10_000, "1");
    // Each request would change something if it were accepted.
    let requests: [(Method, &str, &str); 5] = [
        (
            Method::POST,
            "/api/notes",
            r#""path":"keep.md","body":"B","if_version":1"#,
        ),
        (
            Method::DELETE,
            "/api/notes",
            r#""path":"keep.md","if_version":1,"x":"B""#,
        ),
        (Method::POST, "/api/preview", r#""body":"B""#),
        (
            Method::POST,
            "/api/tokens",
            r#""name":"B","ttl":"1d","scope":"write""#,
        ),
        (
            Method::POST,
            "/register",
            r#""redirect_uris":["http://127.0.0.1:9/cb"],"client_name":"B""#,
        ),
    ];
    for (method, path, fields) in requests {
        let deep_body = format!(r#"{{{fields},"x":{deep}}}"#).into_bytes();
        let mut not_utf8 = format!("{{{fields}}}").into_bytes();
        let at = not_utf8.iter().position(|&b| b == b'B').unwrap();
        not_utf8.splice(at..at + 1, *b"\xff\xfeB");
        for (kind, body) in [("deep", deep_body), ("not UTF-8", not_utf8)] {
            let resp = browser
                .send(method.clone(), &format!("{}{path}", app.base), |r| {
                    r.header("x-csrf-token", &csrf)
                        .header("content-type", "application/json")
                        .body(body)
                })
                .await;
            let (status, answer) = status_json(resp).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {kind}: {answer}");
            let message = answer
                .get("message")
                .or_else(|| answer.get("error_description"))
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{path} {kind}: no JSON error: {answer}"));
            if kind == "deep" {
                assert!(
                    message.contains("nested deeper than 64"),
                    "{path}: {message}"
                );
            } else {
                assert!(
                    message.contains("not the expected JSON"),
                    "{path}: {message}"
                );
            }
        }
    }
    assert_eq!(page_state(&app, &mut browser).await, before);
    let registered = std::fs::read_to_string(app.data.join("audit/audit.jsonl")).unwrap();
    assert!(
        !registered.contains("client_registered"),
        "a client was registered"
    );
    let r = app.ok(&t, &s, "read_note", json!({"path":"keep.md"})).await;
    assert_eq!(r["body"], "keep this");
}

#[tokio::test]
async fn deep_nesting_inside_note_text_is_invalid_frontmatter_or_plain_text() {
    let app = spawn_app().await;
    let (t, s) = alice_with_a_note(&app).await;
    let before = snapshot(&app.vault_dir("alice"));
    // In a string the JSON is shallow, but the frontmatter YAML is 10,000 deep.
    for yaml in [
        format!("x: {}", nested(10_000, "1")),
        format!("x: {}", "{a: ".repeat(10_000)),
        format!("x: {}1", "- ".repeat(10_000)),
    ] {
        let result = app
            .call(
                &t,
                &s,
                "write_note",
                json!({"path":"keep.md","body":format!("---\n{yaml}\n---\ntext")}),
            )
            .await;
        assert_eq!(
            result["structuredContent"]["code"], "invalid_frontmatter",
            "{result}"
        );
    }
    nothing_lost(&app, &t, &s, &before).await;
    // In the markdown body it is only text: stored and read back as sent.
    let body = format!(
        "{}deepquote {} [[{}",
        "> ".repeat(10_000),
        nested(10_000, "x"),
        "[[".repeat(5_000)
    );
    app.ok(&t, &s, "write_note", json!({"path":"deep.md","body":body}))
        .await;
    let r = app.ok(&t, &s, "read_note", json!({"path":"deep.md"})).await;
    assert_eq!(r["body"].as_str(), Some(body.as_str()));
    let found = app
        .ok(&t, &s, "search_notes", json!({"query":"deepquote"}))
        .await;
    assert_eq!(hit_paths(&found), vec!["deep.md"]);
}

#[tokio::test]
async fn invalid_utf8_in_the_body_is_a_parse_error_and_changes_nothing() {
    let app = spawn_app().await;
    let (t, s) = alice_with_a_note(&app).await;
    let before = snapshot(&app.vault_dir("alice"));
    let with = |args: &[u8]| -> Vec<u8> {
        let mut body = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"write_note","arguments":"#.to_vec();
        body.extend_from_slice(args);
        body.extend_from_slice(b"}}");
        body
    };
    let bodies: Vec<Vec<u8>> = vec![
        // A lone continuation byte, a truncated sequence, an overlong '/', a UTF-16 surrogate
        // spelled in UTF-8, bytes that are never UTF-8.
        with(b"{\"path\":\"keep.md\",\"body\":\"evil \x80\"}"),
        with(b"{\"path\":\"keep.md\",\"body\":\"evil \xe2\x82\"}"),
        with(b"{\"path\":\"\xc0\xafkeep.md\",\"body\":\"evil\"}"),
        with(b"{\"path\":\"keep.md\",\"body\":\"\xed\xa0\x80\"}"),
        with(b"{\"path\":\"keep.md\",\"body\":\"\xff\xfe\"}"),
        // Outside any string.
        with(b"{\"path\":\"keep.md\",\"body\":\"evil\"\xff}"),
        // A lone surrogate escape is no character either.
        with(br#"{"path":"keep.md","body":"evil \ud800"}"#),
        b"\xff\xfe{\x00}".to_vec(),
    ];
    for body in bodies {
        let (status, answer) = post_raw(&app, &t, &s, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["error"]["code"], -32700, "{answer}");
    }
    // A session header that is not text is refused, not a crash.
    let resp = app
        .post(&t, None)
        .header(
            "mcp-session-id",
            reqwest::header::HeaderValue::from_bytes(b"\xff\xfe-session").unwrap(),
        )
        .header("mcp-protocol-version", LATEST)
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    nothing_lost(&app, &t, &s, &before).await;
}

#[tokio::test]
async fn nul_and_control_characters_in_paths_and_folders_are_invalid_for_every_tool() {
    // Some 300 calls: more than the per-user burst.
    let (app, _dir) = app_with(&[
        ("RATE_LIMIT_PER_SECOND", "10000"),
        ("RATE_LIMIT_BURST", "10000"),
    ])
    .await;
    let (t, s) = alice_with_a_note(&app).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"dir/sub.md","body":"x"}),
    )
    .await;
    let before = snapshot(&app.vault_dir("alice"));
    let controls = [
        '\u{0}', '\u{1}', '\t', '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
    ];
    for c in controls {
        for path in [
            format!("keep{c}.md"),
            format!("{c}keep.md"),
            format!("keep.md{c}.md"),
            format!("dir{c}/sub.md"),
            format!("dir/{c}/sub.md"),
        ] {
            for (tool, args) in [
                ("read_note", json!({"path": path})),
                ("write_note", json!({"path": path, "body": "evil"})),
                ("delete_note", json!({"path": path})),
                ("get_links", json!({"path": path})),
                ("get_backlinks", json!({"path": path})),
            ] {
                assert_eq!(
                    app.err_code(&t, &s, tool, args).await,
                    "invalid_path",
                    "{tool} {path:?}"
                );
            }
        }
        for folder in [format!("dir{c}"), format!("{c}"), format!("dir/{c}x/")] {
            for (tool, args) in [
                ("list_notes", json!({"folder": folder})),
                ("list_notes", json!({"folder": folder, "recursive": false})),
                ("search_notes", json!({"query": "keep", "folder": folder})),
            ] {
                assert_eq!(
                    app.err_code(&t, &s, tool, args.clone()).await,
                    "invalid_path",
                    "{tool} {args}"
                );
            }
        }
    }
    nothing_lost(&app, &t, &s, &before).await;
}

/// Paths of every note in `list_notes` (one page, the whole vault).
async fn listed(app: &TestApp, t: &str, s: &str, args: Value) -> Vec<String> {
    let page = app.ok(t, s, "list_notes", args).await;
    page["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap().to_string())
        .collect()
}

/// "café.md" composed (U+00E9) and decomposed (`e` + U+0301).
const NFC: &str = "caf\u{e9}.md";
const NFD: &str = "cafe\u{301}.md";

/// Notes whose names differ only in normalization or case, each with its own body.
const SPELLINGS: [(&str, &str); 7] = [
    (NFC, "espresso nfcword"),
    (NFD, "espresso nfdword"),
    ("Plan.md", "roadmap upperword"),
    ("plan.md", "roadmap lowerword"),
    ("PLAN.md", "roadmap shoutword"),
    ("Projects/a.md", "folderword upper"),
    ("projects/a.md", "folderword lower"),
];

/// Read, list (recursive and folder pages) and search each see every spelling as its own note.
async fn every_spelling_is_its_own_note(app: &TestApp, t: &str, s: &str) {
    let (nfc, nfd) = (NFC, NFD);
    for (path, body) in SPELLINGS {
        let r = app.ok(t, s, "read_note", json!({"path":path})).await;
        assert_eq!(
            (r["path"].as_str(), r["body"].as_str()),
            (Some(path), Some(body))
        );
    }
    let mut expected: Vec<String> = SPELLINGS.iter().map(|(p, _)| p.to_string()).collect();
    expected.sort();
    assert_eq!(listed(app, t, s, json!({})).await, expected);
    assert_eq!(
        listed(app, t, s, json!({"folder":"Projects"})).await,
        vec!["Projects/a.md"]
    );
    assert_eq!(
        listed(app, t, s, json!({"folder":"projects","recursive":false})).await,
        vec!["projects/a.md"]
    );
    for (word, path) in [
        ("nfcword", nfc),
        ("nfdword", nfd),
        ("upperword", "Plan.md"),
        ("lowerword", "plan.md"),
        ("shoutword", "PLAN.md"),
    ] {
        let found = app.ok(t, s, "search_notes", json!({"query":word})).await;
        assert_eq!(hit_paths(&found), vec![path], "{word}");
    }
    let mut both = hit_paths(
        &app.ok(t, s, "search_notes", json!({"query":"espresso"}))
            .await,
    );
    both.sort();
    let mut expected = vec![nfc.to_string(), nfd.to_string()];
    expected.sort();
    assert_eq!(both, expected);
    let found = app
        .ok(
            t,
            s,
            "search_notes",
            json!({"query":"folderword","folder":"projects"}),
        )
        .await;
    assert_eq!(hit_paths(&found), vec!["projects/a.md"]);
}

#[tokio::test]
async fn names_differing_only_in_normalization_or_case_are_distinct_notes() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir.path(), |_| {}).await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    let (nfc, nfd) = (NFC, NFD);
    for (path, body) in SPELLINGS {
        // if_version 0: "must not exist yet". None of them is taken for another.
        let w = app
            .ok(
                &t,
                &s,
                "write_note",
                json!({"path":path,"body":body,"if_version":0}),
            )
            .await;
        assert_eq!(
            (w["path"].as_str(), w["created_note"].as_bool()),
            (Some(path), Some(true))
        );
    }
    every_spelling_is_its_own_note(&app, &t, &s).await;
    // Each name is its own file on disk.
    let mut on_disk: Vec<String> = std::fs::read_dir(app.vault_dir("alice"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".md"))
        .collect();
    on_disk.sort();
    let mut expected_root: Vec<&str> = vec![nfc, nfd, "Plan.md", "plan.md", "PLAN.md"];
    expected_root.sort();
    assert_eq!(on_disk, expected_root);
    // A write (with a version check) to one never touches the other.
    let v = app.ok(&t, &s, "read_note", json!({"path":nfd})).await["version"].clone();
    assert_eq!(
        app.err_code(
            &t,
            &s,
            "write_note",
            json!({"path":nfc,"body":"x","if_version":v.as_u64().unwrap() + 1})
        )
        .await,
        "conflict"
    );
    // The same after a restart, when the index is brought in line with the files.
    let public_url = app.public_url.clone();
    app.stop().await;
    let again = spawn_in(dir.path(), |c| c.public_url = Some(public_url)).await;
    let s = again.session(&t).await;
    every_spelling_is_its_own_note(&again, &t, &s).await;
    // Deleting one leaves the others.
    again
        .ok(&t, &s, "delete_note", json!({"path":"plan.md"}))
        .await;
    again.ok(&t, &s, "delete_note", json!({"path":nfd})).await;
    let left = listed(&again, &t, &s, json!({})).await;
    assert!(left.contains(&"Plan.md".to_string()) && left.contains(&"PLAN.md".to_string()));
    assert!(left.contains(&nfc.to_string()) && !left.contains(&nfd.to_string()));
    assert_eq!(
        again.ok(&t, &s, "read_note", json!({"path":nfc})).await["body"],
        "espresso nfcword"
    );
    again.stop().await;
}

/// Only `keep.md` is in the index: nothing reached through a symlink.
async fn only_keep_is_indexed(app: &TestApp, t: &str, s: &str) {
    assert_eq!(listed(app, t, s, json!({})).await, vec!["keep.md"]);
    let found = app
        .ok(t, s, "search_notes", json!({"query":"zebrafish"}))
        .await;
    assert!(hit_paths(&found).is_empty(), "{found}");
    let tags = app.ok(t, s, "get_tags", json!({})).await;
    assert_eq!(tags["tags"], json!([{"tag":"safe","count":1}]));
}

#[tokio::test]
async fn symlinks_leading_out_of_the_vault_are_refused_and_never_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("secret.md"),
        "outside zebrafish #stolen",
    )
    .unwrap();
    std::fs::create_dir(outside.path().join("deep")).unwrap();
    std::fs::write(outside.path().join("deep/more.md"), "zebrafish deeper").unwrap();
    // Planted before the user's actor starts, so its first reconcile meets them.
    let vault = dir.path().join("vaults/alice");
    std::fs::create_dir_all(vault.join("sub")).unwrap();
    std::fs::write(
        vault.join("keep.md"),
        "---\nowner: alice\n---\nkeep this #safe",
    )
    .unwrap();
    let link =
        |target: &Path, name: &str| std::os::unix::fs::symlink(target, vault.join(name)).unwrap();
    link(outside.path(), "escape");
    link(outside.path(), "sub/out");
    link(&outside.path().join("secret.md"), "link.md");
    link(&outside.path().join("missing.md"), "dangling.md");
    link(&vault.join("keep.md"), "inner.md");
    let app = spawn_in(dir.path(), |_| {}).await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    let before = snapshot(&vault);
    let before_outside = snapshot(outside.path());
    only_keep_is_indexed(&app, &t, &s).await;
    for path in [
        "link.md",
        "dangling.md",
        "inner.md",
        "escape/secret.md",
        "escape/new.md",
        "escape/deep/more.md",
        "escape/new/deeper.md",
        "sub/out/secret.md",
        "sub/out/new.md",
    ] {
        for (tool, args) in [
            ("read_note", json!({"path": path})),
            ("write_note", json!({"path": path, "body": "evil"})),
            (
                "write_note",
                json!({"path": path, "body": "evil", "metadata": {"a": 1}}),
            ),
            ("delete_note", json!({"path": path})),
            ("get_links", json!({"path": path})),
        ] {
            assert_eq!(
                app.err_code(&t, &s, tool, args).await,
                "invalid_path",
                "{tool} {path}"
            );
        }
    }
    for folder in ["escape", "escape/deep", "escape/new", "sub/out", "sub/out/"] {
        for (tool, args) in [
            ("list_notes", json!({"folder": folder})),
            ("list_notes", json!({"folder": folder, "recursive": false})),
            (
                "search_notes",
                json!({"query": "zebrafish", "folder": folder}),
            ),
        ] {
            assert_eq!(
                app.err_code(&t, &s, tool, args.clone()).await,
                "invalid_path",
                "{tool} {args}"
            );
        }
    }
    // A full rebuild does not follow them either.
    app.ok(&t, &s, "rebuild_index", json!({})).await;
    only_keep_is_indexed(&app, &t, &s).await;
    assert_eq!(
        snapshot(outside.path()),
        before_outside,
        "outside untouched"
    );
    assert!(!outside.path().join("missing.md").exists());
    assert!(!outside.path().join("new.md").exists());
    nothing_lost(&app, &t, &s, &before).await;
}

/// The classic "billion laughs": nine levels, each repeating the one before nine times.
fn billion_laughs() -> String {
    let mut yaml = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut prev = 'a';
    for name in 'b'..='i' {
        let refs = vec![format!("*{prev}"); 9].join(",");
        yaml.push_str(&format!("{name}: &{name} [{refs}]\n"));
        prev = name;
    }
    yaml
}

#[tokio::test]
async fn a_yaml_alias_bomb_is_invalid_frontmatter_quickly() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let dir = tempfile::tempdir().unwrap();
        // Flat bombs: no nesting for the parser's repetition guard to catch, yet gigabytes
        // once expanded (a 100 KB string 20,000 times; a 1,000-item list 30,000 times).
        let long_string = format!(
            "a: &a \"{}\"\nb: [{}*a]\n",
            "x".repeat(100_000),
            "*a,".repeat(20_000)
        );
        let wide_list = format!(
            "a: &a [{}1]\nb: [{}*a]\n",
            "1,".repeat(1_000),
            "*a,".repeat(30_000)
        );
        let bombs = [billion_laughs(), long_string, wide_list];
        let vault = dir.path().join("vaults/alice");
        std::fs::create_dir_all(&vault).unwrap();
        for (i, yaml) in bombs.iter().enumerate() {
            std::fs::write(
                vault.join(format!("bomb{i}.md")),
                format!("---\n{yaml}---\nboom"),
            )
            .unwrap();
        }
        let app = spawn_in(dir.path(), |_| {}).await;
        let (t, s) = alice_with_a_note(&app).await;
        let before = snapshot(&vault);
        for yaml in &bombs {
            let started = Instant::now();
            for args in [
                json!({"path":"keep.md","body":format!("---\n{yaml}---\nboom")}),
                json!({"path":"new.md","body":format!("---\n{yaml}---\nboom")}),
            ] {
                assert_eq!(
                    app.err_code(&t, &s, "write_note", args).await,
                    "invalid_frontmatter"
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "{:?}",
                started.elapsed()
            );
        }
        for i in 0..bombs.len() {
            let path = format!("bomb{i}.md");
            assert_eq!(
                app.err_code(&t, &s, "read_note", json!({"path": path}))
                    .await,
                "invalid_frontmatter"
            );
            // Keeping the stored frontmatter would mean expanding it: refused, file untouched.
            assert_eq!(
                app.err_code(
                    &t,
                    &s,
                    "write_note",
                    json!({"path": path, "body": "defused"})
                )
                .await,
                "invalid_frontmatter"
            );
        }
        assert_eq!(listed(&app, &t, &s, json!({})).await, vec!["keep.md"]);
        nothing_lost(&app, &t, &s, &before).await;
        // Replacing the frontmatter outright is how the owner repairs such a note.
        app.ok(
            &t,
            &s,
            "write_note",
            json!({"path":"bomb0.md","body":"defused","metadata":{}}),
        )
        .await;
    })
    .await
    .expect("the alias bombs took over 10 s");
}

#[tokio::test]
async fn a_one_mebibyte_single_line_note_at_the_limit_is_stored_read_searched_and_listed() {
    let app = spawn_app().await;
    let (t, s) = alice_with_a_note(&app).await;
    let limit: usize = 1 << 20;
    // The managed frontmatter (created, updated) counts toward the limit: measure it.
    let probe = app
        .ok(&t, &s, "write_note", json!({"path":"probe.md","body":"x"}))
        .await;
    let overhead = probe["size"].as_u64().unwrap() as usize - 1;
    let fill = |tail: &str| {
        let room = limit - overhead - tail.len();
        let mut line = "lorem ipsum dolor sit amet ".repeat(room / 27 + 1);
        line.truncate(room);
        line.push_str(tail);
        line
    };
    let words = fill(" finalword");
    let token = format!("{}{}", "z".repeat(limit - overhead - 9), "lasttoken");
    for (path, body) in [("words.md", &words), ("token.md", &token)] {
        assert_eq!(body.len() + overhead, limit);
        assert!(!body.contains('\n'));
        let w = app
            .ok(&t, &s, "write_note", json!({"path":path,"body":body}))
            .await;
        assert_eq!(w["size"].as_u64(), Some(limit as u64), "{path}");
        let r = app.ok(&t, &s, "read_note", json!({"path":path})).await;
        assert!(
            r["body"].as_str() == Some(body.as_str()),
            "{path} read back"
        );
    }
    let found = app
        .ok(&t, &s, "search_notes", json!({"query":"finalword"}))
        .await;
    assert_eq!(hit_paths(&found), vec!["words.md"]);
    assert!(found["results"][0]["snippet"]
        .as_str()
        .unwrap()
        .contains("<mark>finalword</mark>"));
    let found = app
        .ok(&t, &s, "search_notes", json!({"query":"lorem ipsum"}))
        .await;
    assert_eq!(hit_paths(&found), vec!["words.md"]);
    let found = app
        .ok(&t, &s, "search_notes", json!({"query":"keep"}))
        .await;
    assert_eq!(hit_paths(&found), vec!["keep.md"]);
    let mut all = listed(&app, &t, &s, json!({})).await;
    all.sort();
    assert_eq!(all, vec!["keep.md", "probe.md", "token.md", "words.md"]);
    // One byte more is refused, and the note at the limit stays whole.
    let before = snapshot(&app.vault_dir("alice"));
    let over = format!("{words}!");
    assert_eq!(
        app.err_code(&t, &s, "write_note", json!({"path":"words.md","body":over}))
            .await,
        "too_large"
    );
    nothing_lost(&app, &t, &s, &before).await;
}

/// Put `n` notes straight into `folder` of a fresh vault, let the actor reconcile them at its
/// first request, then page through `list_notes` (recursive and folder pages of 1000): every
/// path exactly once, in order. Returns how long the reconcile and the paging took.
async fn lists_every_note_of_a_big_folder(n: usize) -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("vaults/alice/big");
    std::fs::create_dir_all(&folder).unwrap();
    let expected: Vec<String> = (0..n).map(|i| format!("big/n{i:05}.md")).collect();
    for (i, path) in expected.iter().enumerate() {
        std::fs::write(
            dir.path().join("vaults/alice").join(path),
            format!("note {i}"),
        )
        .unwrap();
    }
    let app = spawn_env_in(dir.path(), &[("REQUEST_TIMEOUT", "300s")], |_| {}).await;
    let t = app.token("alice");
    let started = Instant::now();
    let s = app.session(&t).await;
    let first = app
        .ok(&t, &s, "list_notes", json!({"folder":"big","limit":1}))
        .await;
    let reconciled = started.elapsed();
    assert_eq!(first["notes"][0]["path"], "big/n00000.md");
    let started = Instant::now();
    for extra in [json!({}), json!({"recursive": false})] {
        let mut seen: Vec<String> = Vec::with_capacity(n);
        let mut cursor: Option<String> = None;
        loop {
            let mut args = json!({"folder":"big","limit":1000});
            if let Some(c) = &cursor {
                args["cursor"] = json!(c);
            }
            for (k, v) in extra.as_object().unwrap() {
                args[k] = v.clone();
            }
            let page = app.ok(&t, &s, "list_notes", args).await;
            let notes = page["notes"].as_array().unwrap();
            assert!(notes.len() <= 1000);
            seen.extend(
                notes
                    .iter()
                    .map(|n| n["path"].as_str().unwrap().to_string()),
            );
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
            assert!(seen.len() <= n, "paging never ends ({extra})");
        }
        assert_eq!(seen.len(), n, "{extra}");
        assert!(seen == expected, "every path once, in order ({extra})");
    }
    let whole = app.ok(&t, &s, "vault_info", json!({})).await;
    assert_eq!(whole["notes"].as_u64(), Some(n as u64));
    (reconciled, started.elapsed())
}

#[tokio::test]
async fn five_thousand_notes_in_one_folder_are_listed_page_by_page() {
    let (reconciled, paged) = lists_every_note_of_a_big_folder(5_000).await;
    eprintln!("5,000 notes: reconcile {reconciled:?}, paging {paged:?}");
}

/// 20 s (idle machine) to 60 s (busy one) in a debug build, most of it creating and removing
/// the files: run with `cargo test --test api -- --ignored fifty_thousand`.
#[tokio::test]
#[ignore = "slow in a debug build; the 5,000-note test covers the same paging"]
async fn fifty_thousand_notes_in_one_folder_are_listed_page_by_page() {
    let (reconciled, paged) = lists_every_note_of_a_big_folder(50_000).await;
    eprintln!("50,000 notes: reconcile {reconciled:?}, paging {paged:?}");
}
