//! The Streamable HTTP transport: sessions, status codes, headers, JSON-RPC errors.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn initialize_mints_a_session_for_each_supported_revision() {
    let app = spawn_app().await;
    let token = app.token("alice");
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let resp = app
            .post(&token, None)
            .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
                "protocolVersion": version, "capabilities": {}, "clientInfo": {"name":"t","version":"1"}}}))
            .send()
            .await
            .unwrap();
        let sid = header(resp.headers(), "mcp-session-id");
        let (status, body) = status_json(resp).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            sid.len() >= 32,
            "session id carries at least 128 bits: {sid}"
        );
        assert_eq!(body["result"]["protocolVersion"], version);
        assert!(body["result"]["capabilities"]["tools"].is_object());
    }
}

#[tokio::test]
async fn unknown_client_revision_gets_the_newest() {
    let app = spawn_app().await;
    let resp = app
        .post(&app.token("alice"), None)
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name":"t","version":"1"}}}))
        .send()
        .await
        .unwrap();
    let (_, body) = status_json(resp).await;
    assert_eq!(body["result"]["protocolVersion"], LATEST);
}

#[tokio::test]
async fn initialize_without_protocol_version_is_invalid_params_and_mints_nothing() {
    let app = spawn_app().await;
    let resp = app
        .post(&app.token("alice"), None)
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("mcp-session-id").is_none());
    let (_, body) = status_json(resp).await;
    assert_eq!(body["error"]["code"], -32602);
}

#[tokio::test]
async fn client_notifications_and_responses_get_202_with_no_body() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let sid = app.session(&token).await;
    for msg in [
        json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}}),
        json!({"jsonrpc":"2.0","id":"s-1","result":{}}),
    ] {
        let resp = app
            .post(&token, Some(&sid))
            .json(&msg)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        assert!(resp.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn request_without_session_header_is_400() {
    let app = spawn_app().await;
    let resp = app
        .post(&app.token("alice"), None)
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], -32600);
}

#[tokio::test]
async fn unknown_session_is_404() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let status = app
        .ping_status(&token, "0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleted_session_is_404_and_delete_twice_is_404() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let sid = app.session(&token).await;
    let del = |sid: String| {
        app.client
            .delete(format!("{}/mcp", app.base))
            .bearer_auth(&token)
            .header("mcp-session-id", sid)
            .send()
    };
    assert_eq!(
        del(sid.clone()).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let resp = app
        .post(&token, Some(&sid))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(del(sid).await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn expired_session_is_404() {
    let app = spawn_app_with(|c| c.session_ttl = Duration::from_millis(600)).await;
    let token = app.token("alice");
    let sid = app.session(&token).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.ping_status(&token, &sid).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn activity_keeps_a_session_alive_past_its_ttl() {
    let app = spawn_app_with(|c| c.session_ttl = Duration::from_millis(800)).await;
    let token = app.token("alice");
    let sid = app.session(&token).await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let body = app.rpc(&token, &sid, "ping", json!({})).await;
        assert_eq!(body["result"], json!({}));
    }
}

#[tokio::test]
async fn get_opens_the_sessions_event_stream() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let sid = app.session(&token).await;
    let resp = app.get_stream(&token, &sid, "text/event-stream").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(header(resp.headers(), "content-type").starts_with("text/event-stream"));
    let unknown = app.get_stream(&token, "nope", "text/event-stream").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn accept_without_both_types_is_406() {
    let app = spawn_app().await;
    let token = app.token("alice");
    for accept in ["application/json", "text/event-stream", "text/html"] {
        let resp = app
            .client
            .post(format!("{}/mcp", app.base))
            .bearer_auth(&token)
            .header("accept", accept)
            .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":LATEST}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE, "{accept}");
    }
    let sid = app.session(&token).await;
    let get = app.get_stream(&token, &sid, "application/json").await;
    assert_eq!(get.status(), StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn every_supported_protocol_header_is_accepted_mid_session_and_others_are_400() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let sid = app.session(&token).await;
    let ping = |version: &'static str| {
        app.client
            .post(format!("{}/mcp", app.base))
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &sid)
            .header("mcp-protocol-version", version)
            .json(&json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
            .send()
    };
    for v in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        assert_eq!(ping(v).await.unwrap().status(), StatusCode::OK, "{v}");
    }
    for v in ["2024-11-05", "1999-01-01", "latest"] {
        assert_eq!(
            ping(v).await.unwrap().status(),
            StatusCode::BAD_REQUEST,
            "{v}"
        );
    }
}

#[tokio::test]
async fn foreign_origin_is_403_and_own_origin_is_allowed() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let send = |origin: String| {
        app.post(&token, None)
            .header("origin", origin)
            .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":LATEST}}))
            .send()
    };
    assert_eq!(
        send("https://evil.example".into()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(app.public_url.clone()).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn malformed_json_is_a_parse_error() {
    let app = spawn_app().await;
    let resp = app
        .post(&app.token("alice"), None)
        .body("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], -32700);
    assert_eq!(body["id"], Value::Null);
}

#[tokio::test]
async fn unknown_method_bad_params_and_ping() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let sid = app.session(&token).await;
    let unknown = app.rpc(&token, &sid, "notes/explode", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601);
    let no_name = app
        .rpc(&token, &sid, "tools/call", json!({"arguments": {}}))
        .await;
    assert_eq!(no_name["error"]["code"], -32602);
    let bad_tool = app
        .rpc(&token, &sid, "tools/call", json!({"name": "format_disk"}))
        .await;
    assert_eq!(bad_tool["error"]["code"], -32602);
    let bad_args = app
        .rpc(
            &token,
            &sid,
            "tools/call",
            json!({"name": "read_note", "arguments": "x.md"}),
        )
        .await;
    assert_eq!(bad_args["error"]["code"], -32602);
    let ping = app.rpc(&token, &sid, "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
}

#[tokio::test]
async fn logging_set_level_accepts_known_levels_only() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let sid = app.session(&token).await;
    let ok = app
        .rpc(
            &token,
            &sid,
            "logging/setLevel",
            json!({"level": "warning"}),
        )
        .await;
    assert_eq!(ok["result"], json!({}));
    let bad = app
        .rpc(&token, &sid, "logging/setLevel", json!({"level": "loud"}))
        .await;
    assert_eq!(bad["error"]["code"], -32602);
}

#[tokio::test]
async fn batches_only_in_2025_03_26_sessions() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let batch = json!([
        {"jsonrpc":"2.0","id":1,"method":"ping"},
        {"jsonrpc":"2.0","method":"notifications/initialized"},
        {"jsonrpc":"2.0","id":2,"method":"tools/list"}
    ]);
    let old = app.session_at(&token, "2025-03-26").await;
    let resp = app
        .post(&token, Some(&old))
        .header("mcp-protocol-version", "2025-03-26")
        .json(&batch)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK);
    let answers = body.as_array().expect("batch answer is an array");
    assert_eq!(
        answers.len(),
        2,
        "one answer per request, none for the notification"
    );
    let new = app.session(&token).await;
    let resp = app
        .post(&token, Some(&new))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn server_discover_probe_is_told_to_fall_back_to_initialize() {
    let app = spawn_app().await;
    let resp = app
        .post(&app.token("alice"), None)
        .header("mcp-protocol-version", "2026-07-28")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["error"]["code"], -32022);
    let supported = body["error"]["data"]["supported"].as_array().unwrap();
    assert!(supported.contains(&json!("2025-11-25")));
}

#[tokio::test]
async fn oversized_and_overly_nested_bodies_are_refused() {
    let app = spawn_app_with(|c| c.max_body_bytes = 64 * 1024).await;
    let token = app.token("alice");
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"x\":\"{}\"}}}}",
        "a".repeat(70 * 1024)
    );
    let resp = app.post(&token, None).body(big).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let deep = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"x\":{}{}}}}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    let resp = app.post(&token, None).body(deep).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tools_list_describes_every_tool_with_schemas_and_annotations() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let sid = app.session(&token).await;
    let body = app.rpc(&token, &sid, "tools/list", json!({})).await;
    let tools = body["result"]["tools"].as_array().unwrap();
    assert!(tools.len() >= 7);
    for t in tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert_eq!(t["outputSchema"]["type"], "object", "{t}");
        assert!(t["annotations"]["readOnlyHint"].is_boolean());
    }
    let delete = tools.iter().find(|t| t["name"] == "delete_note").unwrap();
    assert_eq!(delete["annotations"]["destructiveHint"], true);
}
