//! JSON-RPC 2.0 envelopes: classifying an incoming message and shaping answers.

use serde_json::{json, Map, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// The stateless revision's "unsupported protocol version" (2026-07-28).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// A quota refused the request (a new session beyond `sessions_per_user`); `data` carries
/// `{code: "quota_exceeded", limit, max, current}`.
pub const QUOTA_EXCEEDED: i64 = -32003;

/// One incoming JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// A client's answer to a request the server sent (sampling, elicitation, ...).
    Response { id: Value, body: Value },
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The error as a full response envelope for request `id` (`null` when unknown).
    pub fn to_response(&self, id: &Value) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({ "jsonrpc": "2.0", "id": id, "error": error })
    }
}

/// A success envelope.
pub fn result_response(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// A notification envelope (server to client).
pub fn notification(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

impl Message {
    /// Classify one JSON value as a JSON-RPC message, or say why it is not one.
    pub fn parse(value: Value) -> Result<Message, RpcError> {
        let Value::Object(mut obj) = value else {
            return Err(RpcError::new(
                INVALID_REQUEST,
                "a JSON-RPC message must be an object",
            ));
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(RpcError::new(
                INVALID_REQUEST,
                "\"jsonrpc\" must be \"2.0\"",
            ));
        }
        let id = obj.remove("id");
        if let Some(id) = &id {
            if !(id.is_string() || id.is_i64() || id.is_u64()) {
                return Err(RpcError::new(
                    INVALID_REQUEST,
                    "\"id\" must be a string or an integer",
                ));
            }
        }
        let params = obj.remove("params");
        if let Some(p) = &params {
            if !(p.is_object() || p.is_array()) {
                return Err(RpcError::new(
                    INVALID_REQUEST,
                    "\"params\" must be an object",
                ));
            }
        }
        match (obj.remove("method"), id) {
            (Some(Value::String(method)), Some(id)) => Ok(Message::Request { id, method, params }),
            (Some(Value::String(method)), None) => Ok(Message::Notification { method, params }),
            (Some(_), _) => Err(RpcError::new(
                INVALID_REQUEST,
                "\"method\" must be a string",
            )),
            (None, Some(id)) if is_response_body(&obj) => Ok(Message::Response {
                id,
                body: Value::Object(obj),
            }),
            (None, Some(_)) if obj.contains_key("result") || obj.contains_key("error") => {
                Err(RpcError::new(
                    INVALID_REQUEST,
                    "a response carries either \"result\" or an \"error\" object with an \
                     integer \"code\" and a string \"message\"",
                ))
            }
            (None, _) => Err(RpcError::new(INVALID_REQUEST, "missing \"method\"")),
        }
    }

    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            Message::Response { .. } => None,
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self, Message::Request { .. })
    }
}

/// A response has exactly one of `result` and `error`, and an error is `{code, message, ..}`
/// (JSON-RPC 2.0, section 5): anything else is not an answer the hub may deliver.
fn is_response_body(obj: &Map<String, Value>) -> bool {
    match (obj.get("result"), obj.get("error")) {
        (Some(_), None) => true,
        (None, Some(error)) => {
            error.get("code").is_some_and(|c| c.is_i64() || c.is_u64())
                && error.get("message").is_some_and(Value::is_string)
        }
        _ => false,
    }
}

/// Depth of the deepest array/object nesting in a JSON text, counted without parsing it, so a
/// hostile body is refused before the parser recurses into it.
pub fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests_notifications_and_responses() {
        let r = Message::parse(json!({"jsonrpc":"2.0","id":1,"method":"ping"})).unwrap();
        assert!(r.is_request());
        let n =
            Message::parse(json!({"jsonrpc":"2.0","method":"notifications/initialized"})).unwrap();
        assert_eq!(n.method(), Some("notifications/initialized"));
        let resp = Message::parse(json!({"jsonrpc":"2.0","id":"s1","result":{}})).unwrap();
        assert!(matches!(resp, Message::Response { .. }));
    }

    #[test]
    fn malformed_envelopes_are_invalid_requests() {
        for bad in [
            json!([]),
            json!({"id":1,"method":"ping"}),
            json!({"jsonrpc":"1.0","id":1,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":1.5,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":null,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":1,"method":7}),
            json!({"jsonrpc":"2.0","id":1,"method":"x","params":"str"}),
            json!({"jsonrpc":"2.0","id":1}),
            json!({"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}),
            json!({"jsonrpc":"2.0","id":1,"error":"boom"}),
        ] {
            assert_eq!(
                Message::parse(bad.clone()).unwrap_err().code,
                INVALID_REQUEST,
                "{bad}"
            );
        }
    }

    #[test]
    fn nesting_depth_ignores_brackets_inside_strings() {
        assert_eq!(nesting_depth(br#"{"a":[1,{"b":"[[[{{"}]}"#), 3);
        assert_eq!(nesting_depth(br#""\"[""#), 0);
    }
}
