//! Workloads and the closed-loop driver that runs them over C concurrent MCP sessions.
//!
//! Each session is one task that sends its next request as soon as the previous one answered.
//! Sessions are spread round-robin over the users, so C/U sessions share each user's actor.
//! Requests that start during the warm-up are not measured; requests that start in the measured
//! window are, and only successful ones enter the latency histogram and req/s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::client::{CallError, Session};
use crate::corpus::{query, Corpus, Rng};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// read_note of a random note
    #[value(alias = "read_note")]
    Read,
    /// search_notes with a corpus word, word pair or prefix (limit 10)
    #[value(alias = "search_notes")]
    Search,
    /// list_notes of the vault or a top-level folder (limit 50)
    #[value(alias = "list_notes")]
    List,
    /// write_note overwriting a random note with a new body of similar size
    #[value(alias = "write_note")]
    Write,
    /// 80% read, 15% search, 5% write
    Mix,
    /// JSON-RPC ping on the session: transport, auth, session check, user actor and job pool,
    /// with no vault work — what the other rows pay before their own work
    Ping,
    /// read_note as `read`, on the stateless revision 2026-07-28 (no session)
    ReadStateless,
    /// search_notes as `search`, on the stateless revision 2026-07-28 (no session)
    SearchStateless,
}

impl Workload {
    pub fn label(self) -> &'static str {
        match self {
            Workload::Read => "read_note",
            Workload::Search => "search_notes",
            Workload::List => "list_notes",
            Workload::Write => "write_note",
            Workload::Mix => "mix",
            Workload::Ping => "ping",
            Workload::ReadStateless => "read_note stateless",
            Workload::SearchStateless => "search_notes stateless",
        }
    }

    /// Is it sent on the stateless revision, without a session?
    pub fn is_stateless(self) -> bool {
        matches!(self, Workload::ReadStateless | Workload::SearchStateless)
    }

    /// The same requests on the stateless revision (itself when there is no such variant).
    pub fn stateless(self) -> Workload {
        match self {
            Workload::Read => Workload::ReadStateless,
            Workload::Search => Workload::SearchStateless,
            other => other,
        }
    }

    fn pick(self, rng: &mut Rng) -> Op {
        match self {
            Workload::Read => Op::Read,
            Workload::Search => Op::Search,
            Workload::List => Op::List,
            Workload::Write => Op::Write,
            Workload::Ping => Op::Ping,
            Workload::ReadStateless => Op::Read,
            Workload::SearchStateless => Op::Search,
            Workload::Mix => match rng.below(100) {
                0..80 => Op::Read,
                80..95 => Op::Search,
                _ => Op::Write,
            },
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    Read,
    Search,
    List,
    Write,
    Ping,
}

/// What requests are made of: the corpus every user's vault holds, and its folders.
pub struct Plan {
    pub corpus: Corpus,
    folders: Vec<String>,
}

impl Plan {
    pub fn new(corpus: Corpus) -> Self {
        let folders = corpus.top_folders();
        Plan { corpus, folders }
    }

    /// Sends one request of `workload` on `session` and checks its answer; `tag` makes a
    /// write's body new.
    pub async fn send(
        &self,
        session: &mut Session,
        workload: Workload,
        rng: &mut Rng,
        tag: &str,
    ) -> Result<(), CallError> {
        match self.request(workload.pick(rng), rng, tag) {
            Some((tool, args)) => session.call_tool_checked(tool, args).await,
            None => session.ping().await,
        }
    }

    /// The tool call for `op` (`None` for a ping, which is no tool call).
    fn request(&self, op: Op, rng: &mut Rng, tag: &str) -> Option<(&'static str, Value)> {
        let notes = &self.corpus.notes;
        let i = rng.below(notes.len());
        Some(match op {
            Op::Ping => return None,
            Op::Read => ("read_note", json!({"path": notes[i].path})),
            Op::Search => (
                "search_notes",
                json!({"query": query(rng, &self.corpus.query_words), "limit": 10}),
            ),
            Op::List => {
                // One in three lists the whole vault; the rest a top-level folder.
                let slot = rng.below(self.folders.len() + self.folders.len() / 2 + 1);
                match self.folders.get(slot) {
                    Some(folder) => ("list_notes", json!({"folder": folder, "limit": 50})),
                    None => ("list_notes", json!({"limit": 50})),
                }
            }
            Op::Write => {
                // Another note's body keeps sizes realistic; the tag line makes each write new.
                let donor = (i + 1 + rng.below(notes.len().max(2) - 1)) % notes.len();
                let body = format!("{}\nrevision {tag}\n", notes[donor].body);
                ("write_note", json!({"path": notes[i].path, "body": body}))
            }
        })
    }
}

/// Where requests go and as whom: one token per user.
#[derive(Clone)]
pub struct Target {
    pub http: reqwest::Client,
    pub url: String,
    pub tokens: Arc<Vec<String>>,
}

/// Errors by kind, with the first message of each kind as an example.
#[derive(Default, Debug)]
pub struct Tally {
    pub kinds: BTreeMap<String, (u64, String)>,
}

impl Tally {
    pub fn add(&mut self, err: &CallError) {
        let entry = self
            .kinds
            .entry(err.kind())
            .or_insert_with(|| (0, err.to_string()));
        entry.0 += 1;
    }

    pub fn merge(&mut self, other: Tally) {
        for (kind, (n, example)) in other.kinds {
            self.kinds.entry(kind).or_insert((0, example)).0 += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.kinds.values().map(|(n, _)| n).sum()
    }

    /// One stderr line per kind: `  HTTP 429 ×12 (e.g. HTTP status 429)`.
    pub fn describe(&self) -> String {
        self.kinds
            .iter()
            .map(|(kind, (n, example))| format!("  {kind} ×{n} (e.g. {example})"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Clone)]
pub struct Spec {
    pub workload: Workload,
    pub concurrency: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub seed: u64,
}

/// What one workload run produced.
pub struct Outcome {
    /// Successful requests started in the measured window.
    pub ok: u64,
    pub hist: Histogram<u64>,
    pub measured: Duration,
    /// Every failure of the run: session setup, warm-up, measured window and teardown.
    pub errors: Tally,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.measured.as_secs_f64()
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 60 s at 3 significant figures; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Opens `spec.concurrency` sessions (stateless clients for a stateless workload), runs
/// warm-up then the measured window, closes them.
pub async fn drive(target: &Target, plan: Arc<Plan>, spec: &Spec) -> Outcome {
    let mut errors = Tally::default();
    let mut opening = JoinSet::new();
    let stateless = spec.workload.is_stateless();
    for i in 0..spec.concurrency {
        let t = target.clone();
        opening.spawn(async move {
            let token = &t.tokens[i % t.tokens.len()];
            let session = if stateless {
                Session::stateless(&t.http, &t.url, token)
            } else {
                Session::open(&t.http, &t.url, token).await
            };
            (i, session)
        });
    }
    let mut sessions = Vec::new();
    while let Some(joined) = opening.join_next().await {
        match joined {
            Ok((i, Ok(s))) => sessions.push((i, s)),
            Ok((_, Err(e))) => errors.add(&e),
            Err(e) => errors.add(&CallError::Transport(format!("task: {e}"))),
        }
    }

    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.measure;
    let mut running = JoinSet::new();
    for (i, mut session) in sessions {
        let plan = plan.clone();
        let mut rng = Rng::new(spec.seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let workload = spec.workload;
        running.spawn(async move {
            let mut hist = new_histogram();
            let mut ok = 0u64;
            let mut errors = Tally::default();
            let mut seq = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                seq += 1;
                let result = plan
                    .send(&mut session, workload, &mut rng, &format!("{i}-{seq}"))
                    .await;
                match result {
                    Ok(_) if sent >= measure_from => {
                        hist.saturating_record(sent.elapsed().as_micros() as u64);
                        ok += 1;
                    }
                    Ok(_) => {}
                    Err(e) => errors.add(&e),
                }
            }
            if let Err(e) = session.close().await {
                errors.add(&e);
            }
            (hist, ok, errors)
        });
    }

    let mut outcome = Outcome {
        ok: 0,
        hist: new_histogram(),
        measured: spec.measure,
        errors,
    };
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok((hist, ok, errs)) => {
                // Same bounds on both sides, so adding cannot fail.
                let _ = outcome.hist.add(&hist);
                outcome.ok += ok;
                outcome.errors.merge(errs);
            }
            Err(e) => outcome
                .errors
                .add(&CallError::Transport(format!("task: {e}"))),
        }
    }
    outcome
}

/// Writes the whole corpus into every user's vault through `write_note`, one session per user
/// (a user's writes are serialised by its actor anyway, so more sessions per user gain nothing).
pub async fn load_over_mcp(target: &Target, plan: Arc<Plan>) -> Tally {
    let mut tasks = JoinSet::new();
    for user in 0..target.tokens.len() {
        let t = target.clone();
        let plan = plan.clone();
        tasks.spawn(async move {
            let mut errors = Tally::default();
            let mut session = match Session::open(&t.http, &t.url, &t.tokens[user]).await {
                Ok(s) => s,
                Err(e) => {
                    errors.add(&e);
                    return errors;
                }
            };
            for note in &plan.corpus.notes {
                let mut args = json!({"path": note.path, "body": note.body, "title": note.title});
                if !note.tags.is_empty() {
                    args["metadata"] = json!({"tags": note.tags});
                }
                if let Err(e) = session.call_tool("write_note", args).await {
                    errors.add(&e);
                }
            }
            if let Err(e) = session.close().await {
                errors.add(&e);
            }
            errors
        });
    }
    let mut errors = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(e) => errors.merge(e),
            Err(e) => errors.add(&CallError::Transport(format!("task: {e}"))),
        }
    }
    errors
}

/// Attempts of a user's first request: many users reconciling large vaults at once on a small
/// or busy machine can outlast the client's and the server's 60 s request timeouts, and the
/// measurement must not start before they are done.
const TOUCH_ATTEMPTS: usize = 10;

/// Worth another attempt while an actor may still be reconciling: a timeout on either side,
/// or the server shedding load. (A dead server refuses at once, so retrying it costs nothing.)
fn may_be_reconciling(e: &CallError) -> bool {
    matches!(
        e,
        CallError::Transport(_) | CallError::Refused(_) | CallError::Status(408 | 503 | 504)
    )
}

/// One `list_notes` per user, so every actor has started and reconciled its index with the
/// files before anything is measured.
pub async fn touch_users(target: &Target) -> Tally {
    let mut tasks = JoinSet::new();
    for user in 0..target.tokens.len() {
        let t = target.clone();
        tasks.spawn(async move {
            let touch = || async {
                let mut session = Session::open(&t.http, &t.url, &t.tokens[user]).await?;
                session.call_tool("list_notes", json!({"limit": 1})).await?;
                session.close().await
            };
            let mut attempt = 1;
            loop {
                match touch().await {
                    Err(e) if attempt < TOUCH_ATTEMPTS && may_be_reconciling(&e) => {
                        eprintln!("[bench] first request of user {user} failed ({e}); again");
                        attempt += 1;
                    }
                    outcome => return outcome,
                }
            }
        });
    }
    let mut errors = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.add(&e),
            Err(e) => errors.add(&CallError::Transport(format!("task: {e}"))),
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::generate;

    #[test]
    fn mix_is_mostly_reads() {
        let mut rng = Rng::new(1);
        let mut counts = [0usize; 4];
        for _ in 0..10_000 {
            counts[Workload::Mix.pick(&mut rng) as usize] += 1;
        }
        let [read, search, list, write] = counts;
        assert!((7600..8400).contains(&read), "{counts:?}");
        assert!((1200..1800).contains(&search), "{counts:?}");
        assert!((300..700).contains(&write), "{counts:?}");
        assert_eq!(list, 0);
    }

    #[test]
    fn first_requests_are_retried_only_while_they_may_wait_on_a_reconcile() {
        assert!(may_be_reconciling(&CallError::Transport(
            "timed out".into()
        )));
        assert!(may_be_reconciling(&CallError::Status(408)));
        assert!(may_be_reconciling(&CallError::Status(503)));
        assert!(!may_be_reconciling(&CallError::Status(401)));
        assert!(!may_be_reconciling(&CallError::Tool(
            "no such folder".into()
        )));
    }

    #[test]
    fn requests_reference_the_corpus() {
        let plan = Plan::new(generate(20, 4));
        let mut rng = Rng::new(2);
        let (tool, args) = plan.request(Op::Write, &mut rng, "3-1").unwrap();
        assert_eq!(tool, "write_note");
        let path = args["path"].as_str().unwrap();
        let body = args["body"].as_str().unwrap();
        let note = plan.corpus.notes.iter().find(|n| n.path == path).unwrap();
        assert_ne!(note.body, body);
        assert!(body.ends_with("\nrevision 3-1\n"));
        let (tool, args) = plan.request(Op::Search, &mut rng, "").unwrap();
        assert_eq!((tool, args["limit"].as_u64()), ("search_notes", Some(10)));
        for _ in 0..50 {
            let (_, args) = plan.request(Op::List, &mut rng, "").unwrap();
            if let Some(folder) = args["folder"].as_str() {
                assert!(plan.folders.iter().any(|f| f == folder));
            }
        }
        assert!(
            plan.request(Op::Ping, &mut rng, "").is_none(),
            "a ping is no tool call"
        );
    }
}
