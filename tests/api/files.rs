//! Files are the truth: what is on disk when an actor starts is what the index serves.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn notes_copied_in_or_deleted_while_stopped_are_reconciled_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let first = spawn_in(dir.path(), |_| {}).await;
    let t = first.token("alice");
    let s = first.session(&t).await;
    first
        .ok(
            &t,
            &s,
            "write_note",
            json!({"path":"old.md","body":"vanishingword"}),
        )
        .await;
    first
        .ok(
            &t,
            &s,
            "write_note",
            json!({"path":"kept.md","body":"stable text"}),
        )
        .await;
    let public_url = first.public_url.clone();
    let vault = first.vault_dir("alice");
    first.stop().await;

    std::fs::create_dir_all(vault.join("imported/deep")).unwrap();
    std::fs::write(
        vault.join("imported/deep/new.md"),
        "---\ntitle: Imported\ntags: [outside]\n---\nCopied in with zebraword and [[kept]].\n",
    )
    .unwrap();
    std::fs::remove_file(vault.join("old.md")).unwrap();
    std::fs::write(vault.join("broken.md"), "---\n: : [unclosed\n---\nbody").unwrap();
    std::fs::write(vault.join("binary.md"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
    std::fs::write(vault.join("not-a-note.txt"), "zebraword").unwrap();

    let second = spawn_in(dir.path(), |c| c.public_url = Some(public_url)).await;
    let s = second.session(&t).await;
    let list = second.ok(&t, &s, "list_notes", json!({})).await;
    let mut paths: Vec<_> = list["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    assert_eq!(paths, vec!["imported/deep/new.md", "kept.md"]);
    let found = second
        .ok(&t, &s, "search_notes", json!({"query":"zebraword"}))
        .await;
    assert_eq!(hit_paths(&found), vec!["imported/deep/new.md"]);
    let gone = second
        .ok(&t, &s, "search_notes", json!({"query":"vanishingword"}))
        .await;
    assert!(hit_paths(&gone).is_empty());
    let back = second
        .ok(&t, &s, "get_backlinks", json!({"path":"kept.md"}))
        .await;
    assert_eq!(back["backlinks"][0]["path"], "imported/deep/new.md");
    let tags = second.ok(&t, &s, "get_tags", json!({})).await;
    assert_eq!(tags["tags"], json!([{"tag":"outside","count":1}]));
    // The broken files are still there, untouched, and the actor is healthy.
    assert!(vault.join("broken.md").exists() && vault.join("binary.md").exists());
    assert_eq!(
        second
            .err_code(&t, &s, "read_note", json!({"path":"broken.md"}))
            .await,
        "invalid_frontmatter"
    );
    second.stop().await;
}

#[tokio::test]
async fn rebuild_keeps_versions_of_unchanged_notes() {
    let dir = tempfile::tempdir().unwrap();
    let first = spawn_in(dir.path(), |_| {}).await;
    let t = first.token("alice");
    let s = first.session(&t).await;
    for body in ["1", "2", "3"] {
        first
            .ok(&t, &s, "write_note", json!({"path":"v.md","body":body}))
            .await;
    }
    let public_url = first.public_url.clone();
    first.stop().await;
    // Drop the index tables, as a rebuild does; the state tables (versions) stay.
    let mut index =
        vault_actors::index::Index::open(&dir.path().join("index/alice.sqlite")).unwrap();
    index.drop_index().unwrap();
    assert_eq!(index.count().unwrap(), 0);
    drop(index);
    let second = spawn_in(dir.path(), |c| c.public_url = Some(public_url)).await;
    let s = second.session(&t).await;
    let r = second.ok(&t, &s, "read_note", json!({"path":"v.md"})).await;
    assert_eq!(r["version"], 3);
    second.stop().await;
}

#[tokio::test]
async fn a_write_leaves_no_temporary_files_behind() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    for i in 0..5 {
        app.ok(
            &t,
            &s,
            "write_note",
            json!({"path":"dir/n.md","body":format!("v{i}")}),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let names: Vec<_> = std::fs::read_dir(app.vault_dir("alice").join("dir"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("n.md")]);
}

#[tokio::test]
async fn a_file_edited_on_disk_while_running_is_read_and_reindexed_fresh() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"live.md","body":"before #old"}),
    )
    .await;
    assert_eq!(
        app.ok(&t, &s, "read_note", json!({"path":"live.md"})).await["tags"],
        json!(["old"])
    );
    std::fs::write(
        app.vault_dir("alice").join("live.md"),
        "---\ntitle: Edited\n---\nafter outsideword #new\n",
    )
    .unwrap();
    let r = app.ok(&t, &s, "read_note", json!({"path":"live.md"})).await;
    assert_eq!(
        (r["title"].as_str(), r["body"].as_str()),
        (Some("Edited"), Some("after outsideword #new\n"))
    );
    assert_eq!(r["tags"], json!(["new"]));
    let found = app
        .ok(&t, &s, "search_notes", json!({"query":"outsideword"}))
        .await;
    assert_eq!(hit_paths(&found), vec!["live.md"]);
}

/// Single writes reach the full-text index in batches, a moment later, without waiting for a
/// search to ask for them (so a crash or an external reader finds them there).
#[tokio::test]
async fn written_text_reaches_the_full_text_index_shortly_without_a_search() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    for i in 0..3 {
        app.ok(
            &t,
            &s,
            "write_note",
            json!({"path": format!("n{i}.md"), "body": "quokkaword appears here"}),
        )
        .await;
    }
    let index = app.data.join("index").join("alice.sqlite");
    let indexed = || {
        let conn = rusqlite::Connection::open_with_flags(
            &index,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.query_row(
            "SELECT count(*) FROM notes_fts WHERE notes_fts MATCH 'quokkaword'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(5), || async { indexed() == 3 }).await,
        "the queued text was never flushed"
    );
    let pending: i64 = rusqlite::Connection::open(&index)
        .unwrap()
        .query_row("SELECT count(*) FROM fts_pending", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, 0, "flushed notes are no longer marked stale");
}
