//! The stateless revision of MCP (2026-07-28): no `initialize`, no session. Every request
//! carries its protocol version and the client's capabilities in `params._meta`, and is
//! answered from that request alone.
//!
//! This module checks that envelope ([`RequestMeta::of`]) and answers one request
//! ([`handle_request`]); the transport checks its own headers and runs the request on the
//! user's actor, like every other request. Nothing here reads or writes the sessions table.
//!
//! There are no server-to-client requests: a delete that wants the user's confirmation, or
//! `suggest_tags` that wants the client's model, answers `input_required` with the question
//! and a `requestState`, and the client retries with the answer (multi round-trip requests). `subscriptions/listen` is [`super::listen`]'s.

use serde_json::{json, Value};

use super::context::RequestContext;
use super::dispatch::{self, Env};
use super::jsonrpc::{RpcError, METHOD_NOT_FOUND};
use super::protocol::{all_versions, unsupported_version};
use super::{completion, prompts, protocol, resources, tools};
use crate::session::LogLevel;

/// The one stateless revision this server speaks.
pub use super::protocol::STATELESS_VERSION as VERSION;
/// `_meta` key of the request's protocol version.
pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key of the client's capabilities for this request.
pub const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key of the server's name and version, on every result.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key of the minimum level of log messages the client wants for this request.
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// "The HTTP headers do not match the request body" (missing, malformed or disagreeing).
pub const HEADER_MISMATCH: i64 = -32020;

/// How long the catalogues that only change with a new server version (tools, prompts,
/// resource templates, the server's description) may be reused by a client or a shared cache.
pub const CATALOGUE_TTL_MS: u64 = 5 * 60 * 1000;

/// Methods of the session revisions that 2026-07-28 removed: answered "method not found".
const REMOVED: [&str; 5] = [
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// Client capabilities that only make sense with server-to-client requests, which this
/// revision has no channel for: never passed on to tools.
const CLIENT_REQUEST_CAPABILITIES: [&str; 3] = ["elicitation", "sampling", "roots"];

/// The protocol version a request names in `params._meta`, if any.
pub fn meta_version(params: Option<&Value>) -> Option<&str> {
    params?.get("_meta")?.get(META_VERSION)?.as_str()
}

/// The per-request envelope of a stateless request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestMeta {
    /// What the client declared it can do, for this request only (never remembered).
    pub capabilities: Value,
    /// The minimum level of `notifications/message` the client asked for; none when absent.
    pub log_level: Option<LogLevel>,
}

impl RequestMeta {
    /// Check `params._meta` of a stateless request: a version this server speaks and an object
    /// of client capabilities. The errors are the revision's: `-32022` (with `supported` and
    /// `requested`) for a version it does not speak, `-32602` for a missing or malformed key.
    pub fn of(params: Option<&Value>) -> Result<RequestMeta, RpcError> {
        let meta = params
            .and_then(|p| p.get("_meta"))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "params._meta must carry {META_VERSION} and {META_CAPABILITIES}"
                ))
            })?;
        let version = meta
            .get(META_VERSION)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RpcError::invalid_params(format!("params._meta must carry {META_VERSION}"))
            })?;
        if version != VERSION {
            return Err(unsupported_version(version));
        }
        let capabilities = match meta.get(META_CAPABILITIES) {
            Some(caps @ Value::Object(_)) => caps.clone(),
            Some(_) => {
                return Err(RpcError::invalid_params(format!(
                    "params._meta[{META_CAPABILITIES:?}] must be an object"
                )))
            }
            None => {
                return Err(RpcError::invalid_params(format!(
                    "params._meta must carry {META_CAPABILITIES}"
                )))
            }
        };
        let log_level = match meta.get(META_LOG_LEVEL) {
            None | Some(Value::Null) => None,
            Some(level) => Some(level.as_str().and_then(LogLevel::parse).ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "params._meta[{META_LOG_LEVEL:?}] is not a log level"
                ))
            })?),
        };
        Ok(RequestMeta {
            capabilities,
            log_level,
        })
    }

    /// Did the client declare `capability` for this request?
    fn can(&self, capability: &str) -> bool {
        self.capabilities
            .get(capability)
            .is_some_and(|v| !v.is_null())
    }

    /// The capabilities tools may rely on: those needing a server-to-client request are
    /// dropped, so a tool takes its path for clients without them.
    fn tool_capabilities(&self) -> Value {
        let mut caps = self.capabilities.clone();
        if let Some(map) = caps.as_object_mut() {
            for key in CLIENT_REQUEST_CAPABILITIES {
                map.remove(key);
            }
        }
        caps
    }
}

/// The revision's `HeaderMismatchError`.
pub fn header_mismatch(message: impl Into<String>) -> RpcError {
    RpcError::new(HEADER_MISMATCH, message)
}

/// The value a request's `Mcp-Name` header must mirror: the tool or prompt name, or the
/// resource URI; `None` for methods that have no name.
pub fn routed_name<'a>(method: &str, params: Option<&'a Value>) -> Option<Option<&'a str>> {
    let field = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    Some(params.and_then(|p| p.get(field)).and_then(Value::as_str))
}

/// Answer one stateless request `id` with its full JSON-RPC response. Results carry
/// `resultType: "complete"`; list and read results carry cache hints.
pub fn handle_request(
    env: &mut Env<'_>,
    meta: &RequestMeta,
    id: &Value,
    method: &str,
    params: Option<Value>,
) -> Value {
    match answer(env, meta, method, params.unwrap_or_else(|| json!({}))) {
        Ok(mut result) => {
            if result.get("resultType").is_none() {
                result["resultType"] = json!("complete");
            }
            stamp_server_info(&mut result);
            super::jsonrpc::result_response(id, result)
        }
        Err(e) => e.to_response(id),
    }
}

/// Name the server in the result's `_meta`, as the revision asks of every response (a key the
/// result already carries is kept).
fn stamp_server_info(result: &mut Value) {
    if !result.get("_meta").is_some_and(Value::is_object) {
        if result.get("_meta").is_some() {
            return;
        }
        result["_meta"] = json!({});
    }
    let meta = &mut result["_meta"];
    if meta.get(META_SERVER_INFO).is_none() {
        meta[META_SERVER_INFO] = protocol::server_info();
    }
}

fn answer(
    env: &mut Env<'_>,
    meta: &RequestMeta,
    method: &str,
    params: Value,
) -> Result<Value, RpcError> {
    let str_param = |name: &str| params.get(name).and_then(Value::as_str);
    let access = &env.caller.access;
    match method {
        "server/discover" => Ok(cacheable(discover_result(), CATALOGUE_TTL_MS, "public")),
        "tools/list" => {
            let tools: Vec<Value> = tools::catalog().iter().map(tools::Tool::describe).collect();
            Ok(cacheable(
                json!({ "tools": tools }),
                CATALOGUE_TTL_MS,
                "public",
            ))
        }
        "tools/call" => call_tool(env, meta, params),
        // Notes change with every write and no notification reaches a stateless client
        // without a subscription: always stale, and only for this user.
        "resources/list" => resources::list(env.vault, access, str_param("cursor"))
            .map(|r| cacheable(r, 0, "private")),
        "resources/read" => {
            let uri = str_param("uri")
                .ok_or_else(|| RpcError::invalid_params("resources/read needs a uri"))?;
            resources::read(env.vault, access, uri).map(|r| cacheable(r, 0, "private"))
        }
        "resources/templates/list" => Ok(cacheable(
            resources::templates(),
            CATALOGUE_TTL_MS,
            "public",
        )),
        "prompts/list" => Ok(cacheable(prompts::list(), CATALOGUE_TTL_MS, "public")),
        "prompts/get" => prompts::get(env.vault, access, &params),
        "completion/complete" => completion::complete(env.vault, access, &params),
        removed if REMOVED.contains(&removed) => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method not found: {removed} is not part of protocol revision {VERSION}"),
        )),
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method not found: {other}"),
        )),
    }
}

/// `result` with the revision's cache hints: fresh for `ttl_ms`, cacheable by `scope`
/// (`"public"`: shared caches too; `"private"`: the client only).
fn cacheable(mut result: Value, ttl_ms: u64, scope: &str) -> Value {
    result["ttlMs"] = json!(ttl_ms);
    result["cacheScope"] = json!(scope);
    result
}

/// The `server/discover` result: the revisions spoken, what the server offers to a stateless
/// client and how to use it (who it is goes in `_meta`, as on every result).
pub fn discover_result() -> Value {
    json!({
        "supportedVersions": all_versions(),
        "capabilities": {
            "tools": {},
            // Through subscriptions/listen: updates of named notes, and list changes.
            "resources": { "subscribe": true, "listChanged": true },
            "prompts": {},
            "completions": {},
        },
        "instructions": protocol::INSTRUCTIONS,
    })
}

fn call_tool(env: &mut Env<'_>, meta: &RequestMeta, params: Value) -> Result<Value, RpcError> {
    let round = Round::of(&params)?;
    let (tool, mut args, progress_token) = dispatch::tool_call_params(params)?;
    if tool.name == "delete_note" && env.options.confirm_deletes && meta.can("elicitation") {
        match confirm_delete(env, &args, round)? {
            Confirmation::Ask(input_required) => return Ok(input_required),
            Confirmation::Refused(outcome) => {
                return Ok(dispatch::tool_outcome(tool, Err(outcome)))
            }
            // Delete exactly the version the user confirmed.
            Confirmation::Confirmed { version } => {
                if args.get("if_version").is_none_or(Value::is_null) {
                    args["if_version"] = json!(version);
                }
            }
        }
    } else if tool.name == "suggest_tags" && meta.can("sampling") {
        return suggest_tags(env, tool, &args, round);
    } else if round.state.is_some() {
        return Err(RpcError::invalid_params(format!(
            "{} asked for no input; this requestState is not its own",
            tool.name
        )));
    }
    let capabilities = meta.tool_capabilities();
    let ctx = RequestContext {
        caller: env.caller,
        session_id: "",
        hub: env.hub,
        options: env.options,
        events: env.events,
        // No level asked: no log messages (the quietest level lets next to nothing through).
        log_level: meta.log_level.unwrap_or(LogLevel::Emergency),
        client_capabilities: &capabilities,
        progress_token,
        cancel: None,
        sessions: env.sessions,
    };
    let outcome = tool.call(env.vault, &ctx, args);
    Ok(dispatch::tool_outcome(tool, outcome))
}

/// Key of the confirmation in a delete's `inputRequests` and `inputResponses`.
const CONFIRM_KEY: &str = "confirm_delete";
/// Key of the model's answer in `suggest_tags`' `inputRequests` and `inputResponses`.
const SAMPLE_KEY: &str = "suggest_tags";

/// The multi-round-trip part of a request: on a retry, the client's answers and the state the
/// server handed out with its question (as the transport unwrapped it).
struct Round {
    responses: Option<Value>,
    state: Option<String>,
}

impl Round {
    fn of(params: &Value) -> Result<Round, RpcError> {
        let state = match params.get("requestState") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(RpcError::invalid_params("requestState must be a string")),
        };
        let responses = params
            .get("inputResponses")
            .filter(|v| !v.is_null())
            .cloned();
        Ok(Round { responses, state })
    }

    /// On a retry of `tool` on the note at `path`, the state issued with the question and
    /// the client's answers; `None` on the first round. `doing` words the refusal of a state
    /// issued for another note ("deleting", ...).
    fn retry(
        self,
        tool: &str,
        path: &str,
        doing: &str,
    ) -> Result<Option<(NoteState, Value)>, RpcError> {
        let (state, responses) = match (self.state, self.responses) {
            (None, _) => return Ok(None),
            (Some(_), None) => {
                return Err(RpcError::invalid_params(
                    "a retry with requestState must carry inputResponses",
                ))
            }
            (Some(state), Some(responses)) => (state, responses),
        };
        let state: NoteState = unhex(&state)
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| {
                RpcError::invalid_params("requestState is not one this server issued")
            })?;
        if state.tool != tool {
            return Err(RpcError::invalid_params(format!(
                "requestState was issued for {}, not {tool}",
                state.tool
            )));
        }
        if state.path != path {
            return Err(RpcError::invalid_params(format!(
                "requestState was issued for {doing} another note"
            )));
        }
        Ok(Some((state, responses)))
    }
}

/// What the server remembers between its question and the retry: which tool asked, about
/// which note, at which version. It travels as hex of its JSON; the transport binds it to the
/// user before it leaves.
#[derive(serde::Serialize, serde::Deserialize)]
struct NoteState {
    tool: String,
    path: String,
    version: u64,
}

impl NoteState {
    /// The `input_required` result asking the client `method` with `params` under `key`, with
    /// this state to be handed back on the retry.
    fn ask(&self, key: &str, method: &str, params: Value) -> Result<Value, RpcError> {
        let state = serde_json::to_vec(self)
            .map_err(|e| RpcError::new(super::jsonrpc::INTERNAL_ERROR, e.to_string()))?;
        Ok(json!({
            "resultType": "input_required",
            "inputRequests": { key: { "method": method, "params": params } },
            "requestState": hex(&state),
        }))
    }
}

/// Where a delete stands in its confirmation.
enum Confirmation {
    /// First round: ask the user (an `input_required` result).
    Ask(Value),
    /// The user declined, or the note cannot be deleted: the tool's error result.
    Refused(crate::VaultError),
    /// The user confirmed deleting `version`.
    Confirmed { version: u64 },
}

fn confirm_delete(env: &mut Env<'_>, args: &Value, round: Round) -> Result<Confirmation, RpcError> {
    let Some(path) = args.get("path").and_then(Value::as_str) else {
        return Ok(Confirmation::Refused(crate::VaultError::InvalidArguments(
            "delete_note needs a path".into(),
        )));
    };
    let Some((state, responses)) = round.retry("delete_note", path, "deleting")? else {
        let version = match env
            .caller
            .access
            .check_write(path)
            .and_then(|()| env.vault.version_of(path))
        {
            Ok(version) => version,
            Err(e) => return Ok(Confirmation::Refused(e)),
        };
        let state = NoteState {
            tool: "delete_note".into(),
            path: path.to_string(),
            version,
        };
        return state
            .ask(
                CONFIRM_KEY,
                "elicitation/create",
                json!({
                    "message": format!("Delete the note {path} (version {version})?"),
                    "requestedSchema": {
                        "type": "object",
                        "properties": { "confirm": {
                            "type": "boolean",
                            "title": "Delete this note",
                            "description": "The note file is removed from the vault.",
                        }},
                        "required": ["confirm"],
                    },
                }),
            )
            .map(Confirmation::Ask);
    };
    let answer = &responses[CONFIRM_KEY];
    let accepted = answer.get("action").and_then(Value::as_str) == Some("accept")
        && answer.pointer("/content/confirm") == Some(&json!(true));
    if accepted {
        Ok(Confirmation::Confirmed {
            version: state.version,
        })
    } else {
        Ok(Confirmation::Refused(crate::VaultError::Declined(format!(
            "the user did not confirm deleting {path}; nothing was deleted"
        ))))
    }
}

/// `suggest_tags` without a server-to-client request: the first round hands the client the
/// `sampling/createMessage` request the session flow would send; the retry carries the
/// model's message, which gives the same result. A note changed in between is a conflict.
fn suggest_tags(
    env: &mut Env<'_>,
    tool: &tools::Tool,
    args: &Value,
    round: Round,
) -> Result<Value, RpcError> {
    let refused = |e| Ok(dispatch::tool_outcome(tool, Err(e)));
    let Some(path) = args.get("path").and_then(Value::as_str) else {
        return refused(crate::VaultError::InvalidArguments(
            "suggest_tags needs a path".into(),
        ));
    };
    if let Err(e) = tool.permits(env.caller) {
        return refused(e);
    }
    let Some((state, responses)) = round.retry(tool.name, path, "suggesting tags for")? else {
        let (request, _, version) = match tools::tag_request(env.vault, &env.caller.access, path) {
            Ok(built) => built,
            Err(e) => return refused(e),
        };
        let state = NoteState {
            tool: tool.name.into(),
            path: path.to_string(),
            version,
        };
        return state.ask(SAMPLE_KEY, "sampling/createMessage", request);
    };
    let current = match env
        .caller
        .access
        .check_read(path)
        .and_then(|()| env.vault.version_of(path))
    {
        Ok(current) => current,
        Err(e) => return refused(e),
    };
    if current != state.version {
        return refused(crate::VaultError::Conflict {
            path: state.path,
            expected: state.version,
            current,
        });
    }
    let answer = responses
        .get(SAMPLE_KEY)
        .filter(|a| a.is_object())
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "inputResponses must carry the model's message under {SAMPLE_KEY:?}"
            ))
        })?;
    Ok(dispatch::tool_outcome(
        tool,
        tools::tag_suggestions(&state.path, answer),
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(meta: Value) -> Value {
        json!({ "_meta": meta })
    }

    #[test]
    fn envelope_needs_a_spoken_version_and_capabilities() {
        let ok = params(json!({ META_VERSION: VERSION, META_CAPABILITIES: { "sampling": {} } }));
        let meta = RequestMeta::of(Some(&ok)).unwrap();
        assert_eq!(meta.capabilities["sampling"], json!({}));
        assert!(meta.tool_capabilities().get("sampling").is_none());

        let missing = RequestMeta::of(Some(&params(json!({ META_CAPABILITIES: {} })))).unwrap_err();
        assert_eq!(missing.code, super::super::jsonrpc::INVALID_PARAMS);
        let no_caps = RequestMeta::of(Some(&params(json!({ META_VERSION: VERSION })))).unwrap_err();
        assert_eq!(no_caps.code, super::super::jsonrpc::INVALID_PARAMS);

        let old = params(json!({ META_VERSION: "2030-01-01", META_CAPABILITIES: {} }));
        let err = RequestMeta::of(Some(&old)).unwrap_err();
        assert_eq!(
            err.code,
            super::super::jsonrpc::UNSUPPORTED_PROTOCOL_VERSION
        );
        let data = err.data.unwrap();
        assert_eq!(data["requested"], "2030-01-01");
        assert!(data["supported"]
            .as_array()
            .unwrap()
            .contains(&json!(VERSION)));
    }

    #[test]
    fn routed_name_follows_the_method() {
        let p = json!({ "name": "read_note", "uri": "note:///a.md" });
        assert_eq!(routed_name("tools/call", Some(&p)), Some(Some("read_note")));
        assert_eq!(
            routed_name("prompts/get", Some(&p)),
            Some(Some("read_note"))
        );
        assert_eq!(
            routed_name("resources/read", Some(&p)),
            Some(Some("note:///a.md"))
        );
        assert_eq!(routed_name("tools/list", Some(&p)), None);
    }
}
