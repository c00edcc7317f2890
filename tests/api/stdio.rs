//! `vault-mcp stdio`: MCP over stdin/stdout through the same actors, nothing but JSON-RPC on
//! stdout, and one process per data folder.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_vault-mcp");

struct StdioServer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl StdioServer {
    fn start(data: &Path, rust_log: &str) -> Self {
        let mut child = Command::new(BIN)
            .env_clear()
            .env("DATA_DIR", data)
            .env("RUST_LOG", rust_log)
            .arg("stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn vault-mcp stdio");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        StdioServer {
            child,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next line of stdout, which must be one JSON-RPC message.
    fn next(&mut self) -> Value {
        let mut line = String::new();
        assert!(
            self.stdout.read_line(&mut line).unwrap() > 0,
            "stdout closed"
        );
        let msg: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout carried a line that is not JSON ({e}): {line:?}"));
        assert_eq!(msg["jsonrpc"], "2.0", "{line}");
        msg
    }

    /// Send request `id` and return its answer (notifications before it are skipped).
    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(&req.to_string());
        loop {
            let msg = self.next();
            if msg["id"] == id {
                return msg;
            }
        }
    }

    fn call(&mut self, id: u64, tool: &str, args: Value) -> Value {
        let answer = self.request(id, "tools/call", json!({"name": tool, "arguments": args}));
        assert_eq!(answer["result"]["isError"], false, "{answer}");
        answer["result"]["structuredContent"].clone()
    }

    /// Close stdin and check that the process exits by itself with nothing more than JSON.
    fn finish(mut self) {
        drop(self.stdin);
        let mut rest = String::new();
        for line in (&mut self.stdout).lines() {
            let line = line.unwrap();
            serde_json::from_str::<Value>(&line)
                .unwrap_or_else(|e| panic!("not JSON after stdin closed ({e}): {line:?}"));
            rest.push_str(&line);
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exit {status}");
    }
}

fn initialize(server: &mut StdioServer) {
    let init = server.request(
        0,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {},
               "clientInfo": {"name": "stdio-test", "version": "1"}}),
    );
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    server.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
}

#[test]
fn the_tools_work_over_stdio_and_stdout_carries_only_json_rpc() {
    let dir = tempfile::tempdir().unwrap();
    // The noisiest logging there is: every line of it must still go to stderr.
    let mut server = StdioServer::start(dir.path(), "trace");
    initialize(&mut server);
    let tools = server.request(1, "tools/list", json!({}));
    assert!(tools["result"]["tools"].as_array().unwrap().len() >= 7);
    server.call(
        2,
        "write_note",
        json!({"path": "a.md", "body": "hello [[b]] #tag"}),
    );
    server.call(
        3,
        "write_note",
        json!({"path": "b.md", "body": "the other"}),
    );
    let note = server.call(4, "read_note", json!({"path": "a.md"}));
    assert_eq!(note["tags"], json!(["tag"]));
    let listed = server.call(5, "list_notes", json!({}));
    assert_eq!(listed["notes"].as_array().unwrap().len(), 2);
    let found = server.call(6, "search_notes", json!({"query": "hello"}));
    assert_eq!(found["results"][0]["path"], "a.md");
    let back = server.call(7, "get_backlinks", json!({"path": "b.md"}));
    assert_eq!(back["backlinks"][0]["path"], "a.md");
    let tags = server.call(8, "get_tags", json!({}));
    assert_eq!(tags["tags"][0]["tag"], "tag");
    server.call(9, "delete_note", json!({"path": "b.md"}));
    // Bad input gets a JSON-RPC error, on stdout, as JSON.
    server.send("{this is not json");
    let refused = loop {
        let msg = server.next();
        if msg.get("method").is_none() {
            break msg;
        }
        // Change notifications of the session's stream may come first.
        assert!(
            msg["method"]
                .as_str()
                .unwrap()
                .starts_with("notifications/"),
            "{msg}"
        );
    };
    assert_eq!(refused["error"]["code"], -32700);
    server.finish();
    // The notes are the local user's files, like the HTTP server's.
    assert!(dir.path().join("vaults/local/a.md").exists());
    assert!(!dir.path().join("vaults/local/b.md").exists());
}

/// The next message that is not a notification.
fn next_answer(server: &mut StdioServer) -> Value {
    loop {
        let msg = server.next();
        if msg.get("method").is_none() {
            return msg;
        }
    }
}

#[test]
fn deep_json_and_invalid_utf8_lines_get_an_error_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = StdioServer::start(dir.path(), "info");
    initialize(&mut server);
    server.call(
        1,
        "write_note",
        json!({"path": "keep.md", "body": "keep this"}),
    );
    let note = dir.path().join("vaults/local/keep.md");
    let before = std::fs::read(&note).unwrap();
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let write = |body: &str| {
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "write_note", "arguments": {"path": "keep.md", "body": body}}})
        .to_string()
    };
    // Deep: in the arguments of a write that would replace the note.
    let deep_line = write("B").replace(r#""body":"B""#, &format!(r#""body":"B","x":{deep}"#));
    server.send(&deep_line);
    let refused = next_answer(&mut server);
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nested deeper than 64"));
    // Not UTF-8: the same write with two bytes that are no character.
    let mut bad = write("B").into_bytes();
    let at = bad.iter().position(|&b| b == b'B').unwrap();
    bad.splice(at..at + 1, *b"\xff\xfeB");
    bad.push(b'\n');
    server.stdin.write_all(&bad).unwrap();
    server.stdin.flush().unwrap();
    let refused = next_answer(&mut server);
    assert_eq!(refused["error"]["code"], -32700, "{refused}");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("UTF-8"));
    // The process goes on, and the note is as it was.
    let read = server.call(3, "read_note", json!({"path": "keep.md"}));
    assert_eq!(read["body"], "keep this");
    server.finish();
    assert_eq!(std::fs::read(&note).unwrap(), before);
}

#[test]
fn a_broken_log_filter_still_leaves_stdout_to_json_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = StdioServer::start(dir.path(), "=garbage[{,,trace");
    initialize(&mut server);
    server.call(1, "write_note", json!({"path": "a.md", "body": "x"}));
    server.finish();
}

#[test]
fn one_process_per_data_folder_and_the_refusal_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut stdio = StdioServer::start(dir.path(), "warn");
    initialize(&mut stdio);
    // A server on the same folder stops at once and says who holds it.
    let out = Command::new(BIN)
        .env_clear()
        .env("DATA_DIR", dir.path())
        .env("PORT", "0")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another vault-mcp") && err.contains("vault-mcp stdio"),
        "{err}"
    );
    // So does a second stdio process.
    let out = Command::new(BIN)
        .env_clear()
        .env("DATA_DIR", dir.path())
        .arg("stdio")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout but JSON-RPC, here nothing"
    );
    stdio.call(1, "write_note", json!({"path": "still.md", "body": "mine"}));
    stdio.finish();
    // Once it has gone, the folder is free again.
    let mut again = StdioServer::start(dir.path(), "warn");
    initialize(&mut again);
    let note = again.call(1, "read_note", json!({"path": "still.md"}));
    assert_eq!(note["body"].as_str().unwrap().trim(), "mine");
    again.finish();
}

#[test]
fn stdio_refuses_while_a_server_holds_the_folder_and_names_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(BIN)
        .env_clear()
        .env("DATA_DIR", dir.path())
        .env("PORT", "0")
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first.trim().trim_start_matches("listening on ").to_string();
    let out = Command::new(BIN)
        .env_clear()
        .env("DATA_DIR", dir.path())
        .arg("stdio")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("vault-mcp serve on {url}/mcp")),
        "{err}"
    );
}
