//! The tool catalog: every MCP tool is one entry here — name, description, argument type (its
//! JSON Schema derived with `schemars`), result type, annotations and handler. Adding a tool is
//! adding one entry and one handler.

use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::context::RequestContext;
use crate::error::VaultError;
use crate::index::{ListedNote, OutgoingLink, SearchHit, TagCount};
use crate::session::LogLevel;
use crate::vault::usage::VaultInfo;
use crate::vault::{Deleted, Note, NotePage, Vault, WriteRequest, Written};

/// What a tool does to the vault, for scopes and the MCP annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Only reads.
    Read,
    /// Creates or replaces content; repeating the same call gives the same note.
    Write,
    /// Removes content.
    Destroy,
    /// Changes derived data only (the index), never a note; needs write rights.
    Maintain,
}

type Handler =
    Box<dyn Fn(&mut Vault, &RequestContext<'_>, Value) -> Result<Value, VaultError> + Send + Sync>;

/// One entry of the catalog.
pub struct Tool {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub effect: Effect,
    input_schema: Value,
    /// Absent only for test fixtures whose results are content, not data.
    output_schema: Option<Value>,
    run: Handler,
}

impl Tool {
    /// The tool as `tools/list` describes it.
    pub fn describe(&self) -> Value {
        let mut d = json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.effect == Effect::Read,
                "destructiveHint": self.effect == Effect::Destroy,
                "idempotentHint": self.effect != Effect::Destroy,
                "openWorldHint": false,
            },
        });
        if let Some(schema) = &self.output_schema {
            d["outputSchema"] = schema.clone();
        }
        d
    }

    /// Run the tool for the request's caller and return its `tools/call` result; a failure of
    /// the tool itself (bad path, not found, ...) is a `VaultError`, which the caller turns
    /// into an `isError` result.
    pub fn call(
        &self,
        vault: &mut Vault,
        ctx: &RequestContext<'_>,
        args: Value,
    ) -> Result<Value, VaultError> {
        let caller = ctx.caller;
        match self.effect {
            Effect::Read if !caller.can_read => {
                return Err(VaultError::InsufficientScope(
                    "read notes (needs notes:read)",
                ))
            }
            Effect::Write | Effect::Destroy | Effect::Maintain if !caller.can_write => {
                return Err(VaultError::InsufficientScope(
                    "change notes (needs notes:write)",
                ))
            }
            _ => {}
        }
        (self.run)(vault, ctx, args)
    }
}

/// A `tools/call` result for a successful tool: structured content plus its JSON as text, for
/// clients that only read text.
pub fn success_result(structured: Value) -> Value {
    let text = structured.to_string();
    result_with_text(structured, text)
}

/// [`success_result`] when the JSON text is already at hand.
fn result_with_text(structured: Value, text: String) -> Value {
    json!({
        "content": [{ "type": "text", "text": text }],
        "structuredContent": structured,
        "isError": false,
    })
}

/// A `tools/call` result for a failed tool: a message a model can act on and a stable code.
pub fn error_result(err: &VaultError) -> Value {
    json!({
        "content": [{ "type": "text", "text": err.to_string() }],
        "structuredContent": err.details(),
        "isError": true,
    })
}

fn schema_of<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut schema =
        serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap_or(json!({}));
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
        obj.entry("type").or_insert(json!("object"));
        obj.entry("properties").or_insert(json!({}));
    }
    drop_rust_formats(&mut schema);
    schema
}

/// `schemars` names Rust integer widths as `format` (`uint64`, `int32`, ...), which JSON Schema
/// does not know and validators warn about; an unsigned width becomes `minimum: 0` instead.
fn drop_rust_formats(schema: &mut Value) {
    match schema {
        Value::Object(obj) => {
            if let Some(Value::String(f)) = obj.get("format") {
                if f.starts_with("uint") || f.starts_with("int") || f == "double" || f == "float" {
                    let unsigned = f.starts_with("uint");
                    obj.remove("format");
                    if unsigned {
                        obj.entry("minimum").or_insert(json!(0));
                    }
                }
            }
            obj.values_mut().for_each(drop_rust_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_rust_formats),
        _ => {}
    }
}

/// The output schema of a tool: its success shape, or the error shape every tool shares
/// (`isError` results carry `{code, message, ...}` as structured content, and clients check
/// those against the schema too).
fn output_schema_of<T: JsonSchema>() -> Value {
    json!({
        "type": "object",
        "anyOf": [
            schema_of::<T>(),
            {
                "type": "object",
                "properties": {
                    "code": { "type": "string", "description": "stable error code, e.g. not_found" },
                    "message": { "type": "string" },
                },
                "required": ["code", "message"],
            },
        ],
    })
}

fn tool<A, O>(
    name: &'static str,
    title: &'static str,
    description: &'static str,
    effect: Effect,
    handler: fn(&mut Vault, &RequestContext<'_>, A) -> Result<O, VaultError>,
) -> Tool
where
    A: DeserializeOwned + JsonSchema + 'static,
    O: Serialize + JsonSchema + 'static,
{
    Tool {
        name,
        title,
        description,
        effect,
        input_schema: schema_of::<A>(),
        output_schema: Some(output_schema_of::<O>()),
        run: Box::new(move |vault, ctx, args| {
            let args: A = serde_json::from_value(args)
                .map_err(|e| VaultError::InvalidArguments(format!("{name}: {e}")))?;
            let out = handler(vault, ctx, args)?;
            let json_error = |e: serde_json::Error| VaultError::Io(std::io::Error::other(e));
            // The text straight from the struct (fields in the same order as the structured
            // value): one pass over a note body fewer than printing the value.
            let text = serde_json::to_string(&out).map_err(json_error)?;
            let structured = serde_json::to_value(out).map_err(json_error)?;
            Ok(result_with_text(structured, text))
        }),
    }
}

/// A tool whose handler builds its whole `tools/call` result (content items of any kind).
#[cfg(feature = "conformance")]
pub(crate) fn content_tool(
    name: &'static str,
    description: &'static str,
    input_schema: Value,
    run: fn(&RequestContext<'_>, Value) -> Result<Value, VaultError>,
) -> Tool {
    Tool {
        name,
        title: name,
        description,
        effect: Effect::Read,
        input_schema,
        output_schema: None,
        run: Box::new(move |_vault, ctx, args| run(ctx, args)),
    }
}

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
                "rebuild_index",
                "Rebuild the search index",
                "Re-read every note file and rebuild the search index, links and tags from them \
                 (note versions are kept). Needed only after editing files outside the server \
                 while it runs. Reports progress; can be cancelled, which keeps the old index.",
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
                 quota_exceeded), the index's health and when a note last changed.",
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
    _ctx: &RequestContext<'_>,
    a: ListNotesArgs,
) -> Result<NotePage, VaultError> {
    let limit = check_limit(a.limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)?;
    if a.recursive == Some(false) {
        vault.list_folder(a.folder.as_deref(), a.cursor.as_deref(), limit)
    } else {
        vault.list(a.folder.as_deref(), a.cursor.as_deref(), limit)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
struct PathArgs {
    /// Note path relative to the vault, ending in .md, e.g. `projects/plan.md`.
    path: String,
}

fn read_note(
    vault: &mut Vault,
    _ctx: &RequestContext<'_>,
    a: PathArgs,
) -> Result<Note, VaultError> {
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
    _ctx: &RequestContext<'_>,
    a: SearchNotesArgs,
) -> Result<SearchResults, VaultError> {
    let limit = check_limit(a.limit, DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT)?;
    let results = vault.search(
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
    _ctx: &RequestContext<'_>,
    a: PathArgs,
) -> Result<Backlinks, VaultError> {
    let backlinks = vault.backlinks(&a.path)?;
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

fn get_links(
    vault: &mut Vault,
    _ctx: &RequestContext<'_>,
    a: PathArgs,
) -> Result<Links, VaultError> {
    let links = vault.links(&a.path)?;
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
    let note = vault.read(&a.path)?;
    let known: Vec<String> = vault.tags()?.into_iter().take(50).map(|t| t.tag).collect();
    let excerpt: String = note.body.chars().take(4000).collect();
    let answer = ctx.ask_client(
        "sampling/createMessage",
        json!({
            "messages": [{
                "role": "user",
                "content": { "type": "text", "text": format!(
                    "Suggest up to 5 tags for this note. Prefer these existing tags when they fit: {}.\n\
                     Answer with the tags only, separated by commas.\n\nTitle: {}\n\n{}",
                    known.join(", "), note.title, excerpt) },
            }],
            "systemPrompt": "You label markdown notes with short lowercase tags.",
            "maxTokens": 100,
        }),
    )?;
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
    Ok(TagSuggestions {
        path: note.path,
        suggested,
        model: answer
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

#[derive(Debug, Serialize, JsonSchema)]
struct Tags {
    tags: Vec<TagCount>,
}

fn get_tags(vault: &mut Vault, _ctx: &RequestContext<'_>, _: NoArgs) -> Result<Tags, VaultError> {
    Ok(Tags {
        tags: vault.tags()?,
    })
}

fn vault_info(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    _: NoArgs,
) -> Result<VaultInfo, VaultError> {
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
