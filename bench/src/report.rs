//! Plain-text tables for stdout: the throughput table, the web pages table and the two-column
//! scale table.

use hdrhistogram::Histogram;

/// One line of the throughput table.
#[derive(Clone, Debug)]
pub struct Row {
    pub workload: String,
    pub concurrency: usize,
    pub users: usize,
    pub rps: f64,
    /// p50, p90, p99 in microseconds; `None` when no request succeeded.
    pub percentiles: Option<[u64; 3]>,
    pub errors: u64,
    pub rss: Option<u64>,
    /// The ceiling this row is compared with: measured just before it, so that a shared
    /// machine's drift over the run does not skew the comparison.
    pub ceiling_rps: Option<f64>,
    pub pct_of_ceiling: Option<f64>,
}

/// The median of some figures (the mean of the middle two for an even count; 0 for none).
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// p50/p90/p99 of a latency histogram recorded in microseconds.
pub fn percentiles(hist: &Histogram<u64>) -> Option<[u64; 3]> {
    if hist.is_empty() {
        return None;
    }
    Some([0.50, 0.90, 0.99].map(|q| hist.value_at_quantile(q)))
}

/// Microseconds as milliseconds with two decimals: `1234` → `1.23`.
pub fn format_ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// Bytes as MiB with one decimal, or `-` when unknown.
pub fn format_bytes(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
        None => "-".to_string(),
    }
}

/// Bytes in the unit that keeps the figure readable (per-actor figures are KiB-sized).
pub fn format_size(bytes: f64) -> String {
    let abs = bytes.abs();
    if abs >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
    } else if abs >= 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else {
        format!("{bytes:.0} B")
    }
}

/// Lays out cells in columns: the first column left-aligned, the rest right-aligned.
fn layout(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == 0 {
                out.push_str(&format!("{cell:<w$}"));
            } else {
                out.push_str(&format!("  {cell:>w$}"));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = line(&head);
    let total = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

pub fn render(rows: &[Row]) -> String {
    let header = [
        "workload",
        "C",
        "U",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "errors",
        "server RSS",
        "ceiling req/s",
        "% ceiling",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let [p50, p90, p99] = match r.percentiles {
                Some(p) => p.map(format_ms),
                None => ["-".to_string(), "-".to_string(), "-".to_string()],
            };
            vec![
                r.workload.clone(),
                r.concurrency.to_string(),
                r.users.to_string(),
                format!("{:.0}", r.rps),
                p50,
                p90,
                p99,
                r.errors.to_string(),
                format_bytes(r.rss),
                r.ceiling_rps.map_or("-".to_string(), |c| format!("{c:.0}")),
                r.pct_of_ceiling
                    .map_or("-".to_string(), |p| format!("{p:.1}%")),
            ]
        })
        .collect();
    layout(&header, &cells)
}

/// One line of the web pages table.
#[derive(Clone, Debug)]
pub struct PageRow {
    /// The page as a URL path, e.g. `/browse/inbox`.
    pub page: String,
    pub concurrency: usize,
    pub rps: f64,
    /// p50, p90, p99 in microseconds; `None` when no request succeeded.
    pub percentiles: Option<[u64; 3]>,
    /// Slowest successful request, in microseconds.
    pub max: Option<u64>,
    pub errors: u64,
    /// Mean size of the HTML answers.
    pub page_bytes: Option<f64>,
    /// Notes the page links to in its listing (`None` for pages that are not listings).
    pub listed: Option<usize>,
    pub rss: Option<u64>,
}

pub fn render_pages(rows: &[PageRow]) -> String {
    let header = [
        "page",
        "C",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "page size",
        "notes listed",
        "server RSS",
    ];
    let dash = || "-".to_string();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let [p50, p90, p99] = match r.percentiles {
                Some(p) => p.map(format_ms),
                None => [dash(), dash(), dash()],
            };
            vec![
                r.page.clone(),
                r.concurrency.to_string(),
                format!("{:.0}", r.rps),
                p50,
                p90,
                p99,
                r.max.map_or_else(dash, format_ms),
                r.errors.to_string(),
                r.page_bytes.map_or_else(dash, format_size),
                r.listed.map_or_else(dash, |n| n.to_string()),
                format_bytes(r.rss),
            ]
        })
        .collect();
    layout(&header, &cells)
}

/// One line of the flood table: user B's figures in a phase, and user A's flood if any.
#[derive(Clone, Debug)]
pub struct FloodRow {
    pub phase: String,
    /// B's successful requests per second.
    pub b_rps: f64,
    /// B's p50, p99 and max in microseconds, from each request's scheduled time.
    pub b_latency: Option<[u64; 3]>,
    /// Every failed request of B (the check wants none).
    pub b_errors: u64,
    /// A's flood, when it ran in this phase.
    pub a: Option<FloodSide>,
    pub rss: Option<u64>,
}

/// What the flooding user got.
#[derive(Clone, Copy, Debug)]
pub struct FloodSide {
    /// Requests A sent per second.
    pub sent_rps: f64,
    pub ok: u64,
    pub limited: u64,
    /// Failures other than 429 (and requests the bench could not send).
    pub other: u64,
}

pub fn render_flood(rows: &[FloodRow]) -> String {
    let header = [
        "phase",
        "B req/s",
        "B p50 ms",
        "B p99 ms",
        "B max ms",
        "B errors",
        "A sent req/s",
        "A 2xx",
        "A 429",
        "A other",
        "server RSS",
    ];
    let dash = || "-".to_string();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let [p50, p99, max] = match r.b_latency {
                Some(p) => p.map(format_ms),
                None => [dash(), dash(), dash()],
            };
            let a = |f: fn(&FloodSide) -> String| r.a.as_ref().map_or_else(dash, f);
            vec![
                r.phase.clone(),
                format!("{:.1}", r.b_rps),
                p50,
                p99,
                max,
                r.b_errors.to_string(),
                a(|a| format!("{:.0}", a.sent_rps)),
                a(|a| a.ok.to_string()),
                a(|a| a.limited.to_string()),
                a(|a| a.other.to_string()),
                format_bytes(r.rss),
            ]
        })
        .collect();
    layout(&header, &cells)
}

/// One line of the edit table: one tool carrying the same one-line change.
#[derive(Clone, Debug)]
pub struct EditRow {
    pub carrier: String,
    pub concurrency: usize,
    /// Size of the edited note.
    pub note_bytes: usize,
    pub rps: f64,
    /// p50, p90, p99 in microseconds; `None` when no request succeeded.
    pub percentiles: Option<[u64; 3]>,
    /// Mean request and answer body bytes per successful call.
    pub sent_per_request: Option<f64>,
    pub received_per_request: Option<f64>,
    pub errors: u64,
    pub rss: Option<u64>,
}

pub fn render_edits(rows: &[EditRow]) -> String {
    let header = [
        "change sent as",
        "C",
        "note",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "sent/req",
        "received/req",
        "errors",
        "server RSS",
    ];
    let dash = || "-".to_string();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let [p50, p90, p99] = match r.percentiles {
                Some(p) => p.map(format_ms),
                None => [dash(), dash(), dash()],
            };
            vec![
                r.carrier.clone(),
                r.concurrency.to_string(),
                format_size(r.note_bytes as f64),
                format!("{:.0}", r.rps),
                p50,
                p90,
                p99,
                r.sent_per_request.map_or_else(dash, format_size),
                r.received_per_request.map_or_else(dash, format_size),
                r.errors.to_string(),
                format_bytes(r.rss),
            ]
        })
        .collect();
    layout(&header, &cells)
}

/// One line of the watch table: one server variant on one workload, over all rounds.
#[derive(Clone, Debug)]
pub struct WatchRow {
    pub workload: String,
    pub concurrency: usize,
    pub variant: String,
    /// req/s of each round, in round order.
    pub rounds: Vec<f64>,
    /// p50, p90, p99 in microseconds over every round; `None` when no request succeeded.
    pub percentiles: Option<[u64; 3]>,
    /// Median over rounds of the server's CPU milliseconds per request.
    pub cpu_ms: Option<f64>,
    /// Median over rounds of this variant's req/s over the reference's in the same round
    /// (`None` for the reference itself).
    pub rps_ratio: Option<f64>,
    /// The same for CPU per request.
    pub cpu_ratio: Option<f64>,
    pub errors: u64,
    pub rss: Option<u64>,
}

/// The watch table; `reference` names the variant the ratios compare with.
pub fn render_watch(rows: &[WatchRow], reference: &str) -> String {
    let vs_rps = format!("req/s vs {reference}");
    let vs_cpu = format!("CPU vs {reference}");
    let header = [
        "workload",
        "C",
        "server",
        "median req/s",
        "rounds req/s",
        "p50 ms",
        "p99 ms",
        "CPU ms/req",
        vs_rps.as_str(),
        vs_cpu.as_str(),
        "errors",
        "server RSS",
    ];
    let dash = || "-".to_string();
    let ratio = |r: Option<f64>| r.map_or_else(dash, |r| format!("{r:.3}x"));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let [p50, _, p99] = match r.percentiles {
                Some(p) => p.map(format_ms),
                None => [dash(), dash(), dash()],
            };
            let rounds: Vec<String> = r.rounds.iter().map(|x| format!("{x:.0}")).collect();
            vec![
                r.workload.clone(),
                r.concurrency.to_string(),
                r.variant.clone(),
                format!("{:.0}", median(r.rounds.iter().copied())),
                rounds.join(" "),
                p50,
                p99,
                r.cpu_ms.map_or_else(dash, |c| format!("{c:.3}")),
                ratio(r.rps_ratio),
                ratio(r.cpu_ratio),
                r.errors.to_string(),
                format_bytes(r.rss),
            ]
        })
        .collect();
    layout(&header, &cells)
}

/// A two-column `metric  value` table (the scale report).
pub fn render_pairs(pairs: &[(String, String)]) -> String {
    let cells: Vec<Vec<String>> = pairs
        .iter()
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    layout(&["metric", "value"], &cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(format_ms(1234), "1.23");
        assert_eq!(format_ms(5), "0.01");
        assert_eq!(format_ms(153_456), "153.46");
        assert_eq!(format_bytes(None), "-");
        assert_eq!(format_bytes(Some(3 * 1024 * 1024 / 2)), "1.5 MiB");
        assert_eq!(format_size(2048.0), "2.0 KiB");
        assert_eq!(format_size(-512.0), "-512 B");
        assert_eq!(format_size(5.0 * 1024.0 * 1024.0), "5.0 MiB");
    }

    #[test]
    fn percentiles_of_uniform_latencies() {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        assert_eq!(percentiles(&hist), None);
        // Below 2048 a 3-significant-figure histogram is exact, so order statistics are too.
        for us in 1..=1000u64 {
            hist.record(us).unwrap();
        }
        assert_eq!(percentiles(&hist), Some([500, 900, 990]));
        // Above it, values are bucketed: within 0.1% of the exact figure.
        let mut wide = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for ms in 1..=1000u64 {
            wide.record(ms * 1000).unwrap();
        }
        let [p50, _, p99] = percentiles(&wide).unwrap();
        assert!(p50.abs_diff(500_000) <= 500 && p99.abs_diff(990_000) <= 990);
        assert_eq!(format_ms(500), "0.50");
        assert_eq!(format_ms(p50)[..4], *"500.");
    }

    #[test]
    fn table_is_aligned() {
        let rows = vec![
            Row {
                workload: "ceiling".into(),
                concurrency: 16,
                users: 4,
                rps: 41234.4,
                percentiles: Some([310, 520, 1900]),
                errors: 0,
                rss: None,
                ceiling_rps: None,
                pct_of_ceiling: Some(100.0),
            },
            Row {
                workload: "search_notes".into(),
                concurrency: 16,
                users: 4,
                rps: 812.0,
                percentiles: None,
                errors: 3,
                rss: Some(50 * 1024 * 1024),
                ceiling_rps: Some(41234.0),
                pct_of_ceiling: Some(1.969),
            },
        ];
        let table = render(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("workload    "));
        assert!(lines[1].chars().all(|c| c == '-'));
        assert_eq!(lines[0].len(), lines[1].len());
        // Right-aligned columns end at the same offset on every line.
        let end = |l: &str, cell: &str| l.find(cell).map(|i| i + cell.len());
        assert_eq!(end(lines[0], "req/s"), end(lines[2], "41234"));
        assert_eq!(end(lines[0], "req/s"), end(lines[3], "812"));
        assert_eq!(end(lines[0], "% ceiling"), end(lines[2], "100.0%"));
        assert!(lines[3].contains("50.0 MiB"));
        assert!(lines[3].ends_with("2.0%"));
        assert!(lines[2].contains("0.31") && lines[2].contains("1.90"));
        assert_eq!(lines[3].matches(" - ").count(), 3);
        assert_eq!(end(lines[0], "ceiling req/s"), end(lines[3], "41234"));
    }

    #[test]
    fn median_of_odd_even_and_no_figures() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
    }

    #[test]
    fn pages_table() {
        let rows = vec![
            PageRow {
                page: "/browse/inbox".into(),
                concurrency: 16,
                rps: 512.4,
                percentiles: Some([9_000, 20_000, 41_230]),
                max: Some(77_700),
                errors: 0,
                page_bytes: Some(61_440.0),
                listed: Some(200),
                rss: Some(80 * 1024 * 1024),
            },
            PageRow {
                page: "/note/*".into(),
                concurrency: 1,
                rps: 0.0,
                percentiles: None,
                max: None,
                errors: 7,
                page_bytes: None,
                listed: None,
                rss: None,
            },
        ];
        let table = render_pages(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("page  "));
        assert_eq!(lines[0].len(), lines[1].len());
        let end = |l: &str, cell: &str| l.find(cell).map(|i| i + cell.len());
        assert_eq!(end(lines[0], "p99 ms"), end(lines[2], "41.23"));
        assert_eq!(end(lines[0], "max ms"), end(lines[2], "77.70"));
        assert_eq!(end(lines[0], "notes listed"), end(lines[2], "200"));
        assert!(lines[2].contains("60.0 KiB") && lines[2].ends_with("80.0 MiB"));
        assert_eq!(lines[3].matches(" - ").count(), 6);
        assert!(lines[3].ends_with('-'));
    }

    #[test]
    fn edits_table() {
        let row = EditRow {
            carrier: "edit_note (1-line replace)".into(),
            concurrency: 4,
            note_bytes: 20 * 1024,
            rps: 950.4,
            percentiles: Some([1_000, 2_000, 4_500]),
            sent_per_request: Some(210.0),
            received_per_request: Some(1536.0),
            errors: 0,
            rss: None,
        };
        let table = render_edits(&[row]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("change sent as"));
        let end = |l: &str, cell: &str| l.find(cell).map(|i| i + cell.len());
        assert_eq!(end(lines[0], "sent/req"), end(lines[2], "210 B"));
        assert_eq!(end(lines[0], "received/req"), end(lines[2], "1.5 KiB"));
        assert!(lines[2].contains("20.0 KiB") && lines[2].contains(" 950 "));
    }

    #[test]
    fn watch_table() {
        let row = WatchRow {
            workload: "write_note".into(),
            concurrency: 16,
            variant: "watch on".into(),
            rounds: vec![410.0, 430.0, 400.0],
            percentiles: Some([30_000, 45_000, 60_000]),
            cpu_ms: Some(1.234),
            rps_ratio: Some(0.95),
            cpu_ratio: Some(1.08),
            errors: 0,
            rss: None,
        };
        let reference = WatchRow {
            variant: "watch off".into(),
            rps_ratio: None,
            cpu_ratio: None,
            ..row.clone()
        };
        let t = render_watch(&[reference, row], "watch off");
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("req/s vs watch off") && lines[0].contains("CPU vs watch off"));
        assert!(lines[3].starts_with("write_note  16   watch on"));
        assert!(lines[3].contains(" 410 ") && lines[3].contains("410 430 400"));
        assert!(lines[3].contains("0.950x") && lines[3].contains("1.080x"));
        assert!(lines[3].contains("1.234") && lines[3].contains("60.00"));
    }

    #[test]
    fn pairs_table() {
        let t = render_pairs(&[("index 10 notes".into(), "1.20 s".into())]);
        assert_eq!(t.lines().nth(2), Some("index 10 notes  1.20 s"));
    }
}
