//! The domain error of a vault operation, with the stable machine `code` every client sees.
//!
//! A tool call that fails for one of these reasons is answered with a tool result carrying
//! `isError: true` and `structuredContent.code`; the mapping lives in `mcp::tools`.

use serde_json::{json, Value};

use crate::settings::Quotas;

/// Why a vault operation failed. Every variant has a stable [`VaultError::code`].
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("note {0:?} does not exist")]
    NotFound(String),
    #[error(
        "version conflict on {path:?}: expected version {expected}, current version is {current}"
    )]
    Conflict {
        path: String,
        expected: u64,
        current: u64,
    },
    #[error("{what} is {actual} bytes, over the limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        actual: usize,
        limit: usize,
    },
    #[error("invalid frontmatter: {0}")]
    InvalidFrontmatter(String),
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("invalid search query: {0}")]
    InvalidQuery(String),
    #[error("this token may not {0}")]
    InsufficientScope(&'static str),
    #[error("the request was cancelled by the client")]
    Cancelled,
    #[error("{0}")]
    Declined(String),
    #[error("{0}")]
    ClientRequest(String),
    #[error("{0}")]
    InvalidUri(String),
    /// A quota (see `settings::Quotas`) would be exceeded; nothing was changed.
    #[error("quota exceeded: {limit} is {max} and {}", quota_usage(.limit, .max, .current))]
    QuotaExceeded {
        /// Which limit, e.g. `notes_per_vault`.
        limit: &'static str,
        max: u64,
        /// What is in use now, before the refused change.
        current: u64,
    },
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("index failed: {0}")]
    Index(#[from] rusqlite::Error),
}

impl VaultError {
    /// The stable machine-readable code, part of the public contract of every tool.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::InvalidPath { .. } => "invalid_path",
            VaultError::NotFound(_) => "not_found",
            VaultError::Conflict { .. } => "conflict",
            VaultError::TooLarge { .. } => "too_large",
            VaultError::InvalidFrontmatter(_) => "invalid_frontmatter",
            VaultError::InvalidArguments(_) => "invalid_arguments",
            VaultError::InvalidQuery(_) => "invalid_query",
            VaultError::InsufficientScope(_) => "insufficient_scope",
            VaultError::Cancelled => "cancelled",
            VaultError::Declined(_) => "declined",
            VaultError::ClientRequest(_) => "client_request_failed",
            VaultError::InvalidUri(_) => "invalid_uri",
            VaultError::QuotaExceeded { .. } => "quota_exceeded",
            VaultError::Io(_) => "io_error",
            VaultError::Index(_) => "index_error",
        }
    }

    /// Machine-readable details beside the code, so a client can act without parsing prose.
    pub fn details(&self) -> Value {
        let mut out = json!({ "code": self.code(), "message": self.to_string() });
        match self {
            VaultError::InvalidPath { path, .. } | VaultError::NotFound(path) => {
                out["path"] = json!(path);
            }
            VaultError::Conflict {
                path,
                expected,
                current,
            } => {
                out["path"] = json!(path);
                out["expected_version"] = json!(expected);
                out["current_version"] = json!(current);
            }
            VaultError::TooLarge { limit, actual, .. } => {
                out["limit"] = json!(limit);
                out["actual"] = json!(actual);
            }
            VaultError::QuotaExceeded {
                limit,
                max,
                current,
            } => {
                out["limit"] = json!(limit);
                out["max"] = json!(max);
                out["current"] = json!(current);
            }
            _ => {}
        }
        out
    }

    pub(crate) fn invalid_path(path: &str, reason: impl Into<String>) -> Self {
        VaultError::InvalidPath {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

/// What a `quota_exceeded` message says is in use, and how to make room.
fn quota_usage(limit: &str, max: &u64, current: &u64) -> String {
    match limit {
        Quotas::NOTES_PER_VAULT => {
            format!("the vault has {current} notes; delete notes to make room")
        }
        Quotas::VAULT_BYTES => format!(
            "the vault holds {current} bytes ({} left), not enough for this write; delete or \
             shorten notes to make room",
            max.saturating_sub(*current)
        ),
        Quotas::SESSIONS_PER_USER => {
            format!("{current} sessions are open; end one (DELETE /mcp) or wait until one expires")
        }
        Quotas::TOKENS_PER_USER => format!("{current} tokens are active; revoke one to make room"),
        _ => format!("{current} are in use"),
    }
}
