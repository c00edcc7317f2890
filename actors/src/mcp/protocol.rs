//! Protocol revisions and the server's self-description in `initialize`.

use serde_json::{json, Value};

/// Handshake revisions this server speaks, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
/// The revision assumed when a request carries no `MCP-Protocol-Version` header.
pub const DEFAULT_HEADER_VERSION: &str = "2025-03-26";
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
        "serverInfo": {
            "name": "vault-mcp",
            "title": "vault-mcp notes",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": "A private vault of markdown notes (YAML frontmatter, [[wikilinks]], #tags). \
            Paths are relative and end in .md, e.g. `projects/plan.md`. Use search_notes to find \
            notes, read_note before editing, and pass if_version from a read to write_note or \
            delete_note to avoid overwriting someone else's change.",
    })
}

/// The answer to a stateless-revision `server/discover` probe: "unsupported version", naming
/// only handshake revisions, which tells a newer client to fall back to `initialize` at once.
pub fn discover_fallback(requested: &str) -> super::jsonrpc::RpcError {
    super::jsonrpc::RpcError::new(
        super::jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
        "this server speaks the initialize handshake; use one of the supported versions",
    )
    .with_data(json!({ "supported": SUPPORTED_VERSIONS, "requested": requested }))
}
