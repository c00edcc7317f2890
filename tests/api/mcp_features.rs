//! The MCP machinery beyond tools: streamed answers with progress and log messages,
//! cancellation, server-to-client requests, resources and subscriptions, prompts, completion.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// POST a request on a session and return the raw response.
async fn send(app: &TestApp, token: &str, sid: &str, body: Value) -> reqwest::Response {
    app.post(token, Some(sid)).json(&body).send().await.unwrap()
}

async fn seed(app: &TestApp, token: &str, sid: &str, n: usize) {
    for i in 0..n {
        app.ok(token, sid, "write_note", json!({"path": format!("n/{i:03}.md"), "body": format!("note {i} about [[n/000]] #seed")})).await;
    }
}

#[tokio::test]
async fn long_tool_streams_progress_over_sse_then_its_result() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    seed(&app, &t, &s, 150).await;
    let resp = send(
        &app,
        &t,
        &s,
        json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{
        "name":"rebuild_index","arguments":{},"_meta":{"progressToken":"tok-1"}}}),
    )
    .await;
    let messages = SseReader::new(resp).rest().await;
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert!(progress.len() >= 3, "progress notifications: {messages:?}");
    assert!(progress
        .iter()
        .all(|p| p["params"]["progressToken"] == "tok-1" && p["params"]["total"] == 150));
    let values: Vec<u64> = progress
        .iter()
        .map(|p| p["params"]["progress"].as_u64().unwrap())
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "progress only increases: {values:?}"
    );
    let last = messages.last().unwrap();
    assert_eq!(last["id"], 7);
    assert_eq!(last["result"]["structuredContent"]["indexed"], 150);
    // Without a progress token and with default logging the same call is plain JSON.
    let plain = send(&app, &t, &s, json!({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"rebuild_index","arguments":{}}})).await;
    assert!(header(plain.headers(), "content-type").starts_with("application/json"));
}

#[tokio::test]
async fn log_messages_follow_the_sessions_level() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let quiet = app.session(&t).await;
    let chatty = app.session(&t).await;
    app.rpc(&t, &chatty, "logging/setLevel", json!({"level":"info"}))
        .await;
    let write = |i: u32| json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{"name":"write_note","arguments":{"path":"a.md","body":"x"}}});
    let resp = send(&app, &t, &quiet, write(1)).await;
    assert!(
        header(resp.headers(), "content-type").starts_with("application/json"),
        "no log at the default level"
    );
    let resp = send(&app, &t, &chatty, write(2)).await;
    let messages = SseReader::new(resp).rest().await;
    let log = messages
        .iter()
        .find(|m| m["method"] == "notifications/message")
        .expect("a log message");
    assert_eq!(log["params"]["level"], "info");
    assert!(log["params"]["data"].as_str().unwrap().contains("a.md"));
    assert_eq!(messages.last().unwrap()["id"], 2);
    app.rpc(&t, &chatty, "logging/setLevel", json!({"level":"error"}))
        .await;
    let resp = send(&app, &t, &chatty, write(3)).await;
    assert!(header(resp.headers(), "content-type").starts_with("application/json"));
}

#[tokio::test]
async fn cancellation_stops_a_running_tool_and_changes_nothing() {
    let app = spawn_app_with(|c| c.confirm_deletes = true).await;
    let t = app.token("alice");
    let s = app.session_with(&t, json!({"elicitation":{}})).await;
    app.ok(&t, &s, "write_note", json!({"path":"keep.md","body":"x"}))
        .await;
    let resp = send(
        &app,
        &t,
        &s,
        json!({"jsonrpc":"2.0","id":"del-1","method":"tools/call","params":{
        "name":"delete_note","arguments":{"path":"keep.md"}}}),
    )
    .await;
    let mut reader = SseReader::new(resp);
    let ask = reader
        .next()
        .await
        .expect("the tool is running, waiting for confirmation");
    assert_eq!(ask["method"], "elicitation/create");
    let cancel = send(&app, &t, &s, json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"del-1","reason":"changed my mind"}})).await;
    assert_eq!(cancel.status(), StatusCode::ACCEPTED);
    let last = reader.rest().await.pop().expect("an answer");
    assert_eq!(
        last["result"]["structuredContent"]["code"], "cancelled",
        "{last}"
    );
    assert!(app.vault_dir("alice").join("keep.md").exists());
    // The actor is free again: the same session goes on.
    assert_eq!(
        app.ok(&t, &s, "read_note", json!({"path":"keep.md"})).await["body"],
        "x"
    );
}

#[tokio::test]
async fn delete_asks_for_confirmation_by_elicitation_when_configured() {
    let app = spawn_app_with(|c| c.confirm_deletes = true).await;
    let t = app.token("alice");
    let s = app.session_with(&t, json!({"elicitation":{}})).await;
    app.ok(&t, &s, "write_note", json!({"path":"keep.md","body":"x"}))
        .await;
    app.ok(&t, &s, "write_note", json!({"path":"drop.md","body":"x"}))
        .await;
    for (path, answer, deleted) in [
        ("keep.md", json!({"action":"decline"}), false),
        (
            "keep.md",
            json!({"action":"accept","content":{"confirm":false}}),
            false,
        ),
        (
            "drop.md",
            json!({"action":"accept","content":{"confirm":true}}),
            true,
        ),
    ] {
        let resp = send(&app, &t, &s, json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"delete_note","arguments":{"path":path}}})).await;
        let mut reader = SseReader::new(resp);
        let ask = reader.next().await.expect("elicitation request");
        assert_eq!(ask["method"], "elicitation/create");
        assert!(ask["params"]["message"].as_str().unwrap().contains(path));
        let answered = send(
            &app,
            &t,
            &s,
            json!({"jsonrpc":"2.0","id":ask["id"],"result":answer}),
        )
        .await;
        assert_eq!(answered.status(), StatusCode::ACCEPTED);
        let last = reader.rest().await.pop().unwrap();
        assert_eq!(last["id"], 5);
        assert_eq!(last["result"]["isError"], json!(!deleted), "{last}");
        if !deleted {
            assert_eq!(last["result"]["structuredContent"]["code"], "declined");
        }
        assert_eq!(app.vault_dir("alice").join(path).exists(), !deleted);
    }
    // A client without the capability is not asked (the config applies only where it can).
    let plain = app.session(&t).await;
    app.ok(&t, &plain, "delete_note", json!({"path":"keep.md"}))
        .await;
}

#[tokio::test]
async fn suggest_tags_asks_the_clients_model_by_sampling() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session_with(&t, json!({"sampling":{}})).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"trip.md","body":"Hiking in the Alps #travel"}),
    )
    .await;
    let resp = send(&app, &t, &s, json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"suggest_tags","arguments":{"path":"trip.md"}}})).await;
    let mut reader = SseReader::new(resp);
    let ask = reader.next().await.expect("sampling request");
    assert_eq!(ask["method"], "sampling/createMessage");
    let prompt = ask["params"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(prompt.contains("Hiking in the Alps") && prompt.contains("travel"));
    send(&app, &t, &s, json!({"jsonrpc":"2.0","id":ask["id"],"result":{
        "role":"assistant","content":{"type":"text","text":"travel, #Mountains, hiking"},"model":"test-model"}})).await;
    let last = reader.rest().await.pop().unwrap();
    assert_eq!(
        last["result"]["structuredContent"]["suggested"],
        json!(["travel", "mountains", "hiking"])
    );
    assert_eq!(last["result"]["structuredContent"]["model"], "test-model");
    // A client that cannot sample gets a clear tool error.
    let plain = app.session(&t).await;
    assert_eq!(
        app.err_code(&t, &plain, "suggest_tags", json!({"path":"trip.md"}))
            .await,
        "client_request_failed"
    );
}

#[tokio::test]
async fn notes_are_resources_with_paging_templates_and_reads() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    for i in 0..150 {
        app.ok(
            &t,
            &s,
            "write_note",
            json!({"path": format!("r/{i:03} note.md"), "body": format!("body {i}")}),
        )
        .await;
    }
    let mut uris = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let page = app.rpc(&t, &s, "resources/list", params).await;
        for r in page["result"]["resources"].as_array().unwrap() {
            assert_eq!(r["mimeType"], "text/markdown");
            uris.push(r["uri"].as_str().unwrap().to_string());
        }
        match page["result"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(uris.len(), 150);
    assert_eq!(uris[0], "note:///r/000%20note.md");
    let read = app
        .rpc(&t, &s, "resources/read", json!({"uri": uris[3]}))
        .await;
    let content = &read["result"]["contents"][0];
    assert_eq!(content["uri"], uris[3].as_str());
    assert!(content["text"].as_str().unwrap().ends_with("body 3"));
    let missing = app
        .rpc(&t, &s, "resources/read", json!({"uri": "note:///nope.md"}))
        .await;
    assert_eq!(missing["error"]["code"], -32002);
    let bad = app
        .rpc(
            &t,
            &s,
            "resources/read",
            json!({"uri": "file:///etc/passwd"}),
        )
        .await;
    assert_eq!(bad["error"]["code"], -32602);
    let templates = app.rpc(&t, &s, "resources/templates/list", json!({})).await;
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"],
        "note:///{path}"
    );
}

#[tokio::test]
async fn subscriber_is_told_when_another_session_changes_the_note() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let watcher = app.session(&t).await;
    let writer = app.session(&t).await;
    app.ok(
        &t,
        &writer,
        "write_note",
        json!({"path":"watched.md","body":"v1"}),
    )
    .await;
    let sub = app
        .rpc(
            &t,
            &watcher,
            "resources/subscribe",
            json!({"uri":"note:///watched.md"}),
        )
        .await;
    assert_eq!(sub["result"], json!({}));
    let stream = app.get_stream(&t, &watcher, "text/event-stream").await;
    let mut reader = SseReader::new(stream);
    app.ok(
        &t,
        &writer,
        "write_note",
        json!({"path":"other.md","body":"not watched"}),
    )
    .await;
    app.ok(
        &t,
        &writer,
        "write_note",
        json!({"path":"watched.md","body":"v2"}),
    )
    .await;
    let mut updated = None;
    for _ in 0..5 {
        let msg = reader.next().await.expect("a notification");
        if msg["method"] == "notifications/resources/updated" {
            updated = Some(msg);
            break;
        }
    }
    assert_eq!(
        updated.expect("resources/updated")["params"]["uri"],
        "note:///watched.md"
    );
}

#[tokio::test]
async fn prompts_list_get_and_completion_of_paths_and_tags() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"projects/alpha.md","body":"Alpha plan #work"}),
    )
    .await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"projects/beta.md","body":"Beta plan #work #wonder"}),
    )
    .await;
    app.ok(
        &t,
        &s,
        "write_note",
        json!({"path":"home.md","body":"#home"}),
    )
    .await;
    let list = app.rpc(&t, &s, "prompts/list", json!({})).await;
    let names: Vec<&str> = list["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["summarize_note", "notes_about"]);
    let got = app
        .rpc(
            &t,
            &s,
            "prompts/get",
            json!({"name":"summarize_note","arguments":{"path":"projects/alpha.md"}}),
        )
        .await;
    let first = &got["result"]["messages"][0]["content"];
    assert_eq!(first["type"], "resource");
    assert!(first["resource"]["text"]
        .as_str()
        .unwrap()
        .contains("Alpha plan"));
    let about = app
        .rpc(
            &t,
            &s,
            "prompts/get",
            json!({"name":"notes_about","arguments":{"tag":"work"}}),
        )
        .await;
    let text = about["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(
        text.contains("projects/alpha.md")
            && text.contains("projects/beta.md")
            && !text.contains("home.md")
    );
    let bad = app
        .rpc(
            &t,
            &s,
            "prompts/get",
            json!({"name":"summarize_note","arguments":{}}),
        )
        .await;
    assert_eq!(bad["error"]["code"], -32602);
    let paths = app.rpc(&t, &s, "completion/complete", json!({"ref":{"type":"ref/prompt","name":"summarize_note"},"argument":{"name":"path","value":"proj"}})).await;
    assert_eq!(
        paths["result"]["completion"]["values"],
        json!(["projects/alpha.md", "projects/beta.md"])
    );
    let tags = app.rpc(&t, &s, "completion/complete", json!({"ref":{"type":"ref/prompt","name":"notes_about"},"argument":{"name":"tag","value":"wo"}})).await;
    assert_eq!(
        tags["result"]["completion"]["values"],
        json!(["work", "wonder"])
    );
    let template = app.rpc(&t, &s, "completion/complete", json!({"ref":{"type":"ref/resource","uri":"note:///{path}"},"argument":{"name":"path","value":"H"}})).await;
    assert_eq!(
        template["result"]["completion"]["values"],
        json!(["home.md"])
    );
}

#[tokio::test]
async fn concurrent_posts_on_one_session_all_get_their_own_answers() {
    let app = spawn_app().await;
    let t = app.token("alice");
    let s = app.session(&t).await;
    app.rpc(&t, &s, "logging/setLevel", json!({"level":"info"}))
        .await;
    let mut tasks = Vec::new();
    for i in 0..8u32 {
        let req = app.post(&t, Some(&s)).json(
            &json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{
            "name":"write_note","arguments":{"path":format!("c{i}.md"),"body":"x"}}}),
        );
        tasks.push(tokio::spawn(async move {
            let resp = req.send().await.unwrap();
            SseReader::new(resp).rest().await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let messages = task.await.unwrap();
        let last = messages.last().unwrap();
        assert_eq!(last["id"], i as u64, "each stream ends with its own answer");
        let logs: Vec<&Value> = messages
            .iter()
            .filter(|m| m["method"] == "notifications/message")
            .collect();
        assert_eq!(logs.len(), 1);
        assert!(
            logs[0]["params"]["data"]
                .as_str()
                .unwrap()
                .contains(&format!("c{i}.md")),
            "logs go to the request's own stream"
        );
    }
}
