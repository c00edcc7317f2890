//! The audit log: one JSON object per line in `<data_dir>/audit/audit.jsonl`, appended and never
//! rewritten, rotated by size (`audit.jsonl.1` is the newest old file), and mirrored to tracing
//! (target `audit`) so it also reaches the process log.
//!
//! Every line has `ts`, `event`, `user`, `ip`, `user_agent` and `detail`. Nothing secret is ever
//! written: events name tokens by their id (`jti`) and grants by theirs, never by the token, code
//! or cookie itself, and [`Audit::record`] takes no free text from a request without a bound.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Longest user-agent kept (it comes from the request).
const MAX_USER_AGENT: usize = 200;

/// Who and where an event came from, as far as the request shows.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Origin {
    pub fn new(ip: IpAddr, user_agent: Option<&str>) -> Self {
        Origin {
            ip: Some(ip),
            user_agent: user_agent.map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT)
                    .collect()
            }),
        }
    }
}

struct Sink {
    file: File,
    written: u64,
}

/// The append-only audit file.
pub struct Audit {
    dir: PathBuf,
    max_bytes: u64,
    keep: usize,
    sink: Mutex<Option<Sink>>,
}

impl Audit {
    /// Open (or create) the audit file in `<data_dir>/audit`, rotating at `max_bytes` and keeping
    /// `keep` old files.
    pub fn open(data_dir: &Path, max_bytes: u64, keep: usize) -> std::io::Result<Self> {
        let dir = data_dir.join("audit");
        std::fs::create_dir_all(&dir)?;
        let sink = open_sink(&dir)?;
        Ok(Audit {
            dir,
            max_bytes: max_bytes.max(1024),
            keep: keep.max(1),
            sink: Mutex::new(Some(sink)),
        })
    }

    /// The current file.
    pub fn path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    /// Append one event. A failure to write is logged, never returned: the request that caused
    /// the event has already been decided.
    pub fn record(&self, event: &str, user: Option<&str>, origin: &Origin, detail: Value) {
        let ts = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        let line = json!({
            "ts": ts,
            "event": event,
            "user": user,
            "ip": origin.ip.map(|ip| ip.to_string()),
            "user_agent": origin.user_agent,
            "detail": detail,
        });
        tracing::info!(target: "audit", event, user = user.unwrap_or("-"), detail = %line["detail"], "audit");
        let mut text = line.to_string();
        text.push('\n');
        if let Err(e) = self.append(text.as_bytes()) {
            tracing::error!(error = %e, "writing the audit log failed");
        }
    }

    fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut guard = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        if guard
            .as_ref()
            .is_none_or(|s| s.written + bytes.len() as u64 > self.max_bytes)
        {
            // Close the full file before renaming it; reopen a fresh one.
            let had_file = guard.take().is_some();
            if had_file {
                self.rotate()?;
            }
            *guard = Some(open_sink(&self.dir)?);
        }
        let Some(sink) = guard.as_mut() else {
            return Ok(());
        };
        sink.file.write_all(bytes)?;
        sink.written += bytes.len() as u64;
        Ok(())
    }

    /// audit.jsonl → .1 → .2 …, dropping the oldest beyond `keep`.
    fn rotate(&self) -> std::io::Result<()> {
        let name = |n: usize| self.dir.join(format!("audit.jsonl.{n}"));
        let _ = std::fs::remove_file(name(self.keep));
        for n in (1..self.keep).rev() {
            if name(n).exists() {
                std::fs::rename(name(n), name(n + 1))?;
            }
        }
        std::fs::rename(self.path(), name(1))
    }
}

fn open_sink(dir: &Path) -> std::io::Result<Sink> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("audit.jsonl"))?;
    let written = file.metadata()?.len();
    Ok(Sink { file, written })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn each_event_is_one_json_line_with_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(dir.path(), 1 << 20, 3).unwrap();
        let origin = Origin::new("203.0.113.7".parse().unwrap(), Some("agent\u{1b}[31m/1.0"));
        audit.record("sign_in", Some("alice"), &origin, json!({"provider": "hf"}));
        let got = lines(&audit.path());
        assert_eq!(got.len(), 1);
        let line = &got[0];
        assert_eq!(line["event"], "sign_in");
        assert_eq!(line["user"], "alice");
        assert_eq!(line["ip"], "203.0.113.7");
        assert_eq!(
            line["user_agent"], "agent[31m/1.0",
            "control characters dropped"
        );
        assert_eq!(line["detail"]["provider"], "hf");
        assert!(line["ts"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn the_file_rotates_by_size_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(dir.path(), 1024, 2).unwrap();
        for i in 0..100 {
            audit.record("e", None, &Origin::default(), json!({"i": i}));
        }
        let current = lines(&audit.path());
        assert_eq!(current.last().unwrap()["detail"]["i"], 99);
        let older = lines(&dir.path().join("audit/audit.jsonl.1"));
        assert_eq!(
            older.last().unwrap()["detail"]["i"].as_u64().unwrap() + 1,
            current[0]["detail"]["i"].as_u64().unwrap(),
            "no line lost between files"
        );
        assert!(dir.path().join("audit/audit.jsonl.2").exists());
        assert!(!dir.path().join("audit/audit.jsonl.3").exists());
        for f in std::fs::read_dir(dir.path().join("audit")).unwrap() {
            assert!(f.unwrap().metadata().unwrap().len() <= 1024);
        }
    }
}
