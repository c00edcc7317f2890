//! The stateless revision (2026-07-28) beside the session ones: `server/discover`, requests
//! stamped with their version in `_meta` and answered without a session, the version and
//! header rules, cache hints, the removed methods, and users kept apart.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};
use serde_json::{json, Value};
use vault_actors::UserId;

use crate::helpers::*;

const MODERN: &str = "2026-07-28";
const HEADER_MISMATCH: i64 = -32020;
const UNSUPPORTED_VERSION: i64 = -32022;
const INVALID_PARAMS: i64 = -32602;
const METHOD_NOT_FOUND: i64 = -32601;

/// The `_meta` envelope of a 2026-07-28 request.
fn envelope() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "1"},
    })
}

/// `params` with the envelope added.
fn stamped(mut params: Value) -> Value {
    params["_meta"] = envelope();
    params
}

/// The name a well-behaved client mirrors into `Mcp-Name` for `method`.
fn routed_name(method: &str, params: &Value) -> Option<String> {
    let field = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    params[field].as_str().map(str::to_string)
}

/// A session-less POST of `method` with `params` as sent (no envelope added), with the headers
/// a 2026-07-28 client sends.
fn modern(app: &TestApp, token: &str, method: &str, params: &Value) -> RequestBuilder {
    let mut req = app
        .post(token, None)
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", method);
    if let Some(name) = routed_name(method, params) {
        req = req.header("mcp-name", name);
    }
    req.json(&json!({"jsonrpc":"2.0","id":"r1","method":method,"params":params}))
}

/// Send `req`; its status and JSON body.
async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    status_json(req.send().await.expect("send")).await
}

/// A well-formed stateless request; its status and body.
async fn rpc(app: &TestApp, token: &str, method: &str, params: Value) -> (StatusCode, Value) {
    let params = stamped(params);
    send(modern(app, token, method, &params)).await
}

/// A stateless `tools/call` that must succeed; its structured content.
async fn tool(app: &TestApp, token: &str, name: &str, args: Value) -> Value {
    let (status, body) = rpc(
        app,
        token,
        "tools/call",
        json!({"name": name, "arguments": args}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["resultType"], "complete", "{body}");
    assert_eq!(body["result"]["isError"], false, "{name}: {body}");
    let server = &body["result"]["_meta"]["io.modelcontextprotocol/serverInfo"];
    assert_eq!(server["name"], "vault-mcp", "{body}");
    body["result"]["structuredContent"].clone()
}

/// Rows of the user's sessions table.
fn session_rows(app: &TestApp, user: &str) -> i64 {
    let db = rusqlite::Connection::open(app.data.join("index").join(format!("{user}.sqlite")))
        .expect("open the user's index");
    db.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .expect("count sessions")
}

#[tokio::test]
async fn server_discover_describes_the_server_and_every_revision() {
    let app = spawn_app().await;
    let (status, body) = rpc(&app, &app.token("alice"), "server/discover", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], "r1");
    let result = &body["result"];
    assert_eq!(result["resultType"], "complete");
    let versions = result["supportedVersions"].as_array().unwrap();
    for v in [MODERN, "2025-11-25", "2025-06-18", "2025-03-26"] {
        assert!(versions.contains(&json!(v)), "{v} missing: {result}");
    }
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "vault-mcp"
    );
    assert!(result["capabilities"]["tools"].is_object());
    assert!(result["capabilities"]["resources"].is_object());
    // Subscriptions go through subscriptions/listen in this revision.
    assert_eq!(result["capabilities"]["resources"]["subscribe"], true);
    assert_eq!(result["capabilities"]["resources"]["listChanged"], true);
    assert!(result["instructions"]
        .as_str()
        .unwrap()
        .contains("read_note"));
    assert!(result["ttlMs"].as_u64().is_some());
}

#[tokio::test]
async fn tools_run_without_a_session_and_write_no_session_row() {
    let app = spawn_app().await;
    let token = app.token("alice");
    tool(
        &app,
        &token,
        "write_note",
        json!({"path": "plans/trip.md", "body": "# Trip\nPack the tent. #travel"}),
    )
    .await;
    let read = tool(&app, &token, "read_note", json!({"path": "plans/trip.md"})).await;
    assert!(
        read["body"].as_str().unwrap().contains("Pack the tent"),
        "{read}"
    );
    let info = tool(&app, &token, "vault_info", json!({})).await;
    assert_eq!(info["notes"], 1);
    assert_eq!(info["sessions"], 0, "{info}");
    assert_eq!(session_rows(&app, "alice"), 0);

    // The session flow on the same server still counts and stores its session.
    let sid = app.session(&token).await;
    let via_session = app
        .ok(&token, &sid, "read_note", json!({"path": "plans/trip.md"}))
        .await;
    assert_eq!(via_session["body"], read["body"]);
    assert_eq!(
        app.ok(&token, &sid, "vault_info", json!({})).await["sessions"],
        1
    );
    assert_eq!(session_rows(&app, "alice"), 1);
}

#[tokio::test]
async fn a_missing_meta_version_is_refused_and_old_clients_keep_their_guidance() {
    let app = spawn_app().await;
    let token = app.token("alice");
    // A 2026-07-28 client (its header says so) that forgot the envelope.
    let bare = json!({});
    let (status, body) = send(modern(&app, &token, "tools/list", &bare)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], INVALID_PARAMS, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("io.modelcontextprotocol/protocolVersion"));
    assert_eq!(body["id"], "r1");

    // The version without the client's capabilities.
    let mut half = json!({});
    half["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": MODERN});
    let (status, body) = send(modern(&app, &token, "tools/list", &half)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], INVALID_PARAMS, "{body}");

    // A client of the session revisions without a session still hears how to start one.
    let (status, body) = send(
        app.post(&token, None)
            .json(&json!({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("send initialize first"));
}

#[tokio::test]
async fn an_unsupported_version_is_refused_with_the_supported_ones() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let mut params = json!({});
    params["_meta"] = envelope();
    params["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let (status, body) = send(
        app.post(&token, None)
            .header("mcp-protocol-version", "2099-01-01")
            .header("mcp-method", "server/discover")
            .json(&json!({"jsonrpc":"2.0","id":5,"method":"server/discover","params":params})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["id"], 5);
    assert_eq!(body["error"]["code"], UNSUPPORTED_VERSION, "{body}");
    assert_eq!(body["error"]["data"]["requested"], "2099-01-01");
    let supported = body["error"]["data"]["supported"].as_array().unwrap();
    assert!(supported.contains(&json!(MODERN)));
    assert!(supported.contains(&json!("2025-11-25")));
}

#[tokio::test]
async fn headers_that_disagree_with_the_body_are_refused() {
    let app = spawn_app().await;
    let token = app.token("alice");
    tool(
        &app,
        &token,
        "write_note",
        json!({"path": "a.md", "body": "alpha"}),
    )
    .await;
    let call = stamped(json!({"name": "read_note", "arguments": {"path": "a.md"}}));
    let body = |method: &str| json!({"jsonrpc":"2.0","id":9,"method":method,"params":call});
    let base = || {
        app.post(&token, None)
            .header("mcp-protocol-version", MODERN)
    };

    // Mcp-Method names another method than the body.
    let (status, answer) = send(
        base()
            .header("mcp-method", "tools/list")
            .header("mcp-name", "read_note")
            .json(&body("tools/call")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], HEADER_MISMATCH, "{answer}");
    assert_eq!(answer["id"], 9);

    // Mcp-Name names another tool than the body: a proxy would route one, the server run another.
    let (status, answer) = send(
        base()
            .header("mcp-method", "tools/call")
            .header("mcp-name", "delete_note")
            .json(&body("tools/call")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], HEADER_MISMATCH, "{answer}");

    // Required headers left out.
    for (method_header, name_header) in [(None, Some("read_note")), (Some("tools/call"), None)] {
        let mut req = base();
        if let Some(m) = method_header {
            req = req.header("mcp-method", m);
        }
        if let Some(n) = name_header {
            req = req.header("mcp-name", n);
        }
        let (status, answer) = send(req.json(&body("tools/call"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["code"], HEADER_MISMATCH, "{answer}");
    }

    // resources/read mirrors the uri, base64-wrapped when the client chooses to.
    let uri = "note:///a.md";
    let read = stamped(json!({"uri": uri}));
    let (status, answer) = send(
        base()
            .header("mcp-method", "resources/read")
            .header("mcp-name", "note:///b.md")
            .json(&json!({"jsonrpc":"2.0","id":10,"method":"resources/read","params":read})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], HEADER_MISMATCH);
    use base64::Engine;
    let wrapped = format!(
        "=?base64?{}?=",
        base64::engine::general_purpose::STANDARD.encode(uri)
    );
    let (status, answer) = send(
        base()
            .header("mcp-method", "resources/read")
            .header("mcp-name", wrapped)
            .json(&json!({"jsonrpc":"2.0","id":11,"method":"resources/read","params":read})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let text = answer["result"]["contents"][0]["text"].as_str().unwrap();
    assert!(text.contains("alpha"), "{answer}");

    // Nothing was run by the refused requests: the note is still there.
    let listed = tool(&app, &token, "list_notes", json!({})).await;
    assert_eq!(listed["notes"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn the_version_header_must_agree_with_meta() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let params = stamped(json!({}));
    for header in [Some("2025-11-25"), None] {
        let mut req = app.post(&token, None).header("mcp-method", "tools/list");
        if let Some(h) = header {
            req = req.header("mcp-protocol-version", h);
        }
        let (status, body) =
            send(req.json(&json!({"jsonrpc":"2.0","id":3,"method":"tools/list","params":params})))
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{header:?}: {body}");
        assert_eq!(body["error"]["code"], HEADER_MISMATCH, "{header:?}: {body}");
    }
}

#[tokio::test]
async fn list_results_carry_cache_hints() {
    let app = spawn_app().await;
    let token = app.token("alice");
    tool(
        &app,
        &token,
        "write_note",
        json!({"path": "n.md", "body": "x"}),
    )
    .await;
    for (method, key, scope, fresh) in [
        ("tools/list", "tools", "public", true),
        ("prompts/list", "prompts", "public", true),
        (
            "resources/templates/list",
            "resourceTemplates",
            "public",
            true,
        ),
        ("resources/list", "resources", "private", false),
    ] {
        let (status, body) = rpc(&app, &token, method, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{method}: {body}");
        let result = &body["result"];
        assert!(
            result[key].as_array().is_some_and(|a| !a.is_empty()),
            "{method}: {result}"
        );
        assert_eq!(result["resultType"], "complete", "{method}");
        assert_eq!(result["cacheScope"], scope, "{method}");
        let ttl = result["ttlMs"].as_u64().expect("ttlMs");
        assert_eq!(ttl > 0, fresh, "{method}: ttlMs {ttl}");
    }
    let (_, read) = rpc(
        &app,
        &token,
        "resources/read",
        json!({"uri": "note:///n.md"}),
    )
    .await;
    assert_eq!(read["result"]["cacheScope"], "private", "{read}");
    assert_eq!(read["result"]["ttlMs"], 0);

    // The session revisions' answers stay as they were.
    let sid = app.session(&token).await;
    let old = app.rpc(&token, &sid, "tools/list", json!({})).await;
    assert!(old["result"].get("ttlMs").is_none());
    assert!(old["result"].get("resultType").is_none());
}

#[tokio::test]
async fn methods_removed_by_the_revision_are_not_found() {
    let app = spawn_app().await;
    let token = app.token("alice");
    for (method, params) in [
        ("ping", json!({})),
        ("logging/setLevel", json!({"level": "debug"})),
        ("resources/subscribe", json!({"uri": "note:///a.md"})),
        ("resources/unsubscribe", json!({"uri": "note:///a.md"})),
        ("no/such/method", json!({})),
    ] {
        let (status, body) = rpc(&app, &token, method, params).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {body}");
        assert_eq!(body["error"]["code"], METHOD_NOT_FOUND, "{method}: {body}");
    }
    // In a session they still work.
    let sid = app.session(&token).await;
    assert_eq!(app.ping_status(&token, &sid).await, StatusCode::OK);
}

#[tokio::test]
async fn a_stateless_request_sees_only_its_own_users_notes() {
    let app = spawn_app().await;
    let alice = app.token("alice");
    let bob = app.token("bob");
    tool(
        &app,
        &alice,
        "write_note",
        json!({"path": "secret.md", "body": "alice's launch codes"}),
    )
    .await;

    let (status, body) = rpc(
        &app,
        &bob,
        "tools/call",
        json!({"name": "read_note", "arguments": {"path": "secret.md"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert_eq!(body["result"]["structuredContent"]["code"], "not_found");
    let found = tool(&app, &bob, "search_notes", json!({"query": "launch"})).await;
    assert!(hit_paths(&found).is_empty(), "{found}");
    let (_, listed) = rpc(&app, &bob, "resources/list", json!({})).await;
    assert_eq!(listed["result"]["resources"], json!([]), "{listed}");
    let (_, read) = rpc(
        &app,
        &bob,
        "resources/read",
        json!({"uri": "note:///secret.md"}),
    )
    .await;
    assert!(read.get("error").is_some(), "{read}");

    // Alice still reads it, statelessly and through a session.
    let mine = tool(&app, &alice, "read_note", json!({"path": "secret.md"})).await;
    assert!(mine["body"].as_str().unwrap().contains("launch codes"));
    assert_eq!(session_rows(&app, "bob"), 0);
}

#[tokio::test]
async fn a_stateless_notification_is_accepted() {
    let app = spawn_app().await;
    let resp = app
        .post(&app.token("alice"), None)
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "notifications/cancelled")
        .json(&json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"r1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

/// Open a `subscriptions/listen` stream with `filter`; the reader, past its acknowledgment
/// (returned too).
async fn listen(app: &TestApp, token: &str, id: &str, filter: Value) -> (SseReader, Value) {
    let params = stamped(json!({ "notifications": filter }));
    let resp = app
        .post(token, None)
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "subscriptions/listen")
        .json(&json!({"jsonrpc":"2.0","id":id,"method":"subscriptions/listen","params":params}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut reader = SseReader::new(resp);
    let ack = reader.next().await.expect("acknowledgment");
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        id
    );
    (reader, ack)
}

/// The next notification of a listen stream, checked to belong to subscription `id`.
async fn next_change(reader: &mut SseReader, id: &str) -> Value {
    let msg = reader.next().await.expect("a change notification");
    assert_eq!(
        msg["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], id,
        "{msg}"
    );
    msg
}

#[tokio::test]
async fn subscriptions_listen_receives_changes_made_by_other_requests() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let filter = json!({"resourcesListChanged": true, "resourceSubscriptions": ["note:///a.md"]});
    let (mut reader, ack) = listen(&app, &token, "L1", filter.clone()).await;
    assert_eq!(ack["params"]["notifications"], filter);

    tool(
        &app,
        &token,
        "write_note",
        json!({"path": "a.md", "body": "one"}),
    )
    .await;
    let mut seen = [
        next_change(&mut reader, "L1").await,
        next_change(&mut reader, "L1").await,
    ];
    seen.sort_by_key(|m| m["method"].as_str().unwrap_or("").to_string());
    assert_eq!(seen[0]["method"], "notifications/resources/list_changed");
    assert_eq!(seen[1]["method"], "notifications/resources/updated");
    assert_eq!(seen[1]["params"]["uri"], "note:///a.md");

    // An edit through a session reaches the stateless listener as well.
    let sid = app.session(&token).await;
    app.ok(
        &token,
        &sid,
        "write_note",
        json!({"path": "a.md", "body": "two"}),
    )
    .await;
    let update = next_change(&mut reader, "L1").await;
    assert_eq!(
        update["method"], "notifications/resources/updated",
        "{update}"
    );
}

#[tokio::test]
async fn subscriptions_listen_follows_the_tokens_folders_and_its_user() {
    let app = spawn_app().await;
    let alice = app.token("alice");
    let shared_only = app
        .keys
        .mint(
            &UserId::parse("alice").unwrap(),
            Duration::from_secs(3600),
            &["notes:read:shared".to_string()],
        )
        .unwrap();
    let (mut scoped, ack) = listen(
        &app,
        &shared_only,
        "S",
        json!({"resourceSubscriptions": ["note:///work/x.md", "note:///shared/y.md"]}),
    )
    .await;
    assert_eq!(
        ack["params"]["notifications"],
        json!({"resourceSubscriptions": ["note:///shared/y.md"]})
    );
    let bob = app.token("bob");
    let (mut bobs, _) = listen(
        &app,
        &bob,
        "B",
        json!({"resourceSubscriptions": ["note:///work/x.md", "note:///b.md"]}),
    )
    .await;

    tool(
        &app,
        &alice,
        "write_note",
        json!({"path": "work/x.md", "body": "x"}),
    )
    .await;
    tool(
        &app,
        &alice,
        "write_note",
        json!({"path": "shared/y.md", "body": "y"}),
    )
    .await;
    tool(
        &app,
        &bob,
        "write_note",
        json!({"path": "b.md", "body": "b"}),
    )
    .await;

    // The folder token hears of its folder only, and no list changes it did not ask for.
    let first = next_change(&mut scoped, "S").await;
    assert_eq!(first["method"], "notifications/resources/updated");
    assert_eq!(first["params"]["uri"], "note:///shared/y.md", "{first}");
    // Bob hears of his own write, not of Alice's work/x.md made before it.
    let bobs_first = next_change(&mut bobs, "B").await;
    assert_eq!(bobs_first["params"]["uri"], "note:///b.md", "{bobs_first}");
}

#[tokio::test]
async fn subscriptions_listen_without_a_filter_is_refused() {
    let app = spawn_app().await;
    let (status, body) = rpc(&app, &app.token("alice"), "subscriptions/listen", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], INVALID_PARAMS, "{body}");
}

/// A stateless `tools/call` from a client that can answer elicitations; the whole response.
async fn call_eliciting(app: &TestApp, token: &str, params: Value) -> (StatusCode, Value) {
    let mut params = stamped(params);
    params["_meta"]["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});
    send(modern(app, token, "tools/call", &params)).await
}

/// Ask to delete `path`: the `input_required` result.
async fn ask_delete(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body) = call_eliciting(
        app,
        token,
        json!({"name": "delete_note", "arguments": {"path": path}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = body["result"].clone();
    assert_eq!(result["resultType"], "input_required", "{result}");
    let ask = &result["inputRequests"]["confirm_delete"];
    assert_eq!(ask["method"], "elicitation/create", "{result}");
    assert!(ask["params"]["message"].as_str().unwrap().contains(path));
    assert!(result["requestState"].is_string());
    result
}

/// Retry the delete of `path` with `answer` to the confirmation and the `state` handed out.
async fn retry_delete(
    app: &TestApp,
    token: &str,
    path: &str,
    state: &Value,
    answer: Value,
) -> (StatusCode, Value) {
    call_eliciting(
        app,
        token,
        json!({"name": "delete_note", "arguments": {"path": path},
               "inputResponses": {"confirm_delete": answer}, "requestState": state}),
    )
    .await
}

async fn note_count(app: &TestApp, token: &str) -> usize {
    let listed = tool(app, token, "list_notes", json!({})).await;
    listed["notes"].as_array().unwrap().len()
}

#[tokio::test]
async fn delete_asks_for_input_then_deletes_on_the_confirmed_retry() {
    let app = spawn_app_with(|c| c.confirm_deletes = true).await;
    let token = app.token("alice");
    tool(
        &app,
        &token,
        "write_note",
        json!({"path": "old.md", "body": "bye"}),
    )
    .await;

    let asked = ask_delete(&app, &token, "old.md").await;
    assert_eq!(
        note_count(&app, &token).await,
        1,
        "nothing is deleted before the answer"
    );

    let accept = json!({"action": "accept", "content": {"confirm": true}});
    let (status, body) = retry_delete(&app, &token, "old.md", &asked["requestState"], accept).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["resultType"], "complete", "{body}");
    assert_eq!(body["result"]["isError"], false, "{body}");
    assert_eq!(note_count(&app, &token).await, 0);
}

#[tokio::test]
async fn a_declined_or_outdated_confirmation_deletes_nothing() {
    let app = spawn_app_with(|c| c.confirm_deletes = true).await;
    let token = app.token("alice");
    tool(
        &app,
        &token,
        "write_note",
        json!({"path": "keep.md", "body": "v1"}),
    )
    .await;

    let asked = ask_delete(&app, &token, "keep.md").await;
    let decline = json!({"action": "decline"});
    let (_, body) = retry_delete(&app, &token, "keep.md", &asked["requestState"], decline).await;
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert_eq!(body["result"]["structuredContent"]["code"], "declined");

    // Confirmed, but the note changed after the question: the confirmed version is gone.
    let asked = ask_delete(&app, &token, "keep.md").await;
    tool(
        &app,
        &token,
        "write_note",
        json!({"path": "keep.md", "body": "v2"}),
    )
    .await;
    let accept = json!({"action": "accept", "content": {"confirm": true}});
    let (_, body) = retry_delete(&app, &token, "keep.md", &asked["requestState"], accept).await;
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert_eq!(note_count(&app, &token).await, 1);
}

#[tokio::test]
async fn a_request_state_presented_by_another_user_or_altered_is_refused() {
    let app = spawn_app_with(|c| c.confirm_deletes = true).await;
    let alice = app.token("alice");
    let bob = app.token("bob");
    tool(
        &app,
        &alice,
        "write_note",
        json!({"path": "x.md", "body": "alice's"}),
    )
    .await;
    tool(
        &app,
        &bob,
        "write_note",
        json!({"path": "x.md", "body": "bob's"}),
    )
    .await;
    let asked = ask_delete(&app, &alice, "x.md").await;
    let state = asked["requestState"].as_str().unwrap().to_string();
    let accept = json!({"action": "accept", "content": {"confirm": true}});

    let (status, body) = retry_delete(&app, &bob, "x.md", &json!(state), accept.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], INVALID_PARAMS);
    let last = if state.ends_with('A') { 'B' } else { 'A' };
    let altered = format!("{}{last}", &state[..state.len() - 1]);
    let (status, _) = retry_delete(&app, &alice, "x.md", &json!(altered), accept).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(note_count(&app, &alice).await, 1);
    assert_eq!(note_count(&app, &bob).await, 1);
    let audit = std::fs::read_to_string(app.data.join("audit/audit.jsonl")).unwrap_or_default();
    assert!(audit.contains("foreign_request_state"), "{audit}");
    assert!(audit.contains("unknown_request_state"), "{audit}");
}

/// A stateless `tools/call` of `suggest_tags` on `path` from a client that declares
/// `capabilities`, with the retry's `extra` params (`inputResponses`, `requestState`).
async fn call_suggest(
    app: &TestApp,
    token: &str,
    capabilities: Value,
    path: &str,
    extra: Value,
) -> (StatusCode, Value) {
    let mut params = json!({"name": "suggest_tags", "arguments": {"path": path}});
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    let mut params = stamped(params);
    params["_meta"]["io.modelcontextprotocol/clientCapabilities"] = capabilities;
    send(modern(app, token, "tools/call", &params)).await
}

/// Ask for tag suggestions on `path` from a sampling client: the `input_required` result.
async fn ask_tags(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body) = call_suggest(app, token, json!({"sampling": {}}), path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = body["result"].clone();
    assert_eq!(result["resultType"], "input_required", "{result}");
    assert!(result["requestState"].is_string(), "{result}");
    result
}

/// The model's message answering the sampling request.
fn model_says(text: &str) -> Value {
    json!({"role": "assistant", "content": {"type": "text", "text": text}, "model": "test-model"})
}

#[tokio::test]
async fn suggest_tags_asks_for_a_sampling_input_then_answers_on_the_retry() {
    let app = spawn_app().await;
    let token = app.token("alice");
    tool(
        &app,
        &token,
        "write_note",
        json!({"path": "garden.md", "body": "# Tomatoes\n\nWatering the plants. #gardening"}),
    )
    .await;
    let before = tool(&app, &token, "read_note", json!({"path": "garden.md"})).await;

    let asked = ask_tags(&app, &token, "garden.md").await;
    let ask = &asked["inputRequests"]["suggest_tags"];
    assert_eq!(ask["method"], "sampling/createMessage", "{asked}");
    let prompt = ask["params"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(prompt.contains("Suggest up to 5 tags"), "{prompt}");
    assert!(prompt.contains("Watering the plants"), "{prompt}");
    assert!(
        prompt.contains("gardening"),
        "known tags are offered: {prompt}"
    );
    assert_eq!(ask["params"]["messages"][0]["role"], "user");
    assert!(ask["params"]["maxTokens"].as_u64().unwrap() > 0);

    let (status, body) = call_suggest(
        &app,
        &token,
        json!({"sampling": {}}),
        "garden.md",
        json!({"inputResponses": {"suggest_tags": model_says("#Gardening, vegetables, Home Garden")},
               "requestState": asked["requestState"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["result"];
    assert_eq!(result["resultType"], "complete", "{body}");
    assert_eq!(result["isError"], false, "{body}");
    let out = &result["structuredContent"];
    assert_eq!(out["path"], "garden.md");
    assert_eq!(
        out["suggested"],
        json!(["gardening", "vegetables", "home-garden"])
    );
    assert_eq!(out["model"], "test-model");
    let after = tool(&app, &token, "read_note", json!({"path": "garden.md"})).await;
    assert_eq!(after["version"], before["version"], "nothing is written");

    // The note changed after the question: the answer is about a version it no longer has.
    let asked = ask_tags(&app, &token, "garden.md").await;
    tool(
        &app,
        &token,
        "write_note",
        json!({"path": "garden.md", "body": "rewritten"}),
    )
    .await;
    let (_, body) = call_suggest(
        &app,
        &token,
        json!({"sampling": {}}),
        "garden.md",
        json!({"inputResponses": {"suggest_tags": model_says("gardening")},
               "requestState": asked["requestState"]}),
    )
    .await;
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert_eq!(
        body["result"]["structuredContent"]["code"], "conflict",
        "{body}"
    );
}

#[tokio::test]
async fn a_suggest_tags_request_state_of_another_user_or_tool_is_refused() {
    let app = spawn_app_with(|c| c.confirm_deletes = true).await;
    let alice = app.token("alice");
    let bob = app.token("bob");
    for token in [&alice, &bob] {
        tool(
            &app,
            token,
            "write_note",
            json!({"path": "x.md", "body": "some text"}),
        )
        .await;
    }
    let asked = ask_tags(&app, &alice, "x.md").await;
    let retry = |state: Value| json!({"inputResponses": {"suggest_tags": model_says("a, b")}, "requestState": state});

    let (status, body) = call_suggest(
        &app,
        &bob,
        json!({"sampling": {}}),
        "x.md",
        retry(asked["requestState"].clone()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], INVALID_PARAMS, "{body}");

    // A delete's confirmation state does not unlock suggestions, even for the same note.
    let delete_state = ask_delete(&app, &alice, "x.md").await["requestState"].clone();
    let (status, body) = call_suggest(
        &app,
        &alice,
        json!({"sampling": {}}),
        "x.md",
        retry(delete_state),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["error"]["code"], INVALID_PARAMS, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("delete_note"));

    let audit = std::fs::read_to_string(app.data.join("audit/audit.jsonl")).unwrap_or_default();
    assert!(audit.contains("foreign_request_state"), "{audit}");
}

#[tokio::test]
async fn suggest_tags_without_the_sampling_capability_is_a_clear_error() {
    let app = spawn_app().await;
    let token = app.token("alice");
    tool(
        &app,
        &token,
        "write_note",
        json!({"path": "n.md", "body": "text"}),
    )
    .await;
    let (status, body) = call_suggest(&app, &token, json!({}), "n.md", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["result"];
    assert_eq!(result["resultType"], "complete", "{body}");
    assert_eq!(result["isError"], true, "{body}");
    assert_eq!(
        result["structuredContent"]["code"], "client_request_failed",
        "{body}"
    );
    assert!(result["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("sampling"));
}

/// Try to open a listener: the SSE response, or the JSON-RPC answer that refused it.
async fn try_listen(app: &TestApp, token: &str) -> Result<reqwest::Response, Value> {
    let params = stamped(json!({"notifications": {"resourcesListChanged": true}}));
    let resp = modern(app, token, "subscriptions/listen", &params)
        .send()
        .await
        .unwrap();
    if header(resp.headers(), "content-type").starts_with("text/event-stream") {
        Ok(resp)
    } else {
        Err(resp.json().await.unwrap())
    }
}

#[tokio::test]
async fn listeners_beyond_the_sessions_quota_are_refused_until_one_closes() {
    let app = spawn_app_with(|c| c.max_sessions_per_user = 1).await;
    let token = app.token("alice");
    let first = try_listen(&app, &token).await.expect("the first listener");
    let refused = try_listen(&app, &token)
        .await
        .expect_err("a second listener");
    assert_eq!(refused["error"]["code"], -32003, "{refused}");
    assert_eq!(refused["error"]["data"]["limit"], "sessions_per_user");

    // A client that goes away frees its place.
    drop(first);
    let reopened = eventually(Duration::from_secs(5), || async {
        try_listen(&app, &token).await.is_ok()
    })
    .await;
    assert!(reopened, "the closed listener still counts");
}
