//! `move_note` under SIGKILL: a folder of 300 notes, linked from 300 other notes, is moved
//! back and forth by a real `vault-mcp serve` process that is killed at a different point of
//! each move (from before it starts to after it ends). After every kill the server is started
//! again and the vault must be whole: every note exactly once (old or new folder, the same
//! bytes but for its rewritten links), the links of all referring notes pointing to the one
//! folder that holds the notes, and list and search agreeing with the files.
//! `MOVE_CRASH_ROUNDS` sets the number of kills (default 16).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vault_actors::UserId;
use vault_mcp::auth::TokenKeys;

use crate::helpers::{header, ServerProcess, LATEST, SECRET};

const PUBLIC_URL: &str = "http://vault.move-crash.test";
const USER: &str = "mover";
const NOTES: usize = 300;
const REFERRERS: usize = 300;
/// The two folders the notes move between.
const SIDES: [&str; 2] = ["alpha/notes", "beta/kept"];

/// A minimal MCP client for one session.
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    sid: String,
}

impl Client {
    async fn connect(base: &str, token: &str) -> Client {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let resp = http
            .post(format!("{base}/mcp"))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion": LATEST, "capabilities": {},
                "clientInfo": {"name":"move-crash","version":"1"}}}),
            )
            .send()
            .await
            .expect("initialize");
        assert_eq!(resp.status().as_u16(), 200);
        let sid = header(resp.headers(), "mcp-session-id");
        let client = Client {
            http,
            base: base.to_string(),
            token: token.to_string(),
            sid,
        };
        client
            .send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await
            .ok();
        client
    }

    async fn send(&self, message: Value) -> Result<String, reqwest::Error> {
        self.http
            .post(format!("{}/mcp", self.base))
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.sid)
            .header("mcp-protocol-version", LATEST)
            .timeout(Duration::from_secs(120))
            .json(&message)
            .send()
            .await?
            .text()
            .await
    }

    /// A tool's structured content; panics on any failure.
    async fn tool(&self, name: &str, args: Value) -> Value {
        let text = self
            .send(json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
                "params": {"name": name, "arguments": args}}))
            .await
            .expect("tool call");
        let message = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim_start()).ok())
            .rfind(|m| m.get("id").is_some())
            .or_else(|| serde_json::from_str(&text).ok())
            .unwrap_or_else(|| panic!("{name}: no answer in {text}"));
        let result = &message["result"];
        assert_eq!(result["isError"], json!(false), "{name}: {message}");
        result["structuredContent"].clone()
    }
}

fn note_text(side: &str, i: usize) -> String {
    let next = (i + 1) % NOTES;
    format!(
        "---\ntitle: Note {i}\n---\n# Note {i}\nuniq{i}word, next is [[{side}/n{next}]] and \
         [[n{next}|by name]].\n"
    )
}

/// A referring note whose links point to `side`; the code block never changes.
fn referrer_text(side: &str, r: usize) -> String {
    let i = r % NOTES;
    let code = SIDES[0];
    format!(
        "# Ref {r}\nsee [[{side}/n{i}|note {i}]], ![[{side}/n{i}.md#Note {i}]] and \
         [[{side}/n{i}#top]].\n```\n[[{code}/n{i}]] in code stays\n```\n"
    )
}

fn write_fixture(vault: &Path) {
    for i in 0..NOTES {
        let file = vault.join(format!("{}/n{i}.md", SIDES[0]));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, note_text(SIDES[0], i)).unwrap();
    }
    for r in 0..REFERRERS {
        let file = vault.join(format!("refs/r{r}.md"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, referrer_text(SIDES[0], r)).unwrap();
    }
}

fn md_files(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else if name.ends_with(".md") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// Check the invariant on a freshly started server; the side that holds the notes.
async fn check_vault(vault: &Path, client: &Client) -> usize {
    // Any request opens the user's actor, which finishes an interrupted move first.
    let listed = client.tool("list_notes", json!({"limit": 1000})).await;
    let files = md_files(vault);
    assert_eq!(files.len(), NOTES + REFERRERS, "one copy of each note");
    let in_first = (0..NOTES)
        .filter(|i| files.contains(&format!("{}/n{i}.md", SIDES[0])))
        .count();
    let side = match in_first {
        NOTES => 0,
        0 => 1,
        n => panic!(
            "{n} of {NOTES} notes in {}, the rest in {}",
            SIDES[0], SIDES[1]
        ),
    };
    for i in 0..NOTES {
        let path = vault.join(format!("{}/n{i}.md", SIDES[side]));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, note_text(SIDES[side], i), "{}", path.display());
    }
    for r in 0..REFERRERS {
        let text = std::fs::read_to_string(vault.join(format!("refs/r{r}.md"))).unwrap();
        assert_eq!(
            text,
            referrer_text(SIDES[side], r),
            "refs/r{r}.md: its links do not all point to {}",
            SIDES[side]
        );
    }
    let listed: BTreeSet<String> = listed["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, files, "list_notes agrees with the files");
    for i in [0, NOTES / 2, NOTES - 1] {
        let hits = client
            .tool("search_notes", json!({"query": format!("uniq{i}word")}))
            .await;
        let paths: Vec<&str> = hits["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, [format!("{}/n{i}.md", SIDES[side])]);
    }
    let back = client
        .tool(
            "get_backlinks",
            json!({"path": format!("{}/n7.md", SIDES[side])}),
        )
        .await;
    assert_eq!(
        back["backlinks"].as_array().unwrap().len(),
        2,
        "the referrer and the previous note"
    );
    side
}

#[tokio::test]
async fn sigkill_at_any_point_of_a_folder_move_leaves_one_whole_vault() {
    let rounds: usize = std::env::var("MOVE_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vaults").join(USER);
    write_fixture(&vault);
    let keys = TokenKeys::new(SECRET.as_bytes(), PUBLIC_URL, PUBLIC_URL);
    let token = keys
        .mint(
            &UserId::parse(USER).unwrap(),
            Duration::from_secs(3600),
            &[],
        )
        .unwrap();

    let (mut server, base) = ServerProcess::start(dir.path(), PUBLIC_URL);
    let mut client = Client::connect(&base, &token).await;
    let mut side = check_vault(&vault, &client).await;

    // One move, timed, to spread the kills over its length.
    let started = Instant::now();
    client
        .tool(
            "move_note",
            json!({"from": SIDES[side], "to": SIDES[1 - side]}),
        )
        .await;
    let duration = started.elapsed();
    side = 1 - side;

    let (mut old_kept, mut new_kept, mut journals_left) = (0, 0, 0);
    for round in 0..rounds {
        let delay = duration.mul_f64(round as f64 / (rounds - 1).max(1) as f64);
        let mover = Client {
            http: client.http.clone(),
            base: client.base.clone(),
            token: client.token.clone(),
            sid: client.sid.clone(),
        };
        let (from, to) = (SIDES[side], SIDES[1 - side]);
        let request = tokio::spawn(async move {
            mover
                .send(
                    json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
                    "name": "move_note", "arguments": {"from": from, "to": to}}}),
                )
                .await
        });
        tokio::time::sleep(delay).await;
        server.sigkill();
        let _ = request.await;
        journals_left += usize::from(
            dir.path()
                .join(format!("index/journal/{USER}.json"))
                .exists(),
        );

        let (restarted, base) = ServerProcess::start(dir.path(), PUBLIC_URL);
        server = restarted;
        client = Client::connect(&base, &token).await;
        let now = check_vault(&vault, &client).await;
        if now == side {
            old_kept += 1;
        } else {
            new_kept += 1;
        }
        side = now;
    }
    println!(
        "move crash: rounds={rounds} move_ms={} old_kept={old_kept} new_kept={new_kept} \
         journals_finished_at_restart={journals_left}",
        duration.as_millis()
    );
    assert!(old_kept > 0, "some kills came before the move took effect");
    assert!(new_kept > 0, "some kills came after the move took effect");
}
