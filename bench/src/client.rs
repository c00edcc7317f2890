//! The MCP client: JWT minting, one Streamable HTTP session, and tool calls.
//!
//! Deliberately the thinnest correct client (initialize → notifications/initialized → tools/call
//! … → DELETE), so the figures measure the server and the transport, not client machinery. The
//! same handle also speaks the stateless revision ([`Session::stateless`]): no handshake and no
//! session, every request carrying its `_meta` envelope and its `Mcp-Method` / `Mcp-Name`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const PROTOCOL_VERSION: &str = "2025-11-25";
/// The stateless revision: no `initialize`, no `Mcp-Session-Id`.
pub const STATELESS_VERSION: &str = "2026-07-28";
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";

/// Why a call did not succeed; `kind()` groups them for the error summary.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("transport: {0}")]
    Transport(String),
    /// No connection could be made: nothing was sent (a server not, or no longer, listening).
    #[error("connection refused: {0}")]
    Refused(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("JSON-RPC error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("tool error: {0}")]
    Tool(String),
    #[error("bad response: {0}")]
    BadResponse(String),
}

impl CallError {
    /// A short label that many errors share, e.g. `HTTP 429` or `tool error`.
    pub fn kind(&self) -> String {
        match self {
            CallError::Transport(_) => "transport".into(),
            CallError::Refused(_) => "connection refused".into(),
            CallError::Status(s) => format!("HTTP {s}"),
            CallError::Rpc { code, .. } => format!("JSON-RPC {code}"),
            CallError::Tool(_) => "tool error (isError)".into(),
            CallError::BadResponse(_) => "bad response".into(),
        }
    }
}

impl From<reqwest::Error> for CallError {
    fn from(e: reqwest::Error) -> Self {
        // reqwest's own message names only the URL: the causes say what happened (a reset,
        // a connection closed before the answer, a timeout).
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        if e.is_connect() {
            CallError::Refused(text)
        } else {
            CallError::Transport(text)
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    iss: &'a str,
    aud: &'a str,
    /// The server refuses tokens without an id (it is what revocation names).
    jti: String,
}

/// An HS256 token for `user`, valid for an hour, with issuer and audience `public_url`.
pub fn mint_token(
    secret: &str,
    public_url: &str,
    user: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        sub: user,
        iat: now,
        exp: now + 3600,
        iss: public_url,
        aud: public_url,
        jti: format!("bench-{user}-{now}"),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// The benchmark's user ids: `bench-user-0001`, `bench-user-0002`, …
pub fn user_id(index: usize) -> String {
    format!("bench-user-{:04}", index + 1)
}

/// One HTTP client shared by all sessions: its pool gives each concurrent session a connection.
pub fn http_client() -> Result<reqwest::Client, CallError> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(CallError::from)
}

/// A live MCP session of one user, or (built by [`Session::stateless`]) a stateless client of
/// one user that sends the same requests without a session.
pub struct Session {
    http: reqwest::Client,
    endpoint: String,
    headers: HeaderMap,
    next_id: u64,
    /// Requests carry the 2026-07-28 `_meta` envelope and routing headers; nothing to close.
    stateless: bool,
}

fn header(value: &str) -> Result<HeaderValue, CallError> {
    HeaderValue::from_str(value).map_err(|e| CallError::BadResponse(format!("header: {e}")))
}

impl Session {
    /// `initialize` plus `notifications/initialized`; `base_url` is the server root.
    pub async fn open(
        http: &reqwest::Client,
        base_url: &str,
        token: &str,
    ) -> Result<Session, CallError> {
        let endpoint = format!("{}/mcp", base_url.trim_end_matches('/'));
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, header(&format!("Bearer {token}"))?);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        let init = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "vault-bench", "version": "0.1"}
            }
        });
        let resp = http
            .post(&endpoint)
            .headers(headers.clone())
            .body(init.to_string())
            .send()
            .await?;
        let session_id = resp.headers().get(SESSION_HEADER).cloned().ok_or_else(|| {
            CallError::BadResponse("initialize answered without Mcp-Session-Id".into())
        });
        let reply = read_reply(resp).await?;
        rpc_result(reply)?;
        headers.insert(SESSION_HEADER, session_id?);
        headers.insert(VERSION_HEADER, HeaderValue::from_static(PROTOCOL_VERSION));
        let session = Session {
            http: http.clone(),
            endpoint,
            headers,
            next_id: 2,
            stateless: false,
        };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let resp = session.post(note.to_string()).send().await?;
        if !resp.status().is_success() {
            return Err(CallError::Status(resp.status().as_u16()));
        }
        Ok(session)
    }

    /// A client of the stateless revision for `token`: nothing is sent until the first request,
    /// which needs no earlier one (no `initialize`, no session to open or end).
    pub fn stateless(
        http: &reqwest::Client,
        base_url: &str,
        token: &str,
    ) -> Result<Session, CallError> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, header(&format!("Bearer {token}"))?);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(VERSION_HEADER, HeaderValue::from_static(STATELESS_VERSION));
        Ok(Session {
            http: http.clone(),
            endpoint: format!("{}/mcp", base_url.trim_end_matches('/')),
            headers,
            next_id: 1,
            stateless: true,
        })
    }

    /// Another handle on this session whose request ids start at `first_id`, for requests in
    /// flight at once on one session (the paced streams), which must not share an id. Only
    /// one of the handles should [`close`](Session::close) the session.
    pub fn fork(&self, first_id: u64) -> Session {
        Session {
            http: self.http.clone(),
            endpoint: self.endpoint.clone(),
            headers: self.headers.clone(),
            next_id: first_id,
            stateless: self.stateless,
        }
    }

    fn post(&self, body: String) -> reqwest::RequestBuilder {
        self.http
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .body(body)
    }

    /// The POST of a request (see [`request`](Session::request)) and the size of its body; a
    /// stateless request also names its method and tool in `Mcp-Method` / `Mcp-Name`.
    fn prepare(&mut self, method: &str, params: Option<Value>) -> (reqwest::RequestBuilder, usize) {
        let name = params
            .as_ref()
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let body = self.request(method, params);
        let len = body.len();
        let mut post = self.post(body);
        if self.stateless {
            post = post.header(METHOD_HEADER, method);
            if let Some(name) = name {
                post = post.header(NAME_HEADER, name);
            }
        }
        (post, len)
    }

    /// Calls a tool; `Ok` carries `result` of a successful, non-`isError` call.
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Result<Value, CallError> {
        let (post, _) = self.tool_request(name, arguments);
        let resp = post.send().await?;
        rpc_result(read_reply(resp).await?)
    }

    /// Calls a tool and only checks that it succeeded (see [`check_reply`]): what the
    /// measured loop does, so that the client's share of each request stays small.
    pub async fn call_tool_checked(
        &mut self,
        name: &str,
        arguments: Value,
    ) -> Result<(), CallError> {
        let (post, _) = self.tool_request(name, arguments);
        let resp = post.send().await?;
        read_checked(resp).await
    }

    /// [`call_tool_checked`](Session::call_tool_checked) that also returns the bytes of the
    /// request body sent and of the answer's body received.
    pub async fn call_tool_counted(
        &mut self,
        name: &str,
        arguments: Value,
    ) -> Result<(usize, usize), CallError> {
        let (post, sent) = self.tool_request(name, arguments);
        let resp = post.send().await?;
        let (content_type, body) = read_body(resp).await?;
        check_reply(&content_type, &body)?;
        Ok((sent, body.len()))
    }

    fn tool_request(&mut self, name: &str, arguments: Value) -> (reqwest::RequestBuilder, usize) {
        self.prepare(
            "tools/call",
            Some(json!({"name": name, "arguments": arguments})),
        )
    }

    /// A JSON-RPC request with the session's next id, as the body to post; a stateless one
    /// carries the revision's `_meta` envelope in its params.
    fn request(&mut self, method: &str, params: Option<Value>) -> String {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            req["params"] = params;
        }
        if self.stateless {
            if !req["params"].is_object() {
                req["params"] = json!({});
            }
            req["params"]["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "vault-bench", "version": "0.1"},
            });
        }
        req.to_string()
    }

    /// Sends a JSON-RPC `ping` and checks that it succeeded.
    pub async fn ping(&mut self) -> Result<(), CallError> {
        let (post, _) = self.prepare("ping", None);
        let resp = post.send().await?;
        read_checked(resp).await
    }

    /// Ends the session (`DELETE /mcp`), so per-user session limits are not exhausted.
    pub async fn close(self) -> Result<(), CallError> {
        if self.stateless {
            return Ok(());
        }
        let resp = self
            .http
            .delete(&self.endpoint)
            .headers(self.headers.clone())
            .send()
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(CallError::Status(resp.status().as_u16()))
        }
    }
}

/// Status check, then the JSON-RPC response from a JSON or SSE body.
async fn read_reply(resp: reqwest::Response) -> Result<Value, CallError> {
    let (content_type, body) = read_body(resp).await?;
    parse_reply(&content_type, &body)
}

/// Status check, then [`check_reply`].
async fn read_checked(resp: reqwest::Response) -> Result<(), CallError> {
    let (content_type, body) = read_body(resp).await?;
    check_reply(&content_type, &body)
}

async fn read_body(resp: reqwest::Response) -> Result<(String, hyper::body::Bytes), CallError> {
    let status = resp.status();
    if !status.is_success() {
        return Err(CallError::Status(status.as_u16()));
    }
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Ok((content_type, resp.bytes().await?))
}

/// Just enough of a JSON-RPC response to tell success from failure. Deserializing into it
/// still checks that the whole body is well-formed JSON, but skips every other member
/// without building it.
#[derive(Deserialize)]
struct Outcome {
    error: Option<serde::de::IgnoredAny>,
    result: Option<OutcomeResult>,
}

#[derive(Deserialize)]
struct OutcomeResult {
    #[serde(rename = "isError", default)]
    is_error: bool,
}

/// `Ok` when the body holds a successful JSON-RPC response that is not a tool's `isError`
/// result; a failure is parsed in full, so it reads exactly as [`rpc_result`] reports it.
pub fn check_reply(content_type: &str, body: &[u8]) -> Result<(), CallError> {
    if !content_type.starts_with("text/event-stream") {
        if let Ok(Outcome {
            error: None,
            result: Some(OutcomeResult { is_error: false }),
        }) = serde_json::from_slice::<Outcome>(body)
        {
            return Ok(());
        }
    }
    rpc_result(parse_reply(content_type, body)?).map(drop)
}

/// Finds the JSON-RPC response in a body: the whole body for `application/json`, else the
/// first SSE event whose data is a response (notifications before it are skipped).
pub fn parse_reply(content_type: &str, body: &[u8]) -> Result<Value, CallError> {
    let text = std::str::from_utf8(body).map_err(|e| CallError::BadResponse(e.to_string()))?;
    if !content_type.starts_with("text/event-stream") {
        return serde_json::from_str(text).map_err(|e| CallError::BadResponse(e.to_string()));
    }
    let mut data = String::new();
    // A trailing empty line flushes the last event even when the stream did not end with one.
    for line in text.lines().chain(std::iter::once("")) {
        if let Some(chunk) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(chunk.strip_prefix(' ').unwrap_or(chunk));
        } else if line.is_empty() && !data.is_empty() {
            if let Ok(value) = serde_json::from_str::<Value>(&data) {
                if value.get("result").is_some() || value.get("error").is_some() {
                    return Ok(value);
                }
            }
            data.clear();
        }
    }
    Err(CallError::BadResponse(
        "no JSON-RPC response in event stream".into(),
    ))
}

/// Turns a JSON-RPC response into its result, mapping `error` and `isError: true` to errors.
pub fn rpc_result(mut reply: Value) -> Result<Value, CallError> {
    if let Some(err) = reply.get("error") {
        return Err(CallError::Rpc {
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        });
    }
    let result = reply
        .get_mut("result")
        .map(Value::take)
        .ok_or_else(|| CallError::BadResponse("neither result nor error".into()))?;
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let text = result
            .pointer("/content/0/text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        return Err(CallError::Tool(text));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateless_requests_carry_the_envelope_and_route_by_header() {
        let http = http_client().unwrap();
        let mut client = Session::stateless(&http, "http://127.0.0.1:9/", "t").unwrap();
        let (post, len) = client.prepare("tools/call", Some(json!({"name": "read_note"})));
        let req = post.build().unwrap();
        let body: Value = serde_json::from_slice(req.body().unwrap().as_bytes().unwrap()).unwrap();
        assert_eq!(len, req.body().unwrap().as_bytes().unwrap().len());
        let meta = &body["params"]["_meta"];
        assert_eq!(
            meta["io.modelcontextprotocol/protocolVersion"],
            STATELESS_VERSION
        );
        assert!(meta["io.modelcontextprotocol/clientCapabilities"].is_object());
        assert_eq!(req.headers()[METHOD_HEADER], "tools/call");
        assert_eq!(req.headers()[NAME_HEADER], "read_note");
        assert_eq!(req.headers()[VERSION_HEADER], STATELESS_VERSION);
        assert!(req.headers().get(SESSION_HEADER).is_none());
        // The session-based client sends neither.
        let mut session = Session {
            stateless: false,
            ..client.fork(1)
        };
        let (post, _) = session.prepare("tools/call", Some(json!({"name": "read_note"})));
        let req = post.build().unwrap();
        let body: Value = serde_json::from_slice(req.body().unwrap().as_bytes().unwrap()).unwrap();
        assert!(body["params"].get("_meta").is_none());
        assert!(req.headers().get(METHOD_HEADER).is_none());
    }

    #[test]
    fn parses_plain_json() {
        let v = parse_reply(
            "application/json",
            br#"{"jsonrpc":"2.0","id":3,"result":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(rpc_result(v).unwrap()["x"], 1);
    }

    #[test]
    fn parses_event_stream_after_notifications() {
        let body =
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                    event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":4,\n\
                    data: \"result\":{\"ok\":true}}\n";
        let v = parse_reply("text/event-stream; charset=utf-8", body.as_bytes()).unwrap();
        assert_eq!(v["id"], 4);
        assert_eq!(rpc_result(v).unwrap()["ok"], true);
    }

    #[test]
    fn maps_errors() {
        let rpc = json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}});
        assert_eq!(rpc_result(rpc).unwrap_err().kind(), "JSON-RPC -32602");
        let tool = json!({"jsonrpc":"2.0","id":1,"result":{"isError":true,
            "content":[{"type":"text","text":"not found"}]}});
        let err = rpc_result(tool).unwrap_err();
        assert_eq!(err.kind(), "tool error (isError)");
        assert!(err.to_string().contains("not found"));
        assert!(parse_reply("text/event-stream", b"data: {\"jsonrpc\":\"2.0\"}\n\n").is_err());
    }

    #[test]
    fn check_reply_tells_success_from_every_failure() {
        let json = "application/json";
        let ok = br#"{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"{\"a\":1}"}],"structuredContent":{"a":[1,{"b":null}]},"isError":false}}"#;
        assert!(check_reply(json, ok).is_ok());
        assert!(check_reply(json, br#"{"jsonrpc":"2.0","id":2,"result":{}}"#).is_ok());
        let tool = br#"{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"no such note"}],"isError":true}}"#;
        let err = check_reply(json, tool).unwrap_err();
        assert_eq!(err.kind(), "tool error (isError)");
        assert!(err.to_string().contains("no such note"));
        let rpc = br#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"nope"}}"#;
        assert_eq!(
            check_reply(json, rpc).unwrap_err().kind(),
            "JSON-RPC -32601"
        );
        // Malformed JSON anywhere in the body, even in a member the check skips, is an error.
        let broken = br#"{"jsonrpc":"2.0","id":2,"result":{"structuredContent":{"a":[1,}}}"#;
        assert_eq!(
            check_reply(json, broken).unwrap_err().kind(),
            "bad response"
        );
        assert_eq!(
            check_reply(json, br#"{"jsonrpc":"2.0","id":2}"#)
                .unwrap_err()
                .kind(),
            "bad response"
        );
        let sse = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"isError\":true,\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}}\n\n";
        assert_eq!(
            check_reply("text/event-stream", sse.as_bytes())
                .unwrap_err()
                .kind(),
            "tool error (isError)"
        );
    }

    #[test]
    fn token_carries_contract_claims() {
        let token = mint_token(
            "s3cret-s3cret-s3cret-s3cret-s3cret",
            "http://b.invalid",
            "u1",
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_audience(&["http://b.invalid"]);
        validation.set_issuer(&["http://b.invalid"]);
        let data = jsonwebtoken::decode::<Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(b"s3cret-s3cret-s3cret-s3cret-s3cret"),
            &validation,
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "u1");
        assert!(data.claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        assert_eq!(user_id(0), "bench-user-0001");
    }
}
