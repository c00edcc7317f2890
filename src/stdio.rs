//! `vault-mcp stdio`: the MCP stdio transport for desktop clients that start a command. One
//! JSON-RPC message (or batch) per line on stdin, one per line on stdout, logs on stderr only.
//!
//! It goes through the same [`Supervisor`] and user actor as HTTP: the process holds one MCP
//! session (minted by `initialize`), requests run concurrently (so the client's answer to an
//! elicitation can arrive while a tool waits for it), and notifications of the session's stream
//! (resource updates) are written between answers. The data folder is locked first: while a
//! server (or another stdio process) holds it, this one refuses to start and names it.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use vault_actors::mcp::jsonrpc::{
    nesting_depth, Message, RpcError, INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR,
};
use vault_actors::{Caller, Supervisor, UserId};

use crate::app::StartError;
use crate::config::Config;
use crate::lock::DataLock;

/// Messages waiting to be written to stdout at most.
const OUT_BUFFER: usize = 256;

/// Serve `user`'s vault over stdin/stdout until stdin closes.
pub async fn run(config: Config, user: UserId) -> Result<(), StartError> {
    let _lock = DataLock::acquire(&config.data_dir, &format!("vault-mcp stdio for {user}"))?;
    for dir in [&config.vault_base, &config.index_base] {
        std::fs::create_dir_all(dir).map_err(StartError::Data)?;
    }
    let supervisor = Supervisor::start(config.actor_settings())
        .await
        .map_err(|e| StartError::Supervisor(e.to_string()))?;
    let (out, out_rx) = mpsc::channel::<Value>(OUT_BUFFER);
    let writer = tokio::spawn(write_lines(out_rx));
    let caller = Caller::full(user);
    let mut session: Option<String> = None;
    // Requests still running when stdin closes are answered before the session ends.
    let mut running = tokio::task::JoinSet::new();
    let mut stdin = BufReader::new(tokio::io::stdin());
    let max_depth = config.max_json_depth;
    let max_bytes = config.max_body_bytes;
    loop {
        let line = match next_line(&mut stdin, max_bytes).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                tracing::error!(error = %e, "reading stdin failed");
                break;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (messages, batch) = match parse_line(&line, max_bytes, max_depth) {
            Ok(parsed) => parsed,
            Err(response) => {
                let _ = out.send(response).await;
                continue;
            }
        };
        if let (false, [Message::Request { id, method, params }]) = (batch, messages.as_slice()) {
            if method == "initialize" {
                let init = supervisor
                    .initialize(caller.clone(), id.clone(), params.clone())
                    .await;
                match init {
                    Ok(init) => {
                        if let Some(sid) = init.session_id {
                            if let Some(old) = session.replace(sid.clone()) {
                                let _ = supervisor.end_session(&caller, old).await;
                            }
                            forward_stream(&supervisor, &caller, sid, out.clone()).await;
                        }
                        let _ = out.send(init.response).await;
                    }
                    Err(e) => {
                        let err = RpcError::new(INTERNAL_ERROR, e.to_string());
                        let _ = out.send(err.to_response(id)).await;
                    }
                }
                continue;
            }
        }
        let Some(sid) = session.clone() else {
            if let Some(Message::Request { id, .. }) = messages.iter().find(|m| m.is_request()) {
                let err = RpcError::new(INVALID_REQUEST, "send initialize first");
                let _ = out.send(err.to_response(id)).await;
            }
            continue;
        };
        let id = match messages.as_slice() {
            [Message::Request { id, .. }] if !batch => id.clone(),
            _ => Value::Null,
        };
        let (supervisor, caller, out) = (supervisor.clone(), caller.clone(), out.clone());
        running.spawn(async move {
            let (events, mut events_rx) = mpsc::channel::<Value>(OUT_BUFFER);
            let relay_out = out.clone();
            let relay = tokio::spawn(async move {
                while let Some(event) = events_rx.recv().await {
                    let _ = relay_out.send(event).await;
                }
            });
            let answer = supervisor
                .post(caller, sid, messages, batch, Some(events))
                .await;
            // Everything the request sent before its answer goes out before it.
            let _ = relay.await;
            match answer {
                Ok(Some(answer)) => drop(out.send(answer).await),
                Ok(None) => {}
                // Notifications get no answer, not even an error (JSON-RPC).
                Err(_) if id.is_null() => {}
                Err(e) => {
                    let err = RpcError::new(INTERNAL_ERROR, e.to_string());
                    drop(out.send(err.to_response(&id)).await)
                }
            }
        });
        // Forget the ones that finished, so a long session does not keep them all.
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
    if let Some(sid) = session {
        let _ = supervisor.end_session(&caller, sid).await;
    }
    drop(out);
    // Answers still on their way get a moment to be written.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    supervisor.shutdown().await;
    Ok(())
}

/// The next line of input without its newline, as bytes (invalid UTF-8 is answered by
/// [`parse_line`], not fatal). Past `max_bytes` the rest of the line is read and dropped, so a
/// line without an end cannot fill memory; what is kept then is `max_bytes + 1` bytes, which
/// [`parse_line`] refuses. `None` at the end of input.
async fn next_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let mut read_any = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(read_any.then_some(line));
        }
        read_any = true;
        let (taken, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (at, true),
            None => (chunk.len(), false),
        };
        let room = (max_bytes + 1).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..taken.min(room)]);
        reader.consume(taken + usize::from(done));
        if done {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

/// One line of input as JSON-RPC messages, or the error response to answer it with.
fn parse_line(
    line: &[u8],
    max_bytes: usize,
    max_depth: usize,
) -> Result<(Vec<Message>, bool), Value> {
    let refuse = |code, msg: String| RpcError::new(code, msg).to_response(&Value::Null);
    if line.len() > max_bytes {
        let msg = format!("message over the limit of {max_bytes} bytes");
        return Err(refuse(INVALID_REQUEST, msg));
    }
    if nesting_depth(line) > max_depth {
        let msg = format!("JSON nested deeper than {max_depth} levels");
        return Err(refuse(INVALID_REQUEST, msg));
    }
    let line = std::str::from_utf8(line).map_err(|e| {
        refuse(
            PARSE_ERROR,
            format!("parse error: the line is not valid UTF-8 ({e})"),
        )
    })?;
    let value: Value =
        serde_json::from_str(line).map_err(|e| refuse(PARSE_ERROR, format!("parse error: {e}")))?;
    let (items, batch) = match value {
        Value::Array(items) if items.is_empty() => {
            return Err(refuse(INVALID_REQUEST, "empty batch".into()))
        }
        Value::Array(items) => (items, true),
        single => (vec![single], false),
    };
    let mut messages = Vec::with_capacity(items.len());
    for item in items {
        let id = item.get("id").cloned().unwrap_or(Value::Null);
        messages.push(Message::parse(item).map_err(|e| e.to_response(&id))?);
    }
    Ok((messages, batch))
}

/// Write the session's stream (resource updates) to stdout between answers.
async fn forward_stream(
    supervisor: &Supervisor,
    caller: &Caller,
    sid: String,
    out: mpsc::Sender<Value>,
) {
    match supervisor.open_stream(caller, sid).await {
        Ok(mut rx) => {
            tokio::spawn(async move {
                while let Some(msg) = rx.recv().await {
                    if out.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "could not open the session's notification stream"),
    }
}

/// The only writer of stdout: one JSON value per line, flushed.
async fn write_lines(mut rx: mpsc::Receiver<Value>) {
    let mut stdout = tokio::io::stdout();
    while let Some(msg) = rx.recv().await {
        let mut line = msg.to_string();
        line.push('\n');
        if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_get_the_json_rpc_error_they_deserve() {
        let code = |line: &str, max_bytes: usize| {
            parse_line(line.as_bytes(), max_bytes, 64).unwrap_err()["error"]["code"].clone()
        };
        assert_eq!(code("{not json", 1000), PARSE_ERROR);
        assert_eq!(code("[]", 1000), INVALID_REQUEST);
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(code(&deep, 1000), INVALID_REQUEST);
        assert_eq!(code(&"x".repeat(20), 10), INVALID_REQUEST);
        let not_utf8 = parse_line(
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}",
            1000,
            64,
        );
        assert_eq!(not_utf8.unwrap_err()["error"]["code"], PARSE_ERROR);
        let wrong = parse_line(br#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#, 1000, 64);
        assert_eq!(wrong.unwrap_err()["id"], 7);
        let good = parse_line(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, 1000, 64);
        let (messages, batch) = good.unwrap();
        assert_eq!((messages.len(), batch), (1, false));
    }

    #[tokio::test]
    async fn lines_are_bytes_bounded_by_the_limit() {
        let input: &[u8] = b"short\r\n\xff\xfe\n0123456789abcdef\nlast";
        let mut reader = BufReader::with_capacity(4, input);
        let mut got = Vec::new();
        while let Some(line) = next_line(&mut reader, 8).await.unwrap() {
            got.push(line);
        }
        let want: [&[u8]; 4] = [b"short", b"\xff\xfe", b"012345678", b"last"];
        assert_eq!(got, want);
    }
}
