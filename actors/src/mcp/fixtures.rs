//! The fixtures of the official MCP conformance suite (`test_simple_text`, `test://static-text`,
//! `test_simple_prompt`, ...), compiled in only with the `conformance` feature, for the test
//! binary. They are registered through the same catalog, resource and prompt paths as the real
//! ones, so the suite exercises the real machinery (SSE answers, progress, logging, sampling,
//! elicitation).

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use super::jsonrpc::RpcError;
use super::tool::{content_tool, Tool};
use crate::error::VaultError;
use crate::session::LogLevel;

/// A 1×1 transparent PNG.
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// A short silent 8 kHz mono 16-bit WAV, built rather than stored.
fn wav() -> String {
    let samples = 800u32;
    let data_len = samples * 2;
    let mut b = Vec::with_capacity(44 + data_len as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&16000u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    b.resize(44 + data_len as usize, 0);
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn no_args() -> Value {
    json!({ "type": "object", "properties": {} })
}

fn text(t: impl Into<String>) -> Value {
    json!({ "type": "text", "text": t.into() })
}

fn result(content: Vec<Value>) -> Result<Value, VaultError> {
    Ok(json!({ "content": content, "isError": false }))
}

pub fn tools() -> Vec<Tool> {
    vec![
        content_tool(
            "test_simple_text",
            "Returns a simple text.",
            no_args(),
            |_, _| result(vec![text("This is a simple text response for testing.")]),
        ),
        content_tool(
            "test_image_content",
            "Returns an image.",
            no_args(),
            |_, _| {
                result(vec![
                    json!({ "type": "image", "data": PNG_1X1, "mimeType": "image/png" }),
                ])
            },
        ),
        content_tool("test_audio_content", "Returns audio.", no_args(), |_, _| {
            result(vec![
                json!({ "type": "audio", "data": wav(), "mimeType": "audio/wav" }),
            ])
        }),
        content_tool(
            "test_embedded_resource",
            "Returns an embedded resource.",
            no_args(),
            |_, _| {
                result(vec![json!({ "type": "resource", "resource": {
                "uri": "test://embedded-resource", "mimeType": "text/plain",
                "text": "This is an embedded resource content." } })])
            },
        ),
        content_tool(
            "test_multiple_content_types",
            "Returns several content types.",
            no_args(),
            |_, _| {
                result(vec![
                    text("Multiple content types test:"),
                    json!({ "type": "image", "data": PNG_1X1, "mimeType": "image/png" }),
                    json!({ "type": "resource", "resource": {
                    "uri": "test://mixed-content-resource", "mimeType": "application/json",
                    "text": "{\"test\":\"data\",\"value\":123}" } }),
                ])
            },
        ),
        content_tool(
            "test_tool_with_logging",
            "Logs while it runs.",
            no_args(),
            |ctx, _| {
                for (i, msg) in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ]
                .into_iter()
                .enumerate()
                {
                    if i > 0 {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    ctx.log(LogLevel::Info, json!(msg));
                }
                result(vec![text("Tool with logging executed successfully")])
            },
        ),
        content_tool("test_error_handling", "Always fails.", no_args(), |_, _| {
            Ok(
                json!({ "content": [text("This tool intentionally returns an error for testing")], "isError": true }),
            )
        }),
        content_tool(
            "test_tool_with_progress",
            "Reports progress.",
            no_args(),
            |ctx, _| {
                for (i, p) in [0u64, 50, 100].into_iter().enumerate() {
                    if i > 0 {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    ctx.progress(p, Some(100), None);
                }
                result(vec![text("Progress tool completed")])
            },
        ),
        content_tool(
            "test_sampling",
            "Asks the client's model.",
            json!({ "type": "object", "properties": { "prompt": { "type": "string" } }, "required": ["prompt"] }),
            |ctx, args| {
                let prompt = args
                    .get("prompt")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let answer = ctx.ask_client(
                    "sampling/createMessage",
                    json!({
                        "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
                        "maxTokens": 100,
                    }),
                )?;
                let said = answer
                    .pointer("/content/text")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                result(vec![text(format!("LLM response: {said}"))])
            },
        ),
        content_tool(
            "test_elicitation",
            "Asks the user for information.",
            json!({ "type": "object", "properties": { "message": { "type": "string" } }, "required": ["message"] }),
            |ctx, args| {
                let message = args
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let answer = ctx.ask_client(
                    "elicitation/create",
                    json!({
                        "message": message,
                        "requestedSchema": { "type": "object", "properties": {
                            "username": { "type": "string", "description": "User's response" },
                            "email": { "type": "string", "description": "User's email address" },
                        }, "required": ["username", "email"] },
                    }),
                )?;
                result(vec![text(format!(
                    "User response: action={}, content={}",
                    answer
                        .get("action")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    answer.get("content").cloned().unwrap_or(Value::Null)
                ))])
            },
        ),
        content_tool(
            "test_elicitation_sep1034_defaults",
            "Elicitation with defaults.",
            no_args(),
            |ctx, _| {
                let answer = ctx.ask_client(
                    "elicitation/create",
                    json!({
                        "message": "Please review and update the form fields with defaults",
                        "requestedSchema": { "type": "object", "properties": {
                            "name": { "type": "string", "description": "User name", "default": "John Doe" },
                            "age": { "type": "integer", "description": "User age", "default": 30 },
                            "score": { "type": "number", "description": "User score", "default": 95.5 },
                            "status": { "type": "string", "description": "User status",
                                "enum": ["active", "inactive", "pending"], "default": "active" },
                            "verified": { "type": "boolean", "description": "Verification status", "default": true },
                        }, "required": [] },
                    }),
                )?;
                result(vec![text(format!("Elicitation completed: {answer}"))])
            },
        ),
        content_tool(
            "test_elicitation_sep1330_enums",
            "Elicitation with enums.",
            no_args(),
            |ctx, _| {
                let answer = ctx.ask_client(
                    "elicitation/create",
                    json!({
                        "message": "Please select options from the enum fields",
                        "requestedSchema": { "type": "object", "properties": {
                            "untitledSingle": { "type": "string", "description": "Choose one",
                                "enum": ["option1", "option2", "option3"] },
                            "titledSingle": { "type": "string", "description": "Choose one", "oneOf": [
                                { "const": "value1", "title": "First Option" },
                                { "const": "value2", "title": "Second Option" },
                                { "const": "value3", "title": "Third Option" } ] },
                            "legacyEnum": { "type": "string", "description": "Choose one",
                                "enum": ["opt1", "opt2", "opt3"],
                                "enumNames": ["Option One", "Option Two", "Option Three"] },
                            "untitledMulti": { "type": "array", "description": "Choose several",
                                "items": { "type": "string", "enum": ["option1", "option2", "option3"] } },
                            "titledMulti": { "type": "array", "description": "Choose several", "items": { "anyOf": [
                                { "const": "value1", "title": "First Choice" },
                                { "const": "value2", "title": "Second Choice" },
                                { "const": "value3", "title": "Third Choice" } ] } },
                        }, "required": [] },
                    }),
                )?;
                result(vec![text(format!("Elicitation completed: {answer}"))])
            },
        ),
        content_tool(
            "json_schema_2020_12_tool",
            "A tool whose input schema uses JSON Schema 2020-12 features.",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": { "address": { "type": "object", "properties": {
                    "street": { "type": "string" }, "city": { "type": "string" } } } },
                "properties": { "name": { "type": "string" }, "address": { "$ref": "#/$defs/address" } },
                "additionalProperties": false,
            }),
            |_, args| result(vec![text(format!("Received: {args}"))]),
        ),
    ]
}

/// Fixture resources: `test://static-text`, `test://static-binary`, `test://template/{id}/data`.
pub fn read_resource(uri: &str) -> Option<Value> {
    let content = match uri {
        "test://static-text" => json!({ "uri": uri, "mimeType": "text/plain",
            "text": "This is the content of the static text resource." }),
        "test://static-binary" => json!({ "uri": uri, "mimeType": "image/png", "blob": PNG_1X1 }),
        _ => {
            let id = uri
                .strip_prefix("test://template/")?
                .strip_suffix("/data")?;
            json!({ "uri": uri, "mimeType": "application/json",
                "text": json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") }).to_string() })
        }
    };
    Some(json!({ "contents": [content] }))
}

/// Fixture prompts for `prompts/list`.
pub fn prompt_list() -> Vec<Value> {
    vec![
        json!({ "name": "test_simple_prompt", "description": "A simple prompt without arguments" }),
        json!({ "name": "test_prompt_with_arguments", "description": "A prompt with required arguments",
            "arguments": [
                { "name": "arg1", "description": "First test argument", "required": true },
                { "name": "arg2", "description": "Second test argument", "required": true } ] }),
        json!({ "name": "test_prompt_with_embedded_resource", "description": "A prompt with an embedded resource",
            "arguments": [{ "name": "resourceUri", "description": "URI of the resource", "required": true }] }),
        json!({ "name": "test_prompt_with_image", "description": "A prompt with an image" }),
    ]
}

/// Fixture prompts for `prompts/get`; `None` when `name` is not a fixture.
pub fn get_prompt(name: &str, params: &Value) -> Option<Result<Value, RpcError>> {
    let arg = |n: &str| {
        params
            .pointer(&format!("/arguments/{n}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let messages = match name {
        "test_simple_prompt" => {
            json!([{ "role": "user", "content": text("This is a simple prompt for testing.") }])
        }
        "test_prompt_with_arguments" => json!([{ "role": "user", "content": text(format!(
            "Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1"), arg("arg2"))) }]),
        "test_prompt_with_embedded_resource" => json!([
            { "role": "user", "content": { "type": "resource", "resource": {
                "uri": arg("resourceUri"), "mimeType": "text/plain",
                "text": "Embedded resource content for testing." } } },
            { "role": "user", "content": text("Please process the embedded resource above.") },
        ]),
        "test_prompt_with_image" => json!([
            { "role": "user", "content": { "type": "image", "data": PNG_1X1, "mimeType": "image/png" } },
            { "role": "user", "content": text("Please analyze the image above.") },
        ]),
        _ => return None,
    };
    Some(Ok(json!({ "messages": messages })))
}
