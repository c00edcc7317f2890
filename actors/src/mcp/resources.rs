//! Notes as MCP resources: `note:///<path>` URIs, listed a page at a time, read as markdown,
//! and subscribable (changes are pushed by the user actor through the hub).

use serde_json::{json, Value};

use super::jsonrpc::RpcError;
use crate::error::VaultError;
use crate::vault::Vault;

pub const SCHEME: &str = "note:///";
/// Resources per `resources/list` page.
const PAGE: usize = 100;
/// JSON-RPC error code the MCP spec gives for an unknown resource.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// The URI of the note at `path`; characters outside the URI grammar are percent-encoded.
pub fn note_uri(path: &str) -> String {
    let mut out = String::with_capacity(SCHEME.len() + path.len());
    out.push_str(SCHEME);
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The note path named by a `note:///` URI.
pub fn path_of(uri: &str) -> Result<String, VaultError> {
    let rest = uri
        .strip_prefix(SCHEME)
        .ok_or_else(|| VaultError::InvalidUri(format!("{uri:?} is not a note:/// URI")))?;
    let mut bytes = Vec::with_capacity(rest.len());
    let raw = rest.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| VaultError::InvalidUri(format!("bad percent-escape in {uri:?}")))?;
            bytes.push(hex);
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).map_err(|_| VaultError::InvalidUri(format!("{uri:?} is not UTF-8")))
}

fn rpc(err: VaultError) -> RpcError {
    match err {
        VaultError::NotFound(p) => RpcError::new(
            RESOURCE_NOT_FOUND,
            format!("resource not found: {}", note_uri(&p)),
        )
        .with_data(json!({ "uri": note_uri(&p) })),
        VaultError::Io(_) | VaultError::Index(_) => {
            RpcError::new(super::jsonrpc::INTERNAL_ERROR, err.to_string())
        }
        other => RpcError::invalid_params(other.to_string()),
    }
}

/// `resources/list`: notes by path, a page at a time.
pub fn list(vault: &Vault, cursor: Option<&str>) -> Result<Value, RpcError> {
    let page = vault.list(None, cursor, PAGE).map_err(rpc)?;
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
pub fn read(vault: &mut Vault, uri: &str) -> Result<Value, RpcError> {
    #[cfg(feature = "conformance")]
    if let Some(fixture) = super::fixtures::read_resource(uri) {
        return Ok(fixture);
    }
    let path = path_of(uri).map_err(rpc)?;
    let note = vault.read(&path).map_err(rpc)?;
    let text = crate::vault::markdown::render(&note.metadata, &note.body);
    Ok(json!({ "contents": [{ "uri": uri, "mimeType": "text/markdown", "text": text }] }))
}

/// Check that `uri` names a note path (it need not exist yet to be subscribed to).
pub fn check_uri(uri: &str) -> Result<(), RpcError> {
    #[cfg(feature = "conformance")]
    if uri.starts_with("test://") {
        return Ok(());
    }
    let path = path_of(uri).map_err(rpc)?;
    crate::vault::paths::NotePath::parse(&path).map_err(rpc)?;
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
