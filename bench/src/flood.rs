//! The flood check: one tenant far over its per-user rate limit must not slow another down.
//!
//! User B reads notes at a steady rate within its limit, first alone, then while user A sends
//! at a multiple of the limit. Both are open loops: each request leaves at its scheduled time
//! whatever the previous ones are doing, and B's latency counts from that time, so a server
//! that stalls B shows it in full (a closed loop would send less and hide it).

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;

use crate::client::{CallError, Session};
use crate::corpus::Rng;
use crate::workload::{new_histogram, Tally};

/// A's requests in flight at once, at most: past this the bench itself would be what gives
/// way, so a request that finds no room is counted as not sent rather than queued.
const FLOOD_IN_FLIGHT: usize = 256;
/// Attempts at opening a session while the user's bucket may still be empty.
const OPEN_ATTEMPTS: usize = 10;

/// How the two users behave.
#[derive(Clone, Debug)]
pub struct FloodSpec {
    /// The server's per-user limit (`RATE_LIMIT_PER_SECOND`), requests per second.
    pub rate: f64,
    /// The server's `RATE_LIMIT_BURST`.
    pub burst: f64,
    /// B's paced rate, requests per second (within `rate`).
    pub b_rate: f64,
    /// A's paced rate in phase 2, requests per second (a multiple of `rate`).
    pub a_rate: f64,
    /// MCP sessions A spreads its flood over (each its own connections).
    pub a_sessions: usize,
    /// Length of each phase.
    pub phase: Duration,
    pub seed: u64,
}

/// What one paced stream of `read_note` calls produced.
pub struct Paced {
    /// Requests sent (scheduled and given room).
    pub sent: u64,
    /// Requests scheduled but not sent: no room under [`FLOOD_IN_FLIGHT`].
    pub unsent: u64,
    /// Successful answers.
    pub ok: u64,
    /// 429 answers.
    pub limited: u64,
    /// Every other failure, by kind.
    pub errors: Tally,
    /// Latency of the successful answers from their scheduled time, in microseconds.
    pub hist: Histogram<u64>,
    /// From the first scheduled request to the last answer.
    pub span: Duration,
}

/// One row of the flood table.
pub struct PhaseRow {
    pub phase: &'static str,
    pub b: Paced,
    pub a: Option<Paced>,
    pub rss: Option<u64>,
}

/// Opens a session for `token`, waiting out a 429 (an emptied bucket refills in seconds).
pub async fn open_patiently(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<Session, CallError> {
    let mut attempt = 1;
    loop {
        match Session::open(http, url, token).await {
            Err(CallError::Status(429)) if attempt < OPEN_ATTEMPTS => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Sends `read_note` of a random note from `paths` at `rate` per second for `length`, spread
/// round-robin over `sessions`, each request on its own task so none waits for another.
pub async fn pace(
    sessions: &[Session],
    paths: Arc<Vec<String>>,
    rate: f64,
    length: Duration,
    seed: u64,
    in_flight: usize,
) -> Paced {
    let mut out = Paced {
        sent: 0,
        unsent: 0,
        ok: 0,
        limited: 0,
        errors: Tally::default(),
        hist: new_histogram(),
        span: Duration::ZERO,
    };
    if sessions.is_empty() || rate <= 0.0 || paths.is_empty() {
        return out;
    }
    let room = Arc::new(Semaphore::new(in_flight));
    let mut rng = Rng::new(seed);
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let end = start + length;
    for k in 0u64.. {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due).await;
        while let Some(joined) = tasks.try_join_next() {
            settle(joined, &mut out);
        }
        let Ok(permit) = room.clone().try_acquire_owned() else {
            out.unsent += 1;
            continue;
        };
        out.sent += 1;
        // Ids unique over the session's life: several requests of one session are in flight.
        let mut session = sessions[k as usize % sessions.len()].fork(k + 100);
        let path = paths[rng.below(paths.len())].clone();
        tasks.spawn(async move {
            let result = session
                .call_tool_checked("read_note", json!({ "path": path }))
                .await;
            drop(permit);
            (result, due.elapsed())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        settle(joined, &mut out);
    }
    out.span = start.elapsed();
    out
}

/// Counts one answer of a paced stream.
fn settle(joined: Result<(Result<(), CallError>, Duration), JoinError>, out: &mut Paced) {
    match joined {
        Ok((Ok(()), latency)) => {
            out.ok += 1;
            out.hist.saturating_record(latency.as_micros() as u64);
        }
        Ok((Err(CallError::Status(429)), _)) => out.limited += 1,
        Ok((Err(e), _)) => out.errors.add(&e),
        Err(e) => out.errors.add(&CallError::Transport(format!("task: {e}"))),
    }
}

/// Phase 1, B alone; phase 2, B again while A floods. The sessions are open and the vaults
/// loaded; `rss` samples the server after each phase.
pub async fn run(
    b: &Session,
    a: &[Session],
    paths: Arc<Vec<String>>,
    spec: &FloodSpec,
    rss: impl Fn() -> Option<u64>,
) -> Vec<PhaseRow> {
    // B's streams are not capped: it sends few, and every one of them must be answered.
    let b_cap = Semaphore::MAX_PERMITS;
    eprintln!(
        "[bench] phase 1: B alone, {:.1} req/s for {:.1} s",
        spec.b_rate,
        spec.phase.as_secs_f64()
    );
    let alone = pace(
        std::slice::from_ref(b),
        paths.clone(),
        spec.b_rate,
        spec.phase,
        spec.seed,
        b_cap,
    )
    .await;
    let mut rows = vec![PhaseRow {
        phase: "B alone",
        b: alone,
        a: None,
        rss: rss(),
    }];
    // A's bucket is full again after phase 1 (it sent nothing): the flood starts with a burst.
    eprintln!(
        "[bench] phase 2: B at {:.1} req/s while A sends {:.1} req/s over {} sessions, {:.1} s",
        spec.b_rate,
        spec.a_rate,
        a.len(),
        spec.phase.as_secs_f64()
    );
    let (b_out, a_out) = tokio::join!(
        pace(
            std::slice::from_ref(b),
            paths.clone(),
            spec.b_rate,
            spec.phase,
            spec.seed ^ 2,
            b_cap,
        ),
        pace(
            a,
            paths,
            spec.a_rate,
            spec.phase,
            spec.seed ^ 3,
            FLOOD_IN_FLIGHT
        ),
    );
    rows.push(PhaseRow {
        phase: "B + A flooding",
        b: b_out,
        a: Some(a_out),
        rss: rss(),
    });
    rows
}

/// The most requests a token bucket of `rate` and `burst` lets through over `span`, plus one
/// for a refill that lands while the last request is in flight.
pub fn admitted_bound(rate: f64, burst: f64, span: Duration) -> u64 {
    (burst + rate * span.as_secs_f64()).floor() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_the_burst_plus_the_refill() {
        assert_eq!(admitted_bound(20.0, 20.0, Duration::from_secs(10)), 221);
        assert_eq!(admitted_bound(5.0, 5.0, Duration::from_millis(500)), 8);
    }

    #[tokio::test]
    async fn pacing_without_sessions_sends_nothing() {
        let out = pace(
            &[],
            Arc::new(vec!["a.md".into()]),
            10.0,
            Duration::from_millis(50),
            1,
            4,
        )
        .await;
        assert_eq!((out.sent, out.ok, out.errors.total()), (0, 0, 0));
    }
}
