//! Live files: notes changed on disk by other programs while the user's actor runs are
//! indexed (or dropped) within two seconds, subscribers hear of them, and a write with an old
//! `if_version` over a note changed on disk answers `conflict` and leaves the file alone.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{eventually, hit_paths, spawn_app, spawn_app_with, SseReader, TestApp};

/// How soon an outside change must show.
const LIVE: Duration = Duration::from_secs(2);

/// A session for `user` with the actor running and the vault folder in place.
async fn started(app: &TestApp, user: &str) -> (String, String) {
    let t = app.token(user);
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"home.md","body":"home"}),
    )
    .await;
    (t, s)
}

async fn search(app: &TestApp, t: &str, s: &str, query: &str) -> Vec<String> {
    hit_paths(
        &app.ok(t, s, "search_notes", json!({"query": query, "limit": 100}))
            .await,
    )
}

async fn listed(app: &TestApp, t: &str, s: &str, folder: &str) -> Vec<String> {
    let page = app
        .ok(t, s, "list_notes", json!({"folder": folder, "limit": 1000}))
        .await;
    page["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| n["path"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Wait (at most [`LIVE`] from `since`) until `query` finds exactly `expected`.
async fn found_within(
    app: &TestApp,
    t: &str,
    s: &str,
    since: Instant,
    query: &str,
    expected: &[&str],
) {
    let left = LIVE.saturating_sub(since.elapsed());
    let ok = eventually(left, || async {
        search(app, t, s, query).await == expected
    })
    .await;
    assert!(
        ok,
        "{query:?} should find {expected:?} within {LIVE:?}; finds {:?}",
        search(app, t, s, query).await
    );
}

#[tokio::test]
async fn outside_create_edit_rename_and_delete_are_indexed_within_two_seconds() {
    let app = spawn_app().await;
    let (t, s) = started(&app, "alice").await;
    let vault = app.vault_dir("alice");

    let at = Instant::now();
    std::fs::write(vault.join("created.md"), "# Created\nzebracorn").unwrap();
    found_within(&app, &t, &s, at, "zebracorn", &["created.md"]).await;

    let at = Instant::now();
    std::fs::write(vault.join("created.md"), "# Created\nquokkaword").unwrap();
    found_within(&app, &t, &s, at, "quokkaword", &["created.md"]).await;
    assert!(search(&app, &t, &s, "zebracorn").await.is_empty());

    std::fs::create_dir(vault.join("later")).unwrap();
    let at = Instant::now();
    std::fs::rename(vault.join("created.md"), vault.join("later/renamed.md")).unwrap();
    found_within(&app, &t, &s, at, "quokkaword", &["later/renamed.md"]).await;
    assert!(!listed(&app, &t, &s, "")
        .await
        .contains(&"created.md".into()));

    // A folder moved in whole raises one event, for the folder.
    let outside = app.vault_dir("alice").with_file_name("alice-outside");
    std::fs::create_dir_all(outside.join("deep")).unwrap();
    std::fs::write(outside.join("deep/inner.md"), "movedinword").unwrap();
    let at = Instant::now();
    std::fs::rename(&outside, vault.join("arrived")).unwrap();
    found_within(&app, &t, &s, at, "movedinword", &["arrived/deep/inner.md"]).await;

    let at = Instant::now();
    std::fs::remove_file(vault.join("later/renamed.md")).unwrap();
    found_within(&app, &t, &s, at, "quokkaword", &[]).await;
    assert_eq!(
        listed(&app, &t, &s, "").await,
        ["arrived/deep/inner.md", "home.md"]
    );
}

#[tokio::test]
async fn an_editors_atomic_save_is_indexed_and_its_temp_file_is_not() {
    let app = spawn_app().await;
    let (t, s) = started(&app, "alice").await;
    let vault = app.vault_dir("alice");
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"doc.md","body":"firstdraft"}),
    )
    .await;

    // Write a temp file beside the note, then rename it over the note, as editors do.
    for (i, temp) in ["doc.md.tmp~", ".doc.md.swp"].iter().enumerate() {
        let word = format!("savedword{i}");
        std::fs::write(vault.join(temp), format!("# Doc\n{word}")).unwrap();
        let at = Instant::now();
        std::fs::rename(vault.join(temp), vault.join("doc.md")).unwrap();
        found_within(&app, &t, &s, at, &word, &["doc.md"]).await;
    }
    assert!(search(&app, &t, &s, "firstdraft").await.is_empty());
    assert_eq!(listed(&app, &t, &s, "").await, ["doc.md", "home.md"]);
}

#[tokio::test]
async fn a_thousand_note_folder_copied_in_is_searchable_within_two_seconds() {
    let app = spawn_app().await;
    let (t, s) = started(&app, "alice").await;
    let vault = app.vault_dir("alice");
    let source = app.vault_dir("alice").with_file_name("to-copy");
    for i in 0..1000 {
        let dir = source.join(format!("part{}", i / 100));
        std::fs::create_dir_all(&dir).unwrap();
        let word = if i == 999 { " lastofthousand" } else { "" };
        std::fs::write(
            dir.join(format!("n{i:04}.md")),
            format!("# Note {i}\ncopiedword{word} [[home]]"),
        )
        .unwrap();
    }
    let at = Instant::now();
    copy_dir(&source, &vault.join("copied"));
    let copied_in = at.elapsed();
    let left = LIVE.saturating_sub(at.elapsed());
    let ok = eventually(left, || async {
        listed(&app, &t, &s, "copied").await.len() == 1000
    })
    .await;
    assert!(
        ok,
        "1000 notes listed within {LIVE:?} (copy took {copied_in:?}); listed {}",
        listed(&app, &t, &s, "copied").await.len()
    );
    found_within(
        &app,
        &t,
        &s,
        at,
        "lastofthousand",
        &["copied/part9/n0999.md"],
    )
    .await;
    let backlinks = app
        .ok(&t, &s, "get_backlinks", json!({"path":"home.md"}))
        .await;
    assert_eq!(backlinks["backlinks"].as_array().map(Vec::len), Some(1000));
}

/// `cp -r`: folders first, then their files, one by one.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The next `resources/updated` notification within `wait`, if any.
async fn next_updated(reader: &mut SseReader, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, reader.next())
            .await
            .ok()??;
        if msg["method"] == "notifications/resources/updated" {
            return Some(msg);
        }
    }
}

#[tokio::test]
async fn a_subscriber_hears_of_an_outside_edit_and_of_its_own_write_once() {
    let app = spawn_app().await;
    let (t, writer) = started(&app, "alice").await;
    app.ok(
        &t,
        &writer,
        "write_note",
        json!({"path":"watched.md","body":"v1"}),
    )
    .await;
    let watcher = app.session(&t).await;
    let sub = app
        .rpc(
            &t,
            &watcher,
            "resources/subscribe",
            json!({"uri":"note:///watched.md"}),
        )
        .await;
    assert_eq!(sub["result"], json!({}));
    let mut reader = SseReader::new(app.get_stream(&t, &watcher, "text/event-stream").await);

    // A write through the server: told once, not again when the watcher sees the file change.
    app.ok(
        &t,
        &writer,
        "write_note",
        json!({"path":"watched.md","body":"v2"}),
    )
    .await;
    let first = next_updated(&mut reader, LIVE)
        .await
        .expect("told of the write");
    assert_eq!(first["params"]["uri"], "note:///watched.md");
    assert!(
        next_updated(&mut reader, Duration::from_millis(1000))
            .await
            .is_none(),
        "the server's own write is not reported twice"
    );

    std::fs::write(app.vault_dir("alice").join("watched.md"), "edited outside").unwrap();
    let outside = next_updated(&mut reader, LIVE)
        .await
        .expect("told of the outside edit within 2 s");
    assert_eq!(outside["params"]["uri"], "note:///watched.md");
    let note = app
        .ok(&t, &writer, "read_note", json!({"path":"watched.md"}))
        .await;
    assert_eq!(note["body"], "edited outside");
}

/// Outside edit, then a write and a delete with the version read before: both `conflict`,
/// carrying the current version, and the file keeps the outside bytes.
async fn an_outside_edit_then_an_old_if_version_is_a_conflict(app: &TestApp) {
    let (t, s) = started(app, "alice").await;
    let written = app
        .ok(&t, &s, "write_note", json!({"path":"a.md","body":"ours"}))
        .await;
    let seen = written["version"].as_u64().expect("version");
    let file = app.vault_dir("alice").join("a.md");
    let outside = b"---\ntitle: Theirs\n---\nchanged in an editor\n".to_vec();
    std::fs::write(&file, &outside).unwrap();

    let result = app
        .call(
            &t,
            &s,
            "write_note",
            json!({"path":"a.md","body":"stale overwrite","if_version": seen}),
        )
        .await;
    assert_eq!(result["isError"], true, "{result}");
    assert_eq!(result["structuredContent"]["code"], "conflict");
    assert_eq!(result["structuredContent"]["current_version"], seen + 1);
    assert_eq!(std::fs::read(&file).unwrap(), outside, "byte for byte");

    let result = app
        .call(
            &t,
            &s,
            "delete_note",
            json!({"path":"a.md","if_version": seen}),
        )
        .await;
    assert_eq!(result["structuredContent"]["code"], "conflict", "{result}");
    assert_eq!(std::fs::read(&file).unwrap(), outside);

    // What read_note answers now is the outside version, and writing with it goes through.
    let note = app.ok(&t, &s, "read_note", json!({"path":"a.md"})).await;
    assert_eq!(note["version"], seen + 1);
    assert_eq!(note["title"], "Theirs");
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"a.md","body":"merged","if_version": seen + 1}),
    )
    .await;
}

#[tokio::test]
async fn an_outside_edit_then_write_with_the_old_version_is_a_conflict() {
    let app = spawn_app().await;
    an_outside_edit_then_an_old_if_version_is_a_conflict(&app).await;
}

#[tokio::test]
async fn the_conflict_check_holds_with_the_watcher_switched_off() {
    let app = spawn_app_with(|c| c.watch_files = false).await;
    an_outside_edit_then_an_old_if_version_is_a_conflict(&app).await;
    // Without the watcher, an outside create waits for a read, a write or the next start.
    let (t, s) = started(&app, "alice").await;
    std::fs::write(app.vault_dir("alice").join("unseen.md"), "unwatchedword").unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(search(&app, &t, &s, "unwatchedword").await.is_empty());
}
