//! `completion/complete`: note paths and tags as the user types a prompt argument or fills in
//! the `note:///{path}` template. Only what the token may read is completed: a folder-scoped
//! token sees the paths inside its folders and the tags of those notes.

use serde_json::{json, Value};

use super::jsonrpc::RpcError;
use super::scoped;
use crate::caller::Access;
use crate::vault::Vault;

/// The spec caps a completion answer at 100 values.
const MAX_VALUES: usize = 100;

pub fn complete(vault: &Vault, access: &Access, params: &Value) -> Result<Value, RpcError> {
    scoped::require_read(access).map_err(|e| scoped::rpc_error(&e))?;
    let kind = params.pointer("/ref/type").and_then(Value::as_str);
    let target = params
        .pointer("/ref/name")
        .or_else(|| params.pointer("/ref/uri"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let argument = params
        .pointer("/argument/name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("completion/complete needs argument.name"))?;
    let value = params
        .pointer("/argument/value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let storage =
        |e: crate::VaultError| RpcError::new(super::jsonrpc::INTERNAL_ERROR, e.to_string());
    let (values, total) = match (kind, target, argument) {
        (Some("ref/prompt"), "summarize_note", "path")
        | (Some("ref/resource"), "note:///{path}", "path") => {
            scoped::complete_paths(vault, access, value, MAX_VALUES).map_err(storage)?
        }
        (Some("ref/prompt"), "notes_about", "tag") => {
            scoped::complete_tags(vault, access, value, MAX_VALUES).map_err(storage)?
        }
        (Some("ref/prompt" | "ref/resource"), _, _) => (Vec::new(), 0),
        _ => {
            return Err(RpcError::invalid_params(
                "ref.type must be ref/prompt or ref/resource",
            ))
        }
    };
    Ok(json!({ "completion": {
        "values": values,
        "total": total,
        "hasMore": total > values.len(),
    }}))
}
