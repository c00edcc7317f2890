//! What the process measures, for Prometheus: one recorder for the process, and the few
//! functions the rest of the code calls to count something.
//!
//! Every label takes its value from a small fixed set (HTTP method, route template, JSON-RPC
//! method, catalog tool name, status code, failure reason): never a user id, a path or a
//! session, so the number of series stays bounded whatever the number of users. Active users
//! are counted without naming them: a map of user → last seen, read at scrape time.
//!
//! The recorder is global (the `metrics` facade has one per process), so servers started in
//! one process (tests) share it; each scrape renders whatever the process recorded.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use ::metrics::{Label, SharedString};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use vault_actors::supervisor::SupervisorStats;
use vault_actors::UserId;

use crate::auth::{now_secs, AuthFailure};

pub const REQUESTS: &str = "vault_mcp_http_requests_total";
pub const REQUEST_SECONDS: &str = "vault_mcp_http_request_duration_seconds";
pub const AUTH_FAILURES: &str = "vault_mcp_auth_failures_total";
pub const ACTIVE_USERS: &str = "vault_mcp_active_users";
pub const LIVE_ACTORS: &str = "vault_mcp_live_actors";
pub const OPEN_STREAMS: &str = "vault_mcp_open_streams";
pub const ACTOR_CRASHES: &str = "vault_mcp_actor_crashes_total";
pub const RATE_LIMITED: &str = "vault_mcp_rate_limited_total";
pub const QUOTA_HITS: &str = "vault_mcp_quota_hits_total";
/// Recorded by the user actor (`vault-actors` uses the facade directly).
pub const VAULT_NOTES: &str = "vault_mcp_vault_notes";
pub const VAULT_BYTES: &str = "vault_mcp_vault_bytes";

/// Request latency buckets (seconds): sub-millisecond reads up to the request timeout.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];
const NOTES_BUCKETS: [f64; 8] = [0.0, 10.0, 100.0, 1e3, 5e3, 1e4, 5e4, 1e5];
const BYTES_BUCKETS: [f64; 9] = [
    0.0,
    16.0 * 1024.0,
    256.0 * 1024.0,
    1024.0 * 1024.0,
    16.0 * 1024.0 * 1024.0,
    64.0 * 1024.0 * 1024.0,
    256.0 * 1024.0 * 1024.0,
    1024.0 * 1024.0 * 1024.0,
    4.0 * 1024.0 * 1024.0 * 1024.0,
];

/// A user's last-seen time is written at most this often (seconds).
const SEEN_GRAIN_SECS: u64 = 60;
const DAY_SECS: u64 = 86_400;
/// Users remembered at most; past it, users not seen for a week are dropped first, then new
/// users are not counted until there is room (the gauges undercount rather than grow).
const MAX_SEEN_USERS: usize = 200_000;
/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static SEEN: OnceLock<RwLock<HashMap<String, u64>>> = OnceLock::new();

fn seen() -> &'static RwLock<HashMap<String, u64>> {
    SEEN.get_or_init(Default::default)
}

/// Install the process's recorder (once; later calls return the same handle). When another
/// recorder was installed first, metrics go there and `/metrics` renders only the gauges it
/// sets itself.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(REQUEST_SECONDS.into()), &LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(VAULT_NOTES.into()), &NOTES_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(VAULT_BYTES.into()), &BYTES_BUCKETS)
                });
            let builder = match builder {
                Ok(b) => b,
                Err(e) => {
                    // Only an empty bucket list fails, and ours are constants.
                    tracing::error!(error = %e, "metrics buckets refused; histograms become summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if ::metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics shows only gauges set at scrape");
            }
            describe();
            handle
        })
        .clone()
}

/// Help texts, and a zero for every series whose labels are known in advance, so dashboards
/// see them before the first event.
fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by method, route template, JSON-RPC method, tool and status"
    );
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "Time to the response head (a streamed answer's stream may last longer)"
    );
    describe_counter!(AUTH_FAILURES, "Bearer tokens refused, by reason");
    describe_gauge!(
        ACTIVE_USERS,
        "Distinct users with an authenticated request within the window (1d, 7d)"
    );
    describe_gauge!(LIVE_ACTORS, "User actors running now");
    describe_gauge!(
        OPEN_STREAMS,
        "Open server-to-client SSE streams (GET /mcp), all users"
    );
    describe_counter!(ACTOR_CRASHES, "User actors that crashed since start");
    describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by scope");
    describe_counter!(QUOTA_HITS, "Requests refused by a quota, by limit");
    describe_histogram!(
        VAULT_NOTES,
        "Notes in a vault when its actor opens it (once per actor start)"
    );
    describe_histogram!(
        VAULT_BYTES,
        Unit::Bytes,
        "Bytes of note files in a vault when its actor opens it (once per actor start)"
    );
    for reason in AuthFailure::ALL {
        ::metrics::counter!(AUTH_FAILURES, "reason" => reason.as_str()).increment(0);
    }
    ::metrics::counter!(ACTOR_CRASHES).increment(0);
}

/// Fold histogram samples into buckets every few seconds until `stop`, so memory stays flat
/// between scrapes (rendering does the same).
pub async fn upkeep(handle: PrometheusHandle, stop: CancellationToken) {
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

/// One HTTP request answered. Every argument is a bounded label value.
pub fn request(
    method: &'static str,
    route: Arc<str>,
    rpc_method: &'static str,
    tool: &'static str,
    status: u16,
    elapsed: Duration,
) {
    let mut labels = vec![
        Label::from_static_parts("method", method),
        Label::new("route", route),
        Label::from_static_parts("rpc_method", rpc_method),
        Label::from_static_parts("tool", tool),
    ];
    ::metrics::histogram!(REQUEST_SECONDS, labels.clone()).record(elapsed.as_secs_f64());
    labels.push(Label::new("status", status_label(status)));
    ::metrics::counter!(REQUESTS, labels).increment(1);
}

/// A status code as a label without allocating for the common ones.
fn status_label(status: u16) -> SharedString {
    let known = match status {
        200 => "200",
        202 => "202",
        204 => "204",
        302 => "302",
        303 => "303",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        406 => "406",
        408 => "408",
        409 => "409",
        413 => "413",
        429 => "429",
        500 => "500",
        503 => "503",
        other => return other.to_string().into(),
    };
    SharedString::const_str(known)
}

/// A bearer token was refused.
pub fn auth_failure(reason: AuthFailure) {
    ::metrics::counter!(AUTH_FAILURES, "reason" => reason.as_str()).increment(1);
}

/// A request was refused by a rate limit; `scope` names the limit's kind (e.g. `user`, `ip`).
pub fn rate_limited(scope: &'static str) {
    ::metrics::counter!(RATE_LIMITED, "scope" => scope).increment(1);
}

/// A request was refused by a quota; `limit` names which (e.g. `notes`, `bytes`).
pub fn quota_hit(limit: &'static str) {
    ::metrics::counter!(QUOTA_HITS, "limit" => limit).increment(1);
}

/// `user` made an authenticated request now (for the active-user gauges). Cheap when the user
/// was noted within the last minute: a shared lock and a lookup.
pub fn user_seen(user: &UserId) {
    note_seen(user.as_str(), now_secs());
}

fn note_seen(user: &str, now: u64) {
    let map = seen();
    let fresh = map
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(user)
        .is_some_and(|&at| at + SEEN_GRAIN_SECS > now);
    if fresh {
        return;
    }
    // Entries are single values: a poisoned lock holds a consistent map.
    let mut map = map.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(at) = map.get_mut(user) {
        *at = now;
        return;
    }
    if map.len() >= MAX_SEEN_USERS {
        map.retain(|_, at| *at + 7 * DAY_SECS > now);
        if map.len() >= MAX_SEEN_USERS {
            return;
        }
    }
    map.insert(user.to_string(), now);
}

/// Users seen within one day and within seven, forgetting those seen earlier.
fn active_users(now: u64) -> (usize, usize) {
    let mut map = seen().write().unwrap_or_else(PoisonError::into_inner);
    map.retain(|_, at| *at + 7 * DAY_SECS > now);
    let day = map.values().filter(|&&at| at + DAY_SECS > now).count();
    (day, map.len())
}

/// The Prometheus text: the gauges read at scrape time (`stats` from the supervisor; when it
/// did not answer, its gauges keep their last values), then everything recorded.
pub fn render(handle: &PrometheusHandle, stats: Option<SupervisorStats>) -> String {
    let (day, week) = active_users(now_secs());
    ::metrics::gauge!(ACTIVE_USERS, "window" => "1d").set(day as f64);
    ::metrics::gauge!(ACTIVE_USERS, "window" => "7d").set(week as f64);
    if let Some(stats) = stats {
        ::metrics::gauge!(LIVE_ACTORS).set(stats.live_actors as f64);
        ::metrics::gauge!(OPEN_STREAMS).set(stats.open_streams as f64);
        ::metrics::counter!(ACTOR_CRASHES).absolute(stats.crashes);
    }
    handle.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_users_are_counted_per_window_and_forgotten_after_a_week() {
        let now = 10 * 7 * DAY_SECS;
        note_seen("metrics-test-today", now - 10);
        note_seen("metrics-test-3d", now - 3 * DAY_SECS);
        note_seen("metrics-test-8d", now - 8 * DAY_SECS);
        let (day, week) = active_users(now);
        // Other tests in this process may have noted users of their own, at the real time.
        assert!(day >= 1 && week >= 2, "{day} {week}");
        let map = seen().read().unwrap();
        assert!(map.contains_key("metrics-test-3d"));
        assert!(!map.contains_key("metrics-test-8d"));
    }

    #[test]
    fn a_user_is_noted_at_most_once_a_minute() {
        // Real times: the other test's clean-up (a week before its own, older clock) keeps them.
        let t = now_secs();
        note_seen("metrics-test-grain", t);
        note_seen("metrics-test-grain", t + 30);
        assert_eq!(seen().read().unwrap()["metrics-test-grain"], t);
        note_seen("metrics-test-grain", t + 60);
        assert_eq!(seen().read().unwrap()["metrics-test-grain"], t + 60);
    }
}
