//! The seven vault tools and their semantics: versions, frontmatter, search, links, tags.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn write_then_read_round_trips_with_structured_content() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    let w = app
        .ok(
            &t,
            &s,
            "write_note",
            json!({"path":"projects/plan.md","body":"# Plan\nShip it.","title":"The plan"}),
        )
        .await;
    assert_eq!(
        (w["version"].as_u64(), w["created_note"].as_bool()),
        (Some(1), Some(true))
    );
    let r = app
        .ok(&t, &s, "read_note", json!({"path":"projects/plan.md"}))
        .await;
    assert_eq!(r["body"], "# Plan\nShip it.");
    assert_eq!(r["title"], "The plan");
    assert_eq!(r["version"], 1);
    assert!(r["metadata"]["created"].is_string() && r["metadata"]["updated"].is_string());
    let on_disk = std::fs::read_to_string(app.vault_dir("alice").join("projects/plan.md")).unwrap();
    assert!(
        on_disk.starts_with("---\n") && on_disk.ends_with("# Plan\nShip it."),
        "{on_disk}"
    );
}

#[tokio::test]
async fn write_keeps_unlisted_frontmatter_when_metadata_is_not_passed() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"n.md","body":"v1","metadata":{"title":"Kept","tags":["alpha","beta"],"status":"draft","nested":{"k":[1,2]}}}),
    )
    .await;
    let first = app.ok(&t, &s, "read_note", json!({"path":"n.md"})).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"n.md","body":"v2 body only"}),
    )
    .await;
    let r = app.ok(&t, &s, "read_note", json!({"path":"n.md"})).await;
    assert_eq!(r["body"], "v2 body only");
    assert_eq!(r["metadata"]["status"], "draft");
    assert_eq!(r["metadata"]["nested"], json!({"k":[1,2]}));
    assert_eq!(r["metadata"]["tags"], json!(["alpha", "beta"]));
    assert_eq!(r["title"], "Kept");
    assert_eq!(r["metadata"]["created"], first["metadata"]["created"]);
    let tags = app.ok(&t, &s, "get_tags", json!({})).await;
    assert!(tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["tag"] == "alpha"));
}

#[tokio::test]
async fn versions_only_go_up_and_if_version_guards_writes_and_deletes() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    assert_eq!(
        app.ok(
            &t,
            &s,
            "write_note",
            json!({"path":"v.md","body":"1","if_version":0})
        )
        .await["version"],
        1
    );
    assert_eq!(
        app.err_code(
            &t,
            &s,
            "write_note",
            json!({"path":"v.md","body":"x","if_version":0})
        )
        .await,
        "conflict"
    );
    assert_eq!(
        app.ok(
            &t,
            &s,
            "write_note",
            json!({"path":"v.md","body":"2","if_version":1})
        )
        .await["version"],
        2
    );
    let conflict = app
        .call(
            &t,
            &s,
            "write_note",
            json!({"path":"v.md","body":"x","if_version":1}),
        )
        .await;
    assert_eq!(conflict["structuredContent"]["code"], "conflict");
    assert_eq!(conflict["structuredContent"]["current_version"], 2);
    assert_eq!(
        app.err_code(&t, &s, "delete_note", json!({"path":"v.md","if_version":1}))
            .await,
        "conflict"
    );
    let deleted = app
        .ok(&t, &s, "delete_note", json!({"path":"v.md","if_version":2}))
        .await;
    assert_eq!(deleted["version"], 2);
    assert_eq!(
        app.err_code(&t, &s, "read_note", json!({"path":"v.md"}))
            .await,
        "not_found"
    );
    assert_eq!(
        app.err_code(&t, &s, "delete_note", json!({"path":"v.md"}))
            .await,
        "not_found"
    );
    let again = app
        .ok(&t, &s, "write_note", json!({"path":"v.md","body":"3"}))
        .await;
    assert_eq!(
        again["version"], 3,
        "a re-created note continues from the old version"
    );
}

#[tokio::test]
async fn search_finds_text_in_any_script_best_first_with_marks() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    let notes = [
        (
            "de.md",
            "Reise",
            "Wir fahren nach München und trinken Kaffee mit Frau Müller.",
        ),
        (
            "ja.md",
            "日記",
            "今日は東京都に住んでいます。雨が降りました。",
        ),
        (
            "ru.md",
            "Заметка",
            "Привет, мир! Москва зимой очень красивая.",
        ),
        ("title.md", "Kaffee", "A note about drinks."),
        ("body.md", "Drinks", "We had kaffee once, kaffee twice."),
    ];
    for (path, title, body) in notes {
        app.ok(
            &t,
            &s,
            "write_note",
            json!({"path":path,"body":body,"title":title}),
        )
        .await;
    }
    let de = app
        .ok(&t, &s, "search_notes", json!({"query":"muller"}))
        .await;
    assert_eq!(hit_paths(&de), vec!["de.md"]);
    assert!(de["results"][0]["snippet"]
        .as_str()
        .unwrap()
        .contains("<mark>Müller</mark>"));
    let umlaut = app
        .ok(&t, &s, "search_notes", json!({"query":"München"}))
        .await;
    assert_eq!(hit_paths(&umlaut), vec!["de.md"]);
    let ja = app
        .ok(&t, &s, "search_notes", json!({"query":"東京"}))
        .await;
    assert_eq!(hit_paths(&ja), vec!["ja.md"]);
    assert!(ja["results"][0]["snippet"]
        .as_str()
        .unwrap()
        .contains("<mark>東京</mark>"));
    let ru = app
        .ok(&t, &s, "search_notes", json!({"query":"москва"}))
        .await;
    assert_eq!(hit_paths(&ru), vec!["ru.md"]);
    let prefix = app
        .ok(&t, &s, "search_notes", json!({"query":"прив*"}))
        .await;
    assert_eq!(hit_paths(&prefix), vec!["ru.md"]);
    let ranked = app
        .ok(&t, &s, "search_notes", json!({"query":"kaffee"}))
        .await;
    let paths = hit_paths(&ranked);
    assert_eq!(paths[0], "title.md", "a title match ranks first: {paths:?}");
    let scores: Vec<f64> = ranked["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
    let excluded = app
        .ok(&t, &s, "search_notes", json!({"query":"kaffee -drinks"}))
        .await;
    assert_eq!(hit_paths(&excluded), vec!["de.md"]);
    let phrase = app
        .ok(&t, &s, "search_notes", json!({"query":"\"kaffee twice\""}))
        .await;
    assert_eq!(hit_paths(&phrase), vec!["body.md"]);
    let limited = app
        .ok(&t, &s, "search_notes", json!({"query":"kaffee","limit":1}))
        .await;
    assert_eq!(hit_paths(&limited).len(), 1);
}

#[tokio::test]
async fn search_filters_by_folder_and_tags_and_rejects_bad_queries() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"work/a.md","body":"apple pie #recipe"}),
    )
    .await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"home/b.md","body":"apple tart","metadata":{"tags":["recipe"]}}),
    )
    .await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"home/c.md","body":"apple tree"}),
    )
    .await;
    let folder = app
        .ok(
            &t,
            &s,
            "search_notes",
            json!({"query":"apple","folder":"home"}),
        )
        .await;
    let mut paths = hit_paths(&folder);
    paths.sort();
    assert_eq!(paths, vec!["home/b.md", "home/c.md"]);
    let tagged = app
        .ok(
            &t,
            &s,
            "search_notes",
            json!({"query":"apple","tags":["recipe"]}),
        )
        .await;
    let mut paths = hit_paths(&tagged);
    paths.sort();
    assert_eq!(paths, vec!["home/b.md", "work/a.md"]);
    for bad in [
        json!({"query":""}),
        json!({"query":"-apple"}),
        json!({"query":"x".repeat(300)}),
    ] {
        assert_eq!(
            app.err_code(&t, &s, "search_notes", bad).await,
            "invalid_query"
        );
    }
    for hostile in [
        "title:apple",
        "NEAR(apple pie)",
        "apple AND",
        "\"",
        "*",
        "^x",
        ")",
    ] {
        let r = app
            .call(&t, &s, "search_notes", json!({"query": hostile}))
            .await;
        assert!(
            r["isError"] == json!(false) || r["structuredContent"]["code"] == "invalid_query",
            "{hostile}: {r}"
        );
    }
    assert_eq!(
        app.err_code(&t, &s, "search_notes", json!({"query":"apple","limit":0}))
            .await,
        "invalid_arguments"
    );
    assert_eq!(
        app.err_code(&t, &s, "search_notes", json!({"query":"apple","limit":101}))
            .await,
        "invalid_arguments"
    );
}

#[tokio::test]
async fn wikilinks_in_every_form_resolve_and_code_is_not_a_link() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"notes/target.md","body":"# Target\n## Part"}),
    )
    .await;
    let body = "Plain [[target]], aliased [[target|the target]], heading [[target#Part]], \
                embed ![[target]], path [[notes/target.md]].\n\
                Inline `[[ghost-inline]]` code.\n```\n[[ghost-fenced]]\n```\n";
    for (i, path) in ["a.md", "b.md", "c.md"].iter().enumerate() {
        let text = if i == 0 {
            body.to_string()
        } else {
            format!("see [[Target]] {i}")
        };
        app.ok(&t, &s, "write_note", json!({"path":path,"body":text}))
            .await;
    }
    let back = app
        .ok(&t, &s, "get_backlinks", json!({"path":"notes/target.md"}))
        .await;
    let paths: Vec<_> = back["backlinks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["path"].clone())
        .collect();
    assert_eq!(paths, vec![json!("a.md"), json!("b.md"), json!("c.md")]);
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"ghost-inline.md","body":"x"}),
    )
    .await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"ghost-fenced.md","body":"x"}),
    )
    .await;
    for ghost in ["ghost-inline.md", "ghost-fenced.md"] {
        let back = app.ok(&t, &s, "get_backlinks", json!({"path":ghost})).await;
        assert_eq!(
            back["backlinks"],
            json!([]),
            "{ghost}: a link inside code is not a link"
        );
    }
    assert_eq!(
        app.err_code(&t, &s, "get_backlinks", json!({"path":"missing.md"}))
            .await,
        "not_found"
    );
}

#[tokio::test]
async fn broken_links_are_re_resolved_when_their_target_appears_and_leaves() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"src.md","body":"waiting for [[Later Note]]"}),
    )
    .await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"deep/later note.md","body":"here now"}),
    )
    .await;
    let back = app
        .ok(
            &t,
            &s,
            "get_backlinks",
            json!({"path":"deep/later note.md"}),
        )
        .await;
    assert_eq!(back["backlinks"][0]["path"], "src.md", "{back}");
    // Removing it breaks the link; a note titled like the target then satisfies it.
    app.ok(&t, &s, "delete_note", json!({"path":"deep/later note.md"}))
        .await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"other.md","body":"x","title":"Later Note"}),
    )
    .await;
    let back = app
        .ok(&t, &s, "get_backlinks", json!({"path":"other.md"}))
        .await;
    assert_eq!(back["backlinks"][0]["path"], "src.md", "{back}");
}

#[tokio::test]
async fn tags_come_from_frontmatter_and_inline_and_are_counted() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(&t, &s, "write_note", json!({"path":"1.md","body":"#Idea and #über and `#notatag`\n# Heading","metadata":{"tags":["project"]}})).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"2.md","body":"another #idea, see page#anchor"}),
    )
    .await;
    let tags = app.ok(&t, &s, "get_tags", json!({})).await;
    assert_eq!(
        tags["tags"],
        json!([{"tag":"idea","count":2},{"tag":"project","count":1},{"tag":"über","count":1}])
    );
}

#[tokio::test]
async fn list_notes_pages_with_a_cursor_and_filters_by_folder() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    for i in 0..5 {
        app.ok(
            &t,
            &s,
            "write_note",
            json!({"path":format!("f/n{i}.md"),"body":"x"}),
        )
        .await;
    }
    app.ok(&t, &s, "write_note", json!({"path":"root.md","body":"x"}))
        .await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"statements/do...while/index.md","body":"loops"}),
    )
    .await;
    let mut seen = Vec::new();
    let mut cursor = serde_json::Value::Null;
    loop {
        let page = app
            .ok(
                &t,
                &s,
                "list_notes",
                json!({"folder":"f","limit":2,"cursor":cursor}),
            )
            .await;
        for n in page["notes"].as_array().unwrap() {
            seen.push(n["path"].as_str().unwrap().to_string());
        }
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(
        seen,
        (0..5).map(|i| format!("f/n{i}.md")).collect::<Vec<_>>()
    );
    let all = app.ok(&t, &s, "list_notes", json!({})).await;
    assert_eq!(all["notes"].as_array().unwrap().len(), 7);
    let dots = app
        .ok(
            &t,
            &s,
            "read_note",
            json!({"path":"statements/do...while/index.md"}),
        )
        .await;
    assert_eq!(dots["body"], "loops");
}

#[tokio::test]
async fn body_with_its_own_frontmatter_block_is_merged_into_metadata() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"fm.md","body":"---\ntitle: From Body\nstatus: done\n---\nText"}),
    )
    .await;
    let r = app.ok(&t, &s, "read_note", json!({"path":"fm.md"})).await;
    assert_eq!(
        (
            r["title"].as_str(),
            r["metadata"]["status"].as_str(),
            r["body"].as_str()
        ),
        (Some("From Body"), Some("done"), Some("Text"))
    );
}

#[tokio::test]
async fn retitling_a_note_moves_the_links_that_named_its_title() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"x.md","body":"x","title":"Alpha"}),
    )
    .await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"y.md","body":"y","title":"Beta"}),
    )
    .await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"src.md","body":"see [[Alpha]]"}),
    )
    .await;
    let back = app
        .ok(&t, &s, "get_backlinks", json!({"path":"x.md"}))
        .await;
    assert_eq!(back["backlinks"][0]["path"], "src.md");
    // Rewriting with the same title keeps the link; renaming the title moves it.
    app.ok(&t, &s, "write_note", json!({"path":"x.md","body":"x2"}))
        .await;
    assert_eq!(
        app.ok(&t, &s, "get_backlinks", json!({"path":"x.md"}))
            .await["backlinks"][0]["path"],
        "src.md"
    );
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"x.md","body":"x3","title":"Gamma"}),
    )
    .await;
    assert_eq!(
        app.ok(&t, &s, "get_backlinks", json!({"path":"x.md"}))
            .await["backlinks"],
        json!([])
    );
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"y.md","body":"y2","title":"Alpha"}),
    )
    .await;
    assert_eq!(
        app.ok(&t, &s, "get_backlinks", json!({"path":"y.md"}))
            .await["backlinks"][0]["path"],
        "src.md"
    );
}

#[tokio::test]
async fn a_search_by_tags_alone_lists_the_tagged_notes_newest_first() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let sid = app.session(&t).await;
    for (path, body) in [
        (
            "a.md",
            "---\ntags: [plan, work]\n---\nno tag words in the text",
        ),
        ("b.md", "inline #plan only"),
        ("c.md", "#work only"),
        ("d/e.md", "---\ntags: [plan]\n---\nin a folder"),
    ] {
        app.ok(&t, &sid, "write_note", json!({"path": path, "body": body}))
            .await;
        // Distinct update times, so "newest first" has one answer.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let hits = app
        .ok(
            &t,
            &sid,
            "search_notes",
            json!({"query": "", "tags": ["plan"]}),
        )
        .await;
    assert_eq!(hit_paths(&hits), ["d/e.md", "b.md", "a.md"]);
    let both = app
        .ok(
            &t,
            &sid,
            "search_notes",
            json!({"query": " ", "tags": ["#plan", "work"]}),
        )
        .await;
    assert_eq!(hit_paths(&both), ["a.md"]);
    let in_folder = app
        .ok(
            &t,
            &sid,
            "search_notes",
            json!({"query": "", "tags": ["plan"], "folder": "d"}),
        )
        .await;
    assert_eq!(hit_paths(&in_folder), ["d/e.md"]);
    assert_eq!(
        app.err_code(&t, &sid, "search_notes", json!({"query": ""}))
            .await,
        "invalid_query",
        "no words and no tags is still no query"
    );
}
