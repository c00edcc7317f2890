//! Bad input gets a clear error and never changes what is stored.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use futures_util::StreamExt;

use crate::helpers::*;

/// Every file under `dir` with its bytes, to prove nothing changed.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                walk(root, &p, out);
            } else {
                let bytes = if kind.is_symlink() {
                    b"<link>".to_vec()
                } else {
                    std::fs::read(&p).unwrap()
                };
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[tokio::test]
async fn hostile_paths_are_invalid_and_change_nothing() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"existing.md","body":"original"}),
    )
    .await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.md"), "outside original").unwrap();
    std::os::unix::fs::symlink(outside.path(), app.vault_dir("alice").join("escape")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("x.md"),
        app.vault_dir("alice").join("link.md"),
    )
    .unwrap();
    let before = snapshot(&app.data.join("vaults"));
    let before_outside = snapshot(outside.path());
    let long = format!("{}.md", "a".repeat(300));
    let paths = [
        "../x.md",
        "a/../../x.md",
        "/etc/x.md",
        "a\\b.md",
        "a\u{0}b.md",
        "notes/x.txt",
        "noextension",
        long.as_str(),
        "escape/x.md",
        "escape/new/x.md",
        "link.md",
        "",
    ];
    for path in paths {
        for (tool, args) in [
            ("write_note", json!({"path": path, "body": "evil"})),
            ("read_note", json!({"path": path})),
            ("delete_note", json!({"path": path})),
            ("get_backlinks", json!({"path": path})),
        ] {
            let result = app.call(&t, &s, tool, args).await;
            assert_eq!(result["isError"], json!(true), "{tool} {path:?}");
            assert_eq!(
                result["structuredContent"]["code"], "invalid_path",
                "{tool} {path:?}: {result}"
            );
            assert!(!result["content"][0]["text"].as_str().unwrap().is_empty());
        }
    }
    assert_eq!(
        app.err_code(&t, &s, "list_notes", json!({"folder":"../bob"}))
            .await,
        "invalid_path"
    );
    assert_eq!(
        snapshot(&app.data.join("vaults")),
        before,
        "no vault changed"
    );
    assert_eq!(
        snapshot(outside.path()),
        before_outside,
        "nothing outside the vault changed"
    );
}

#[tokio::test]
async fn oversized_body_and_bad_frontmatter_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"n.md","body":"original","metadata":{"keep":"me"}}),
    )
    .await;
    let before = snapshot(&app.data.join("vaults"));
    let huge = "x".repeat(1024 * 1024 + 1);
    assert_eq!(
        app.err_code(&t, &s, "write_note", json!({"path":"n.md","body":huge}))
            .await,
        "too_large"
    );
    let almost = "y".repeat(1024 * 1024 - 10);
    assert_eq!(
        app.err_code(
            &t,
            &s,
            "write_note",
            json!({"path":"n.md","body":almost,"metadata":{"pad":"z".repeat(100)}})
        )
        .await,
        "too_large",
        "the limit applies to the whole file, frontmatter included"
    );
    for metadata in [json!([1, 2]), json!("title: x"), json!(7), json!(true)] {
        assert_eq!(
            app.err_code(
                &t,
                &s,
                "write_note",
                json!({"path":"n.md","body":"b","metadata":metadata})
            )
            .await,
            "invalid_frontmatter",
            "{metadata}"
        );
    }
    for body in [
        "---\n- a\n- b\n---\ntext",
        "---\njust a string\n---\ntext",
        "---\nkey: [unclosed\n---\n",
    ] {
        assert_eq!(
            app.err_code(&t, &s, "write_note", json!({"path":"n.md","body":body}))
                .await,
            "invalid_frontmatter",
            "{body}"
        );
    }
    assert_eq!(snapshot(&app.data.join("vaults")), before);
    let r = app.ok(&t, &s, "read_note", json!({"path":"n.md"})).await;
    assert_eq!(
        (
            r["body"].as_str(),
            r["metadata"]["keep"].as_str(),
            r["version"].as_u64()
        ),
        (Some("original"), Some("me"), Some(1))
    );
}

#[tokio::test]
async fn wrong_json_types_in_arguments_are_invalid_arguments() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"n.md","body":"original"}),
    )
    .await;
    let before = snapshot(&app.data.join("vaults"));
    let cases: [(&str, Value); 8] = [
        ("write_note", json!({"path": 123, "body": "x"})),
        ("write_note", json!({"path": "n.md", "body": true})),
        ("write_note", json!({"path": "n.md"})),
        (
            "write_note",
            json!({"path": "n.md", "body": "x", "if_version": "one"}),
        ),
        ("read_note", json!({"path": ["n.md"]})),
        ("search_notes", json!({"query": "x", "limit": "ten"})),
        ("list_notes", json!({"limit": -1})),
        ("delete_note", json!({"path": null})),
    ];
    for (tool, args) in cases {
        let result = app.call(&t, &s, tool, args.clone()).await;
        assert_eq!(result["isError"], json!(true), "{tool} {args}");
        assert_eq!(
            result["structuredContent"]["code"], "invalid_arguments",
            "{tool} {args}: {result}"
        );
    }
    assert_eq!(snapshot(&app.data.join("vaults")), before);
}

/// A body that sends `{`, then waits `secs` seconds before its `}`.
fn stalled_body(secs: u64) -> reqwest::Body {
    let first =
        futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{"))]);
    let rest = futures_util::stream::once(async move {
        tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
        Ok(bytes::Bytes::from_static(b"}"))
    });
    reqwest::Body::wrap_stream(first.chain(rest))
}

#[tokio::test]
async fn a_request_that_runs_out_of_time_says_its_outcome_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(dir.path(), &[("REQUEST_TIMEOUT", "300ms")], |_| {}).await;
    let t = app.token("alice");
    // A body that starts and then stalls: the request cannot finish within its time.
    let stalled = stalled_body(3);
    let resp = app.post(&t, None).body(stalled).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::REQUEST_TIMEOUT);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "JSON-RPC shaped on /mcp: {body}");
    assert_eq!(body["error"]["data"]["outcome"], "unknown");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("version"));
}

#[tokio::test]
async fn max_in_flight_is_one_limit_for_the_whole_server() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(
        dir.path(),
        &[("MAX_IN_FLIGHT", "1"), ("REQUEST_TIMEOUT", "5s")],
        |_| {},
    )
    .await;
    let t = app.token("alice");
    // One request holds the only slot: its body arrives slowly.
    let stalled = stalled_body(2);
    let slow = app.post(&t, None).body(stalled).send();
    let slow = tokio::spawn(slow);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Any other route, any method: the server is at capacity.
    let health = app
        .client
        .get(format!("{}/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(
        slow.status(),
        reqwest::StatusCode::BAD_REQUEST,
        "{{}} is no JSON-RPC message"
    );
    let health = app
        .client
        .get(format!("{}/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        reqwest::StatusCode::OK,
        "the slot is free again"
    );
}
