//! The ceiling: a bare hyper server that answers MCP-shaped requests with canned JSON and no work.
//!
//! Driving it with the same client and concurrency shows the most this machine can do for this
//! client, so the server's figures can be read as a share of it. It runs on its own thread and
//! tokio runtime (as many workers as cores, like a real server) so that it competes with the
//! client for the CPU the way a separate server process does, not cooperatively inside the
//! client's scheduler. It also answers `initialize` (with an `Mcp-Session-Id`), notifications
//! (202) and `DELETE` (200), so the whole client can be self-tested against it with `--url`.

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// What a `tools/call` gets: a plausible small tool result, spliced around the request's id.
const RESULT_HEAD: &str = r#"{"jsonrpc":"2.0","id":"#;
const TOOL_RESULT_TAIL: &str = r#","result":{"content":[{"type":"text","text":"ok"}],"structuredContent":{"ok":true},"isError":false}}"#;
const INIT_RESULT_TAIL: &str = r#","result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"vault-bench-ceiling","version":"0.1"}}}"#;

/// Only the two fields the ceiling needs; serde skips the rest without building it.
#[derive(serde::Deserialize)]
struct Envelope {
    id: Option<serde_json::Value>,
    method: Option<String>,
}

/// A running ceiling server; stop it with [`Ceiling::stop`] (dropping it also stops it).
pub struct Ceiling {
    pub url: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ceiling {
    /// Binds `127.0.0.1:port` (0 = any free port) and serves on `threads` runtime workers.
    pub fn start(port: u16, threads: usize) -> io::Result<Ceiling> {
        let listener = StdListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("ceiling")
            .enable_all()
            .build()?;
        let (tx, rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("ceiling-main".into())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, rx));
                // Open keep-alive connections are tasks of this runtime; don't wait for them.
                runtime.shutdown_timeout(Duration::from_millis(200));
            })?;
        Ok(Ceiling {
            url,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        self.shut_down();
    }
}

async fn accept_loop(listener: StdListener, mut shutdown: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("[bench] ceiling: cannot register listener: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(handle))
                        .await;
                });
            }
        }
    }
}

static SESSIONS: AtomicU64 = AtomicU64::new(1);

fn respond(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let has_body = !body.is_empty();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if has_body {
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
    }
    resp
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/mcp" {
        return Ok(respond(StatusCode::NOT_FOUND, String::new()));
    }
    match *req.method() {
        Method::DELETE => Ok(respond(StatusCode::OK, String::new())),
        Method::POST => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return Ok(respond(StatusCode::BAD_REQUEST, String::new())),
            };
            Ok(answer(&body))
        }
        _ => Ok(respond(StatusCode::METHOD_NOT_ALLOWED, String::new())),
    }
}

/// The canned answer to one JSON-RPC POST body.
fn answer(body: &[u8]) -> Response<Full<Bytes>> {
    let Ok(env) = serde_json::from_slice::<Envelope>(body) else {
        let err = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#;
        return respond(StatusCode::BAD_REQUEST, err.to_string());
    };
    let Some(id) = env.id else {
        return respond(StatusCode::ACCEPTED, String::new());
    };
    if env.method.as_deref() == Some("initialize") {
        let mut resp = respond(
            StatusCode::OK,
            format!("{RESULT_HEAD}{id}{INIT_RESULT_TAIL}"),
        );
        let session = format!("ceiling-{:016x}", SESSIONS.fetch_add(1, Ordering::Relaxed));
        if let Ok(v) = hyper::header::HeaderValue::from_str(&session) {
            resp.headers_mut().insert("mcp-session-id", v);
        }
        return resp;
    }
    respond(
        StatusCode::OK,
        format!("{RESULT_HEAD}{id}{TOOL_RESULT_TAIL}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_answers() {
        let resp = answer(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{}}"#);
        assert_eq!(resp.status(), StatusCode::OK);
        let init = answer(br#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#);
        assert!(init.headers().contains_key("mcp-session-id"));
        let note = answer(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert_eq!(note.status(), StatusCode::ACCEPTED);
        assert_eq!(answer(b"nope").status(), StatusCode::BAD_REQUEST);
        let tail: serde_json::Value =
            serde_json::from_str(&format!("{RESULT_HEAD}7{TOOL_RESULT_TAIL}")).unwrap();
        assert_eq!(tail["result"]["isError"], false);
        let init: serde_json::Value =
            serde_json::from_str(&format!("{RESULT_HEAD}1{INIT_RESULT_TAIL}")).unwrap();
        assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    }
}
