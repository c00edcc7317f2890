//! `spawn_app()` and the small MCP client the tests speak through.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vault_actors::{Supervisor, UserId};
use vault_mcp::app::Application;
use vault_mcp::auth::TokenKeys;
use vault_mcp::config::{Config, Overrides};

pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const LATEST: &str = "2025-11-25";

/// A running server with its own data folder.
pub struct TestApp {
    pub base: String,
    pub public_url: String,
    pub client: reqwest::Client,
    pub supervisor: Supervisor,
    pub keys: TokenKeys,
    pub data: PathBuf,
    /// Local mode's one-time web login link (None in space mode).
    pub local_login: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

/// A test configuration: space mode (multi-user), port 0, data in `data`, and `extra`
/// environment variables (they win over these defaults).
pub fn test_config_with_env(data: &Path, extra: &[(&str, &str)]) -> Config {
    let data = data.to_path_buf();
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |k: &str| {
        if let Some((_, v)) = extra.iter().find(|(key, _)| key == k) {
            return Some(v.clone());
        }
        match k {
            "MODE" => Some("space".to_string()),
            "HOST" => Some("127.0.0.1".to_string()),
            "PORT" => Some("0".to_string()),
            "JWT_SECRET_KEY" => Some(SECRET.to_string()),
            "DATA_DIR" => Some(data.display().to_string()),
            _ => None,
        }
    };
    Config::load(None, &env, &Overrides::default()).expect("test config")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = spawn_in(dir.path(), tweak).await;
    app._dir = Some(dir);
    app
}

/// Start a server on an existing data folder (for restart tests).
pub async fn spawn_in(data: &Path, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_env_in(data, &[], tweak).await
}

/// Start a server on `data` configured by extra environment variables, as an operator would.
pub async fn spawn_env_in(
    data: &Path,
    env: &[(&str, &str)],
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = test_config_with_env(data, env);
    tweak(&mut config);
    let app = Application::build(config).await.expect("server builds");
    let port = app.port();
    let public_url = app.public_url().to_string();
    let local_login = app.local_login_url();
    let supervisor = app.supervisor().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async move {
                let _ = stopped.await;
            })
            .await;
    });
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        keys: TokenKeys::new(SECRET.as_bytes(), &public_url, &public_url),
        public_url,
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        supervisor,
        data: data.to_path_buf(),
        local_login,
        stop: Some(stop),
        handle: Some(handle),
        _dir: None,
    }
}

impl TestApp {
    /// Send the stop signal without waiting for the server to finish.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stop the server and wait until it has drained.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }

    pub fn token(&self, user: &str) -> String {
        self.keys
            .mint(
                &UserId::parse(user).expect("user id"),
                Duration::from_secs(3600),
                &[],
            )
            .expect("mint")
    }

    pub fn vault_dir(&self, user: &str) -> PathBuf {
        self.data.join("vaults").join(user)
    }

    /// A POST to /mcp with the headers a well-behaved client sends.
    pub fn post(&self, token: &str, session: Option<&str>) -> RequestBuilder {
        let mut req = self
            .client
            .post(format!("{}/mcp", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(s) = session {
            req = req
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", LATEST);
        }
        req
    }

    /// `initialize` at `version`, then `notifications/initialized`; returns the session id.
    pub async fn session_at(&self, token: &str, version: &str) -> String {
        let sid = self.initialize(token, version, json!({})).await;
        let note = self
            .post(token, Some(&sid))
            .json(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .send()
            .await
            .expect("initialized");
        assert_eq!(note.status(), StatusCode::ACCEPTED);
        sid
    }

    /// `initialize` (latest revision) from a client declaring `capabilities`; the session id.
    pub async fn session_with(&self, token: &str, capabilities: Value) -> String {
        self.initialize(token, LATEST, capabilities).await
    }

    /// A successful `initialize`; returns the minted session id.
    async fn initialize(&self, token: &str, version: &str, capabilities: Value) -> String {
        let resp = self
            .post(token, None)
            .json(
                &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion": version, "capabilities": capabilities,
                "clientInfo": {"name":"tests","version":"1"}}}),
            )
            .send()
            .await
            .expect("initialize");
        assert_eq!(resp.status(), StatusCode::OK);
        resp.headers()
            .get("mcp-session-id")
            .expect("session header")
            .to_str()
            .expect("ascii")
            .to_string()
    }

    pub async fn session(&self, token: &str) -> String {
        self.session_at(token, LATEST).await
    }

    /// The HTTP status of a `ping` on `sid`.
    pub async fn ping_status(&self, token: &str, sid: &str) -> StatusCode {
        self.post(token, Some(sid))
            .json(&json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
            .send()
            .await
            .expect("ping")
            .status()
    }

    /// `GET /mcp` on `sid` with `accept`: the session's event stream (or a refusal).
    pub async fn get_stream(&self, token: &str, sid: &str, accept: &str) -> Response {
        self.client
            .get(format!("{}/mcp", self.base))
            .bearer_auth(token)
            .header("accept", accept)
            .header("mcp-session-id", sid)
            .send()
            .await
            .expect("GET /mcp")
    }

    /// A JSON-RPC request on a session; returns the whole response body.
    pub async fn rpc(&self, token: &str, sid: &str, method: &str, params: Value) -> Value {
        let resp = self
            .post(token, Some(sid))
            .json(&json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}))
            .send()
            .await
            .expect("rpc");
        assert_eq!(resp.status(), StatusCode::OK, "{method}");
        resp.json().await.expect("json")
    }

    /// A tool call; returns the `result` object (which may be an `isError` result).
    pub async fn call(&self, token: &str, sid: &str, tool: &str, args: Value) -> Value {
        let body = self
            .rpc(
                token,
                sid,
                "tools/call",
                json!({"name": tool, "arguments": args}),
            )
            .await;
        body.get("result")
            .cloned()
            .unwrap_or_else(|| panic!("no result: {body}"))
    }

    /// A tool call that must succeed; returns its structured content.
    pub async fn ok(&self, token: &str, sid: &str, tool: &str, args: Value) -> Value {
        let result = self.call(token, sid, tool, args).await;
        assert_eq!(result["isError"], json!(false), "{tool} failed: {result}");
        result["structuredContent"].clone()
    }

    /// A tool call that must fail; returns its error code.
    pub async fn err_code(&self, token: &str, sid: &str, tool: &str, args: Value) -> String {
        let result = self.call(token, sid, tool, args).await;
        assert_eq!(
            result["isError"],
            json!(true),
            "{tool} should fail: {result}"
        );
        result["structuredContent"]["code"]
            .as_str()
            .expect("code")
            .to_string()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The response's header `name`, as text.
pub fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Status and JSON body of a response.
pub async fn status_json(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Paths of search results.
pub fn hit_paths(search: &Value) -> Vec<String> {
    search["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|h| h["path"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Poll `check` until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads JSON messages from an SSE response as they arrive.
pub struct SseReader {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl SseReader {
    pub fn new(resp: Response) -> Self {
        assert!(
            header(resp.headers(), "content-type").starts_with("text/event-stream"),
            "expected an SSE response"
        );
        SseReader {
            stream: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next `data:` message, or None when the stream ends (or 10 s pass).
    pub async fn next(&mut self) -> Option<Value> {
        use futures_util::StreamExt;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return serde_json::from_str(&data.join("\n")).ok();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .ok()??
                .ok()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Every remaining message until the stream ends.
    pub async fn rest(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(v) = self.next().await {
            out.push(v);
        }
        out
    }
}

/// A `vault-mcp serve` process of its own (space mode, no per-user rate limit), for tests that
/// kill it: SIGKILLed when dropped, so a failed test leaves none behind.
pub struct ServerProcess(Child);

impl ServerProcess {
    /// Start it on `data` with `public_url`; the process and its base URL.
    pub fn start(data: &Path, public_url: &str) -> (ServerProcess, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vault-mcp"))
            .env_clear()
            .env("MODE", "space")
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("DATA_DIR", data)
            .env("JWT_SECRET_KEY", SECRET)
            .env("PUBLIC_URL", public_url)
            .env("RATE_LIMIT_PER_SECOND", "100000")
            .env("RATE_LIMIT_BURST", "100000")
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn vault-mcp");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut base = None;
        for line in lines.by_ref() {
            let line = line.expect("banner line");
            if let Some(url) = line.strip_prefix("listening on ") {
                base = Some(url.trim().to_string());
            }
            if line.starts_with("mode: space") {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        (ServerProcess(child), base.expect("listening line"))
    }

    /// `kill -9`: no shutdown, no flush, no goodbye.
    pub fn sigkill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.sigkill();
    }
}
