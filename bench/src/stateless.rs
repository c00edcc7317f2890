//! The `stateless` mode: the same requests sent on a session (2025-11-25: `initialize`, then
//! `Mcp-Session-Id` on every call) and on the stateless revision 2026-07-28 (no session, every
//! request carrying its `_meta` envelope and its `Mcp-Method` / `Mcp-Name` headers), against one
//! server, in alternating rounds, with each round's stateless req/s over the session-based
//! req/s of the same round.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::client::user_id;
use crate::report::{self, WatchRow};
use crate::watch;
use crate::workload::{self, Plan, Spec, Workload};
use crate::{build_corpus, report_window, server_config, start_touched, Fallible, Global};

/// The label of the variant the ratios compare with.
const REFERENCE: &str = "session";

#[derive(Args, Clone)]
pub struct StatelessArgs {
    /// Workloads to compare, comma-separated (each also runs as its stateless variant)
    #[arg(
        short,
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "read,search"
    )]
    pub workloads: Vec<Workload>,
    /// Concurrent clients; a comma-separated list compares at each level
    #[arg(short = 'c', long, value_delimiter = ',', default_value = "16")]
    pub concurrency: Vec<usize>,
    /// Users the clients are spread over; each gets the whole corpus
    #[arg(short, long, default_value_t = 4)]
    pub users: usize,
    /// Notes to generate (ignored with --corpus)
    #[arg(short, long, default_value_t = 1000)]
    pub notes: usize,
    /// Measured seconds per variant, workload and round
    #[arg(short, long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Warm-up seconds before each measured window
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Rounds; each variant runs each workload once per round, the order alternating
    #[arg(short, long, default_value_t = 5)]
    pub rounds: usize,
}

impl StatelessArgs {
    /// Short rounds for a quick check of the mode.
    pub fn smoke(&mut self) {
        self.concurrency = vec![4];
        self.users = 2;
        self.notes = self.notes.min(200);
        self.seconds = self.seconds.min(1.0);
        self.warmup = self.warmup.min(0.3);
        self.rounds = self.rounds.min(2);
    }
}

/// The `stateless` mode; returns the number of failed requests.
pub async fn stateless_mode(
    global: &Global,
    args: &StatelessArgs,
    http: &reqwest::Client,
) -> Fallible<u64> {
    if args.users == 0 || args.concurrency.contains(&0) || args.seconds <= 0.0 || args.rounds == 0 {
        return Err("--users, --concurrency, --seconds and --rounds must be positive".into());
    }
    let pairs: Vec<[Workload; 2]> = args
        .workloads
        .iter()
        .filter(|w| !w.is_stateless())
        .map(|&w| [w, w.stateless()])
        .collect();
    if let Some([w, _]) = pairs.iter().find(|[a, b]| a == b) {
        return Err(format!("{} has no stateless variant", w.label()).into());
    }
    let dir = tempfile::Builder::new()
        .prefix("vault-bench-stateless-")
        .tempdir()?;
    let config = server_config(global, dir.path().to_path_buf())?;
    let corpus = build_corpus(global, args.notes)?;
    let plan = Arc::new(Plan::new(corpus));
    for u in 0..args.users {
        plan.corpus.write_to(&config.vault_dir(&user_id(u)))?;
    }
    let (server, target) = start_touched(global, &config, http, args.users).await?;

    let (warmup, measure) = (
        Duration::from_secs_f64(args.warmup.max(0.0)),
        Duration::from_secs_f64(args.seconds),
    );
    let variants = [REFERENCE, "stateless"];
    let mut failures = 0;
    let mut rows = Vec::new();
    for &c in &args.concurrency {
        for pair in &pairs {
            let mut cells = [watch::Cell::new(), watch::Cell::new()];
            for round in 0..args.rounds {
                for i in watch::rotation(round, variants.len()) {
                    let kind = pair[i];
                    eprintln!(
                        "[bench] {} C={c} (round {}/{}): {:.1} s warm-up + {:.1} s",
                        kind.label(),
                        round + 1,
                        args.rounds,
                        warmup.as_secs_f64(),
                        measure.as_secs_f64()
                    );
                    let spec = Spec {
                        workload: kind,
                        concurrency: c,
                        warmup,
                        measure,
                        seed: global.seed ^ round as u64,
                    };
                    let pid = server.pid;
                    let sampler = tokio::spawn(async move {
                        tokio::time::sleep(warmup).await;
                        let before = watch::cpu_time(pid);
                        tokio::time::sleep(measure).await;
                        Some(watch::cpu_time(pid)?.saturating_sub(before?))
                    });
                    let out = workload::drive(&target, plan.clone(), &spec).await;
                    let cpu = sampler.await.ok().flatten();
                    failures += report_window(kind.label(), &out.errors, out.rps(), &server);
                    cells[i].add(out, cpu);
                }
            }
            let (ref_rps, ref_cpu) = (cells[0].rps.clone(), cells[0].cpu_rounds());
            for (i, cell) in cells.iter().enumerate() {
                let cpu = cell.cpu_rounds();
                let (rps_ratio, cpu_ratio) = if i == 0 {
                    (None, None)
                } else {
                    (
                        watch::paired_ratio(&cell.rps, &ref_rps),
                        cpu.as_deref()
                            .zip(ref_cpu.as_deref())
                            .and_then(|(a, b)| watch::paired_ratio(a, b)),
                    )
                };
                rows.push(WatchRow {
                    workload: pair[0].label().to_string(),
                    concurrency: c,
                    variant: variants[i].to_string(),
                    rounds: cell.rps.clone(),
                    percentiles: report::percentiles(&cell.hist),
                    cpu_ms: cpu.map(|c| report::median(c.into_iter())),
                    rps_ratio,
                    cpu_ratio,
                    errors: cell.errors.total(),
                    rss: server.rss(),
                });
            }
        }
    }
    server.stop().await?;
    println!(
        "stateless: {} rounds of {:.1} s (after {:.1} s warm-up) per variant and workload; {} \
         users, {} notes each; session = 2025-11-25 with Mcp-Session-Id, stateless = 2026-07-28",
        args.rounds,
        measure.as_secs_f64(),
        warmup.as_secs_f64(),
        args.users,
        plan.corpus.notes.len()
    );
    print!("{}", report::render_watch(&rows, REFERENCE));
    Ok(failures)
}
