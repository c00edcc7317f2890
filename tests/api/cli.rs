//! The binary itself: defaults, the printed banner, tokens, start-up refusals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::json;
use vault_actors::UserId;
use vault_mcp::auth::TokenKeys;

const BIN: &str = env!("CARGO_BIN_EXE_vault-mcp");

/// Start the binary and read stdout until the banner is complete.
fn start(cmd: &mut Command) -> (Child, Vec<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout).lines();
    let mut lines = Vec::new();
    for line in reader.by_ref() {
        let line = line.expect("line");
        // The banner ends with the closing brace of the mcpServers JSON (local mode).
        let done = line == "}" || line.starts_with("mode: space");
        lines.push(line);
        if done {
            break;
        }
    }
    // Keep draining so the server never writes into a closed pipe.
    std::thread::spawn(move || reader.for_each(drop));
    (child, lines)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

#[test]
fn runs_on_embedded_defaults_with_no_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (child, lines) = start(Command::new(BIN).current_dir(dir.path()).env_clear());
    stop(child);
    assert_eq!(lines[0], "listening on http://127.0.0.1:7860");
    assert!(lines
        .iter()
        .any(|l| l == "MCP endpoint: http://127.0.0.1:7860/mcp"));
    assert!(lines
        .iter()
        .any(|l| l.contains("claude mcp add --transport http")
            && l.contains("--header \"Authorization: Bearer ey")));
    let json_start = lines
        .iter()
        .position(|l| l == "mcpServers entry:")
        .expect("mcpServers entry")
        + 1;
    let entry: serde_json::Value =
        serde_json::from_str(&lines[json_start..].join("\n")).expect("valid JSON entry");
    assert_eq!(
        entry["mcpServers"]["vault"]["url"],
        "http://127.0.0.1:7860/mcp"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(
            "web page (one-time login link): http://127.0.0.1:7860/login/local?code="
        )),
        "{lines:?}"
    );
    for p in [
        "data/secret.key",
        "data/vaults",
        "data/index",
        "data/accounts.sqlite",
    ] {
        assert!(dir.path().join(p).exists(), "{p}");
    }
}

#[tokio::test]
async fn the_banner_login_link_signs_the_browser_in_once() {
    let dir = tempfile::tempdir().unwrap();
    let (child, lines) = start(
        Command::new(BIN)
            .env_clear()
            .env("DATA_DIR", dir.path())
            .env("PORT", "0"),
    );
    let link = lines
        .iter()
        .find_map(|l| l.strip_prefix("web page (one-time login link): "))
        .expect("a login link")
        .to_string();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let first = client.get(&link).send().await.unwrap();
    let second = client.get(&link).send().await.unwrap();
    stop(child);
    assert_eq!(first.status(), reqwest::StatusCode::SEE_OTHER);
    assert!(first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("vault_session="));
    assert_eq!(second.status(), reqwest::StatusCode::UNAUTHORIZED);
}

fn token_from(lines: &[String]) -> String {
    let i = lines
        .iter()
        .position(|l| l.starts_with("bearer token for user `local`"))
        .expect("token line");
    lines[i + 1].trim().to_string()
}

async fn ping_status(base: &str, token: &str) -> reqwest::StatusCode {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    client
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn second_start_reuses_the_secret_so_the_old_token_works() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        start(
            Command::new(BIN)
                .env_clear()
                .env("DATA_DIR", dir.path())
                .env("PORT", "0")
                .env("PUBLIC_URL", "http://vault.test"),
        )
    };
    let (first, lines) = run();
    let token = token_from(&lines);
    stop(first);
    let (second, lines) = run();
    let base = lines[0].trim_start_matches("listening on ").to_string();
    assert_eq!(ping_status(&base, &token).await, reqwest::StatusCode::OK);
    stop(second);
}

#[test]
fn token_command_prints_a_token_for_the_user() {
    let secret = "s".repeat(40);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("JWT_SECRET_KEY", &secret)
        .env("PUBLIC_URL", "https://notes.example")
        .args([
            "token",
            "--user",
            "alice",
            "--ttl",
            "7d",
            "--scope",
            "notes:read",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let keys = TokenKeys::new(
        secret.as_bytes(),
        "https://notes.example",
        "https://notes.example",
    );
    let caller = keys.verify(&token).unwrap();
    assert_eq!(caller.user, UserId::parse("alice").unwrap());
    assert!(caller.can_read() && !caller.can_write());
    // Recorded, so its owner can see and revoke it on the account page.
    assert!(dir.path().join("data/accounts.sqlite").exists());
    let bad = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("JWT_SECRET_KEY", &secret)
        .args(["token", "--user", "../x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn space_mode_refuses_to_start_without_a_long_enough_secret() {
    for secret in [None, Some("short")] {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .args(["serve", "--mode", "space", "--port", "0"]);
        if let Some(s) = secret {
            cmd.env("JWT_SECRET_KEY", s);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("JWT_SECRET_KEY") && err.contains("32"),
            "{err}"
        );
    }
}

#[test]
fn invalid_environment_value_stops_start_up_naming_the_key() {
    for (key, value) in [
        ("SESSION_TTL", "whenever"),
        ("PORT", "http"),
        ("ACTOR_IDLE_TIMEOUT", "0s"),
        ("MODE", "cloud"),
    ] {
        let out = Command::new(BIN)
            .env_clear()
            .env(key, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{key}: {err}");
    }
}
