//! What one MCP request may do besides answering: stream notifications (progress, log messages)
//! on its own response, ask the client something (sampling, elicitation), and notice that the
//! client cancelled it.
//!
//! The context is built by the dispatcher for each request and lent to tools; it runs on the
//! user actor's job thread; waits go through `pool::blocking`, so they hold up this user only.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::jsonrpc::notification;
use crate::caller::Caller;
use crate::error::VaultError;
use crate::hub::{CancelFlag, Hub};
use crate::pool;
use crate::session::LogLevel;
use crate::settings::McpOptions;
use crate::vault::usage::QuotaUse;

/// Everything a running request can reach besides the vault.
pub struct RequestContext<'a> {
    pub caller: &'a Caller,
    pub session_id: &'a str,
    pub hub: &'a Hub,
    pub options: &'a McpOptions,
    /// Messages sent here go out on this request's own response stream, before its result.
    pub events: Option<&'a mpsc::Sender<Value>>,
    /// The session's minimum level for `notifications/message`.
    pub log_level: LogLevel,
    /// The client's declared capabilities (from `initialize`).
    pub client_capabilities: &'a Value,
    pub progress_token: Option<Value>,
    pub cancel: Option<CancelFlag>,
    /// The user's live MCP sessions against their quota when the request arrived (the vault
    /// does not keep sessions; `vault_info` reports them).
    pub sessions: QuotaUse,
}

impl RequestContext<'_> {
    /// Send a notification on this request's stream; false when there is no stream.
    pub fn notify(&self, method: &str, params: Value) -> bool {
        match self.events {
            Some(tx) => send(tx, notification(method, params)),
            None => false,
        }
    }

    /// Report progress, when the client asked for it with a progress token.
    pub fn progress(&self, progress: u64, total: Option<u64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut params = json!({ "progressToken": token, "progress": progress });
        if let Some(t) = total {
            params["total"] = json!(t);
        }
        if let Some(m) = message {
            params["message"] = json!(m);
        }
        self.notify("notifications/progress", params);
    }

    /// Send a log message if the session's level lets it through.
    pub fn log(&self, level: LogLevel, data: Value) {
        if level >= self.log_level {
            self.notify(
                "notifications/message",
                json!({ "level": level.as_str(), "logger": "vault-mcp", "data": data }),
            );
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Did the client declare `capability` (e.g. "elicitation", "sampling")?
    pub fn client_can(&self, capability: &str) -> bool {
        self.client_capabilities
            .get(capability)
            .is_some_and(|v| !v.is_null())
    }

    /// Send a request to the client on this request's stream and wait for its result.
    pub fn ask_client(&self, method: &str, params: Value) -> Result<Value, VaultError> {
        let Some(tx) = self.events else {
            return Err(VaultError::ClientRequest(format!(
                "cannot send {method}: this request has no response stream"
            )));
        };
        let (id, rx) = self.hub.expect_response(self.session_id);
        let request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if !send(tx, request) {
            self.hub.forget_response(&id);
            return Err(VaultError::ClientRequest("the client went away".into()));
        }
        let deadline = Instant::now() + self.options.client_timeout;
        let answer = loop {
            if self.is_cancelled() {
                self.hub.forget_response(&id);
                return Err(VaultError::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.hub.forget_response(&id);
                return Err(VaultError::ClientRequest(format!(
                    "the client did not answer {method} in time"
                )));
            }
            match pool::blocking(|| rx.recv_timeout(left.min(Duration::from_millis(100)))) {
                Ok(answer) => break answer,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(VaultError::ClientRequest("the request was dropped".into()))
                }
            }
        };
        match (answer.get("result"), answer.get("error")) {
            (Some(result), _) => Ok(result.clone()),
            (None, Some(err)) => Err(VaultError::ClientRequest(format!(
                "the client refused {method}: {}",
                err.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given")
            ))),
            (None, None) => Err(VaultError::ClientRequest(format!(
                "the client's answer to {method} had neither result nor error"
            ))),
        }
    }
}

/// Put `msg` on a request's response stream; when the client is not reading it and the
/// buffer is full, wait without holding a job thread. False when the stream is gone.
fn send(tx: &mpsc::Sender<Value>, msg: Value) -> bool {
    match tx.try_send(msg) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(msg)) => {
            pool::blocking(|| tx.blocking_send(msg).is_ok())
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
