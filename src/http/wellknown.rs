//! OAuth 2.0 Protected Resource Metadata (RFC 9728) for the MCP endpoint, so a client that got a
//! 401 can learn how tokens for this server are obtained: from this server's own authorization
//! server.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

pub async fn protected_resource(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "resource": format!("{}/mcp", state.public_url),
        "resource_name": "vault-mcp",
        "authorization_servers": [state.public_url.as_ref()],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["notes:read", "notes:write"],
        "resource_documentation": format!("{}/", state.public_url),
    }))
}
