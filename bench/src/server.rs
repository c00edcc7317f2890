//! Starting, watching and stopping a `vault-mcp serve` child process.
//!
//! The server is started with a cleared environment plus the contract's variables, so settings of
//! the shell running the bench (a `DATABASE_PATH`, a `PORT`) cannot leak into the measurement.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const STDERR_TAIL: usize = 40;
/// How long after `listening on` the login link may take to follow.
const LINK_GRACE: Duration = Duration::from_secs(2);

/// The server's `MODE`: what the bench signs in with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMode {
    /// Many users, each with a bench-minted token: the MCP workloads.
    Space,
    /// The single user `local`, whose web page signs in through the banner's one-time link.
    Local,
}

impl ServerMode {
    fn env_value(self) -> &'static str {
        match self {
            ServerMode::Space => "space",
            ServerMode::Local => "local",
        }
    }
}

/// Everything that decides how the server runs; one config can be started several times.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub bin: PathBuf,
    pub mode: ServerMode,
    /// The server's `DATA_DIR`: holds `vaults/`, `index/` and whatever else the server keeps
    /// (its accounts file, local mode's `secret.key`), so nothing lands in the cwd.
    pub root: PathBuf,
    pub secret: String,
    pub public_url: String,
    /// `ACTOR_IDLE_TIMEOUT`, humantime (`10m`, `1s`).
    pub idle_timeout: String,
    /// Extra `KEY=VALUE` pairs from `--server-env`, applied last.
    pub extra_env: Vec<(String, String)>,
    /// Copy the server's stderr to ours instead of only keeping its tail.
    pub forward_stderr: bool,
}

impl ServerConfig {
    pub fn vault_dir(&self, user: &str) -> PathBuf {
        self.root.join("vaults").join(user)
    }
}

/// A running server; call [`ServerProcess::stop`] (dropping it kills it as a last resort).
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub url: String,
    /// Local mode's one-time web login link, as the banner printed it.
    pub login_link: Option<String>,
    /// The last lines of the server's stderr; shared, so it can be read after the process
    /// is gone ([`tail_text`]).
    pub stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

/// The lines of a stderr tail, joined.
pub fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    tail.lock()
        .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

impl ServerProcess {
    pub async fn start(cfg: &ServerConfig) -> io::Result<ServerProcess> {
        let mut cmd = Command::new(&cfg.bin);
        cmd.arg("serve").env_clear();
        for keep in ["PATH", "HOME", "TMPDIR", "RUST_BACKTRACE"] {
            if let Ok(v) = std::env::var(keep) {
                cmd.env(keep, v);
            }
        }
        let vaults = cfg.root.join("vaults");
        let index = cfg.root.join("index");
        std::fs::create_dir_all(&vaults)?;
        std::fs::create_dir_all(&index)?;
        cmd.env("MODE", cfg.mode.env_value())
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("JWT_SECRET_KEY", &cfg.secret)
            .env("PUBLIC_URL", &cfg.public_url)
            .env("DATA_DIR", &cfg.root)
            .env("VAULT_BASE_PATH", &vaults)
            .env("INDEX_PATH", &index)
            .env("ACTOR_IDLE_TIMEOUT", &cfg.idle_timeout)
            .env("SESSION_TTL", "30m")
            // The bench drives one user far past what a tenant of a public server may do:
            // measure the server, not its per-user rate limit and quotas (the flood check sets
            // its own limit through extra_env). An older server ignores these.
            .env("RATE_LIMIT_PER_SECOND", "1000000000")
            .env("RATE_LIMIT_BURST", "1000000000")
            .env("MAX_NOTES_PER_VAULT", "100000000")
            .env("MAX_SESSIONS_PER_USER", "1000000")
            .env("RUST_LOG", "warn");
        for (k, v) in &cfg.extra_env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            io::Error::new(e.kind(), format!("cannot run {}: {e}", cfg.bin.display()))
        })?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("server exited at once"))?;

        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(err) = child.stderr.take() {
            tokio::spawn(drain_stderr(err, stderr_tail.clone(), cfg.forward_stderr));
        }
        let (tx, rx) = oneshot::channel();
        let out = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout pipe"))?;
        let want_link = cfg.mode == ServerMode::Local;
        tokio::spawn(drain_stdout(out, want_link, tx));
        let awaited = if want_link {
            "`listening on` and the login link"
        } else {
            "`listening on`"
        };

        let outcome = tokio::select! {
            banner = rx => banner.map_err(|_| format!("closed stdout before printing {awaited}")),
            status = child.wait() => Err(match status {
                Ok(s) => format!("exited with {s} before listening"),
                Err(e) => format!("wait failed: {e}"),
            }),
            _ = tokio::time::sleep(START_TIMEOUT) => {
                Err(format!("did not print {awaited} in time"))
            }
        };
        let banner = match outcome {
            Ok(banner) => banner,
            Err(mut why) => {
                // A closed stdout usually means the process is exiting: report how it ended.
                match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
                    Ok(Ok(status)) if !why.starts_with("exited") => {
                        why = format!("exited with {status} before listening")
                    }
                    Ok(_) => {}
                    Err(_) => {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                    }
                }
                // Give the stderr reader a moment to catch the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let tail = stderr_tail
                    .lock()
                    .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default();
                return Err(io::Error::other(format!(
                    "server {} {why}; last stderr lines:\n{tail}",
                    cfg.bin.display()
                )));
            }
        };
        Ok(ServerProcess {
            child,
            pid,
            url: banner.url,
            login_link: banner.login_link,
            stderr_tail,
        })
    }

    /// Resident set size in bytes, from `/proc/<pid>/status`.
    pub fn rss(&self) -> Option<u64> {
        rss_of(self.pid)
    }

    pub fn stderr_tail(&self) -> String {
        tail_text(&self.stderr_tail)
    }

    fn send_sigterm(&self) {
        if let Ok(pid) = libc::pid_t::try_from(self.pid) {
            // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child,
            // which has not been reaped yet (we still hold `child`), so it cannot be reused.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }

    /// SIGTERM now, then wait up to `deadline` for the exit (SIGKILL after it). Returns when
    /// the signal went out and, if the server exited in time, how long that took and how.
    pub async fn terminate(
        mut self,
        deadline: Duration,
    ) -> io::Result<(Instant, Option<(Duration, ExitStatus)>)> {
        let signalled = Instant::now();
        self.send_sigterm();
        match tokio::time::timeout(deadline, self.child.wait()).await {
            Ok(status) => Ok((signalled, Some((signalled.elapsed(), status?)))),
            Err(_) => {
                self.child.start_kill()?;
                self.child.wait().await?;
                Ok((signalled, None))
            }
        }
    }

    /// SIGTERM, then wait; SIGKILL if it has not exited after `STOP_TIMEOUT`.
    pub async fn stop(mut self) -> io::Result<()> {
        self.send_sigterm();
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                // Dying of the SIGTERM itself is fine; a non-zero exit code is worth a line.
                if status.code().is_some_and(|c| c != 0) {
                    eprintln!("[bench] server exited with {status} after SIGTERM");
                }
                Ok(())
            }
            Err(_) => {
                eprintln!("[bench] server ignored SIGTERM for {STOP_TIMEOUT:?}; killing it");
                self.child.start_kill()?;
                self.child.wait().await.map(|_| ())
            }
        }
    }
}

/// What start-up needs from the banner on stdout.
struct Banner {
    url: String,
    login_link: Option<String>,
}

/// Sends the banner once it is complete: at `listening on`, or with `want_link` at the login
/// link, which the server prints after it in the same write; a server that prints none (one
/// that predates the web app) gets `LINK_GRACE` before the banner goes without it.
async fn drain_stdout(out: impl AsyncRead + Unpin, want_link: bool, tx: oneshot::Sender<Banner>) {
    let mut lines = BufReader::new(out).lines();
    let mut tx = Some(tx);
    let mut url: Option<String> = None;
    let mut send = |url: &str, login_link: Option<String>| {
        if let Some(tx) = tx.take() {
            let _ = tx.send(Banner {
                url: url.to_string(),
                login_link,
            });
        }
    };
    let mut link_deadline = None;
    // Keep reading after the banner: a full pipe would block the server's next write.
    loop {
        let next = match (&url, link_deadline) {
            (Some(u), Some(deadline)) => {
                // `next_line` is cancel-safe: a timeout loses no output.
                match tokio::time::timeout_at(deadline, lines.next_line()).await {
                    Ok(next) => next,
                    Err(_) => {
                        send(u, None);
                        link_deadline = None;
                        continue;
                    }
                }
            }
            _ => lines.next_line().await,
        };
        let Ok(Some(line)) = next else { break };
        if url.is_none() {
            url = listening_url(&line);
            if url.is_some() && want_link {
                link_deadline = Some(tokio::time::Instant::now() + LINK_GRACE);
            }
        }
        let login_link = login_link(&line);
        if let Some(u) = &url {
            if !want_link || login_link.is_some() {
                send(u, login_link);
                link_deadline = None;
            }
        }
    }
}

/// `listening on http://127.0.0.1:7860` → `http://127.0.0.1:7860`.
fn listening_url(line: &str) -> Option<String> {
    let (_, url) = line.split_once("listening on ")?;
    Some(url.trim().trim_end_matches('/').to_string())
}

/// The URL on local mode's banner line
/// `web page (one-time login link): http://…/login/local?code=…`.
fn login_link(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("login link")?;
    let start = rest.find("http://").or_else(|| rest.find("https://"))?;
    let link = rest[start..].split_whitespace().next()?;
    link.contains("/login/").then(|| link.to_string())
}

async fn drain_stderr(
    err: impl AsyncRead + Unpin,
    tail: Arc<Mutex<VecDeque<String>>>,
    forward: bool,
) {
    let mut lines = BufReader::new(err).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if forward {
            eprintln!("[server] {line}");
        }
        if let Ok(mut t) = tail.lock() {
            if t.len() == STDERR_TAIL {
                t.pop_front();
            }
            t.push_back(line);
        }
    }
}

pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `--server-bin` if given, else `target/release/vault-mcp` under the cwd, else `vault-mcp` next
/// to this executable (both live in `target/release/` after a workspace build).
pub fn find_binary(explicit: Option<&Path>) -> io::Result<PathBuf> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("--server-bin {} does not exist", p.display()),
            ))
        };
    }
    let in_cwd = PathBuf::from("target/release/vault-mcp");
    if in_cwd.is_file() {
        return Ok(in_cwd);
    }
    let beside = std::env::current_exe()?.with_file_name("vault-mcp");
    if beside.is_file() {
        return Ok(beside);
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "no server binary at {} or {}; build it (cargo build --release) or pass --server-bin",
            in_cwd.display(),
            beside.display()
        ),
    ))
}

/// 48 random alphanumerics from the OS, for `JWT_SECRET_KEY`.
pub fn random_secret() -> io::Result<String> {
    use std::io::Read;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 48];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    // 62 does not divide 256, so a slight bias remains: harmless for a throwaway bench secret.
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tvault-mcp\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert!(rss_of(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn reads_the_banner() {
        assert_eq!(
            listening_url("listening on http://127.0.0.1:41234/\n").as_deref(),
            Some("http://127.0.0.1:41234")
        );
        assert_eq!(listening_url("MCP endpoint: http://127.0.0.1:1/mcp"), None);
        let line = "web page (one-time login link): http://bench.invalid/login/local?code=Ab-9_x";
        assert_eq!(
            login_link(line).as_deref(),
            Some("http://bench.invalid/login/local?code=Ab-9_x")
        );
        assert_eq!(login_link("MCP endpoint: http://127.0.0.1:1/mcp"), None);
        assert_eq!(login_link("web page (one-time login link): none"), None);
        assert_eq!(
            login_link("login link: https://x.example/login/local?code=1 (once)").as_deref(),
            Some("https://x.example/login/local?code=1")
        );
    }

    #[tokio::test]
    async fn banner_waits_for_the_login_link_only_when_asked() {
        let local = b"listening on http://127.0.0.1:9\nMCP endpoint: http://bench.invalid/mcp\n\
            web page (one-time login link): http://bench.invalid/login/local?code=abc\n\
            bearer token for user `local` (valid 30days):\nxyz\n";
        let (tx, rx) = oneshot::channel();
        drain_stdout(&local[..], true, tx).await;
        let banner = rx.await.unwrap();
        assert_eq!(banner.url, "http://127.0.0.1:9");
        assert_eq!(
            banner.login_link.as_deref(),
            Some("http://bench.invalid/login/local?code=abc")
        );

        let (tx, rx) = oneshot::channel();
        drain_stdout(&local[..], false, tx).await;
        assert_eq!(rx.await.unwrap().login_link, None, "sent at `listening on`");

        // A server without the web app: the banner goes without a link after the grace.
        let (mut server, out) = tokio::io::duplex(1024);
        tokio::io::AsyncWriteExt::write_all(&mut server, b"listening on http://127.0.0.1:9\n")
            .await
            .unwrap();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(drain_stdout(out, true, tx));
        let banner = tokio::time::timeout(LINK_GRACE * 3, rx)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (banner.url.as_str(), banner.login_link),
            ("http://127.0.0.1:9", None)
        );
        drop(server);
    }

    #[test]
    fn secret_is_48_alphanumerics() {
        let s = random_secret().unwrap();
        assert_eq!(s.len(), 48);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(s, random_secret().unwrap());
    }
}
