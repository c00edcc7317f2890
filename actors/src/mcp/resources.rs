//! Notes as MCP resources: `note:///<path>` URIs, listed a page at a time, read as markdown,
//! and subscribable (changes are pushed by the user actor through the hub).
//!
//! A folder-scoped token lists only the notes it may read; reading or subscribing to a note
//! outside its folders is refused with `insufficient_scope`.

use serde_json::{json, Value};

use super::jsonrpc::RpcError;
use super::scoped;
use crate::caller::Access;
use crate::error::VaultError;
pub use crate::note::uri::{note_uri, path_of, SCHEME};
use crate::vault::Vault;

/// Resources per `resources/list` page.
const PAGE: usize = 100;
/// JSON-RPC error code the MCP spec gives for an unknown resource.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

fn rpc(err: VaultError) -> RpcError {
    match err {
        VaultError::NotFound(p) => RpcError::new(
            RESOURCE_NOT_FOUND,
            format!("resource not found: {}", note_uri(&p)),
        )
        .with_data(json!({ "uri": note_uri(&p) })),
        VaultError::InsufficientScope(_) => scoped::rpc_error(&err),
        VaultError::Io(_) | VaultError::Index(_) => {
            RpcError::new(super::jsonrpc::INTERNAL_ERROR, err.to_string())
        }
        other => RpcError::invalid_params(other.to_string()),
    }
}

/// `resources/list`: the notes the token may read, by path, a page at a time.
pub fn list(vault: &Vault, access: &Access, cursor: Option<&str>) -> Result<Value, RpcError> {
    scoped::require_read(access).map_err(rpc)?;
    let page = scoped::list(vault, access, None, cursor, PAGE).map_err(rpc)?;
    let resources: Vec<Value> = page
        .notes
        .iter()
        .map(|n| {
            json!({
                "uri": note_uri(&n.path),
                "name": n.path,
                "title": n.title,
                "mimeType": "text/markdown",
                "size": n.size,
            })
        })
        .collect();
    let mut out = json!({ "resources": resources });
    if let Some(next) = page.next_cursor {
        out["nextCursor"] = json!(next);
    }
    Ok(out)
}

/// `resources/templates/list`.
pub fn templates() -> Value {
    json!({ "resourceTemplates": [{
        "uriTemplate": "note:///{path}",
        "name": "note",
        "title": "Note by path",
        "description": "A markdown note of the vault; path is relative and ends in .md",
        "mimeType": "text/markdown",
    }]})
}

/// `resources/read`: the note file as markdown, frontmatter included.
pub fn read(vault: &mut Vault, access: &Access, uri: &str) -> Result<Value, RpcError> {
    scoped::require_read(access).map_err(rpc)?;
    #[cfg(feature = "conformance")]
    if let Some(fixture) = super::fixtures::read_resource(uri) {
        return Ok(fixture);
    }
    let path = path_of(uri).map_err(rpc)?;
    access.check_read(&path).map_err(rpc)?;
    let note = vault.read(&path).map_err(rpc)?;
    let text = crate::vault::frontmatter::render(&note.metadata, &note.body);
    Ok(json!({ "contents": [{ "uri": uri, "mimeType": "text/markdown", "text": text }] }))
}

/// Check that `uri` names a note path the token may read (it need not exist yet to be
/// subscribed to).
pub fn check_uri(access: &Access, uri: &str) -> Result<(), RpcError> {
    scoped::require_read(access).map_err(rpc)?;
    #[cfg(feature = "conformance")]
    if uri.starts_with("test://") {
        return Ok(());
    }
    let path = path_of(uri).map_err(rpc)?;
    access.check_read(&path).map_err(rpc)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_any_path() {
        for p in ["a.md", "folder/sub note.md", "日本/メモ.md", "100%/x#y?.md"] {
            let uri = note_uri(p);
            assert!(uri.starts_with(SCHEME) && !uri[SCHEME.len()..].contains(' '));
            assert_eq!(path_of(&uri).unwrap(), p);
        }
        assert!(path_of("file:///etc/passwd").is_err());
        assert!(path_of("note:///%zz.md").is_err());
    }
}
