//! Rate limits, checked at the HTTP edge before any work: a token bucket per user on `/mcp` and
//! the web API, and per client IP, before authentication, buckets for failed authentications
//! and for sign-ins. An exhausted bucket answers 429 with `Retry-After`.
//!
//! A flooding tenant only empties its own bucket: its extra requests are refused here, cheaply,
//! and what it does get through runs on its own actor, one request at a time, so other users
//! keep their share of the job threads.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use vault_actors::UserId;

/// Buckets kept per kind at most; idle ones (full again) are dropped first.
const MAX_BUCKETS: usize = 100_000;

/// Rates and bursts, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct RateConfig {
    /// Requests a user may make per second, on average.
    pub user_per_second: f64,
    /// Requests a user may make at once after being idle.
    pub user_burst: f64,
    /// Failed authentications one IP may cause per minute.
    pub auth_failures_per_minute: f64,
    /// Sign-ins one IP may start per hour.
    pub sign_ins_per_hour: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by `K`, all with one rate and burst.
struct Buckets<K> {
    per_second: f64,
    burst: f64,
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(per_second: f64, burst: f64) -> Self {
        Buckets {
            per_second,
            burst: burst.max(1.0),
            map: Mutex::default(),
        }
    }

    /// Take `cost` tokens for `key`; when there are not enough, the whole seconds to wait.
    fn take(&self, key: &K, cost: f64) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_BUCKETS && !map.contains_key(key) {
            let (rate, burst) = (self.per_second, self.burst);
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if map.len() >= MAX_BUCKETS {
                map.clear();
            }
        }
        let bucket = map.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refilled =
            bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = refilled.min(self.burst);
        bucket.at = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            Ok(())
        } else {
            let missing = cost - bucket.tokens;
            Err((missing / self.per_second).ceil().max(1.0) as u64)
        }
    }

    /// Would `cost` tokens be available for `key` (without taking them)?
    fn peek(&self, key: &K, cost: f64) -> Result<(), u64> {
        let now = Instant::now();
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(b) = map.get(key) else {
            return Ok(());
        };
        let tokens =
            (b.tokens + now.duration_since(b.at).as_secs_f64() * self.per_second).min(self.burst);
        if tokens >= cost {
            Ok(())
        } else {
            Err(((cost - tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

/// Every limiter of the server.
pub struct RateLimits {
    users: Buckets<UserId>,
    auth_failures: Buckets<IpAddr>,
    sign_ins: Buckets<IpAddr>,
}

/// What ran out, and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub scope: &'static str,
    pub retry_after_secs: u64,
}

impl Limited {
    /// The 429 answer: JSON-RPC shaped on `/mcp` (clients parse those bodies), plain JSON
    /// elsewhere; `Retry-After` either way.
    pub fn response(&self, json_rpc: bool) -> axum::response::Response {
        use axum::http::{header, HeaderValue, StatusCode};
        use axum::response::IntoResponse;
        crate::metrics::rate_limited(self.scope);
        let message = format!(
            "rate limit reached ({}); retry in {} s",
            self.scope, self.retry_after_secs
        );
        let body = if json_rpc {
            serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {
                "code": -32000, "message": message,
                "data": {"code": "rate_limited", "scope": self.scope,
                         "retry_after": self.retry_after_secs}}})
        } else {
            serde_json::json!({"error": "rate_limited", "error_description": message,
                               "scope": self.scope, "retry_after": self.retry_after_secs})
        };
        let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(self.retry_after_secs),
        );
        resp
    }
}

impl RateLimits {
    pub fn new(c: RateConfig) -> Self {
        let per_minute = c.auth_failures_per_minute / 60.0;
        let per_hour = c.sign_ins_per_hour / 3600.0;
        RateLimits {
            users: Buckets::new(c.user_per_second, c.user_burst),
            auth_failures: Buckets::new(per_minute, c.auth_failures_per_minute),
            sign_ins: Buckets::new(per_hour, c.sign_ins_per_hour),
        }
    }

    /// One request of `user`.
    pub fn user_request(&self, user: &UserId) -> Result<(), Limited> {
        self.users.take(user, 1.0).map_err(|secs| Limited {
            scope: "user_requests",
            retry_after_secs: secs,
        })
    }

    /// May `ip` try to authenticate now (it has not failed too often)?
    pub fn may_authenticate(&self, ip: IpAddr) -> Result<(), Limited> {
        self.auth_failures.peek(&ip, 1.0).map_err(|secs| Limited {
            scope: "auth_failures",
            retry_after_secs: secs,
        })
    }

    /// `ip` failed to authenticate.
    pub fn auth_failed(&self, ip: IpAddr) {
        let _ = self.auth_failures.take(&ip, 1.0);
    }

    /// `ip` starts a sign-in.
    pub fn sign_in(&self, ip: IpAddr) -> Result<(), Limited> {
        self.sign_ins.take(&ip, 1.0).map_err(|secs| Limited {
            scope: "sign_ins",
            retry_after_secs: secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(per_second: f64, burst: f64) -> RateLimits {
        RateLimits::new(RateConfig {
            user_per_second: per_second,
            user_burst: burst,
            auth_failures_per_minute: 3.0,
            sign_ins_per_hour: 2.0,
        })
    }

    #[test]
    fn a_user_gets_the_burst_then_waits_and_others_are_unaffected() {
        let l = limits(1.0, 3.0);
        let (a, b) = (UserId::parse("a").unwrap(), UserId::parse("b").unwrap());
        for _ in 0..3 {
            l.user_request(&a).unwrap();
        }
        let limited = l.user_request(&a).unwrap_err();
        assert_eq!(limited.scope, "user_requests");
        assert_eq!(limited.retry_after_secs, 1);
        l.user_request(&b).unwrap();
    }

    #[test]
    fn failed_authentications_close_the_door_for_that_address_only() {
        let l = limits(1.0, 1.0);
        let (ip, other): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            l.may_authenticate(ip).unwrap();
            l.auth_failed(ip);
        }
        let limited = l.may_authenticate(ip).unwrap_err();
        assert_eq!(limited.scope, "auth_failures");
        assert!(limited.retry_after_secs >= 1 && limited.retry_after_secs <= 20);
        l.may_authenticate(other).unwrap();
        l.sign_in(ip).unwrap();
        l.sign_in(ip).unwrap();
        assert_eq!(l.sign_in(ip).unwrap_err().scope, "sign_ins");
    }

    #[test]
    fn a_bucket_refills_with_time() {
        let buckets: Buckets<u8> = Buckets::new(1000.0, 1.0);
        buckets.take(&1, 1.0).unwrap();
        assert!(buckets.take(&1, 1.0).is_err());
        std::thread::sleep(Duration::from_millis(5));
        buckets.take(&1, 1.0).unwrap();
    }
}
