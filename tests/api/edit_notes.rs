//! `edit_note` and `recent_notes` over the real server: edits in place with their typed
//! errors, dry runs that write nothing, the diff, version checks, change notifications, the
//! newest-first listing, and both tools under a folder-scoped token.

use std::time::Duration;

use serde_json::{json, Value};
use vault_actors::UserId;

use crate::helpers::*;

const NOTE: &str = "# Plan\n\nIntro.\n\n## Tasks\n\n- one\n- two\n\n## Notes\n\nText.\n";

async fn with_note(app: &TestApp, t: &str, s: &str) {
    app.ok(t, s, "write_note", json!({"path": "plan.md", "body": NOTE}))
        .await;
}

fn on_disk(app: &TestApp, path: &str) -> Vec<u8> {
    std::fs::read(app.vault_dir("alice").join(path)).unwrap()
}

#[tokio::test]
async fn edit_note_applies_edits_in_order_and_answers_the_new_version_and_a_diff() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    with_note(&app, &t, &s).await;
    let e = app
        .ok(
            &t,
            &s,
            "edit_note",
            json!({"path": "plan.md", "if_version": 1, "edits": [
                {"op": "replace", "find": "- two", "replace": "- 2"},
                {"op": "insert_after_section", "heading": "## Tasks", "text": "- three"},
                {"op": "append", "text": "Signed."},
                {"op": "set_frontmatter", "key": "status", "value": "active"},
            ]}),
        )
        .await;
    assert_eq!(
        (
            &e["version"],
            &e["changed"],
            &e["dry_run"],
            &e["edits_applied"]
        ),
        (&json!(2), &json!(true), &json!(false), &json!(4))
    );
    let diff = e["diff"].as_str().unwrap();
    assert!(diff.contains("\n-- two\n+- 2\n"), "{diff}");
    assert!(diff.contains("\n+status: active\n"), "{diff}");
    let r = app
        .ok(&t, &s, "read_note", json!({"path": "plan.md"}))
        .await;
    assert_eq!(
        r["body"],
        "# Plan\n\nIntro.\n\n## Tasks\n\n- one\n- 2\n\n- three\n\n## Notes\n\nText.\nSigned.\n"
    );
    assert_eq!(r["metadata"]["status"], "active");
    assert_eq!(r["version"], 2);
    // The index follows: the new words are searchable.
    let hits = app
        .ok(&t, &s, "search_notes", json!({"query": "Signed"}))
        .await;
    assert_eq!(hit_paths(&hits), ["plan.md"]);
}

#[tokio::test]
async fn edit_note_errors_have_codes_and_details_and_change_nothing() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path": "plan.md", "body": format!("{NOTE}- one\n")}),
    )
    .await;
    let before = on_disk(&app, "plan.md");
    let result = app
        .call(
            &t,
            &s,
            "edit_note",
            json!({"path": "plan.md", "edits": [{"op": "replace", "find": "- one", "replace": "x"}]}),
        )
        .await;
    assert_eq!(result["isError"], true);
    let err = &result["structuredContent"];
    assert_eq!(err["code"], "occurrence_mismatch");
    assert_eq!((&err["found"], &err["expected"]), (&json!(2), &json!(1)));
    assert_eq!(err["lines"], json!([7, 13]));
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("occurs 2 times, expected 1"), "{text}");

    let cases: [(Value, &str); 5] = [
        (
            json!([{"op": "replace", "find": "Intro.", "replace": "Hi."},
                   {"op": "replace_section", "heading": "Nope", "text": "x"}]),
            "heading_not_found",
        ),
        (
            json!([{"op": "insert_before_section", "heading": "#### Tasks", "text": "x"}]),
            "heading_not_found",
        ),
        (
            json!([{"op": "set_frontmatter", "key": "created", "value": "x"}]),
            "invalid_edit",
        ),
        (json!([{"op": "explode"}]), "invalid_arguments"),
        (json!([]), "invalid_arguments"),
    ];
    for (edits, code) in cases {
        let got = app
            .err_code(
                &t,
                &s,
                "edit_note",
                json!({"path": "plan.md", "edits": edits}),
            )
            .await;
        assert_eq!(got, code, "{edits}");
    }
    let missing = app
        .call(
            &t,
            &s,
            "edit_note",
            json!({"path": "plan.md", "edits": [{"op": "replace_section", "heading": "Nope", "text": "x"}]}),
        )
        .await;
    assert_eq!(
        missing["structuredContent"]["available"],
        json!(["# Plan", "## Tasks", "## Notes"])
    );
    let conflict = app
        .call(
            &t,
            &s,
            "edit_note",
            json!({"path": "plan.md", "if_version": 9, "edits": [{"op": "append", "text": "x"}]}),
        )
        .await;
    assert_eq!(conflict["structuredContent"]["code"], "conflict");
    assert_eq!(conflict["structuredContent"]["current_version"], 1);
    let code = app
        .err_code(
            &t,
            &s,
            "edit_note",
            json!({"path": "nope.md", "edits": [{"op": "append", "text": "x"}]}),
        )
        .await;
    assert_eq!(code, "not_found");
    assert_eq!(on_disk(&app, "plan.md"), before, "no failed edit wrote");
    let r = app
        .ok(&t, &s, "read_note", json!({"path": "plan.md"}))
        .await;
    assert_eq!(r["version"], 1);
}

#[tokio::test]
async fn a_dry_run_returns_the_diff_and_leaves_file_and_version_alone() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    with_note(&app, &t, &s).await;
    let before = on_disk(&app, "plan.md");
    let e = app
        .ok(
            &t,
            &s,
            "edit_note",
            json!({"path": "plan.md", "dry_run": true, "edits": [
                {"op": "replace_section", "heading": "Tasks", "text": "- all done"},
            ]}),
        )
        .await;
    assert_eq!((&e["dry_run"], &e["version"]), (&json!(true), &json!(1)));
    let diff = e["diff"].as_str().unwrap();
    assert!(diff.contains("\n-- one\n-- two\n+- all done\n"), "{diff}");
    assert_eq!(on_disk(&app, "plan.md"), before);
    let r = app
        .ok(&t, &s, "read_note", json!({"path": "plan.md"}))
        .await;
    assert_eq!((&r["version"], &r["body"]), (&json!(1), &json!(NOTE)));
}

#[tokio::test]
async fn an_edit_notifies_subscribers_of_the_note() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let watcher = app.session(&t).await;
    let editor = app.session(&t).await;
    with_note(&app, &t, &editor).await;
    let sub = app
        .rpc(
            &t,
            &watcher,
            "resources/subscribe",
            json!({"uri": "note:///plan.md"}),
        )
        .await;
    assert_eq!(sub["result"], json!({}));
    let mut reader = SseReader::new(app.get_stream(&t, &watcher, "text/event-stream").await);
    app.ok(
        &t,
        &editor,
        "edit_note",
        json!({"path": "plan.md", "edits": [{"op": "append", "text": "more"}]}),
    )
    .await;
    let mut uri = None;
    for _ in 0..5 {
        let msg = reader.next().await.expect("a notification");
        if msg["method"] == "notifications/resources/updated" {
            uri = Some(msg["params"]["uri"].clone());
            break;
        }
    }
    assert_eq!(uri, Some(json!("note:///plan.md")));
}

#[tokio::test]
async fn recent_notes_lists_the_newest_changes_first_by_folder_and_since() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    for path in ["a.md", "work/b.md", "work/c.md", "home/d.md"] {
        app.ok(&t, &s, "write_note", json!({"path": path, "body": "x"}))
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.ok(
        &t,
        &s,
        "edit_note",
        json!({"path": "work/b.md", "edits": [{"op": "append", "text": "y"}]}),
    )
    .await;
    let paths = |v: &Value| -> Vec<String> {
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["path"].as_str().unwrap().to_string())
            .collect()
    };
    let all = app.ok(&t, &s, "recent_notes", json!({})).await;
    assert_eq!(paths(&all), ["work/b.md", "home/d.md", "work/c.md", "a.md"]);
    assert_eq!(all["notes"][0]["version"], 2);
    let work = app
        .ok(
            &t,
            &s,
            "recent_notes",
            json!({"folder": "work", "limit": 1}),
        )
        .await;
    assert_eq!(paths(&work), ["work/b.md"]);
    let since = all["notes"][1]["changed"].clone();
    let newer = app
        .ok(&t, &s, "recent_notes", json!({"since": since}))
        .await;
    assert_eq!(paths(&newer), ["work/b.md", "home/d.md"]);
    for bad in [json!({"since": "last week"}), json!({"limit": 0})] {
        assert_eq!(
            app.err_code(&t, &s, "recent_notes", bad).await,
            "invalid_arguments"
        );
    }
    let tools = app.rpc(&t, &s, "tools/list", json!({})).await;
    let find = |name: &str| {
        tools["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .cloned()
            .unwrap()
    };
    let recent = find("recent_notes");
    assert_eq!(recent["annotations"]["readOnlyHint"], true);
    let edit = find("edit_note");
    assert_eq!(
        (
            &edit["annotations"]["readOnlyHint"],
            &edit["annotations"]["destructiveHint"],
            &edit["annotations"]["idempotentHint"]
        ),
        (&json!(false), &json!(false), &json!(false))
    );
    assert!(edit["inputSchema"]["properties"]["edits"].is_object());
}

#[tokio::test]
async fn a_folder_token_edits_and_sees_recent_notes_only_inside_its_folders() {
    let app = spawn_app().await;
    let full = app.token("alice");
    let s = app.session(&full).await;
    for path in ["work/a.md", "shared/b.md", "private/c.md"] {
        app.ok(&full, &s, "write_note", json!({"path": path, "body": "x"}))
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let scoped = app
        .keys
        .mint(
            &UserId::parse("alice").unwrap(),
            Duration::from_secs(3600),
            &[
                "notes:write:work".to_string(),
                "notes:read:shared".to_string(),
            ],
        )
        .unwrap();
    let ss = app.session(&scoped).await;
    let edit = |path: &str| json!({"path": path, "edits": [{"op": "append", "text": "y"}]});
    app.ok(&scoped, &ss, "edit_note", edit("work/a.md")).await;
    for outside in ["shared/b.md", "private/c.md"] {
        assert_eq!(
            app.err_code(&scoped, &ss, "edit_note", edit(outside)).await,
            "insufficient_scope",
            "{outside}"
        );
    }
    let recent = app.ok(&scoped, &ss, "recent_notes", json!({})).await;
    let paths: Vec<&str> = recent["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["work/a.md", "shared/b.md"]);
    assert_eq!(
        app.err_code(&scoped, &ss, "recent_notes", json!({"folder": "private"}))
            .await,
        "insufficient_scope"
    );
    let reader = app
        .keys
        .mint(
            &UserId::parse("alice").unwrap(),
            Duration::from_secs(3600),
            &["notes:read".to_string()],
        )
        .unwrap();
    let rs = app.session(&reader).await;
    assert_eq!(
        app.err_code(&reader, &rs, "edit_note", edit("work/a.md"))
            .await,
        "insufficient_scope"
    );
}
