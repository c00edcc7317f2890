//! The tool catalog: every MCP tool is one entry here — name, description, argument type (its
//! JSON Schema derived with `schemars`), result type, annotations and handler. Adding a tool is
//! adding one entry and one handler.

use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::context::RequestContext;
use super::scoped;
use super::tool::tool;
pub use super::tool::{error_result, success_result, Effect, Tool};
use crate::error::VaultError;
use crate::index::{ListedNote, OutgoingLink, SearchHit, TagCount};
use crate::session::LogLevel;
use crate::vault::usage::VaultInfo;
use crate::vault::{Deleted, Note, NotePage, Vault, WriteRequest, Written};

/// Every tool this server offers, in `tools/list` order.
pub fn catalog() -> &'static [Tool] {
    static CATALOG: LazyLock<Vec<Tool>> = LazyLock::new(|| {
        #[allow(unused_mut)]
        let mut tools = vec![
            tool(
                "list_notes",
                "List notes",
                "List notes in the vault (or under one folder), ordered by path, a page at a time. \
                 Pass the returned next_cursor as cursor to get the next page.",
                Effect::Read,
                list_notes,
            ),
            tool(
                "read_note",
                "Read a note",
                "Read one note: its markdown body, frontmatter metadata, tags and version.",
                Effect::Read,
                read_note,
            ),
            tool(
                "write_note",
                "Write a note",
                "Create or replace a note. Without `metadata` the note's existing frontmatter is \
                 kept (only `updated` changes); with it, `metadata` becomes the frontmatter. Pass \
                 if_version (from read_note; 0 = must not exist yet) to refuse overwriting a \
                 newer version.",
                Effect::Write,
                write_note,
            ),
            tool(
                "edit_note",
                "Edit a note",
                "Change part of a note without sending it whole: exact find/replace (fails \
                 unless the text occurs expected_count times, default 1, and says how many \
                 times and where it was found), append, prepend (after the frontmatter), \
                 replace the section under a heading or insert before or after it, set or \
                 unset a frontmatter key. Edits apply in order, all or nothing. Headings are \
                 named by text (`Tasks`), level (`## Tasks`) or path (`Project > Tasks`). \
                 Returns a unified diff; with dry_run nothing is written. Pass if_version \
                 (from read_note) to refuse editing a newer version.",
                Effect::Edit,
                super::change_tools::edit_note,
            ),
            tool(
                "delete_note",
                "Delete a note",
                "Delete a note. Pass if_version to refuse deleting a version you have not seen.",
                Effect::Destroy,
                delete_note,
            ),
            tool(
                "search_notes",
                "Search notes",
                "Full-text search, best match first. Words must all match; use \"exact phrase\", \
                 prefix*, -excluded, and OR between words. Works in any language. Optional \
                 folder and tags narrow the search; with tags, the query may be empty (every \
                 note carrying them, most recently updated first).",
                Effect::Read,
                search_notes,
            ),
            tool(
                "get_backlinks",
                "Get backlinks",
                "List the notes whose [[wikilinks]] point at the given note.",
                Effect::Read,
                get_backlinks,
            ),
            tool(
                "get_links",
                "Get outgoing links",
                "List the [[wikilinks]] written in a note, in order, each with the note it \
                 resolves to, or without one when the link is broken.",
                Effect::Read,
                get_links,
            ),
            tool(
                "recent_notes",
                "Recent notes",
                "List the notes that changed most recently, newest first, optionally under one \
                 folder and since a time (pass a note's `changed` as since to see only what \
                 changed from then on).",
                Effect::Read,
                super::change_tools::recent_notes,
            ),
            tool(
                "move_note",
                "Move or rename a note or folder",
                "Move or rename a note, or a whole folder (a `from` not ending in .md, or ending \
                 with /, is a folder), and rewrite the [[links]] of every note that reached a \
                 moved note so they still do (aliases, headings and embeds kept; the shortest \
                 form that still resolves). The destination must not exist. All or nothing, \
                 even across a crash; undo with restore_note. dry_run reports what would move \
                 and which notes' links would change. if_version applies to a single note.",
                Effect::Edit,
                super::history_tools::move_note,
            ),
            tool(
                "note_history",
                "Note history",
                "List the kept previous versions of a note, newest first: which operation \
                 replaced each (write, edit, delete, move, restore), when, its version and \
                 size. Pass an entry's id to restore_note to bring it back.",
                Effect::Read,
                super::history_tools::note_history,
            ),
            tool(
                "restore_note",
                "Restore a note",
                "Undo the last change of a note (or restore a chosen note_history entry): a \
                 write or edit gets the previous content back, a delete brings the note back, \
                 a move moves every note back and puts back the links it rewrote. The restore \
                 is itself kept in the history, so it can be undone the same way. Pass \
                 if_version to refuse restoring over a version you have not seen.",
                Effect::Destroy,
                super::history_tools::restore_note,
            ),
            tool(
                "rebuild_index",
                "Rebuild the search index",
                "Re-read every note file and rebuild the search index, links and tags from them \
                 (note versions are kept). Needed only after editing files outside the server \
                 while it runs. Reports progress; can be cancelled, which keeps the old index. \
                 Needs a token that may write the whole vault.",
                Effect::Maintain,
                rebuild_index,
            ),
            tool(
                "suggest_tags",
                "Suggest tags",
                "Ask the client's language model (MCP sampling) to suggest tags for a note, \
                 preferring tags already used in the vault. Suggestions only: nothing is written.",
                Effect::Read,
                suggest_tags,
            ),
            tool(
                "get_tags",
                "Get tags",
                "List every tag in the vault (frontmatter tags and inline #tags) with the number \
                 of notes carrying it, most used first.",
                Effect::Read,
                get_tags,
            ),
            tool(
                "vault_info",
                "Vault information",
                "How many notes and bytes the vault holds, the user's live sessions, each quota \
                 (max and used: a write past notes_per_vault or vault_bytes answers \
                 quota_exceeded), the index's health and when a note last changed. Needs a token \
                 that may read the whole vault.",
                Effect::Read,
                vault_info,
            ),
        ];
        #[cfg(feature = "conformance")]
        tools.extend(super::fixtures::tools());
        tools
    });
    &CATALOG
}

/// The tool named `name`, if the catalog has it.
pub fn find(name: &str) -> Option<&'static Tool> {
    catalog().iter().find(|t| t.name == name)
}

const DEFAULT_LIST_LIMIT: u32 = 200;
const MAX_LIST_LIMIT: u32 = 1000;
const DEFAULT_SEARCH_LIMIT: u32 = 50;
const MAX_SEARCH_LIMIT: u32 = 100;

fn check_limit(limit: Option<u32>, default: u32, max: u32) -> Result<usize, VaultError> {
    match limit.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n as usize),
        n => Err(VaultError::InvalidArguments(format!(
            "limit must be between 1 and {max}, got {n}"
        ))),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
struct ListNotesArgs {
    /// Only notes in this folder or below, e.g. `projects/2025`. Omit for the whole vault.
    folder: Option<String>,
    /// The next_cursor of the previous page.
    cursor: Option<String>,
    /// Notes per page (1-1000, default 200).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
    /// false: only the notes directly in the folder, plus its direct subfolders (`folders`,
    /// with note counts). Default true: every note below the folder.
    recursive: Option<bool>,
}

fn list_notes(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    a: ListNotesArgs,
) -> Result<NotePage, VaultError> {
    let limit = check_limit(a.limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)?;
    let access = &ctx.caller.access;
    let (folder, cursor) = (a.folder.as_deref(), a.cursor.as_deref());
    if a.recursive == Some(false) {
        scoped::list_folder(vault, access, folder, cursor, limit)
    } else {
        scoped::list(vault, access, folder, cursor, limit)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
struct PathArgs {
    /// Note path relative to the vault, ending in .md, e.g. `projects/plan.md`.
    path: String,
}

fn read_note(vault: &mut Vault, ctx: &RequestContext<'_>, a: PathArgs) -> Result<Note, VaultError> {
    ctx.caller.access.check_read(&a.path)?;
    vault.read(&a.path)
}

#[derive(Debug, Deserialize, JsonSchema)]
struct WriteNoteArgs {
    /// Note path relative to the vault, ending in .md, e.g. `projects/plan.md`.
    path: String,
    /// Markdown body. A leading `---` frontmatter block in it is merged into the metadata.
    body: String,
    /// Title stored in the frontmatter.
    title: Option<String>,
    /// Frontmatter keys (an object). Replaces the existing frontmatter when given.
    #[schemars(with = "Option<Map<String, Value>>")]
    metadata: Option<Value>,
    /// Only write if the note's current version is this (0 = the note must not exist).
    if_version: Option<u64>,
}

fn write_note(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    a: WriteNoteArgs,
) -> Result<Written, VaultError> {
    ctx.caller.access.check_write(&a.path)?;
    let written = vault.write(WriteRequest {
        path: a.path,
        body: a.body,
        title: a.title,
        metadata: a.metadata,
        if_version: a.if_version,
    })?;
    ctx.log(
        LogLevel::Info,
        json!(format!(
            "wrote {} (version {})",
            written.path, written.version
        )),
    );
    Ok(written)
}

#[derive(Debug, Deserialize, JsonSchema)]
struct DeleteNoteArgs {
    /// Note path relative to the vault, ending in .md.
    path: String,
    /// Only delete if the note's current version is this.
    if_version: Option<u64>,
}

fn delete_note(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    a: DeleteNoteArgs,
) -> Result<Deleted, VaultError> {
    ctx.caller.access.check_write(&a.path)?;
    let mut if_version = a.if_version;
    if ctx.options.confirm_deletes && ctx.client_can("elicitation") {
        let version = vault.version_of(&a.path)?;
        let answer = ctx.ask_client(
            "elicitation/create",
            json!({
                "message": format!("Delete the note {} (version {version})?", a.path),
                "requestedSchema": {
                    "type": "object",
                    "properties": {
                        "confirm": {
                            "type": "boolean",
                            "title": "Delete this note",
                            "description": "The note file is removed from the vault.",
                        }
                    },
                    "required": ["confirm"],
                },
            }),
        )?;
        let accepted = answer.get("action").and_then(Value::as_str) == Some("accept")
            && answer.pointer("/content/confirm") == Some(&json!(true));
        if !accepted {
            return Err(VaultError::Declined(format!(
                "the user did not confirm deleting {}; nothing was deleted",
                a.path
            )));
        }
        // Delete exactly what the user confirmed.
        if_version = Some(if_version.unwrap_or(version));
    }
    let deleted = vault.delete(&a.path, if_version)?;
    ctx.log(LogLevel::Notice, json!(format!("deleted {}", deleted.path)));
    Ok(deleted)
}

#[derive(Debug, Deserialize, JsonSchema)]
struct SearchNotesArgs {
    /// Words to find; "phrase", prefix*, -exclude and OR are understood. May be empty when
    /// tags are given.
    query: String,
    /// Most results to return (1-100, default 50).
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
    /// Only notes in this folder or below.
    folder: Option<String>,
    /// Only notes carrying every one of these tags.
    tags: Option<Vec<String>>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct SearchResults {
    query: String,
    results: Vec<SearchHit>,
}

fn search_notes(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    a: SearchNotesArgs,
) -> Result<SearchResults, VaultError> {
    let limit = check_limit(a.limit, DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT)?;
    let results = scoped::search(
        vault,
        &ctx.caller.access,
        &a.query,
        a.folder.as_deref(),
        &a.tags.unwrap_or_default(),
        limit,
    )?;
    Ok(SearchResults {
        query: a.query,
        results,
    })
}

#[derive(Debug, Serialize, JsonSchema)]
struct Backlinks {
    path: String,
    backlinks: Vec<ListedNote>,
}

fn get_backlinks(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    a: PathArgs,
) -> Result<Backlinks, VaultError> {
    let access = &ctx.caller.access;
    access.check_read(&a.path)?;
    let backlinks = scoped::readable(access, vault.backlinks(&a.path)?);
    Ok(Backlinks {
        path: a.path,
        backlinks,
    })
}

#[derive(Debug, Serialize, JsonSchema)]
struct Links {
    path: String,
    links: Vec<OutgoingLink>,
}

/// A link to a note the token may not read is shown without `resolved`, as a broken link is:
/// the token learns nothing about notes outside its folders.
fn get_links(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    a: PathArgs,
) -> Result<Links, VaultError> {
    let access = &ctx.caller.access;
    access.check_read(&a.path)?;
    let mut links = vault.links(&a.path)?;
    for link in &mut links {
        let readable = link
            .resolved
            .as_deref()
            .is_some_and(|p| crate::note::NotePath::parse(p).is_ok_and(|p| access.allows_read(&p)));
        if !readable {
            link.resolved = None;
        }
    }
    Ok(Links {
        path: a.path,
        links,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
struct NoArgs {}

#[derive(Debug, Serialize, JsonSchema)]
struct Rebuilt {
    /// Notes read and indexed.
    indexed: usize,
    /// Files skipped (not UTF-8, broken frontmatter, too large); see the server log.
    skipped: usize,
}

fn rebuild_index(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    _: NoArgs,
) -> Result<Rebuilt, VaultError> {
    scoped::require_whole_vault_write(&ctx.caller.access)?;
    // A long job: other users' work gets a thread of its own meanwhile.
    let report = crate::pool::blocking(|| {
        vault.rebuild(&mut |done, total| {
            ctx.progress(done as u64, Some(total as u64), Some("indexing notes"));
            !ctx.is_cancelled()
        })
    })?;
    ctx.log(
        LogLevel::Info,
        json!(format!(
            "index rebuilt: {} notes, {} skipped",
            report.indexed, report.skipped
        )),
    );
    Ok(Rebuilt {
        indexed: report.indexed,
        skipped: report.skipped,
    })
}

#[derive(Debug, Serialize, JsonSchema)]
struct TagSuggestions {
    path: String,
    /// Suggested tags, lower case, without '#'.
    suggested: Vec<String>,
    /// Which model produced them, as the client reported it.
    model: Option<String>,
}

fn suggest_tags(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    a: PathArgs,
) -> Result<TagSuggestions, VaultError> {
    if !ctx.client_can("sampling") {
        return Err(VaultError::ClientRequest(
            "suggest_tags needs a client that supports sampling (it asks the client's model)"
                .into(),
        ));
    }
    let (request, path, _) = tag_request(vault, &ctx.caller.access, &a.path)?;
    let answer = ctx.ask_client("sampling/createMessage", request)?;
    Ok(suggestions(path, &answer))
}

/// The `sampling/createMessage` params `suggest_tags` asks the client's model with, for the
/// note at `path`, with the note's path and version they were built from.
pub fn tag_request(
    vault: &mut Vault,
    access: &crate::caller::Access,
    path: &str,
) -> Result<(Value, String, u64), VaultError> {
    access.check_read(path)?;
    let note = vault.read(path)?;
    let known: Vec<String> = scoped::tags(vault, access)?
        .into_iter()
        .take(50)
        .map(|t| t.tag)
        .collect();
    let excerpt: String = note.body.chars().take(4000).collect();
    let request = json!({
        "messages": [{
            "role": "user",
            "content": { "type": "text", "text": format!(
                "Suggest up to 5 tags for this note. Prefer these existing tags when they fit: {}.\n\
                 Answer with the tags only, separated by commas.\n\nTitle: {}\n\n{}",
                known.join(", "), note.title, excerpt) },
        }],
        "systemPrompt": "You label markdown notes with short lowercase tags.",
        "maxTokens": 100,
    });
    Ok((request, note.path, note.version))
}

/// `suggest_tags`' `tools/call` result for the note at `path`, from the model's `answer` (a
/// `sampling/createMessage` result): the same as when the tool asks the client itself.
pub fn tag_suggestions(path: &str, answer: &Value) -> Result<Value, VaultError> {
    let out = suggestions(path.to_string(), answer);
    let json_error = |e: serde_json::Error| VaultError::Io(std::io::Error::other(e));
    let text = serde_json::to_string(&out).map_err(json_error)?;
    let structured = serde_json::to_value(out).map_err(json_error)?;
    Ok(super::tool::result_with_text(structured, text))
}

fn suggestions(path: String, answer: &Value) -> TagSuggestions {
    let text = answer
        .pointer("/content/text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut suggested: Vec<String> = Vec::new();
    for tag in text.split([',', '\n']) {
        let tag = tag
            .trim()
            .trim_start_matches('#')
            .to_lowercase()
            .replace(' ', "-");
        if !tag.is_empty() && !suggested.contains(&tag) {
            suggested.push(tag);
        }
    }
    TagSuggestions {
        path,
        suggested,
        model: answer
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

#[derive(Debug, Serialize, JsonSchema)]
struct Tags {
    tags: Vec<TagCount>,
}

fn get_tags(vault: &mut Vault, ctx: &RequestContext<'_>, _: NoArgs) -> Result<Tags, VaultError> {
    Ok(Tags {
        tags: scoped::tags(vault, &ctx.caller.access)?,
    })
}

fn vault_info(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    _: NoArgs,
) -> Result<VaultInfo, VaultError> {
    scoped::require_whole_vault_read(&ctx.caller.access)?;
    vault.info(ctx.sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_object_schemas_and_the_seed_names() {
        let names: Vec<_> = catalog().iter().map(|t| t.name).collect();
        for seed in [
            "list_notes",
            "read_note",
            "write_note",
            "delete_note",
            "search_notes",
            "get_backlinks",
            "get_tags",
        ] {
            assert!(names.contains(&seed), "{seed}");
        }
        for t in catalog() {
            let d = t.describe();
            assert_eq!(d["inputSchema"]["type"], "object", "{}", t.name);
            if !t.name.starts_with("test_") && t.name != "json_schema_2020_12_tool" {
                assert_eq!(d["outputSchema"]["type"], "object", "{}", t.name);
            }
        }
        let described =
            serde_json::to_string(&catalog().iter().map(Tool::describe).collect::<Vec<_>>())
                .unwrap();
        assert!(
            !described.contains("uint"),
            "no Rust integer formats leak into schemas"
        );
        let read = find("read_note").unwrap().describe();
        let branches = read["outputSchema"]["anyOf"].as_array().unwrap();
        assert!(branches[0]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("body")));
        assert_eq!(branches[1]["required"], json!(["code", "message"]));
        let write = find("write_note").unwrap().describe();
        let required = write["inputSchema"]["required"].as_array().unwrap();
        assert!(required.contains(&json!("path")) && required.contains(&json!("body")));
        assert_eq!(
            write["inputSchema"]["properties"]["metadata"]["type"],
            json!(["object", "null"])
        );
    }
}
