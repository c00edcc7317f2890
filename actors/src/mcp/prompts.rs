//! Prompts the server offers: ready-made requests that put vault content in front of the model.
//!
//! A prompt only ever shows notes the token may read: `summarize_note` of a note outside its
//! folders is refused with `insufficient_scope`, `notes_about` lists only readable notes.

use serde_json::{json, Value};

use super::jsonrpc::RpcError;
use super::resources::note_uri;
use super::scoped;
use crate::caller::Access;
use crate::error::VaultError;
use crate::vault::Vault;

/// `prompts/list`.
pub fn list() -> Value {
    #[allow(unused_mut)]
    let mut prompts = json!([
        {
            "name": "summarize_note",
            "title": "Summarize a note",
            "description": "Summarize one note in a few bullet points, with its open questions.",
            "arguments": [{ "name": "path", "description": "Note path, e.g. projects/plan.md", "required": true }],
        },
        {
            "name": "notes_about",
            "title": "Overview of a tag",
            "description": "Give an overview of every note carrying a tag and how they relate.",
            "arguments": [{ "name": "tag", "description": "A tag of the vault, without '#'", "required": true }],
        },
    ]);
    #[cfg(feature = "conformance")]
    if let Some(list) = prompts.as_array_mut() {
        list.extend(super::fixtures::prompt_list());
    }
    json!({ "prompts": prompts })
}

fn arg<'a>(params: &'a Value, name: &str) -> Result<&'a str, RpcError> {
    params
        .pointer(&format!("/arguments/{name}"))
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params(format!("missing argument {name:?}")))
}

fn vault_err(e: VaultError) -> RpcError {
    match e {
        VaultError::InsufficientScope(_) => scoped::rpc_error(&e),
        other => RpcError::invalid_params(other.to_string()),
    }
}

/// `prompts/get`.
pub fn get(vault: &mut Vault, access: &Access, params: &Value) -> Result<Value, RpcError> {
    scoped::require_read(access).map_err(vault_err)?;
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("prompts/get needs a name"))?;
    #[cfg(feature = "conformance")]
    if let Some(fixture) = super::fixtures::get_prompt(name, params) {
        return fixture;
    }
    match name {
        "summarize_note" => {
            let path = arg(params, "path")?;
            access.check_read(path).map_err(vault_err)?;
            let note = vault.read(path).map_err(vault_err)?;
            let text = crate::vault::frontmatter::render(&note.metadata, &note.body);
            Ok(json!({
                "description": format!("Summary of {}", note.path),
                "messages": [
                    { "role": "user", "content": { "type": "resource", "resource": {
                        "uri": note_uri(&note.path), "mimeType": "text/markdown", "text": text } } },
                    { "role": "user", "content": { "type": "text", "text":
                        "Summarize the note above in 3-5 bullet points, then list any open questions or next steps it mentions." } },
                ],
            }))
        }
        "notes_about" => {
            let tag = arg(params, "tag")?;
            let notes = scoped::notes_with_tag(vault, access, tag, 100).map_err(vault_err)?;
            let listing: Vec<String> = notes
                .iter()
                .map(|n| format!("- {} ({})", n.title, n.path))
                .collect();
            let text = if listing.is_empty() {
                format!("No note carries the tag #{tag}. Say so, and suggest related tags from get_tags.")
            } else {
                format!(
                    "These notes carry the tag #{tag}:\n{}\n\nRead them with read_note and give an overview: the main themes, how the notes relate, and what seems missing.",
                    listing.join("\n")
                )
            };
            Ok(json!({
                "description": format!("Notes tagged #{tag}"),
                "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
            }))
        }
        other => Err(RpcError::invalid_params(format!("unknown prompt: {other}"))),
    }
}
