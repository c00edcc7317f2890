//! The `scale` mode: indexing time, actor cold start, and memory per live user actor.
//!
//! Three server starts, each on purpose:
//! 1. index: the corpus is written straight into one user's vault folder while the server is
//!    stopped, then the server starts and the time from that user's first request (initialize)
//!    to the first `list_notes` answer is the time its actor took to reconcile N files.
//! 2. cold start: same data, `ACTOR_IDLE_TIMEOUT=1s`; after a request, wait until the actor
//!    has idled out and time the next request (the session survives: it is persisted).
//! 3. memory: a fresh data folder; K users each open one session (initialize only, never
//!    closed, since a DELETE would wake the actor again); RSS before, with K live actors, and
//!    after they idled out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{mint_token, user_id, CallError, Session};
use crate::corpus::Corpus;
use crate::report::format_size;
use crate::server::{ServerConfig, ServerProcess};
use crate::workload::Tally;

pub struct ScaleSpec {
    pub users: usize,
    pub open_concurrency: usize,
    /// `ACTOR_IDLE_TIMEOUT` for the memory phase: long enough that no actor idles out while
    /// the K sessions are still being opened.
    pub idle_timeout: Duration,
    pub cold_samples: usize,
    /// The server's `MAX_LIVE_ACTORS` in the memory phase: at most this many of the K users'
    /// actors are alive at once (the server retires the least recently used beyond it).
    pub live_cap: usize,
}

/// What the scale run measured, as `(metric, value)` rows, plus every error it met.
pub struct ScaleReport {
    pub rows: Vec<(String, String)>,
    pub errors: Tally,
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn median(mut v: Vec<Duration>) -> Option<Duration> {
    v.sort();
    v.get(v.len() / 2).copied()
}

/// Runs all three phases; `base` gives binary, secret and extra env (its root and idle timeout
/// are replaced per phase). Fails only if a server does not start or a phase cannot go on.
pub async fn run(
    base: &ServerConfig,
    corpus: &Corpus,
    spec: &ScaleSpec,
    http: &reqwest::Client,
) -> std::io::Result<ScaleReport> {
    let mut rows = Vec::new();
    let mut errors = Tally::default();
    let user = user_id(0);
    let token = mint_token(&base.secret, &base.public_url, &user).map_err(std::io::Error::other)?;
    let n = corpus.notes.len();

    // Phase 1: index N notes from an empty index.
    let indexed = ServerConfig {
        root: base.root.join("indexed"),
        idle_timeout: "10m".into(),
        ..base.clone()
    };
    eprintln!(
        "[bench] scale: writing {n} notes ({}) into {user}'s vault",
        format_size(corpus.total_bytes() as f64)
    );
    corpus.write_to(&indexed.vault_dir(&user))?;
    let server = ServerProcess::start(&indexed).await?;
    let t0 = Instant::now();
    let first = async {
        let mut s = Session::open(http, &server.url, &token).await?;
        s.call_tool("list_notes", json!({"limit": 50})).await?;
        Ok::<_, CallError>(s)
    }
    .await;
    let took = t0.elapsed();
    match first {
        Ok(mut session) => {
            rows.push((
                format!(
                    "index {n} notes ({}) at actor start",
                    format_size(corpus.total_bytes() as f64)
                ),
                secs(took),
            ));
            rows.push((
                "  notes per second".into(),
                format!("{:.0}", n as f64 / took.as_secs_f64()),
            ));
            let listed = count_listed(&mut session).await;
            rows.push((
                "  notes listed afterwards".into(),
                listed.map_or("?".into(), |c| c.to_string()),
            ));
            if let Err(e) = session.close().await {
                errors.add(&e);
            }
        }
        Err(e) => {
            errors.add(&e);
            rows.push((format!("index {n} notes"), format!("failed: {e}")));
        }
    }
    rows.push((
        "server RSS after indexing".into(),
        crate::report::format_bytes(server.rss()),
    ));
    server.stop().await?;

    // Phase 2: cold start of an idled-out actor whose vault is already indexed.
    let cold_cfg = ServerConfig {
        idle_timeout: "1s".into(),
        ..indexed.clone()
    };
    let server = ServerProcess::start(&cold_cfg).await?;
    let path = corpus.notes[0].path.clone();
    let mut colds = Vec::new();
    let mut warms = Vec::new();
    let phase = async {
        let mut s = Session::open(http, &server.url, &token).await?;
        s.call_tool("read_note", json!({"path": path})).await?;
        for _ in 0..spec.cold_samples {
            // 1 s idle timeout plus room for however the server schedules its idle check.
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let t = Instant::now();
            s.call_tool("read_note", json!({"path": path})).await?;
            colds.push(t.elapsed());
            let t = Instant::now();
            s.call_tool("read_note", json!({"path": path})).await?;
            warms.push(t.elapsed());
        }
        s.close().await
    }
    .await;
    if let Err(e) = phase {
        errors.add(&e);
    }
    let samples = colds.len();
    rows.push((
        format!("cold start of idled-out actor ({n} notes, median of {samples})"),
        median(colds).map_or("failed".into(), ms),
    ));
    rows.push((
        "  same request, actor warm".into(),
        median(warms).map_or("failed".into(), ms),
    ));
    server.stop().await?;

    // Phase 3: memory with K live actors, then after they idled out.
    let mut extra_env = vec![("MAX_LIVE_ACTORS".to_string(), spec.live_cap.to_string())];
    extra_env.extend(base.extra_env.iter().cloned());
    let mem_cfg = ServerConfig {
        root: base.root.join("memory"),
        idle_timeout: humantime::format_duration(spec.idle_timeout).to_string(),
        extra_env,
        ..base.clone()
    };
    let server = ServerProcess::start(&mem_cfg).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = server.rss();
    let k = spec.users;
    eprintln!("[bench] scale: opening one session for each of {k} users");
    let t0 = Instant::now();
    let open_errors = open_sessions(base, &server.url, http, k, spec.open_concurrency).await?;
    let opening = t0.elapsed();
    let live = server.rss();
    let opened = k as u64 - open_errors.total();
    errors.merge(open_errors);
    if opening > spec.idle_timeout * 4 / 5 {
        eprintln!(
            "[bench] scale: warning: opening took {opening:?}, close to the idle timeout {:?}; \
             early actors may have idled out before RSS was read (raise --idle-timeout)",
            spec.idle_timeout
        );
    }
    let wait = spec.idle_timeout + Duration::from_secs(3);
    eprintln!("[bench] scale: waiting {wait:?} for the actors to idle out");
    tokio::time::sleep(wait).await;
    let idle = server.rss();
    server.stop().await?;

    rows.push((format!("open {k} sessions (initialize)"), secs(opening)));
    rows.push((
        "server RSS before".into(),
        crate::report::format_bytes(baseline),
    ));
    let live_actors = opened.min(spec.live_cap as u64);
    rows.push((
        format!("server RSS, {opened} sessions open, {live_actors} actors live"),
        crate::report::format_bytes(live),
    ));
    rows.push((
        "server RSS after the actors idled out".into(),
        crate::report::format_bytes(idle),
    ));
    let per = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if live_actors > 0 => {
            format_size((a as f64 - b as f64) / live_actors as f64)
        }
        _ => "-".into(),
    };
    rows.push((
        "RSS per live actor (live - idled out) / live".into(),
        per(live, idle),
    ));
    rows.push((
        "RSS per live actor (live - before) / live".into(),
        per(live, baseline),
    ));
    Ok(ScaleReport { rows, errors })
}

/// One initialized session per user `0..k`, `concurrency` at a time; sessions are left open.
async fn open_sessions(
    base: &ServerConfig,
    url: &str,
    http: &reqwest::Client,
    k: usize,
    concurrency: usize,
) -> std::io::Result<Tally> {
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut errors = Tally::default();
    for i in 0..k {
        let token = mint_token(&base.secret, &base.public_url, &user_id(i))
            .map_err(std::io::Error::other)?;
        let permit = gate
            .clone()
            .acquire_owned()
            .await
            .map_err(std::io::Error::other)?;
        let http = http.clone();
        let url = url.to_string();
        tasks.spawn(async move {
            let result = Session::open(&http, &url, &token).await.map(drop);
            drop(permit);
            result
        });
        // Reap finished tasks as we go so 10,000 results do not pile up.
        while let Some(done) = tasks.try_join_next() {
            record(&mut errors, done);
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(&mut errors, done);
    }
    Ok(errors)
}

fn record(errors: &mut Tally, done: Result<Result<(), CallError>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => errors.add(&e),
        Err(e) => errors.add(&CallError::Transport(format!("task: {e}"))),
    }
}

/// Pages through `list_notes` and counts entries, as a check that indexing saw every file.
/// The result's shape is read loosely (`notes`/`items`/`entries`, else the first array in
/// `structuredContent`; a `next_cursor`/`nextCursor` string to go on), so `None` means
/// "could not tell", not "failed".
async fn count_listed(session: &mut Session) -> Option<usize> {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut args = json!({"limit": 100});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let result = session.call_tool("list_notes", args).await.ok()?;
        let content = result.get("structuredContent")?.as_object()?;
        let entries = ["notes", "items", "entries"]
            .iter()
            .find_map(|k| content.get(*k).and_then(Value::as_array))
            .or_else(|| content.values().find_map(Value::as_array))?;
        count += entries.len();
        cursor = ["next_cursor", "nextCursor", "cursor"]
            .iter()
            .find_map(|k| content.get(*k).and_then(Value::as_str))
            .map(str::to_string);
        if cursor.is_none() {
            return Some(count);
        }
    }
    None
}
