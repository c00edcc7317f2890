//! The web app's only way to the data: a tool call through the supervisor to the user's actor,
//! exactly as an MCP client makes it, so the browser and MCP sessions see (and are notified of)
//! the same changes. Also the one place where a failed call becomes an HTTP status.

use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use vault_actors::ActorError;
use vault_actors::Caller;

use crate::http::AppState;

/// Why a tool call produced no usable answer.
#[derive(Debug)]
pub enum Failure {
    /// The tool refused (`isError`): its stable code and message, and the whole
    /// `structuredContent` (a conflict carries the versions there).
    Tool {
        code: String,
        message: String,
        details: Value,
    },
    /// The user's actor could not answer (restarting, crash loop, storage).
    Actor(ActorError),
    /// The tool answered something this module cannot read: a mismatch between the two sides.
    Unexpected,
}

impl Failure {
    /// The HTTP status this failure is answered with, on a page or in the JSON API.
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::Tool { code, .. } => status_for_code(code),
            Failure::Actor(ActorError::Restarted | ActorError::CrashLoop { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Failure::Actor(_) | Failure::Unexpected => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine code shown to scripts (`{code, message}` bodies).
    pub fn code(&self) -> &str {
        match self {
            Failure::Tool { code, .. } => code,
            Failure::Actor(ActorError::Restarted | ActorError::CrashLoop { .. }) => "unavailable",
            Failure::Actor(_) => "storage_error",
            Failure::Unexpected => "internal_error",
        }
    }

    /// A sentence for a person.
    pub fn message(&self) -> String {
        match self {
            Failure::Tool { message, .. } => message.clone(),
            Failure::Actor(e) => e.to_string(),
            Failure::Unexpected => "the server could not read its own answer".to_string(),
        }
    }

    /// Seconds after which a retry makes sense, for a `Retry-After` header.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Failure::Actor(ActorError::Restarted) => Some(1),
            Failure::Actor(ActorError::CrashLoop { retry_after_secs }) => Some(*retry_after_secs),
            _ => None,
        }
    }

    pub fn is(&self, wanted: &str) -> bool {
        matches!(self, Failure::Tool { code, .. } if code == wanted)
    }
}

/// The HTTP status of a tool's error code: the single mapping for pages and the JSON API.
pub fn status_for_code(code: &str) -> StatusCode {
    match code {
        "not_found" => StatusCode::NOT_FOUND,
        "conflict" | "declined" => StatusCode::CONFLICT,
        "invalid_path"
        | "invalid_arguments"
        | "invalid_frontmatter"
        | "invalid_query"
        | "invalid_uri" => StatusCode::BAD_REQUEST,
        "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "insufficient_scope" | "quota_exceeded" => StatusCode::FORBIDDEN,
        "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        "client_request_failed" => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Call `tool` for `caller` and read its `structuredContent` as `T`.
pub async fn call<T: DeserializeOwned>(
    state: &AppState,
    caller: &Caller,
    tool: &str,
    args: Value,
) -> Result<T, Failure> {
    let structured = call_value(state, caller, tool, args).await?;
    serde_json::from_value(structured).map_err(|e| {
        tracing::error!(tool, error = %e, "unexpected tool answer");
        Failure::Unexpected
    })
}

/// Call `tool` for `caller`; its `structuredContent` as JSON.
pub async fn call_value(
    state: &AppState,
    caller: &Caller,
    tool: &str,
    args: Value,
) -> Result<Value, Failure> {
    let result = state
        .supervisor
        .call_tool(caller, tool, args)
        .await
        .map_err(|e| {
            if let ActorError::Storage(reason) = &e {
                tracing::error!(tool, error = %reason, "user storage failed");
            }
            Failure::Actor(e)
        })?;
    read_result(result)
}

/// Split a `tools/call` result into its structured answer or its failure.
fn read_result(mut result: Value) -> Result<Value, Failure> {
    let is_error = result.get("isError").and_then(Value::as_bool) == Some(true);
    let structured = result
        .get_mut("structuredContent")
        .map(Value::take)
        .unwrap_or(Value::Null);
    if !is_error {
        return Ok(structured);
    }
    let text = |key: &str| {
        structured
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Err(Failure::Tool {
        code: text("code").unwrap_or_else(|| "internal_error".to_string()),
        message: text("message").unwrap_or_else(|| "the tool failed".to_string()),
        details: structured,
    })
}

/// A note as `read_note` answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct NoteView {
    pub path: String,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub version: u64,
    #[serde(default)]
    pub updated: Option<String>,
}

/// One row of a listing, or a backlink.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedNote {
    pub path: String,
    pub title: String,
    #[serde(default)]
    pub updated: Option<String>,
}

/// A direct subfolder and how many notes it holds.
#[derive(Debug, Clone, Deserialize)]
pub struct FolderCount {
    pub path: String,
    pub notes: u64,
}

/// One page of `list_notes` with `recursive: false`.
#[derive(Debug, Clone, Deserialize)]
pub struct FolderPage {
    pub notes: Vec<ListedNote>,
    #[serde(default)]
    pub folders: Vec<FolderCount>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// One search result.
#[derive(Debug, Clone, Deserialize)]
pub struct SearchHit {
    pub path: String,
    pub title: String,
    /// The matched text with `<mark>`s, otherwise raw note text: sanitized before display.
    pub snippet: String,
    #[serde(default)]
    pub updated: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SearchResults {
    pub results: Vec<SearchHit>,
}

#[derive(Debug, Deserialize)]
pub struct Backlinks {
    pub backlinks: Vec<ListedNote>,
}

/// One `[[link]]` of a note.
#[derive(Debug, Deserialize)]
pub struct OutgoingLink {
    pub target: String,
    #[serde(default)]
    pub resolved: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Links {
    pub links: Vec<OutgoingLink>,
}

/// A quota and its use, as `vault_info` reports it.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct QuotaUse {
    pub max: u64,
    pub used: u64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Quotas {
    pub notes_per_vault: QuotaUse,
    pub vault_bytes: QuotaUse,
    pub sessions_per_user: QuotaUse,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct IndexHealth {
    pub healthy: bool,
}

/// What the account page shows of `vault_info`.
#[derive(Debug, Clone, Deserialize)]
pub struct VaultUsage {
    pub quota: Quotas,
    pub index: IndexHealth,
    #[serde(default)]
    pub last_change: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_errors_keep_code_message_and_details() {
        let failure = read_result(json!({
            "content": [{"type": "text", "text": "conflict"}],
            "structuredContent": {"code": "conflict", "message": "m", "current_version": 4},
            "isError": true
        }))
        .unwrap_err();
        assert_eq!(failure.status(), StatusCode::CONFLICT);
        assert_eq!(failure.code(), "conflict");
        let Failure::Tool { details, .. } = failure else {
            panic!("a tool failure")
        };
        assert_eq!(details["current_version"], 4);
    }

    #[test]
    fn error_codes_map_to_statuses() {
        assert_eq!(status_for_code("not_found"), StatusCode::NOT_FOUND);
        assert_eq!(status_for_code("invalid_path"), StatusCode::BAD_REQUEST);
        assert_eq!(status_for_code("too_large"), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status_for_code("insufficient_scope"), StatusCode::FORBIDDEN);
        assert_eq!(status_for_code("quota_exceeded"), StatusCode::FORBIDDEN);
        assert_eq!(
            status_for_code("io_error"),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            Failure::Actor(ActorError::Restarted).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(Failure::Actor(ActorError::Restarted).retry_after(), Some(1));
    }

    #[test]
    fn successful_results_give_the_structured_content() {
        let value = read_result(json!({
            "content": [], "structuredContent": {"path": "a.md"}, "isError": false
        }))
        .unwrap();
        assert_eq!(value["path"], "a.md");
    }
}
