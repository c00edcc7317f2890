//! The domain error of a vault operation, with the stable machine `code` every client sees.
//!
//! A tool call that fails for one of these reasons is answered with a tool result carrying
//! `isError: true` and `structuredContent.code`; the mapping lives in `mcp::tools`.

use serde_json::{json, Value};

use crate::quotas::Quotas;

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
    /// A quota (see `quotas::Quotas`) would be exceeded; nothing was changed.
    #[error("quota exceeded: {limit} is {max} and {}", quota_usage(.limit, .max, .current))]
    QuotaExceeded {
        /// Which limit, e.g. `notes_per_vault`.
        limit: &'static str,
        max: u64,
        /// What is in use now, before the refused change.
        current: u64,
    },
    /// One edit of an `edit_note` call could not be applied; nothing was changed.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// A move's destination is taken (a note or a folder); nothing was changed.
    #[error("{0:?} already exists; choose another destination")]
    AlreadyExists(String),
    /// `restore_note` found no kept version to restore.
    #[error("no history entry{} for {path:?}", .id.map(|i| format!(" {i}")).unwrap_or_default())]
    HistoryNotFound { path: String, id: Option<i64> },
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
            VaultError::Edit(e) => e.code(),
            VaultError::AlreadyExists(_) => "already_exists",
            VaultError::HistoryNotFound { .. } => "history_not_found",
            VaultError::Io(_) => "io_error",
            VaultError::Index(_) => "index_error",
        }
    }

    /// Machine-readable details beside the code, so a client can act without parsing prose.
    pub fn details(&self) -> Value {
        let mut out = json!({ "code": self.code(), "message": self.to_string() });
        match self {
            VaultError::InvalidPath { path, .. }
            | VaultError::NotFound(path)
            | VaultError::AlreadyExists(path)
            | VaultError::HistoryNotFound { path, .. } => {
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
            VaultError::Edit(e) => e.add_details(&mut out),
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

/// Why one edit of an `edit_note` call failed, and which one (its index in `edits`, from 0).
#[derive(Debug, thiserror::Error)]
#[error("edit {} ({op}) failed: {failure}; nothing was changed", .index + 1)]
pub struct EditError {
    pub index: usize,
    /// The operation's name, e.g. `replace`.
    pub op: &'static str,
    pub failure: EditFailure,
}

/// The reasons an edit cannot be applied, each with its own stable code.
#[derive(Debug, thiserror::Error)]
pub enum EditFailure {
    /// `replace` found the text a different number of times than `expected_count`.
    #[error(
        "the text to replace occurs {found} times, expected {expected}{}",
        line_list(" (at lines ", .lines, ")")
    )]
    OccurrenceMismatch {
        expected: usize,
        found: usize,
        /// Body lines (1 = the first line after the frontmatter) of the first occurrences.
        lines: Vec<usize>,
    },
    #[error("no heading matches {heading:?}{}", heading_list(.available))]
    HeadingNotFound {
        heading: String,
        /// The note's headings as `## Text`, the first few, to pick from.
        available: Vec<String>,
    },
    #[error(
        "{heading:?} matches {} headings{}; name its level (`## Text`) or its parent \
         (`Parent > Text`)",
        .lines.len(),
        line_list(" (at lines ", .lines, ")")
    )]
    AmbiguousHeading { heading: String, lines: Vec<usize> },
    #[error("{0}")]
    Invalid(String),
}

impl EditError {
    pub fn code(&self) -> &'static str {
        match self.failure {
            EditFailure::OccurrenceMismatch { .. } => "occurrence_mismatch",
            EditFailure::HeadingNotFound { .. } => "heading_not_found",
            EditFailure::AmbiguousHeading { .. } => "ambiguous_heading",
            EditFailure::Invalid(_) => "invalid_edit",
        }
    }

    fn add_details(&self, out: &mut Value) {
        out["edit_index"] = json!(self.index);
        out["op"] = json!(self.op);
        match &self.failure {
            EditFailure::OccurrenceMismatch {
                expected,
                found,
                lines,
            } => {
                out["expected"] = json!(expected);
                out["found"] = json!(found);
                out["lines"] = json!(lines);
            }
            EditFailure::HeadingNotFound { heading, available } => {
                out["heading"] = json!(heading);
                out["available"] = json!(available);
            }
            EditFailure::AmbiguousHeading { heading, lines } => {
                out["heading"] = json!(heading);
                out["lines"] = json!(lines);
            }
            EditFailure::Invalid(_) => {}
        }
    }
}

fn line_list(open: &str, lines: &[usize], close: &str) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = lines.iter().map(usize::to_string).collect();
    format!("{open}{}{close}", shown.join(", "))
}

fn heading_list(available: &[String]) -> String {
    if available.is_empty() {
        return "; the note has no headings".into();
    }
    format!("; its headings: {}", available.join(" | "))
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

/// Why a message to a user actor could not be answered with an MCP reply.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ActorError {
    /// The session is unknown, expired, ended — or another user's (the same answer).
    #[error("session not found")]
    UnknownSession,
    #[error("JSON-RPC batches are only accepted in sessions of protocol version 2025-03-26")]
    BatchNotSupported,
    /// The user's data could not be opened or updated outside a tool.
    #[error("storage unavailable: {0}")]
    Storage(String),
    /// The actor stopped (crashed or was killed) before it answered; retrying is safe.
    #[error("the user's actor restarted before answering; retry the request")]
    Restarted,
    /// The user's actor keeps crashing; the supervisor refuses to restart it for a while.
    #[error("this vault is temporarily unavailable after repeated failures")]
    CrashLoop { retry_after_secs: u64 },
}

impl From<VaultError> for ActorError {
    fn from(e: VaultError) -> Self {
        ActorError::Storage(e.to_string())
    }
}
