//! SIGTERM under load: what becomes of the requests in flight when the server is told to stop,
//! and how long it takes to exit.
//!
//! Sessions run closed loops of a workload; after a warm-up the server gets SIGTERM while they
//! keep going, until the server is gone. Every request is kept with its start, its end and its
//! fate, and sorted afterwards by where it stood at the signal: answered before it, in flight
//! at it (started before, ended after), or sent after it.

use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::client::{CallError, Session};
use crate::corpus::Rng;
use crate::server::ServerProcess;
use crate::workload::{Plan, Tally, Target, Workload};

#[derive(Clone)]
pub struct ShutdownSpec {
    pub sessions: usize,
    pub workload: Workload,
    /// Load before the signal.
    pub warmup: Duration,
    /// The server must have exited this long after the signal (it is killed then).
    pub deadline: Duration,
    pub seed: u64,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// A successful answer.
    Ok,
    /// An answer that says no: an HTTP status, a JSON-RPC error, a tool's `isError`.
    Refusal,
    /// No connection: nothing was sent, so nothing was lost.
    NotConnected,
    /// Sent, and the connection broke (reset, closed before the answer, cut-off body).
    Broken,
}

fn fate(result: &Result<(), CallError>) -> Fate {
    match result {
        Ok(()) => Fate::Ok,
        Err(CallError::Status(_) | CallError::Rpc { .. } | CallError::Tool(_)) => Fate::Refusal,
        Err(CallError::Refused(_)) => Fate::NotConnected,
        Err(CallError::Transport(_) | CallError::BadResponse(_)) => Fate::Broken,
    }
}

/// Requests by fate, in one position relative to the signal.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fates {
    pub ok: u64,
    pub refused: u64,
    pub not_connected: u64,
    pub broken: u64,
}

impl Fates {
    fn add(&mut self, fate: Fate) {
        match fate {
            Fate::Ok => self.ok += 1,
            Fate::Refusal => self.refused += 1,
            Fate::NotConnected => self.not_connected += 1,
            Fate::Broken => self.broken += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.ok + self.refused + self.not_connected + self.broken
    }
}

/// What the run saw.
pub struct ShutdownReport {
    pub sessions: usize,
    /// Requests that ended before the signal.
    pub before: Fates,
    /// Requests started before the signal that ended after it.
    pub in_flight: Fates,
    /// Requests started after the signal.
    pub after: Fates,
    /// From the signal to the exit, and the exit status; `None` if the deadline passed.
    pub exit: Option<(Duration, ExitStatus)>,
    /// Failures by kind, of every position (examples for stderr).
    pub errors: Tally,
    /// Failures of session setup.
    pub setup_errors: Tally,
}

struct Record {
    sent: Instant,
    done: Instant,
    fate: Fate,
}

/// Runs the load, signals `server` after the warm-up, and sorts the requests.
pub async fn run(
    server: ServerProcess,
    target: &Target,
    plan: Arc<Plan>,
    spec: &ShutdownSpec,
) -> std::io::Result<ShutdownReport> {
    let mut setup_errors = Tally::default();
    let mut sessions = Vec::new();
    for i in 0..spec.sessions {
        let token = &target.tokens[i % target.tokens.len()];
        match Session::open(&target.http, &target.url, token).await {
            Ok(s) => sessions.push(s),
            Err(e) => setup_errors.add(&e),
        }
    }
    let opened = sessions.len();
    let signalled = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for (i, mut session) in sessions.into_iter().enumerate() {
        let plan = plan.clone();
        let signalled = signalled.clone();
        let workload = spec.workload;
        let mut rng = Rng::new(spec.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        tasks.spawn(async move {
            let mut records = Vec::new();
            let mut errors = Tally::default();
            for seq in 0u64.. {
                let sent = Instant::now();
                let result = plan
                    .send(&mut session, workload, &mut rng, &format!("s{i}-{seq}"))
                    .await;
                let fate = fate(&result);
                if let Err(e) = &result {
                    errors.add(e);
                }
                records.push(Record {
                    sent,
                    done: Instant::now(),
                    fate,
                });
                // Once the server is told to stop, a session ends at its first request that
                // does not succeed: the server is going, and it said so.
                if signalled.load(Ordering::Relaxed) && fate != Fate::Ok {
                    break;
                }
            }
            (records, errors)
        });
    }

    tokio::time::sleep(spec.warmup).await;
    signalled.store(true, Ordering::Relaxed);
    let (at, exit) = server.terminate(spec.deadline).await?;

    let mut report = ShutdownReport {
        sessions: opened,
        before: Fates::default(),
        in_flight: Fates::default(),
        after: Fates::default(),
        exit,
        errors: Tally::default(),
        setup_errors,
    };
    while let Some(joined) = tasks.join_next().await {
        let (records, errors) = match joined {
            Ok(r) => r,
            Err(e) => {
                report
                    .errors
                    .add(&CallError::Transport(format!("task: {e}")));
                continue;
            }
        };
        report.errors.merge(errors);
        for r in records {
            let slot = if r.done < at {
                &mut report.before
            } else if r.sent < at {
                &mut report.in_flight
            } else {
                &mut report.after
            };
            slot.add(r.fate);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fates_tell_a_refusal_from_a_broken_connection() {
        assert_eq!(fate(&Ok(())), Fate::Ok);
        assert_eq!(fate(&Err(CallError::Status(503))), Fate::Refusal);
        assert_eq!(
            fate(&Err(CallError::Refused("connect".into()))),
            Fate::NotConnected
        );
        assert_eq!(
            fate(&Err(CallError::Transport("connection reset".into()))),
            Fate::Broken
        );
        let mut f = Fates::default();
        f.add(Fate::Ok);
        f.add(Fate::Broken);
        assert_eq!((f.total(), f.ok, f.broken), (2, 1, 1));
    }
}
