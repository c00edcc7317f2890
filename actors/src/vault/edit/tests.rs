use serde_json::json;

use super::*;
use crate::vault::tests::*;

fn edit(v: &mut Vault, path: &str, edits: serde_json::Value) -> Result<Edited, VaultError> {
    v.edit(EditRequest {
        path: path.into(),
        edits: serde_json::from_value(edits).unwrap(),
        ..Default::default()
    })
}

fn dry(v: &mut Vault, path: &str, edits: serde_json::Value) -> Result<Edited, VaultError> {
    v.edit(EditRequest {
        path: path.into(),
        edits: serde_json::from_value(edits).unwrap(),
        dry_run: true,
        ..Default::default()
    })
}

fn body(v: &mut Vault, path: &str) -> String {
    v.read(path).unwrap().body
}

fn file(dir: &tempfile::TempDir, path: &str) -> Vec<u8> {
    std::fs::read(dir.path().join("v").join(path)).unwrap()
}

const PLAN: &str = "# Plan\n\nIntro.\n\n## Tasks\n\n- one\n- two\n\n### Later\n\n- \
                    three\n\n## Notes\n\nSome notes.\n";

#[test]
fn replace_changes_the_one_occurrence_and_returns_the_new_version_and_a_diff() {
    let (_dir, mut v) = vault();
    write(&mut v, "p.md", PLAN);
    let e = edit(
        &mut v,
        "p.md",
        json!([{"op": "replace", "find": "- two", "replace": "- 2"}]),
    )
    .unwrap();
    assert_eq!((e.version, e.changed, e.dry_run), (2, true, false));
    assert_eq!(body(&mut v, "p.md"), PLAN.replace("- two", "- 2"));
    assert!(e.diff.starts_with("--- a/p.md\n+++ b/p.md\n"), "{}", e.diff);
    assert!(
        e.diff.contains("\n-- two\n+- 2\n"),
        "the changed line: {}",
        e.diff
    );
    assert!(!e.diff_truncated);
    assert_eq!(e.size, v.read("p.md").unwrap().size);
}

#[test]
fn an_occurrence_mismatch_says_how_many_and_where_and_changes_nothing() {
    let (dir, mut v) = vault();
    write(&mut v, "p.md", "x\nitem\ny\nitem\nitem\n");
    let before = file(&dir, "p.md");
    let err = edit(
        &mut v,
        "p.md",
        json!([{"op": "replace", "find": "item", "replace": "thing"}]),
    )
    .unwrap_err();
    assert_eq!(err.code(), "occurrence_mismatch");
    let d = err.details();
    assert_eq!(
        (&d["found"], &d["expected"], &d["lines"]),
        (&json!(3), &json!(1), &json!([2, 4, 5]))
    );
    assert_eq!(d["edit_index"], 0);
    assert!(
        err.to_string().contains("occurs 3 times, expected 1"),
        "{err}"
    );
    let err = edit(
        &mut v,
        "p.md",
        json!([{"op": "replace", "find": "absent", "replace": "x"}]),
    )
    .unwrap_err();
    assert_eq!(err.details()["found"], 0);
    assert_eq!(file(&dir, "p.md"), before);
    assert_eq!(v.read("p.md").unwrap().version, 1);
    // With the right count every occurrence is replaced.
    edit(
        &mut v,
        "p.md",
        json!([{"op": "replace", "find": "item", "replace": "thing", "expected_count": 3}]),
    )
    .unwrap();
    assert_eq!(body(&mut v, "p.md"), "x\nthing\ny\nthing\nthing\n");
}

#[test]
fn append_and_prepend_put_text_on_its_own_lines_after_the_frontmatter() {
    let (_dir, mut v) = vault();
    write(&mut v, "a.md", "---\nstatus: open\n---\nmiddle");
    edit(
        &mut v,
        "a.md",
        json!([{"op": "append", "text": "end"}, {"op": "prepend", "text": "start\n"}]),
    )
    .unwrap();
    let note = v.read("a.md").unwrap();
    assert_eq!(note.body, "start\nmiddle\nend\n");
    assert_eq!(note.metadata["status"], "open");
}

#[test]
fn section_operations_use_the_heading_and_the_next_of_the_same_or_higher_level() {
    let (_dir, mut v) = vault();
    write(&mut v, "p.md", PLAN);
    edit(
        &mut v,
        "p.md",
        json!([{"op": "replace_section", "heading": "Tasks", "text": "- done"}]),
    )
    .unwrap();
    assert_eq!(
        body(&mut v, "p.md"),
        "# Plan\n\nIntro.\n\n## Tasks\n\n- done\n\n## Notes\n\nSome notes.\n",
        "the subsection went with its section"
    );
    edit(
        &mut v,
        "p.md",
        json!([
            {"op": "insert_after_section", "heading": "## Tasks", "text": "## Risks\n\n- none"},
            {"op": "insert_before_section", "heading": "Plan > Tasks", "text": "Before tasks."},
            {"op": "insert_after_section", "heading": "Notes", "text": "Last words."},
        ]),
    )
    .unwrap();
    assert_eq!(
        body(&mut v, "p.md"),
        "# Plan\n\nIntro.\n\nBefore tasks.\n\n## Tasks\n\n- done\n\n## Risks\n\n- none\n\n\
         ## Notes\n\nSome notes.\n\nLast words.\n"
    );
    // A section under the top heading runs to the end of the body.
    edit(
        &mut v,
        "p.md",
        json!([{"op": "replace_section", "heading": "# Plan", "text": ""}]),
    )
    .unwrap();
    assert_eq!(body(&mut v, "p.md"), "# Plan\n");
}

#[test]
fn headings_in_code_blocks_do_not_count_and_case_is_a_fallback() {
    let (_dir, mut v) = vault();
    write(
        &mut v,
        "c.md",
        "## Setup\n\n```sh\n# Setup\n```\n\n<!--\n## Setup\n-->\n## Next ##\n",
    );
    edit(
        &mut v,
        "c.md",
        json!([{"op": "insert_after_section", "heading": "setup", "text": "Done."},
               {"op": "replace_section", "heading": "Next", "text": "x"}]),
    )
    .unwrap();
    assert_eq!(
        body(&mut v, "c.md"),
        "## Setup\n\n```sh\n# Setup\n```\n\n<!--\n## Setup\n-->\n\nDone.\n\n## Next ##\n\nx\n"
    );
}

#[test]
fn a_missing_or_ambiguous_heading_is_an_error_that_lists_the_choices() {
    let (dir, mut v) = vault();
    write(
        &mut v,
        "h.md",
        "# A\n## Tasks\nx\n# B\n## Tasks\ny\n## Other\n",
    );
    let before = file(&dir, "h.md");
    let err = edit(
        &mut v,
        "h.md",
        json!([{"op": "replace_section", "heading": "Missing", "text": "z"}]),
    )
    .unwrap_err();
    assert_eq!(err.code(), "heading_not_found");
    assert_eq!(
        err.details()["available"],
        json!(["# A", "## Tasks", "# B", "## Tasks", "## Other"])
    );
    let err = edit(
        &mut v,
        "h.md",
        json!([{"op": "replace_section", "heading": "Tasks", "text": "z"}]),
    )
    .unwrap_err();
    assert_eq!(err.code(), "ambiguous_heading");
    assert_eq!(err.details()["lines"], json!([2, 5]));
    assert!(err.to_string().contains("Parent > Text"), "{err}");
    assert_eq!(
        edit(
            &mut v,
            "h.md",
            json!([{"op": "replace_section", "heading": "### Tasks", "text": "z"}]),
        )
        .unwrap_err()
        .code(),
        "heading_not_found",
        "the level must match"
    );
    assert_eq!(file(&dir, "h.md"), before);
    // The parent path picks one.
    edit(
        &mut v,
        "h.md",
        json!([{"op": "replace_section", "heading": "B > Tasks", "text": "z"}]),
    )
    .unwrap();
    assert_eq!(
        body(&mut v, "h.md"),
        "# A\n## Tasks\nx\n# B\n## Tasks\n\nz\n\n## Other\n"
    );
}

#[test]
fn a_dry_run_writes_nothing_and_shows_the_diff() {
    let (dir, mut v) = vault();
    write(&mut v, "d.md", PLAN);
    let before = file(&dir, "d.md");
    let e = dry(
        &mut v,
        "d.md",
        json!([{"op": "replace", "find": "Intro.", "replace": "Overview."},
               {"op": "set_frontmatter", "key": "status", "value": "draft"}]),
    )
    .unwrap();
    assert!(e.dry_run && e.changed);
    assert_eq!(e.version, 1);
    assert!(e.diff.contains("\n-Intro.\n+Overview.\n"), "{}", e.diff);
    assert!(e.diff.contains("\n+status: draft\n"), "{}", e.diff);
    assert_eq!(file(&dir, "d.md"), before, "the file is untouched");
    assert_eq!(v.read("d.md").unwrap().version, 1, "and so is the version");
    // The real edit gives the same file as the dry run predicted, but for `updated`.
    let real = edit(
        &mut v,
        "d.md",
        json!([{"op": "replace", "find": "Intro.", "replace": "Overview."},
               {"op": "set_frontmatter", "key": "status", "value": "draft"}]),
    )
    .unwrap();
    let strip = |d: &str| {
        d.lines()
            .filter(|l| !l.contains("updated:") && !l.starts_with("@@"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&real.diff), strip(&e.diff));
    assert_eq!(real.version, 2);
}

#[test]
fn a_dry_run_is_not_a_change_subscribers_hear_of() {
    let (_dir, mut v) = vault();
    write(&mut v, "d.md", "text\n");
    v.take_changes();
    dry(&mut v, "d.md", json!([{"op": "append", "text": "more"}])).unwrap();
    assert!(v.take_changes().is_empty());
    edit(&mut v, "d.md", json!([{"op": "append", "text": "more"}])).unwrap();
    assert_eq!(v.take_changes().len(), 1);
}

#[test]
fn frontmatter_keys_are_set_in_place_or_last_and_unset_keeping_the_order() {
    let (dir, mut v) = vault();
    std::fs::create_dir_all(dir.path().join("v")).unwrap();
    std::fs::write(
        dir.path().join("v/f.md"),
        "---\nzeta: 1\nalpha: [a, b]\nmid: x\n---\nbody\n",
    )
    .unwrap();
    edit(
        &mut v,
        "f.md",
        json!([
            {"op": "set_frontmatter", "key": "alpha", "value": {"nested": [1, 2]}},
            {"op": "set_frontmatter", "key": "new", "value": true},
            {"op": "unset_frontmatter", "key": "zeta"},
            {"op": "unset_frontmatter", "key": "never-there"},
        ]),
    )
    .unwrap();
    let note = v.read("f.md").unwrap();
    let keys: Vec<&str> = note.metadata.keys().map(String::as_str).collect();
    assert_eq!(keys, ["alpha", "mid", "new", "created", "updated"]);
    assert_eq!(note.metadata["alpha"], json!({"nested": [1, 2]}));
    assert_eq!(note.body, "body\n");
    let err = edit(
        &mut v,
        "f.md",
        json!([{"op": "set_frontmatter", "key": "updated", "value": "x"}]),
    )
    .unwrap_err();
    assert_eq!(err.code(), "invalid_edit");
}

#[test]
fn a_note_without_frontmatter_gets_one_when_a_key_is_set() {
    let (dir, mut v) = vault();
    std::fs::create_dir_all(dir.path().join("v")).unwrap();
    std::fs::write(dir.path().join("v/plain.md"), "just text\n").unwrap();
    edit(
        &mut v,
        "plain.md",
        json!([{"op": "set_frontmatter", "key": "tags", "value": ["x"]}]),
    )
    .unwrap();
    let text = String::from_utf8(file(&dir, "plain.md")).unwrap();
    assert!(text.starts_with("---\ntags:\n- x\n"), "{text}");
    assert!(text.ends_with("---\njust text\n"), "{text}");
    assert_eq!(v.read("plain.md").unwrap().tags, ["x"]);
}

#[test]
fn crlf_notes_keep_crlf_in_edited_and_added_lines() {
    let (dir, mut v) = vault();
    std::fs::create_dir_all(dir.path().join("v")).unwrap();
    std::fs::write(
        dir.path().join("v/w.md"),
        "## One\r\nfirst line\r\nsecond line\r\n## Two\r\nend\r\n",
    )
    .unwrap();
    edit(
        &mut v,
        "w.md",
        json!([
            {"op": "replace", "find": "first line\nsecond", "replace": "1st line\n2nd"},
            {"op": "append", "text": "tail\nmore"},
            {"op": "replace_section", "heading": "Two", "text": "new\nend"},
        ]),
    )
    .unwrap();
    assert_eq!(
        body(&mut v, "w.md"),
        "## One\r\n1st line\r\n2nd line\r\n## Two\r\n\r\nnew\r\nend\r\n"
    );
    let e = edit(&mut v, "w.md", json!([{"op": "append", "text": "x"}])).unwrap();
    assert!(e.diff.contains("+x\r\n"), "{:?}", e.diff);
}

#[test]
fn edits_are_all_or_nothing_when_a_later_one_fails() {
    let (dir, mut v) = vault();
    write(&mut v, "p.md", PLAN);
    let before = file(&dir, "p.md");
    v.take_changes();
    let err = edit(
        &mut v,
        "p.md",
        json!([
            {"op": "replace", "find": "Intro.", "replace": "Changed."},
            {"op": "replace_section", "heading": "Nowhere", "text": "x"},
        ]),
    )
    .unwrap_err();
    assert_eq!(err.code(), "heading_not_found");
    assert_eq!(err.details()["edit_index"], 1);
    assert!(
        err.to_string().starts_with("edit 2 (replace_section)"),
        "{err}"
    );
    assert_eq!(file(&dir, "p.md"), before);
    assert_eq!(v.read("p.md").unwrap().version, 1);
    assert!(v.take_changes().is_empty());
    // A later edit sees the text of the earlier ones.
    edit(
        &mut v,
        "p.md",
        json!([
            {"op": "replace", "find": "Intro.", "replace": "Changed."},
            {"op": "replace", "find": "Changed.", "replace": "Twice."},
        ]),
    )
    .unwrap();
    assert!(body(&mut v, "p.md").contains("\nTwice.\n"));
}

#[test]
fn if_version_missing_notes_and_no_op_edits() {
    let (dir, mut v) = vault();
    write(&mut v, "p.md", "one\n");
    let err = v
        .edit(EditRequest {
            path: "p.md".into(),
            edits: vec![Edit::Append { text: "x".into() }],
            if_version: Some(7),
            dry_run: false,
        })
        .unwrap_err();
    assert_eq!(err.code(), "conflict");
    assert_eq!(err.details()["current_version"], 1);
    let err = edit(&mut v, "none.md", json!([{"op": "append", "text": "x"}])).unwrap_err();
    assert_eq!(err.code(), "not_found");
    assert!(!dir.path().join("v/none.md").exists());
    // Replacing a text with itself changes nothing, and nothing is written.
    let before = file(&dir, "p.md");
    let e = edit(
        &mut v,
        "p.md",
        json!([{"op": "replace", "find": "one", "replace": "one"}]),
    )
    .unwrap();
    assert_eq!((e.changed, e.version, e.diff.as_str()), (false, 1, ""));
    assert_eq!(file(&dir, "p.md"), before);
    for bad in [
        json!([{"op": "replace", "find": "", "replace": "x"}]),
        json!([{"op": "replace", "find": "one", "replace": "x", "expected_count": 0}]),
        json!([{"op": "append", "text": ""}]),
        json!([{"op": "unset_frontmatter", "key": " "}]),
    ] {
        assert_eq!(
            edit(&mut v, "p.md", bad).unwrap_err().code(),
            "invalid_edit"
        );
    }
    assert_eq!(
        edit(&mut v, "p.md", json!([])).unwrap_err().code(),
        "invalid_arguments"
    );
}

#[test]
fn a_body_that_starts_like_frontmatter_stays_body() {
    let (_dir, mut v) = vault();
    write(&mut v, "b.md", "text\n");
    edit(
        &mut v,
        "b.md",
        json!([{"op": "prepend", "text": "---\nnot: frontmatter\n---"}]),
    )
    .unwrap();
    let note = v.read("b.md").unwrap();
    assert_eq!(note.body, "---\nnot: frontmatter\n---\ntext\n");
    assert!(note.metadata.get("not").is_none());
}

#[test]
fn an_edit_past_the_note_size_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::settings::Settings::for_data_dir(dir.path());
    settings.max_note_bytes = 200;
    let mut v = Vault::open(
        &dir.path().join("v"),
        &dir.path().join("i.sqlite"),
        &settings,
    )
    .unwrap();
    write(&mut v, "s.md", "short\n");
    let err = edit(
        &mut v,
        "s.md",
        json!([{"op": "append", "text": "x".repeat(300)}]),
    )
    .unwrap_err();
    assert_eq!(err.code(), "too_large");
    assert_eq!(body(&mut v, "s.md"), "short\n");
}

#[test]
fn an_edit_is_kept_in_the_history_as_an_edit() {
    let (_dir, mut v) = vault();
    write(&mut v, "p.md", PLAN);
    edit(
        &mut v,
        "p.md",
        json!([{"op": "replace", "find": "Intro.", "replace": "Start."}]),
    )
    .unwrap();
    let entries = v.note_history("p.md", 10).unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].operation, crate::vault::history::Operation::Edit);
}
