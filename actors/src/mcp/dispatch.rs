//! Method dispatch for a session that already exists: one JSON-RPC request or notification in,
//! one result or error out.

use serde::Deserialize;
use serde_json::{json, Value};

use super::jsonrpc::{RpcError, INVALID_REQUEST, METHOD_NOT_FOUND};
use super::tools;
use crate::caller::Caller;
use crate::session::{LogLevel, Session};
use crate::vault::Vault;

/// Answer one request of `session`. Tool failures are successful results with `isError`;
/// only protocol-level problems are JSON-RPC errors.
pub fn handle_request(
    vault: &mut Vault,
    session: &mut Session,
    caller: &Caller,
    method: &str,
    params: Option<Value>,
) -> Result<Value, RpcError> {
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
        "tools/call" => call_tool(vault, caller, params),
        "logging/setLevel" => {
            let level = params
                .as_ref()
                .and_then(|p| p.get("level"))
                .and_then(Value::as_str)
                .and_then(LogLevel::parse)
                .ok_or_else(|| {
                    RpcError::invalid_params(
                        "params.level must be one of debug, info, notice, warning, error, critical, alert, emergency",
                    )
                })?;
            session.log_level = level;
            Ok(json!({}))
        }
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method not found: {other}"),
        )),
    }
}

/// Take note of a client notification. Unknown notifications are ignored, as JSON-RPC asks.
pub fn handle_notification(_session: &mut Session, method: &str, _params: Option<Value>) {
    match method {
        "notifications/initialized" | "notifications/cancelled" => {}
        other => tracing::debug!(method = other, "ignoring notification"),
    }
}

#[derive(Deserialize)]
struct CallParams {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

fn call_tool(vault: &mut Vault, caller: &Caller, params: Option<Value>) -> Result<Value, RpcError> {
    let params = params
        .ok_or_else(|| RpcError::invalid_params("tools/call needs params {name, arguments}"))?;
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
    Ok(match tool.call(vault, caller, args) {
        Ok(structured) => tools::success_result(structured),
        Err(e) => {
            if matches!(e, crate::VaultError::Io(_) | crate::VaultError::Index(_)) {
                tracing::error!(tool = tool.name, error = %e, "tool failed on storage");
            }
            tools::error_result(&e)
        }
    })
}
