//! `note_history`, `restore_note` and `move_note` over MCP: undo of writes, deletes and moves
//! (links included), history bounds, and a folder move that rewrites links across 100 notes.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

async fn write(app: &TestApp, t: &str, sid: &str, path: &str, body: &str) -> Value {
    app.ok(t, sid, "write_note", json!({"path": path, "body": body}))
        .await
}

fn on_disk(app: &TestApp, path: &str) -> Option<String> {
    std::fs::read_to_string(app.vault_dir("alice").join(path)).ok()
}

async fn backlinks(app: &TestApp, t: &str, sid: &str, path: &str) -> Vec<String> {
    let out = app.ok(t, sid, "get_backlinks", json!({"path": path})).await;
    out["backlinks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn restore_undoes_a_write_and_a_delete_and_a_restore_is_undoable() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let sid = app.session(&t).await;
    write(&app, &t, &sid, "a.md", "first words").await;
    let first = on_disk(&app, "a.md").unwrap();
    write(&app, &t, &sid, "a.md", "second words").await;
    let second = on_disk(&app, "a.md").unwrap();

    let history = app
        .ok(&t, &sid, "note_history", json!({"path": "a.md"}))
        .await;
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["operation"], "write");
    assert_eq!(entries[0]["version"], 1);
    assert!(
        entries[0].get("content").is_none(),
        "no content in listings"
    );

    // After a write.
    let r = app
        .ok(
            &t,
            &sid,
            "restore_note",
            json!({"path": "a.md", "if_version": 2}),
        )
        .await;
    assert_eq!(r["action"], "content");
    assert_eq!(on_disk(&app, "a.md").unwrap(), first);
    // A restore of the restore.
    app.ok(&t, &sid, "restore_note", json!({"path": "a.md"}))
        .await;
    assert_eq!(on_disk(&app, "a.md").unwrap(), second);

    // After a delete: the note comes back, searchable.
    app.ok(&t, &sid, "delete_note", json!({"path": "a.md"}))
        .await;
    assert!(on_disk(&app, "a.md").is_none());
    app.ok(&t, &sid, "restore_note", json!({"path": "a.md"}))
        .await;
    assert_eq!(on_disk(&app, "a.md").unwrap(), second);
    let hits = app
        .ok(&t, &sid, "search_notes", json!({"query": "second"}))
        .await;
    assert_eq!(hits["results"].as_array().unwrap().len(), 1);

    // A stale if_version and an unknown entry are refused, nothing changes.
    let code = app
        .err_code(
            &t,
            &sid,
            "restore_note",
            json!({"path": "a.md", "if_version": 1}),
        )
        .await;
    assert_eq!(code, "conflict");
    let code = app
        .err_code(
            &t,
            &sid,
            "restore_note",
            json!({"path": "a.md", "history_id": 99999}),
        )
        .await;
    assert_eq!(code, "history_not_found");
    assert_eq!(on_disk(&app, "a.md").unwrap(), second);
}

#[tokio::test]
async fn restore_after_a_move_moves_the_note_back_and_reverts_its_links() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let sid = app.session(&t).await;
    write(&app, &t, &sid, "inbox/idea.md", "# Idea\nthe idea").await;
    write(
        &app,
        &t,
        &sid,
        "r1.md",
        "see [[inbox/idea#Why|why]] and ![[idea]]",
    )
    .await;
    write(&app, &t, &sid, "r2.md", "also [[inbox/idea.md]]").await;
    let (r1, r2) = (
        on_disk(&app, "r1.md").unwrap(),
        on_disk(&app, "r2.md").unwrap(),
    );

    let moved = app
        .ok(
            &t,
            &sid,
            "move_note",
            json!({"from": "inbox/idea.md", "to": "projects/idea.md"}),
        )
        .await;
    assert_eq!(moved["rewritten"].as_array().unwrap().len(), 2);
    assert!(on_disk(&app, "r1.md")
        .unwrap()
        .contains("[[projects/idea#Why|why]] and ![[idea]]"));
    assert!(on_disk(&app, "r2.md")
        .unwrap()
        .contains("[[projects/idea.md]]"));
    assert_eq!(
        backlinks(&app, &t, &sid, "projects/idea.md").await,
        ["r1.md", "r2.md"]
    );
    let history = app
        .ok(
            &t,
            &sid,
            "note_history",
            json!({"path": "projects/idea.md"}),
        )
        .await;
    assert_eq!(history["entries"][0]["operation"], "move");
    assert_eq!(history["entries"][0]["from"], "inbox/idea.md");

    let r = app
        .ok(
            &t,
            &sid,
            "restore_note",
            json!({"path": "projects/idea.md"}),
        )
        .await;
    assert_eq!(r["action"], "moved_back");
    assert_eq!(r["path"], "inbox/idea.md");
    assert!(on_disk(&app, "projects/idea.md").is_none());
    assert!(on_disk(&app, "inbox/idea.md").is_some());
    assert_eq!(on_disk(&app, "r1.md").unwrap(), r1);
    assert_eq!(on_disk(&app, "r2.md").unwrap(), r2);
    assert_eq!(
        backlinks(&app, &t, &sid, "inbox/idea.md").await,
        ["r1.md", "r2.md"]
    );
}

#[tokio::test]
async fn history_is_bounded_by_the_setting() {
    let app = spawn_app_with(|c| c.history_per_note = 3).await;
    let t = app.token("alice");
    let sid = app.session(&t).await;
    for i in 0..8 {
        write(&app, &t, &sid, "a.md", &format!("version {i}")).await;
    }
    let history = app
        .ok(
            &t,
            &sid,
            "note_history",
            json!({"path": "a.md", "limit": 100}),
        )
        .await;
    let versions: Vec<u64> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [7, 6, 5]);
}

#[tokio::test]
async fn a_taken_destination_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let sid = app.session(&t).await;
    write(&app, &t, &sid, "a.md", "a").await;
    write(&app, &t, &sid, "b.md", "b").await;
    write(&app, &t, &sid, "r.md", "[[a]]").await;
    let before: Vec<Option<String>> = ["a.md", "b.md", "r.md"]
        .iter()
        .map(|p| on_disk(&app, p))
        .collect();
    let code = app
        .err_code(&t, &sid, "move_note", json!({"from": "a.md", "to": "b.md"}))
        .await;
    assert_eq!(code, "already_exists");
    let after: Vec<Option<String>> = ["a.md", "b.md", "r.md"]
        .iter()
        .map(|p| on_disk(&app, p))
        .collect();
    assert_eq!(before, after);
    assert_eq!(backlinks(&app, &t, &sid, "a.md").await, ["r.md"]);
}

#[tokio::test]
async fn a_folder_move_rewrites_links_across_100_notes() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let sid = app.session(&t).await;
    for i in 0..20 {
        write(
            &app,
            &t,
            &sid,
            &format!("old/sub/n{i}.md"),
            &format!("# N{i}"),
        )
        .await;
    }
    // Notes elsewhere that share a name with a moved one: a bare name must not start
    // pointing at them, nor they at the moved notes.
    write(&app, &t, &sid, "other/n0.md", "# elsewhere").await;
    for r in 0..100 {
        let i = r % 20;
        let body = format!(
            "[[old/sub/n{i}]] [[old/sub/n{i}#Part|alias {r}]] ![[old/sub/n{i}.md]] \
             [[n{i}|short]] ``[[old/sub/n{i}]]``"
        );
        write(&app, &t, &sid, &format!("refs/r{r}.md"), &body).await;
    }
    let moved = app
        .ok(
            &t,
            &sid,
            "move_note",
            json!({"from": "old/sub/", "to": "archive/2025/sub"}),
        )
        .await;
    assert_eq!(moved["folder"], true);
    assert_eq!(moved["notes"].as_array().unwrap().len(), 20);
    assert_eq!(moved["rewritten"].as_array().unwrap().len(), 100);
    for r in 0..100 {
        let i = r % 20;
        let text = on_disk(&app, &format!("refs/r{r}.md")).unwrap();
        let want = format!(
            "[[archive/2025/sub/n{i}]] [[archive/2025/sub/n{i}#Part|alias {r}]] \
             ![[archive/2025/sub/n{i}.md]]"
        );
        assert!(text.contains(&want), "{text}");
        // Code is never rewritten.
        assert!(text.contains(&format!("``[[old/sub/n{i}]]``")), "{text}");
    }
    // Every referring link resolves to the new path.
    for i in 0..20 {
        let path = format!("archive/2025/sub/n{i}.md");
        assert_eq!(backlinks(&app, &t, &sid, &path).await.len(), 5, "{path}");
        let links = app
            .ok(
                &t,
                &sid,
                "get_links",
                json!({"path": format!("refs/r{i}.md")}),
            )
            .await;
        for link in links["links"].as_array().unwrap() {
            assert_eq!(link["resolved"], json!(path), "{link}");
        }
    }
    assert!(on_disk(&app, "old/sub/n0.md").is_none());
    assert!(backlinks(&app, &t, &sid, "other/n0.md").await.is_empty());
    let listed = app
        .ok(&t, &sid, "list_notes", json!({"folder": "old"}))
        .await;
    assert!(listed["notes"].as_array().unwrap().is_empty());
}
