//! Protocol revisions, the refusal of an unsupported one, and the server's self-description in
//! `initialize`.

use serde_json::{json, Value};

use super::jsonrpc::RpcError;

/// Handshake revisions this server speaks, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
/// The revision assumed when a request carries no `MCP-Protocol-Version` header.
pub const DEFAULT_HEADER_VERSION: &str = "2025-03-26";
/// The stateless revision: no handshake, every request carries its version in `_meta`.
pub const STATELESS_VERSION: &str = "2026-07-28";
/// The only revision that allows JSON-RPC batches.
pub const BATCH_VERSION: &str = "2025-03-26";

pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

/// The client's version when we speak it, else our newest.
pub fn negotiate(requested: &str) -> &'static str {
    SUPPORTED_VERSIONS
        .iter()
        .copied()
        .find(|v| *v == requested)
        .unwrap_or(SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.len() - 1])
}

/// The `initialize` result for a negotiated `version`.
pub fn initialize_result(version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": { "listChanged": false },
            "resources": { "subscribe": true, "listChanged": true },
            "prompts": { "listChanged": false },
            "completions": {},
            "logging": {},
        },
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}

/// Who this server is, as `initialize` and every stateless result name it.
pub fn server_info() -> Value {
    json!({
        "name": "vault-mcp",
        "title": "vault-mcp notes",
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// How to use this server, for the client's model.
pub const INSTRUCTIONS: &str = "A private vault of markdown notes (YAML frontmatter, \
    [[wikilinks]], #tags). Paths are relative and end in .md, e.g. `projects/plan.md`. Use \
    search_notes to find notes, read_note before editing, and pass if_version from a read to \
    write_note or delete_note to avoid overwriting someone else's change.";

/// The answer to a `server/discover` probe that names no version in `_meta` (clients of the
/// revision's drafts): "unsupported version" with every revision this server speaks, so the
/// client either stamps its requests with the stateless revision or falls back to
/// `initialize` at once.
pub fn discover_fallback(requested: &str) -> super::jsonrpc::RpcError {
    let mut refusal = unsupported_version(requested);
    refusal.message = format!(
        "server/discover names no io.modelcontextprotocol/protocolVersion in params._meta; \
         stamp it with one of the supported versions, or send initialize for {}",
        SUPPORTED_VERSIONS.join(", ")
    );
    refusal
}

/// Every revision this server speaks, oldest first: the session ones, then the stateless one.
pub fn all_versions() -> Vec<&'static str> {
    let mut all = SUPPORTED_VERSIONS.to_vec();
    all.push(STATELESS_VERSION);
    all
}

/// The revision's `UnsupportedProtocolVersionError` for `requested`.
pub fn unsupported_version(requested: &str) -> RpcError {
    RpcError::new(
        super::jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
        format!("unsupported protocol version {requested:?}"),
    )
    .with_data(json!({ "supported": all_versions(), "requested": requested }))
}
