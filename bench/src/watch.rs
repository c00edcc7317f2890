//! The parts of the `watch` comparison: the same workloads against servers that differ only
//! in their file watcher (`WATCH_FILES` on and off) and, optionally, an older binary, measured
//! in alternating rounds so that a shared machine's drift weighs on every variant alike.
//!
//! Besides req/s, each round samples the server's CPU time (user + system, all threads) over
//! the measured window, so the watcher's cost shows even when the client, not the server, is
//! what limits req/s.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::server::ServerConfig;
use crate::workload::{new_histogram, Outcome, Tally};

/// One server configuration of the comparison.
pub struct Variant {
    /// Its name in the table (`watch on`, `watch off`, `baseline`).
    pub label: &'static str,
    pub config: ServerConfig,
}

/// Everything measured of one variant for one workload and concurrency, over all rounds.
pub struct Cell {
    /// req/s of each round, in round order.
    pub rps: Vec<f64>,
    /// Server CPU milliseconds per successful request, each round (`None` where unknown).
    pub cpu_ms: Vec<Option<f64>>,
    /// Latencies of every round's measured requests.
    pub hist: Histogram<u64>,
    pub errors: Tally,
}

impl Cell {
    pub fn new() -> Self {
        Cell {
            rps: Vec::new(),
            cpu_ms: Vec::new(),
            hist: new_histogram(),
            errors: Tally::default(),
        }
    }

    /// Adds a round: its outcome and the server's CPU time over its measured window.
    pub fn add(&mut self, out: Outcome, cpu: Option<Duration>) {
        self.rps.push(out.rps());
        self.cpu_ms
            .push(cpu.and_then(|c| (out.ok > 0).then(|| c.as_secs_f64() * 1000.0 / out.ok as f64)));
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.hist.add(&out.hist);
        self.errors.merge(out.errors);
    }

    /// The CPU figures of every round, when all are known.
    pub fn cpu_rounds(&self) -> Option<Vec<f64>> {
        self.cpu_ms.iter().copied().collect()
    }
}

/// The order the variants run in during `round` (from 0): each round starts one variant
/// later than the one before, so no variant always runs first, or right after another.
pub fn rotation(round: usize, variants: usize) -> Vec<usize> {
    (0..variants).map(|i| (round + i) % variants).collect()
}

/// The median over rounds of `a[r] / b[r]`: each round compared with its own partner, which
/// ran minutes apart at most, rather than medians compared across the whole run.
pub fn paired_ratio(a: &[f64], b: &[f64]) -> Option<f64> {
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(_, &b)| b > 0.0)
        .map(|(a, b)| a / b)
        .collect();
    (!ratios.is_empty()).then(|| crate::report::median(ratios.into_iter()))
}

/// CPU time (user + system, every thread) the process `pid` has used so far.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_cpu_ticks(&stat)?;
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// utime + stime, in clock ticks, from a `/proc/<pid>/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted from its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_take_turns_at_running_first() {
        assert_eq!(rotation(0, 3), [0, 1, 2]);
        assert_eq!(rotation(1, 3), [1, 2, 0]);
        assert_eq!(rotation(5, 2), [1, 0]);
    }

    #[test]
    fn ratios_pair_each_round_with_its_partner() {
        // Drift halves both variants in round 2: paired, the ratio stays 0.9.
        let on = [900.0, 450.0, 910.0];
        let off = [1000.0, 500.0, 1000.0];
        let r = paired_ratio(&on, &off).unwrap();
        assert!((r - 0.9).abs() < 1e-9, "{r}");
        assert_eq!(paired_ratio(&[1.0], &[0.0]), None);
    }

    #[test]
    fn cpu_ticks_are_counted_after_the_name() {
        let stat = "4242 (vault-mcp (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    150 25 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(175));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let spin = (0..2_000_000u64).fold(0u64, |a, b| a.wrapping_add(b * b));
        assert!(spin > 0);
        assert!(cpu_time(std::process::id()).is_some());
    }
}
