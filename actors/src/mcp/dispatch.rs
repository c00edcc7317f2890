//! Method dispatch for a session that already exists: one JSON-RPC request or notification in,
//! one result or error out.
//!
//! Every request is checked against the scope of the token it came with ([`Env::caller`]), never
//! the one that opened the session: a session used with a narrower token answers, and is
//! notified, only within that token's folders.

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::context::RequestContext;
use super::jsonrpc::{RpcError, INVALID_REQUEST, METHOD_NOT_FOUND};
use super::{completion, prompts, resources, tools};
use crate::caller::Caller;
use crate::hub::Hub;
use crate::session::{LogLevel, Session};
use crate::settings::McpOptions;
use crate::vault::usage::QuotaUse;
use crate::vault::Vault;

/// What the user actor lends to the requests of one POST.
pub struct Env<'a> {
    pub vault: &'a mut Vault,
    pub hub: &'a Hub,
    pub caller: &'a Caller,
    pub options: &'a McpOptions,
    /// The POST's own response stream (progress, log messages, server-to-client requests).
    pub events: Option<&'a mpsc::Sender<Value>>,
    /// The user's live sessions against their quota, for `vault_info`.
    pub sessions: QuotaUse,
}

/// Answer one request of `session`. Tool failures are successful results with `isError`;
/// only protocol-level problems are JSON-RPC errors.
pub fn handle_request(
    env: &mut Env<'_>,
    session: &mut Session,
    id: &Value,
    method: &str,
    params: Option<Value>,
) -> Result<Value, RpcError> {
    let params = params.unwrap_or_else(|| json!({}));
    // Change notifications of this session follow the scope of its latest request.
    env.hub.set_access(&session.id, &env.caller.access);
    let str_param = |name: &str| params.get(name).and_then(Value::as_str);
    match method {
        "ping" => Ok(json!({})),
        "initialize" => Err(RpcError::new(
            INVALID_REQUEST,
            "this session is already initialized; send initialize without Mcp-Session-Id to start a new one",
        )),
        "tools/list" => {
            let tools: Vec<Value> = tools::catalog().iter().map(tools::Tool::describe).collect();
            Ok(json!({ "tools": tools }))
        }
        "tools/call" => call_tool(env, session, id, params),
        "logging/setLevel" => {
            let level = str_param("level").and_then(LogLevel::parse).ok_or_else(|| {
                RpcError::invalid_params(
                    "params.level must be one of debug, info, notice, warning, error, critical, alert, emergency",
                )
            })?;
            session.log_level = level;
            Ok(json!({}))
        }
        "resources/list" => resources::list(env.vault, &env.caller.access, str_param("cursor")),
        "resources/templates/list" => Ok(resources::templates()),
        "resources/read" => {
            let uri = str_param("uri").ok_or_else(|| RpcError::invalid_params("resources/read needs a uri"))?;
            resources::read(env.vault, &env.caller.access, uri)
        }
        "resources/subscribe" | "resources/unsubscribe" => {
            let uri = str_param("uri").ok_or_else(|| RpcError::invalid_params(format!("{method} needs a uri")))?;
            resources::check_uri(&env.caller.access, uri)?;
            if method == "resources/subscribe" {
                env.hub.subscribe(&session.id, uri);
            } else {
                env.hub.unsubscribe(&session.id, uri);
            }
            Ok(json!({}))
        }
        "prompts/list" => Ok(prompts::list()),
        "prompts/get" => prompts::get(env.vault, &env.caller.access, &params),
        "completion/complete" => completion::complete(env.vault, &env.caller.access, &params),
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method not found: {other}"),
        )),
    }
}

/// Take note of a client notification. Unknown notifications are ignored, as JSON-RPC asks.
pub fn handle_notification(env: &Env<'_>, session: &Session, method: &str, params: Option<Value>) {
    match method {
        "notifications/cancelled" => {
            if let Some(request) = params.as_ref().and_then(|p| p.get("requestId")) {
                env.hub.cancel(&session.id, request);
            }
        }
        "notifications/initialized" | "notifications/roots/list_changed" => {}
        other => tracing::debug!(method = other, "ignoring notification"),
    }
}

#[derive(Deserialize)]
struct CallParams {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

/// Run `tool` for `caller` outside any MCP session (the web app): no response stream, so no
/// progress, log messages or requests to the client; an unknown tool or bad arguments are an
/// `invalid_arguments` tool error.
pub fn call_without_session(
    vault: &mut Vault,
    hub: &Hub,
    caller: &Caller,
    options: &McpOptions,
    sessions: QuotaUse,
    tool: &str,
    args: Value,
) -> Value {
    let Some(tool) = tools::find(tool) else {
        return tools::error_result(&crate::VaultError::InvalidArguments(format!(
            "unknown tool: {tool}"
        )));
    };
    let ctx = RequestContext {
        caller,
        session_id: "",
        hub,
        options,
        events: None,
        log_level: LogLevel::Emergency,
        client_capabilities: &Value::Null,
        progress_token: None,
        cancel: None,
        sessions,
    };
    tool_outcome(tool, tool.call(vault, &ctx, args))
}

/// A tool's outcome as a `tools/call` result (a failure becomes an `isError` result).
pub(crate) fn tool_outcome(tool: &tools::Tool, outcome: Result<Value, crate::VaultError>) -> Value {
    match outcome {
        Ok(result) => result,
        Err(e) => {
            if matches!(e, crate::VaultError::Io(_) | crate::VaultError::Index(_)) {
                tracing::error!(tool = tool.name, error = %e, "tool failed on storage");
            }
            if let crate::VaultError::QuotaExceeded { limit, .. } = e {
                metrics::counter!("vault_mcp_quota_hits_total", "limit" => limit).increment(1);
            }
            tools::error_result(&e)
        }
    }
}

/// The tool, its arguments (an object) and the progress token of `tools/call` `params`.
pub(crate) fn tool_call_params(
    params: Value,
) -> Result<(&'static tools::Tool, Value, Option<Value>), RpcError> {
    let progress_token = params.pointer("/_meta/progressToken").cloned();
    let call: CallParams = serde_json::from_value(params)
        .map_err(|e| RpcError::invalid_params(format!("tools/call params: {e}")))?;
    let tool = tools::find(&call.name)
        .ok_or_else(|| RpcError::invalid_params(format!("unknown tool: {}", call.name)))?;
    let args = match call.arguments {
        None | Some(Value::Null) => json!({}),
        Some(obj @ Value::Object(_)) => obj,
        Some(_) => {
            return Err(RpcError::invalid_params(
                "tools/call arguments must be an object",
            ))
        }
    };
    Ok((tool, args, progress_token))
}

fn call_tool(
    env: &mut Env<'_>,
    session: &Session,
    id: &Value,
    params: Value,
) -> Result<Value, RpcError> {
    let (tool, args, progress_token) = tool_call_params(params)?;
    let cancel = env.hub.start_request(&session.id, id);
    let ctx = RequestContext {
        caller: env.caller,
        session_id: &session.id,
        hub: env.hub,
        options: env.options,
        events: env.events,
        log_level: session.log_level,
        client_capabilities: &session.capabilities,
        progress_token,
        cancel: Some(cancel),
        sessions: env.sessions,
    };
    let outcome = tool.call(env.vault, &ctx, args);
    env.hub.finish_request(&session.id, id);
    Ok(tool_outcome(tool, outcome))
}
