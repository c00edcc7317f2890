//! Faults, proven: actors killed under load, the process SIGKILLed during writes, a full disk.
//! Each test asserts behaviour and prints one line of figures (see them with `--nocapture`).
//! By default they are short; the long versions:
//! `FAULT_SOAK_SECS=60 FAULT_KILL_ROUNDS=20 cargo test --test api faults:: -- --nocapture`.
//! `FAULT_SEED` replays a run's random choices (the figures lines print the seed). The disk-full
//! tests mount a tmpfs, so they need root; otherwise they say why they skip.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vault_actors::UserId;
use vault_mcp::auth::TokenKeys;

use crate::helpers::*;

/// The supervisor refuses a user after `crash_limit` crashes within `crash_window` (actor
/// defaults that `Config` does not expose): the soak keeps each user one kill below it, so
/// every kill is a restart and the guard never shuts a user out for the rest of the run.
fn crash_guard() -> (usize, Duration) {
    let defaults = vault_actors::Settings::for_data_dir("unused");
    (
        defaults.crash_limit,
        defaults.crash_window + Duration::from_secs(1),
    )
}
/// No per-user rate limiting in the way of the load.
const NO_RATE_LIMIT: [(&str, &str); 2] = [
    ("RATE_LIMIT_PER_SECOND", "100000"),
    ("RATE_LIMIT_BURST", "100000"),
];

/// A small deterministic generator; the seed is printed so a failing run can be replayed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn from_env_or_clock() -> Self {
        let seed = std::env::var("FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one MCP request came back as.
#[derive(Debug)]
enum Answer {
    /// The result (a tool's structured content for `tools/call`).
    Ok(Value),
    /// A tool error with its stable code.
    ToolError(String),
    /// 503/429 with Retry-After, or a JSON-RPC "restarted" error: the outcome is unknown and
    /// retrying is safe.
    Retryable(String),
    /// The connection failed (expected only when the process was killed).
    Transport(String),
    /// Anything a correct server never answers.
    Wrong(String),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Ok(v) => write!(f, "ok {v}"),
            Answer::ToolError(code) => write!(f, "tool error {code}"),
            Answer::Retryable(why) => write!(f, "retryable {why}"),
            Answer::Transport(why) => write!(f, "transport {why}"),
            Answer::Wrong(why) => write!(f, "wrong {why}"),
        }
    }
}

/// One JSON-RPC request on a session, JSON or SSE answer alike.
async fn request(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    sid: &str,
    method: &str,
    params: Value,
) -> Answer {
    let sent = client
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", sid)
        .header("mcp-protocol-version", LATEST)
        .timeout(Duration::from_secs(30))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}))
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return Answer::Transport(e.to_string()),
    };
    let status = resp.status();
    let retry_after = header(resp.headers(), "retry-after");
    let sse = header(resp.headers(), "content-type").starts_with("text/event-stream");
    let text = match resp.text().await {
        Ok(t) => t,
        Err(e) => return Answer::Transport(e.to_string()),
    };
    if status.as_u16() == 503 || status.as_u16() == 429 {
        return if retry_after.is_empty() {
            Answer::Wrong(format!("{status} without Retry-After: {text}"))
        } else {
            Answer::Retryable(format!("{status} retry-after={retry_after}"))
        };
    }
    if status.as_u16() != 200 {
        return Answer::Wrong(format!("{method}: {status}: {text}"));
    }
    let message = if sse {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim_start()).ok())
            .rfind(|m| m.get("id").is_some() && m.get("method").is_none())
    } else {
        serde_json::from_str::<Value>(&text).ok()
    };
    let Some(message) = message else {
        // An SSE stream cut short by a dying process has no answer in it.
        return Answer::Transport(format!("{method}: no answer in {text:?}"));
    };
    if let Some(err) = message.get("error") {
        let text = err["message"].as_str().unwrap_or_default();
        if err["code"] == json!(-32603)
            && (text.contains("restarted") || text.contains("temporarily unavailable"))
        {
            return Answer::Retryable(format!("-32603 {text}"));
        }
        return Answer::Wrong(format!("{method}: error {err}"));
    }
    let result = message["result"].clone();
    if method != "tools/call" {
        return Answer::Ok(result);
    }
    if result["isError"] == json!(true) {
        let code = result["structuredContent"]["code"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        return Answer::ToolError(code);
    }
    Answer::Ok(result["structuredContent"].clone())
}

async fn tool(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    sid: &str,
    name: &str,
    args: Value,
) -> Answer {
    request(
        client,
        base,
        token,
        sid,
        "tools/call",
        json!({"name": name, "arguments": args}),
    )
    .await
}

/// `initialize` + `initialized` against any server; the session id.
async fn open_session(client: &reqwest::Client, base: &str, token: &str) -> String {
    let resp = client
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion": LATEST, "capabilities": {},
            "clientInfo": {"name":"faults","version":"1"}}}),
        )
        .send()
        .await
        .expect("initialize");
    assert_eq!(resp.status().as_u16(), 200, "initialize");
    let sid = header(resp.headers(), "mcp-session-id");
    let note = client
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", LATEST)
        .json(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
        .send()
        .await
        .expect("initialized");
    assert_eq!(note.status().as_u16(), 202);
    sid
}

/// Every path `list_notes` lists, page after page.
async fn list_all(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    sid: &str,
) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let args = json!({"limit": 1000, "cursor": cursor});
        let page = match tool(client, base, token, sid, "list_notes", args).await {
            Answer::Ok(page) => page,
            other => panic!("list_notes: {other}"),
        };
        for note in page["notes"].as_array().expect("notes") {
            paths.insert(note["path"].as_str().expect("path").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return paths,
        }
    }
}

/// Every write attempted on one note, in order, by the one session that owns it.
#[derive(Debug, Default, Clone)]
struct NoteHistory {
    /// (body, acknowledged): an unacknowledged attempt may or may not have been applied.
    attempts: Vec<(String, bool)>,
}

impl NoteHistory {
    /// The bodies the note may hold now: the last acknowledged one or any attempt after it.
    fn allowed(&self) -> Vec<&str> {
        let from = self.attempts.iter().rposition(|(_, acked)| *acked);
        self.attempts[from.unwrap_or(0)..]
            .iter()
            .map(|(b, _)| b.as_str())
            .collect()
    }

    fn acked(&self) -> bool {
        self.attempts.iter().any(|(_, acked)| *acked)
    }
}

/// The note's body as stored on disk (the file without its frontmatter).
fn body_on_disk(file: &str) -> &str {
    let body = match file.strip_prefix("---\n") {
        Some(rest) => rest.find("\n---\n").map_or(file, |end| &rest[end + 5..]),
        None => file,
    };
    body.trim()
}

// ---------------------------------------------------------------------------------------------
// 1. Actor kills under load
// ---------------------------------------------------------------------------------------------

/// What the soak's sessions saw.
#[derive(Default)]
struct SoakLog {
    /// (user, path) → what was written there.
    notes: BTreeMap<(String, String), NoteHistory>,
    /// Writes answered with success: each must survive every kill.
    acked_writes: u64,
    /// Answers that only say "try again" (503 + Retry-After, -32603 restarted).
    retryable: u64,
    /// Answers a correct server never gives (unexpected errors, conflicts, bad statuses).
    wrong: Vec<String>,
    /// Reads that returned text naming another user.
    wrong_tenant: Vec<String>,
    /// Reads that returned text older than the last acknowledged write.
    lost: Vec<String>,
    /// Every (user, path) written, so sessions can try other tenants' paths.
    all_paths: Vec<(String, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_actors_under_load_loses_no_acknowledged_write_and_mixes_no_tenants() {
    const USERS: usize = 8;
    const SESSIONS: usize = 16;
    let secs = env_number("FAULT_SOAK_SECS", 3);
    let mut rng = Rng::from_env_or_clock();
    let seed = rng.0;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(dir.path(), &NO_RATE_LIMIT, |_| {}).await;
    let users: Vec<String> = (0..USERS).map(|u| format!("soak{u}")).collect();
    let tokens: Vec<String> = users.iter().map(|u| app.token(u)).collect();
    let mut sessions = Vec::new();
    for k in 0..SESSIONS {
        let u = k % USERS;
        sessions.push((u, app.session(&tokens[u]).await));
    }
    let log = Arc::new(Mutex::new(SoakLog::default()));
    let deadline = Instant::now() + Duration::from_secs(secs);

    let mut workers = Vec::new();
    for (k, (u, sid)) in sessions.iter().cloned().enumerate() {
        let (client, base, token, user, log) = (
            app.client.clone(),
            app.base.clone(),
            tokens[u].clone(),
            users[u].clone(),
            log.clone(),
        );
        let mut rng = Rng(seed.wrapping_add(k as u64 * 7919) | 1);
        workers.push(tokio::spawn(async move {
            session_load(
                &client, &base, &token, &sid, &user, k, &mut rng, &log, deadline,
            )
            .await
        }));
    }

    // The killer: a random user's actor every ~200 ms, one kill below the crash-loop guard.
    let mut kills = 0u64;
    let mut kill_times: HashMap<usize, Vec<Instant>> = HashMap::new();
    let mut in_worker = false;
    let (crash_limit, crash_window) = crash_guard();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(150 + rng.below(100))).await;
        let now = Instant::now();
        let eligible: Vec<usize> = (0..USERS)
            .filter(|u| {
                let times = kill_times.entry(*u).or_default();
                times.retain(|t| now.duration_since(*t) < crash_window);
                times.len() + 1 < crash_limit
            })
            .collect();
        if eligible.is_empty() {
            continue;
        }
        let u = eligible[rng.below(eligible.len() as u64) as usize];
        app.supervisor
            .crash_user(&UserId::parse(&users[u]).unwrap(), in_worker)
            .await;
        kill_times.entry(u).or_default().push(now);
        in_worker = !in_worker;
        kills += 1;
    }
    for w in workers {
        w.await.unwrap();
    }

    // Every session still works, or is refused only with a retryable answer.
    let mut broken = Vec::new();
    for (u, sid) in &sessions {
        let mut last = String::new();
        let mut works = false;
        for _ in 0..50 {
            match request(&app.client, &app.base, &tokens[*u], sid, "ping", json!({})).await {
                Answer::Ok(_) => {
                    works = true;
                    break;
                }
                Answer::Retryable(why) => last = why,
                other => {
                    last = format!("{other}");
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !works && !last.contains("retry-after") && !last.contains("-32603") {
            broken.push(format!("{} {sid}: {last}", users[*u]));
        }
    }

    // Every acknowledged write is readable with exactly its content (or a later attempt's).
    let notes = log.lock().unwrap().notes.clone();
    let mut lost = Vec::new();
    for ((user, path), history) in &notes {
        let u = users.iter().position(|x| x == user).unwrap();
        let sid = &sessions.iter().find(|(x, _)| *x == u).unwrap().1;
        let mut answer = Answer::Retryable(String::new());
        for _ in 0..50 {
            answer = tool(
                &app.client,
                &app.base,
                &tokens[u],
                sid,
                "read_note",
                json!({ "path": path }),
            )
            .await;
            if !matches!(answer, Answer::Retryable(_)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let fine = match &answer {
            Answer::Ok(note) => history
                .allowed()
                .contains(&note["body"].as_str().unwrap_or_default()),
            Answer::ToolError(code) => code == "not_found" && !history.acked(),
            _ => false,
        };
        if !fine {
            lost.push(format!(
                "{user} {path}: {answer}, allowed {:?}",
                history.allowed()
            ));
        }
    }
    let crashes = app.supervisor.stats().await.crashes;
    let log = log.lock().unwrap();
    println!(
        "soak: secs={secs} acked_writes={} kills={kills} lost={} wrong_tenant={} broken_sessions={} retryable_errors={} wrong_answers={} crashes_counted={crashes} seed={seed}",
        log.acked_writes,
        lost.len() + log.lost.len(),
        log.wrong_tenant.len(),
        broken.len(),
        log.retryable,
        log.wrong.len(),
    );
    assert!(log.acked_writes > 0, "the load wrote nothing");
    assert!(kills > 0, "no actor was killed");
    assert!(log.wrong_tenant.is_empty(), "{:?}", log.wrong_tenant);
    assert!(log.wrong.is_empty(), "wrong answers: {:?}", log.wrong);
    assert!(log.lost.is_empty(), "lost during the soak: {:?}", log.lost);
    assert!(lost.is_empty(), "lost acknowledged writes: {lost:?}");
    assert!(broken.is_empty(), "broken sessions: {broken:?}");
    assert!(crashes > 0, "the kills really crashed actors");
}

/// One session's writes, edits and reads until `deadline`, everything it saw put in `log`.
#[allow(clippy::too_many_arguments)]
async fn session_load(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    sid: &str,
    user: &str,
    k: usize,
    rng: &mut Rng,
    log: &Mutex<SoakLog>,
    deadline: Instant,
) {
    let mut mine: Vec<String> = Vec::new();
    let mut seq = 0u64;
    while Instant::now() < deadline {
        seq += 1;
        let op = rng.below(10);
        if op < 4 || mine.is_empty() {
            // A new note.
            let path = format!("s{k}/n{seq}.md");
            let body = format!("owner={user} seq={seq} uniq{k}x{seq}");
            let answer = tool(
                client,
                base,
                token,
                sid,
                "write_note",
                json!({"path": path, "body": body, "if_version": 0}),
            )
            .await;
            record_write(log, user, &path, body, &answer, "create");
            mine.push(path);
        } else if op < 7 {
            // An edit of one of mine: read it, then rewrite that version.
            let path = mine[rng.below(mine.len() as u64) as usize].clone();
            let read = tool(
                client,
                base,
                token,
                sid,
                "read_note",
                json!({ "path": path }),
            )
            .await;
            let Some(version) = check_read(log, user, &path, &read) else {
                continue;
            };
            let body = format!("owner={user} seq={seq} edit uniq{k}x{seq}");
            let answer = tool(
                client,
                base,
                token,
                sid,
                "write_note",
                json!({"path": path, "body": body, "if_version": version}),
            )
            .await;
            record_write(log, user, &path, body, &answer, "edit");
        } else if op < 9 {
            let path = mine[rng.below(mine.len() as u64) as usize].clone();
            let read = tool(
                client,
                base,
                token,
                sid,
                "read_note",
                json!({ "path": path }),
            )
            .await;
            check_read(log, user, &path, &read);
        } else {
            // Another tenant's path: it does not exist in this vault.
            let other = {
                let log = log.lock().unwrap();
                let theirs: Vec<&(String, String)> =
                    log.all_paths.iter().filter(|(u, _)| u != user).collect();
                if theirs.is_empty() {
                    continue;
                }
                theirs[rng.below(theirs.len() as u64) as usize].1.clone()
            };
            let read = tool(
                client,
                base,
                token,
                sid,
                "read_note",
                json!({ "path": other }),
            )
            .await;
            let mut log = log.lock().unwrap();
            match read {
                Answer::ToolError(code) if code == "not_found" => {}
                Answer::Retryable(_) => log.retryable += 1,
                Answer::Ok(note) => log
                    .wrong_tenant
                    .push(format!("{user} read {other}: {note}")),
                other => log.wrong.push(format!("{user} read {other}")),
            }
        }
    }
}

/// Note a write's outcome. Returns nothing: a retryable answer leaves it unknown.
fn record_write(
    log: &Mutex<SoakLog>,
    user: &str,
    path: &str,
    body: String,
    answer: &Answer,
    what: &str,
) {
    let mut log = log.lock().unwrap();
    let acked = match answer {
        Answer::Ok(_) => true,
        Answer::Retryable(_) => {
            log.retryable += 1;
            false
        }
        other => {
            log.wrong.push(format!("{user} {what} {path}: {other}"));
            return;
        }
    };
    if acked {
        log.acked_writes += 1;
    }
    let key = (user.to_string(), path.to_string());
    if !log.notes.contains_key(&key) {
        log.all_paths.push(key.clone());
    }
    log.notes
        .entry(key)
        .or_default()
        .attempts
        .push((body, acked));
}

/// Check a read of one of the reader's notes; its version when it can be edited.
fn check_read(log: &Mutex<SoakLog>, user: &str, path: &str, read: &Answer) -> Option<u64> {
    let mut log = log.lock().unwrap();
    let history = log
        .notes
        .get(&(user.to_string(), path.to_string()))
        .cloned()
        .unwrap_or_default();
    match read {
        Answer::Ok(note) => {
            let body = note["body"].as_str().unwrap_or_default();
            if !body.contains(&format!("owner={user} ")) {
                log.wrong_tenant
                    .push(format!("{user} read {path}: {body:?}"));
                return None;
            }
            if !history.allowed().contains(&body) {
                log.lost.push(format!(
                    "{user} {path}: read {body:?}, allowed {:?}",
                    history.allowed()
                ));
                return None;
            }
            note["version"].as_u64()
        }
        Answer::Retryable(_) => {
            log.retryable += 1;
            None
        }
        Answer::ToolError(code) if code == "not_found" && !history.acked() => None,
        other => {
            log.wrong.push(format!("{user} read {path}: {other}"));
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. SIGKILL of the process during writes
// ---------------------------------------------------------------------------------------------

const KILL_PUBLIC_URL: &str = "http://vault.faults.test";

/// Start `vault-mcp serve` in space mode on `data`; the process and its base URL.
fn start_server(data: &Path) -> (ServerProcess, String) {
    ServerProcess::start(data, KILL_PUBLIC_URL)
}

/// How many temp files of unfinished writes are under `dir`.
fn temp_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                temp_files(&path)
            } else {
                usize::from(e.file_name().to_string_lossy().ends_with(".tmp"))
            }
        })
        .sum()
}

/// The `.md` files under `vault`, relative, with `/` separators.
fn notes_on_disk(vault: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "md")
                && !entry.file_name().to_string_lossy().starts_with('.')
            {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy();
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                out.insert(rel.replace('\\', "/"), text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(vault, vault, &mut out);
    out
}

#[tokio::test]
async fn sigkill_during_writes_keeps_every_acknowledged_write_whole_and_indexed() {
    let rounds = env_number("FAULT_KILL_ROUNDS", 3);
    let mut rng = Rng::from_env_or_clock();
    let seed = rng.0;
    let dir = tempfile::tempdir().unwrap();
    let keys = TokenKeys::new(SECRET.as_bytes(), KILL_PUBLIC_URL, KILL_PUBLIC_URL);
    let users = ["killa", "killb", "killc"];
    let tokens: Vec<String> = users
        .iter()
        .map(|u| {
            keys.mint(&UserId::parse(u).unwrap(), Duration::from_secs(3600), &[])
                .unwrap()
        })
        .collect();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut notes: BTreeMap<(String, String), NoteHistory> = BTreeMap::new();
    let (mut acked_writes, mut lost, mut torn, mut mismatches) =
        (0u64, Vec::new(), Vec::new(), Vec::new());

    for round in 0..rounds {
        let (mut child, base) = start_server(dir.path());
        // Writers: two sessions per user, each owning its notes.
        let mut writers = Vec::new();
        for (w, token) in tokens.iter().chain(tokens.iter()).enumerate() {
            let user = users[w % users.len()].to_string();
            let sid = open_session(&client, &base, token).await;
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            let mut rng = Rng(seed.wrapping_add(round * 131 + w as u64) | 1);
            writers.push(tokio::spawn(async move {
                kill_writer(&client, &base, &token, &sid, &user, round, w, &mut rng).await
            }));
        }
        let after = Duration::from_millis(300 + rng.below(1200));
        tokio::time::sleep(after).await;
        child.sigkill();
        for w in writers {
            let (user, histories) = w.await.unwrap();
            for (path, history) in histories {
                acked_writes += history.attempts.iter().filter(|(_, a)| *a).count() as u64;
                notes.insert((user.clone(), path), history);
            }
        }

        // Restart on the same folder and check every note ever written.
        let (_restarted, base) = start_server(dir.path());
        for (u, user) in users.iter().enumerate() {
            let sid = open_session(&client, &base, &tokens[u]).await;
            let disk = notes_on_disk(&dir.path().join("vaults").join(user));
            for ((owner, path), history) in notes.iter().filter(|((o, _), _)| o == user) {
                let allowed = history.allowed();
                match disk.get(path) {
                    None if history.acked() => lost.push(format!("{owner} {path}: no file")),
                    None => {}
                    Some(file) => {
                        let body = body_on_disk(file);
                        if !history.attempts.iter().any(|(b, _)| b == body) {
                            torn.push(format!("{owner} {path}: {file:?}"));
                        } else if !allowed.contains(&body) {
                            lost.push(format!("{owner} {path}: {body:?}, allowed {allowed:?}"));
                        }
                    }
                }
                let read = tool(
                    &client,
                    &base,
                    &tokens[u],
                    &sid,
                    "read_note",
                    json!({"path": path}),
                )
                .await;
                let served = match &read {
                    Answer::Ok(n) => n["body"].as_str().map(str::to_string),
                    Answer::ToolError(c) if c == "not_found" => None,
                    other => {
                        mismatches.push(format!("{owner} read {path}: {other}"));
                        continue;
                    }
                };
                if served.as_deref() != disk.get(path).map(|f| body_on_disk(f)) {
                    mismatches.push(format!(
                        "{owner} {path}: served {served:?}, on disk {:?}",
                        disk.get(path)
                    ));
                }
            }
            // The index lists exactly the files, and finds each by its unique word.
            let listed = list_all(&client, &base, &tokens[u], &sid).await;
            let files: BTreeSet<String> = disk.keys().cloned().collect();
            if listed != files {
                mismatches.push(format!(
                    "{user}: listed-not-on-disk {:?}, on-disk-not-listed {:?}",
                    listed.difference(&files).collect::<Vec<_>>(),
                    files.difference(&listed).collect::<Vec<_>>()
                ));
            }
            for path in &files {
                let word = unique_word(path);
                let found = match tool(
                    &client,
                    &base,
                    &tokens[u],
                    &sid,
                    "search_notes",
                    json!({"query": word, "limit": 10}),
                )
                .await
                {
                    Answer::Ok(hits) => hit_paths(&hits),
                    other => panic!("search after restart: {other}"),
                };
                if !found.contains(path) {
                    mismatches.push(format!("{user} {path}: search {word} found {found:?}"));
                }
            }
        }
    }
    // Temp files of interrupted writes: each user's actor, started again by the checks above,
    // removes the ones a kill left behind.
    let temp_left = temp_files(&dir.path().join("vaults"));
    println!(
        "sigkill: rounds={rounds} acked_writes={acked_writes} lost={} torn={} index_mismatches={} temp_files_left={temp_left} seed={seed}",
        lost.len(),
        torn.len(),
        mismatches.len()
    );
    assert!(
        acked_writes > 0,
        "nothing was acknowledged before the kills"
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(torn.is_empty(), "torn: {torn:?}");
    assert!(mismatches.is_empty(), "index disagrees: {mismatches:?}");
    assert_eq!(
        temp_left, 0,
        "temp files of interrupted writes left in the vaults"
    );
}

/// The word only note `path` contains (`r1/w3/n7.md` → `uniqr1w3n7`).
fn unique_word(path: &str) -> String {
    format!("uniq{}", path.trim_end_matches(".md").replace('/', ""))
}

/// Create and edit notes until the server goes away; the history of each note.
#[allow(clippy::too_many_arguments)]
async fn kill_writer(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    sid: &str,
    user: &str,
    round: u64,
    w: usize,
    rng: &mut Rng,
) -> (String, BTreeMap<String, NoteHistory>) {
    let mut notes: BTreeMap<String, NoteHistory> = BTreeMap::new();
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    for seq in 0u64.. {
        let edit = !versions.is_empty() && rng.below(3) == 0;
        let (path, if_version) = if edit {
            let paths: Vec<&String> = versions.keys().collect();
            let path = paths[rng.below(paths.len() as u64) as usize].clone();
            let v = versions[&path];
            (path, v)
        } else {
            (format!("r{round}/w{w}/n{seq}.md"), 0)
        };
        // Big enough that a torn write would show.
        let filler = "lorem ipsum dolor sit amet ".repeat(40 + rng.below(200) as usize);
        let body = format!(
            "owner={user} seq={seq} {} {filler}end{seq}",
            unique_word(&path)
        );
        let answer = tool(
            client,
            base,
            token,
            sid,
            "write_note",
            json!({"path": path, "body": body, "if_version": if_version}),
        )
        .await;
        let history = notes.entry(path.clone()).or_default();
        match answer {
            Answer::Ok(written) => {
                history.attempts.push((body, true));
                versions.insert(path, written["version"].as_u64().unwrap_or(0));
            }
            Answer::Transport(_) | Answer::Retryable(_) => {
                // The process is going away: the outcome of this write is unknown.
                history.attempts.push((body, false));
                break;
            }
            other => panic!("{user} write {path}: {other}"),
        }
    }
    (user.to_string(), notes)
}

// ---------------------------------------------------------------------------------------------
// 3. Disk full
// ---------------------------------------------------------------------------------------------

/// A small tmpfs mounted on a temp folder, unmounted when dropped (even after a panic).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a test failed with the server running): detach it now, the kernel
            // frees it when the last file closes.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

#[tokio::test]
async fn full_vault_disk_refuses_writes_clearly_damages_nothing_and_recovers_by_itself() {
    disk_full(false).await;
}

#[tokio::test]
async fn full_data_disk_refuses_writes_clearly_damages_nothing_and_recovers_by_itself() {
    disk_full(true).await;
}

/// Fill a 2 MB tmpfs holding the vaults (or, with `whole_data_dir`, the index and accounts
/// files too) until writes fail, check the failures and the notes, free space, write again.
async fn disk_full(whole_data_dir: bool) {
    let name = if whole_data_dir {
        "disk_full(data)"
    } else {
        "disk_full(vault)"
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("{name}: skipped (needs root to mount a tmpfs)");
        return;
    }
    let fs = match Tmpfs::mount("2m") {
        Ok(fs) => fs,
        Err(why) => {
            println!("{name}: skipped ({why})");
            return;
        }
    };
    let other = tempfile::tempdir().unwrap();
    let app = if whole_data_dir {
        spawn_env_in(&fs.path(), &[], |_| {}).await
    } else {
        let vaults = fs.path();
        spawn_env_in(
            other.path(),
            &[("VAULT_BASE_PATH", vaults.to_str().unwrap())],
            |_| {},
        )
        .await
    };
    let vault = if whole_data_dir {
        fs.path().join("vaults").join("full")
    } else {
        fs.path().join("full")
    };
    let token = app.token("full");
    let sid = app.session(&token).await;
    let write = |path: String, body: String| {
        let (client, base, token, sid) = (
            app.client.clone(),
            app.base.clone(),
            token.clone(),
            sid.clone(),
        );
        async move {
            tool(
                &client,
                &base,
                &token,
                &sid,
                "write_note",
                json!({"path": path, "body": body}),
            )
            .await
        }
    };

    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut refused: Vec<String> = Vec::new();
    let chunk = "x".repeat(60 * 1024);
    for n in 0..200 {
        let path = format!("fill/n{n}.md");
        let body = format!("note {n} {chunk}");
        match write(path.clone(), body.clone()).await {
            Answer::Ok(_) => {
                acked.insert(path, body);
            }
            failed => {
                refused.push(failed.to_string());
                // Rewriting an existing note must fail as cleanly and leave the old text.
                if let Some((path, _)) = acked.iter().next() {
                    let bigger = format!("rewrite {chunk}{chunk}");
                    match write(path.clone(), bigger.clone()).await {
                        Answer::Ok(_) => {
                            acked.insert(path.clone(), bigger);
                        }
                        failed => refused.push(failed.to_string()),
                    }
                }
                if refused.len() >= 4 {
                    break;
                }
            }
        }
    }
    assert!(!acked.is_empty(), "nothing fit on the disk");
    assert!(!refused.is_empty(), "the disk never filled");
    // A clear error: a tool error with a stable code, or a 5xx carrying a message.
    let unclear: Vec<&String> = refused
        .iter()
        .filter(|r| {
            !(r.starts_with("tool error io_error")
                || r.starts_with("tool error index_error")
                || (r.starts_with("wrong tools/call: 5") && r.contains("message")))
        })
        .collect();
    assert!(
        unclear.is_empty(),
        "unclear failures on a full disk: {unclear:?}"
    );

    // Nothing acknowledged is damaged, on disk or as served; no refused note is left behind.
    let disk = notes_on_disk(&vault);
    let mut damaged = Vec::new();
    for (path, body) in &acked {
        if disk.get(path).map(|f| body_on_disk(f)) != Some(body.as_str()) {
            damaged.push(format!(
                "{path} on disk: {} bytes",
                disk.get(path).map_or(0, |f| f.len())
            ));
        }
        match tool(
            &app.client,
            &app.base,
            &token,
            &sid,
            "read_note",
            json!({"path": path}),
        )
        .await
        {
            Answer::Ok(n) if n["body"] == json!(body) => {}
            Answer::Ok(n) => damaged.push(format!(
                "{path} served {} bytes",
                n["body"].as_str().map_or(0, str::len)
            )),
            // Reading may fail while the disk is full (a 5xx), but never with wrong text.
            other if whole_data_dir && !matches!(other, Answer::ToolError(_)) => {}
            other => damaged.push(format!("{path} served {other}")),
        }
    }
    let left_behind: Vec<&String> = disk.keys().filter(|p| !acked.contains_key(*p)).collect();

    // Free space (delete_note, or behind the server's back if even that fails): writes work
    // again without a restart.
    let freed_at = Instant::now();
    let victims: Vec<String> = acked.keys().take(acked.len() / 2 + 1).cloned().collect();
    let mut removed_behind_its_back = 0;
    for path in &victims {
        match tool(
            &app.client,
            &app.base,
            &token,
            &sid,
            "delete_note",
            json!({"path": path}),
        )
        .await
        {
            Answer::Ok(_) => {}
            _ => {
                let _ = std::fs::remove_file(vault.join(path));
                removed_behind_its_back += 1;
            }
        }
        acked.remove(path);
    }
    let mut recovered = None;
    while freed_at.elapsed() < Duration::from_secs(10) {
        let body = format!(
            "after the disk was freed {}",
            freed_at.elapsed().as_micros()
        );
        if let Answer::Ok(_) = write("recovered.md".to_string(), body).await {
            recovered = Some(freed_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{name}: writes_refused={} damaged={} recovered_after_ms={} removed_behind_its_back={removed_behind_its_back} refusals={:?}",
        refused.len(),
        damaged.len(),
        recovered.map_or(-1, |d| d.as_millis() as i64),
        refused.iter().map(|r| r.chars().take(90).collect::<String>()).collect::<BTreeSet<_>>()
    );
    assert!(damaged.is_empty(), "damaged: {damaged:?}");
    assert!(
        left_behind.is_empty(),
        "a refused write left a note behind: {left_behind:?}"
    );
    assert!(
        recovered.is_some(),
        "writes did not recover after space was freed"
    );
    // The remaining notes are intact and listed.
    let listed = list_all(&app.client, &app.base, &token, &sid).await;
    for (path, body) in &acked {
        assert!(listed.contains(path), "{path} listed");
        match tool(
            &app.client,
            &app.base,
            &token,
            &sid,
            "read_note",
            json!({"path": path}),
        )
        .await
        {
            Answer::Ok(n) => assert_eq!(n["body"], json!(body), "{path} intact"),
            other => panic!("{path} after recovery: {other}"),
        }
    }
    if removed_behind_its_back == 0 {
        assert_eq!(
            listed.len(),
            acked.len() + 1,
            "the listing is exactly the notes"
        );
    }
    // Close every file on the tmpfs before it is unmounted.
    let supervisor = app.supervisor.clone();
    app.stop().await;
    supervisor.shutdown().await;
    drop(fs);
}
