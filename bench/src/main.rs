//! `vault-bench`: throughput, latency and scale benchmark for vault-mcp over real MCP HTTP.
//!
//! This file holds the command line and the orchestration of the `run`, `web` and `flood`
//! modes; the parts live in `corpus` (notes), `client` (MCP session), `workload` (driver),
//! `ceiling` (bare endpoint), `server` (child process), `scale`, `web` (pages), `flood` (paced
//! streams of two users), `shutdown` (SIGTERM under load), `edits` (a one-line change sent as
//! `edit_note` or `write_note`), `watch` (servers with and without the file watcher, in
//! alternating rounds) and `report` (tables).

mod ceiling;
mod client;
mod corpus;
mod edits;
mod flood;
mod report;
mod scale;
mod server;
mod shutdown;
mod stateless;
mod watch;
mod web;
mod workload;

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::ceiling::Ceiling;
use crate::client::{mint_token, user_id};
use crate::corpus::Corpus;
use crate::report::{FloodRow, FloodSide, PageRow, Row};
use crate::server::{ServerConfig, ServerMode, ServerProcess};
use crate::workload::{Plan, Spec, Tally, Target, Workload};

type Fallible<T> = Result<T, Box<dyn Error>>;

const LONG_ABOUT: &str = "\
Benchmark for vault-mcp over real MCP Streamable HTTP (JWT, sessions, tools/call).

MODES
  run      Throughput and latency. Builds a corpus, loads it into U users' vaults, then for
           each workload and each concurrency C drives C closed-loop MCP sessions (spread
           round-robin over the U users) for a warm-up plus --seconds. The same client is also
           driven against a bare hyper endpoint served by the bench itself on its own thread
           and runtime, which answers tools/call with canned JSON and no work: that row,
           'ceiling', is the most this machine does for this client. Before each workload the
           ceiling is measured again (half the window, at least 1 s): 'ceiling req/s' is that
           figure and '% ceiling' compares the workload with it, so that the drift of a shared
           machine over a long run does not skew the comparison. With --rounds N every
           workload is measured N times, each right after its own ceiling; req/s, ceiling and
           % ceiling are then the medians of the rounds (each % from its own round) and the
           percentiles are over all rounds' requests.
  scale    (1) Time to index N notes (--index-notes, default 10,000, ~30 MB): the files are
           written into one user's vault while the server is stopped, then the server starts
           and the time from that user's first request to its first list_notes answer is
           taken. (2) Cold start of an idled-out actor whose vault is indexed
           (ACTOR_IDLE_TIMEOUT=1s, wait 2.5 s, time the next read_note). (3) Server RSS with K
           users (--actors) each holding one live session (initialize only; at most --live-cap
           actors are alive at once, the server retiring the least recently used), and again
           after the actors idled out; RSS per live actor = delta / live actors.
  web      The web app's pages as a signed-in person gets them. Starts the server in local
           mode (its one user, `local`, gets the corpus; see CORPUS for the inbox/ folder),
           signs in through the one-time login link of its banner, GETs /browse once (the
           actor opens and reconciles the index: timed, not measured), then for each page and
           each concurrency C drives C closed-loop clients, all on that one web session (one
           person, many tabs), for a warm-up plus --seconds. Pages (--pages):
             root    /browse: the top folders with their note counts
             folder  /browse/<F>, first page, F the folder with the most notes directly in it
                     (inbox/ in the generated corpus, so the page lists a full 200 notes)
             top     /browse/<T>, first page, T the top folder with the most notes under it,
                     other than folder's (an area-N/ of the generated corpus: its subfolders
                     with their counts plus its own ~150 notes)
             note    /note/<path> of a random note per request (rendered note, links and
                     backlinks)
           Every answer must be a 200 with text/html; a redirect (e.g. back to sign-in) is an
           error, not followed. 'notes listed' counts the notes a listing page links to, from
           one GET before the measurement; 'page size' is the mean HTML size.
  flood    One tenant floods, another must not notice. Starts the server with a per-user
           limit (--rate req/s, --burst; RATE_LIMIT_PER_SECOND and RATE_LIMIT_BURST) and loads
           the corpus for two users, A (bench-user-0001) and B (bench-user-0002). Phase 1: B
           alone sends read_note of a random note at --b-share of the limit (default half)
           for --seconds. Phase 2: the same for B while A sends read_note at --factor times
           the limit (default 10x) over --a-sessions sessions. Both are open loops: each
           request leaves at its scheduled time, on its own task, whatever the earlier ones
           are doing, and B's latency counts from that time, so a stall of the server shows in
           full. Sessions are opened before phase 1, so A's bucket is full again when its
           flood begins (given --seconds of at least burst/rate).
           Table: per phase, B's req/s, p50/p99/max and errors, A's sent req/s (at most 256
           of A's requests are in flight; one that finds no room is 'other', not sent), A's
           2xx, 429 and other answers, and server RSS after the phase. Failures: any error of
           B; A never refused (no limit in force); A admitted more than burst + rate x its
           span + 1.
  sigterm  SIGTERM under load. Starts the server, loads the corpus for --users users, opens
           --sessions sessions spread over them and drives each in a closed loop of
           --workload (default mix: reads, searches, writes); after --warmup seconds the
           server gets SIGTERM while the loops go on, each ending at its first request that
           does not succeed after the signal. Every request is sorted by where it stood at
           the signal (answered before; in flight: started before, ended after; sent after)
           and by its fate: ok (2xx answer), refused (an answer that says no: HTTP status,
           JSON-RPC error, isError), not connected (connection refused: nothing was sent) or
           broken (sent, then the connection was reset or closed before the answer). Also
           the time from the signal to the exit. Failures: a broken request in flight at the
           signal, any failure before it, no exit within --deadline (then SIGKILL).
  edit     One line changed in a large note (--note-kb, default 20 KB), sent either as
           write_note with the whole note or as edit_note with a one-line replace (expected
           once, so a lost update would fail). Each of C sessions (spread over --users users)
           first writes its own note (not measured), then moves the note's `revision: <s>-<n>`
           line to n+1 in a closed loop for a warm-up plus --seconds; write_note and then
           edit_note, at each concurrency. Table: req/s, p50/p90/p99, and the mean HTTP body
           bytes sent and received per request (the JSON-RPC request; the answer, which for
           edit_note carries the diff).
  watch    The cost of the file watcher. Starts two servers from --server-bin that differ
           only in WATCH_FILES (true, false), and with --baseline-bin a third from that binary
           (an older build, e.g. the commit before the watcher; it gets WATCH_FILES too, which
           a build without a watcher ignores). Each gets its own data folder with the corpus
           for --users users. Then for each workload (default write_note and mix) and
           concurrency, --rounds rounds (default 5); in each round every server runs the
           workload for a warm-up plus --seconds, in an order that rotates by one server per
           round, so that none always runs first. Table: per server, the median and each
           round's req/s, p50/p99 over all rounds, the server's CPU time (user + system, all
           threads, sampled over about the measured window) per request, and the median over
           rounds of req/s and CPU per request divided by the `watch off` server's in the same
           round.
  stateless  Session-based against stateless MCP. One server with the corpus for --users
           users; for each workload (default read_note and search_notes) and concurrency,
           --rounds rounds in which the workload runs on sessions (2025-11-25, initialize and
           Mcp-Session-Id) and on the stateless revision (2026-07-28: no session, _meta on
           every request, Mcp-Method / Mcp-Name headers), in an order that alternates by
           round. Same table as watch, the ratios against `session`. The stateless variants
           are also workloads of run (read-stateless, search-stateless).
  all      run, then scale, then web with web's defaults, then flood, then edit with their
           defaults (the default when no mode is given; sigterm and watch only on request).
  ceiling  Serve only the ceiling endpoint on loopback and print its URL; then
           `vault-bench run --url <URL> --secret x` self-tests the whole client against it.

SERVER
  Unless --url is given, the bench starts `vault-mcp serve` itself (MODE=space, or MODE=local
  for web; PORT=0, a random 48-char JWT_SECRET_KEY, RUST_LOG=warn, DATA_DIR with the vaults
  and index a fresh temp folder that is removed afterwards) and stops it with SIGTERM.
  --server-bin defaults to target/release/vault-mcp under the cwd, else vault-mcp next to this
  executable.

CORPUS
  Generated (seeded, deterministic): frontmatter with title and 1-4 tags, 2-4 KB markdown
  bodies with Zipf-distributed words, headings and [[wikilinks]], in folders such as
  area-3/topic-12/note-00042.md. Or any folder of markdown with --corpus DIR. Every user gets
  the same corpus. Loading (--load auto): when the bench starts the server, files are written
  into each user's vault folder before it starts, and one list_notes per user (tried again
  while it times out) then makes every actor reconcile its index before anything is
  measured; with --url, notes are written through write_note over MCP. Then `sync` writes
  back what loading left in the page cache, so that writeback does not weigh on the measured
  workloads. Search queries are frequent words
  of the corpus (its ~30 stopword-like top words skipped): 70% one word, 20% two words, 10% a
  prefix (abc*).
  Writes overwrite random notes with another note's body plus a unique line. For web, the first
  --inbox notes of the generated corpus (default 1,000 of 10,000) are moved directly into
  inbox/, where unfiled notes pile up: the generator alone never fills a 200-note folder page
  (1 note in 64 lands directly in each area-N/, about 156 of 10,000; ~70 in each topic).

OUTPUT
  Tables on stdout, progress and an error breakdown on stderr. req/s and percentiles count
  successful calls started in the measured window; 'errors' counts every failed call of the
  workload (session setup, warm-up, measured window, teardown): HTTP status other than 2xx
  (429 included), JSON-RPC error, result.isError, transport failure, a body that is not
  well-formed JSON. In the measured loop (ceiling included) the client checks exactly that
  and skips the rest of each answer without building it; a failed answer is parsed in full
  for the error summary. 'server RSS' is VmRSS of the started server after the workload ('-'
  with --url).

EXIT STATUS
  0 all requests succeeded (flood: B's did and A was held to its limit); 1 some request
  failed (flood: see its failures); 2 the server (or the bench) could not
  start or a phase could not run.

EXAMPLES
  vault-bench --smoke                          # seconds-long check used by the test suite
  vault-bench run -c 1,16,64 -u 8 -s 20        # three concurrency levels, 8 users
  vault-bench run -w read,mix --corpus ~/vault # your own notes
  vault-bench run -w ping,read -r 3            # the request path alone, then with a note read
  vault-bench scale --index-notes 5000 -k 2000
  vault-bench web                              # folder and note pages of a 10,000-note vault
  vault-bench web -p folder -c 1,4,16 -s 20    # the 200-note folder page at three levels
  vault-bench web --corpus ~/vault --server-bin ./vault-mcp
  vault-bench flood                            # B's p99 alone and under A's 10x flood
  vault-bench flood --rate 50 --factor 20 -s 30
  vault-bench sigterm --sessions 64 -w write   # who gets an answer when the server stops
  vault-bench edit -c 1,16 --note-kb 20        # edit_note against write_note, bytes and req/s
  vault-bench watch -r 5                       # write_note and mix, watcher on against off
  vault-bench watch -w write --baseline-bin old/vault-mcp   # ... and against an older build
  vault-bench ceiling --port 9999 & vault-bench run --url http://127.0.0.1:9999 --secret x";

#[derive(Parser)]
#[command(
    name = "vault-bench",
    version,
    about = "Throughput, latency and scale benchmark for vault-mcp over real MCP HTTP",
    long_about = LONG_ABOUT
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    global: Global,
}

#[derive(Subcommand)]
enum Command {
    /// Throughput/latency table for each workload and concurrency, with the ceiling row
    Run(RunArgs),
    /// Indexing time, actor cold start, and RSS per live actor
    Scale(ScaleArgs),
    /// Folder and note pages of the web app, signed in through local mode's login link
    Web(WebArgs),
    /// User B's latency alone and while user A floods at 10x the per-user rate limit
    Flood(FloodArgs),
    /// SIGTERM while sessions read and write: in-flight requests answered or cut, exit time
    Sigterm(SigtermArgs),
    /// A one-line change in a 20 KB note as edit_note against write_note: bytes and req/s
    Edit(EditArgs),
    /// Workloads with the file watcher on against off (and an older binary), alternating
    Watch(WatchArgs),
    /// read_note and search_notes on sessions against the stateless revision, alternating
    Stateless(stateless::StatelessArgs),
    /// `run`, then `scale`, then `web`, then `flood` with their defaults (the default)
    All {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        scale: ScaleArgs,
    },
    /// Serve only the ceiling endpoint (canned MCP answers) until Ctrl-C, for self-tests
    Ceiling(CeilingArgs),
}

#[derive(Args, Clone)]
struct Global {
    /// Tiny sizes for a quick check: 200 notes, 4 sessions over 2 users, 1 s per workload,
    /// 50 actors, 2 s idle timeout; for web 300 notes (250 in inbox/), 2 clients, 0.5 s per
    /// page; for flood 100 notes, 1.5 s per phase; for sigterm 100 notes over 2 users, 1 s
    /// before the signal. Overrides the size options; exits non-zero on any error
    #[arg(long, global = true)]
    smoke: bool,
    /// vault-mcp binary [default: target/release/vault-mcp, else next to vault-bench]
    #[arg(long, global = true, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Extra environment for the started server (repeatable), e.g. a larger note quota
    #[arg(long, global = true, value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    server_env: Vec<(String, String)>,
    /// Copy the started server's stderr to ours (its last lines are shown on failure anyway)
    #[arg(long, global = true)]
    server_stderr: bool,
    /// Use the markdown files under DIR as the corpus instead of generating one
    #[arg(long, global = true, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Seed of the corpus generator and of the request streams
    #[arg(long, global = true, default_value_t = 42)]
    seed: u64,
    /// Issuer and audience of the tokens (must equal the server's PUBLIC_URL)
    #[arg(long, global = true, default_value = "http://bench.invalid")]
    public_url: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LoadMode {
    /// files when the bench starts the server, mcp with --url
    Auto,
    /// write files into the vault folders before the server starts
    Files,
    /// write_note over MCP, one session per user
    Mcp,
    /// load nothing (the vaults already hold the corpus)
    None,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Workloads to run, comma-separated
    #[arg(
        short,
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "read,search,list,write,mix"
    )]
    workloads: Vec<Workload>,
    /// Concurrent MCP sessions; a comma-separated list runs every workload at each level
    #[arg(short = 'c', long, value_delimiter = ',', default_value = "16")]
    concurrency: Vec<usize>,
    /// Users the sessions are spread over (bench-user-0001 ...); each gets the whole corpus
    #[arg(short, long, default_value_t = 4)]
    users: usize,
    /// Notes to generate (ignored with --corpus)
    #[arg(short, long, default_value_t = 1000)]
    notes: usize,
    /// Measured seconds per workload
    #[arg(short, long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up seconds before each measured window
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Measure each workload this many times, each right after its own ceiling; the table
    /// shows the medians (req/s, ceiling, % ceiling) and percentiles over all rounds
    #[arg(short, long, default_value_t = 1)]
    rounds: usize,
    /// Drive an already running server at URL instead of starting one (needs --secret)
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// JWT_SECRET_KEY of the server at --url
    #[arg(long, env = "JWT_SECRET_KEY", hide_env_values = true)]
    secret: Option<String>,
    /// How the corpus gets into the vaults
    #[arg(long, value_enum, default_value = "auto")]
    load: LoadMode,
    /// Runtime worker threads of the ceiling server [default: number of cores]
    #[arg(long, default_value_t = 0)]
    ceiling_threads: usize,
}

#[derive(Args, Clone)]
struct ScaleArgs {
    /// Notes to index from an empty index (ignored with --corpus)
    #[arg(long, default_value_t = 10_000)]
    index_notes: usize,
    /// K: users that each hold one live session for the memory figures
    #[arg(short = 'k', long, default_value_t = 10_000)]
    actors: usize,
    /// ACTOR_IDLE_TIMEOUT of the memory phase; must outlast opening the K sessions
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Sessions opened at once in the memory phase
    #[arg(long, default_value_t = 32)]
    open_concurrency: usize,
    /// Cold-start samples (the median is reported)
    #[arg(long, default_value_t = 3)]
    cold_samples: usize,
    /// The server's MAX_LIVE_ACTORS in the memory phase (its default is 1024): at most this
    /// many actors live at once; RSS per live actor divides by it
    #[arg(long, default_value_t = 1024)]
    live_cap: usize,
}

#[derive(Args, Clone)]
struct FloodArgs {
    /// The server's per-user limit, requests per second (RATE_LIMIT_PER_SECOND)
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// The server's per-user burst (RATE_LIMIT_BURST) [default: --rate]
    #[arg(long)]
    burst: Option<f64>,
    /// A's rate in phase 2, as a multiple of --rate
    #[arg(long, default_value_t = 10.0)]
    factor: f64,
    /// B's rate, as a share of --rate (below 1: within its limit)
    #[arg(long, default_value_t = 0.5)]
    b_share: f64,
    /// Sessions A spreads its flood over
    #[arg(long, default_value_t = 4)]
    a_sessions: usize,
    /// Seconds of each phase
    #[arg(short, long, default_value_t = 10.0)]
    seconds: f64,
    /// Notes to generate for each of the two users (ignored with --corpus)
    #[arg(short, long, default_value_t = 200)]
    notes: usize,
}

#[derive(Args, Clone)]
struct SigtermArgs {
    /// Concurrent MCP sessions
    #[arg(short = 'c', long, default_value_t = 16)]
    sessions: usize,
    /// Users the sessions are spread over
    #[arg(short, long, default_value_t = 4)]
    users: usize,
    /// What each session sends
    #[arg(short, long, value_enum, default_value = "mix")]
    workload: Workload,
    /// Notes to generate for each user (ignored with --corpus)
    #[arg(short, long, default_value_t = 500)]
    notes: usize,
    /// Seconds of load before the signal
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// The server must exit this long after SIGTERM
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    deadline: Duration,
}

#[derive(Args, Clone)]
struct EditArgs {
    /// Concurrent MCP sessions, each on its own note; a comma-separated list measures both
    /// tools at each level
    #[arg(short = 'c', long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Users the sessions are spread over
    #[arg(short, long, default_value_t = 4)]
    users: usize,
    /// Size of each edited note, in KB
    #[arg(long, default_value_t = 20)]
    note_kb: usize,
    /// Measured seconds per tool and concurrency
    #[arg(short, long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up seconds before each measured window
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
}

#[derive(Args, Clone)]
struct WatchArgs {
    /// Workloads to compare, comma-separated
    #[arg(
        short,
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "write,mix"
    )]
    workloads: Vec<Workload>,
    /// Concurrent MCP sessions; a comma-separated list compares at each level
    #[arg(short = 'c', long, value_delimiter = ',', default_value = "16")]
    concurrency: Vec<usize>,
    /// Users the sessions are spread over; each gets the whole corpus on every server
    #[arg(short, long, default_value_t = 4)]
    users: usize,
    /// Notes to generate (ignored with --corpus)
    #[arg(short, long, default_value_t = 1000)]
    notes: usize,
    /// Measured seconds per server, workload and round
    #[arg(short, long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up seconds before each measured window
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Rounds; every server runs each workload once per round
    #[arg(short, long, default_value_t = 5)]
    rounds: usize,
    /// An older vault-mcp to measure as a third server, `baseline`
    #[arg(long, value_name = "PATH")]
    baseline_bin: Option<PathBuf>,
}

/// A page of the web app that `web` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PageKind {
    /// /browse: the top of the vault
    Root,
    /// /browse/<the folder with the most notes directly in it>, first page
    Folder,
    /// /browse/<the top folder with the most notes under it, other than folder's>, first page
    Top,
    /// /note/<a random note>
    Note,
}

#[derive(Args, Clone)]
struct WebArgs {
    /// Pages to measure, comma-separated
    #[arg(
        short,
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "root,folder,top,note"
    )]
    pages: Vec<PageKind>,
    /// Concurrent clients on the one web session; a comma-separated list measures every page
    /// at each level
    #[arg(short = 'c', long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Notes to generate (ignored with --corpus)
    #[arg(short, long, default_value_t = 10_000)]
    notes: usize,
    /// Of the generated notes, this many go directly into inbox/ (0 for none; ignored with
    /// --corpus)
    #[arg(long, default_value_t = 1000)]
    inbox: usize,
    /// Measured seconds per page and concurrency
    #[arg(short, long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up seconds before each measured window
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

#[derive(Args, Clone)]
struct CeilingArgs {
    /// Loopback port (0 = any free port)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Runtime worker threads [default: number of cores]
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn parse_env_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

/// The defaults of an `Args` struct, as if none of its options were given.
fn defaults<T: Args + FromArgMatches>() -> Result<T, clap::Error> {
    let cmd = T::augment_args(clap::Command::new("vault-bench"));
    T::from_arg_matches(&cmd.try_get_matches_from(["vault-bench"])?)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl RunArgs {
    fn smoke(&mut self) {
        self.notes = 200;
        self.users = 2;
        self.concurrency = vec![4];
        self.seconds = 1.0;
        self.warmup = 0.25;
        // Every workload, so that none of them can quietly stop working.
        if !self.workloads.contains(&Workload::Ping) {
            self.workloads.push(Workload::Ping);
        }
    }
}

impl WebArgs {
    fn smoke(&mut self) {
        self.notes = 300;
        self.inbox = 250;
        self.concurrency = vec![2];
        self.seconds = 0.5;
        self.warmup = 0.2;
    }
}

impl FloodArgs {
    fn smoke(&mut self) {
        self.notes = 100;
        self.seconds = 1.5;
    }
}

impl SigtermArgs {
    fn smoke(&mut self) {
        self.notes = 100;
        self.users = 2;
        self.warmup = 1.0;
    }
}

impl EditArgs {
    fn smoke(&mut self) {
        self.users = 2;
        self.concurrency = vec![2];
        self.seconds = 1.0;
        self.warmup = 0.25;
    }
}

impl WatchArgs {
    fn smoke(&mut self) {
        self.notes = 200;
        self.users = 2;
        self.concurrency = vec![4];
        self.seconds = 1.0;
        self.warmup = 0.25;
        self.rounds = 2;
    }
}

impl ScaleArgs {
    fn smoke(&mut self) {
        self.index_notes = 200;
        self.actors = 50;
        self.idle_timeout = Duration::from_secs(2);
        self.cold_samples = 1;
    }
}

fn build_corpus(global: &Global, generate_n: usize) -> Fallible<Corpus> {
    let t = Instant::now();
    let corpus = match &global.corpus {
        Some(dir) => corpus::load_dir(dir)
            .map_err(|e| format!("cannot load corpus {}: {e}", dir.display()))?,
        None => corpus::generate(generate_n, global.seed),
    };
    eprintln!(
        "[bench] corpus: {} notes, {} ({:.2} s)",
        corpus.notes.len(),
        report::format_size(corpus.total_bytes() as f64),
        t.elapsed().as_secs_f64()
    );
    Ok(corpus)
}

fn server_config(global: &Global, root: PathBuf) -> Fallible<ServerConfig> {
    Ok(ServerConfig {
        bin: server::find_binary(global.server_bin.as_deref())?,
        mode: ServerMode::Space,
        root,
        secret: server::random_secret()?,
        public_url: global.public_url.clone(),
        idle_timeout: "10m".into(),
        extra_env: global.server_env.clone(),
        forward_stderr: global.server_stderr,
    })
}

fn tokens(secret: &str, public_url: &str, users: usize) -> Fallible<Arc<Vec<String>>> {
    let tokens = (0..users)
        .map(|i| mint_token(secret, public_url, &user_id(i)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(tokens))
}

fn report_errors(what: &str, errors: &Tally) {
    if errors.total() > 0 {
        eprintln!(
            "[bench] {what}: {} errors\n{}",
            errors.total(),
            errors.describe()
        );
    }
}

/// Report one measured window: its errors (with the server's last stderr lines when there are
/// any) and its rate. Returns the number of errors.
fn report_window(label: &str, errors: &Tally, rps: f64, server: &ServerProcess) -> u64 {
    report_errors(label, errors);
    if errors.total() > 0 {
        eprintln!(
            "[bench] server stderr, last lines:\n{}",
            server.stderr_tail()
        );
    }
    eprintln!("[bench]   {rps:.0} req/s, {} errors", errors.total());
    errors.total()
}

/// Start the server on `cfg`, mint the users' tokens and open every user's vault once, so that
/// no measured window pays for a cold start.
async fn start_touched(
    global: &Global,
    cfg: &ServerConfig,
    http: &reqwest::Client,
    users: usize,
) -> Fallible<(ServerProcess, Target)> {
    let server = ServerProcess::start(cfg).await?;
    eprintln!("[bench] server pid {} at {}", server.pid, server.url);
    let target = Target {
        http: http.clone(),
        url: server.url.clone(),
        tokens: tokens(&cfg.secret, &global.public_url, users)?,
    };
    let load_errors = workload::touch_users(&target).await;
    report_errors("loading", &load_errors);
    if load_errors.total() > 0 {
        return Err(format!(
            "the first list_notes of a user failed; server stderr, last lines:\n{}",
            server.stderr_tail()
        )
        .into());
    }
    settle_disk();
    Ok((server, target))
}

/// The `run` mode; returns the number of failed requests.
async fn run_mode(global: &Global, args: &RunArgs, http: &reqwest::Client) -> Fallible<u64> {
    if args.users == 0 || args.concurrency.contains(&0) || args.seconds <= 0.0 {
        return Err("--users, --concurrency and --seconds must be positive".into());
    }
    let load = match (args.load, &args.url) {
        (LoadMode::Auto, None) => LoadMode::Files,
        (LoadMode::Auto, Some(_)) => LoadMode::Mcp,
        (LoadMode::Files, Some(_)) => {
            return Err("--load files needs the bench to start the server".into())
        }
        (mode, _) => mode,
    };
    // Resolved before the corpus is built, so a missing binary fails at once. The temp dir
    // lives until the end of the run: dropping it deletes the vaults.
    let local = match &args.url {
        None => {
            let dir = tempfile::Builder::new().prefix("vault-bench-").tempdir()?;
            let cfg = server_config(global, dir.path().to_path_buf())?;
            Some((dir, cfg))
        }
        Some(_) => None,
    };
    let corpus = build_corpus(global, args.notes)?;
    let plan = Arc::new(Plan::new(corpus));
    let mut failures = 0;
    let (url, secret, server) = match (&args.url, &local) {
        (Some(url), _) => {
            let secret = args
                .secret
                .clone()
                .ok_or("--url needs --secret (or JWT_SECRET_KEY) to mint tokens")?;
            (url.trim_end_matches('/').to_string(), secret, None)
        }
        (None, Some((_, cfg))) => {
            if load == LoadMode::Files {
                let t = Instant::now();
                for u in 0..args.users {
                    plan.corpus.write_to(&cfg.vault_dir(&user_id(u)))?;
                }
                eprintln!(
                    "[bench] wrote the corpus into {} vault folders ({:.2} s)",
                    args.users,
                    t.elapsed().as_secs_f64()
                );
            }
            let server = ServerProcess::start(cfg).await?;
            eprintln!("[bench] server pid {} at {}", server.pid, server.url);
            (server.url.clone(), cfg.secret.clone(), Some(server))
        }
        (None, None) => return Err("no server to drive".into()),
    };
    let target = Target {
        http: http.clone(),
        url,
        tokens: tokens(&secret, &global.public_url, args.users)?,
    };

    let t = Instant::now();
    let load_errors = match load {
        LoadMode::Files => {
            let errors = workload::touch_users(&target).await;
            eprintln!(
                "[bench] first list_notes of {} users (index reconcile) took {:.2} s",
                args.users,
                t.elapsed().as_secs_f64()
            );
            errors
        }
        LoadMode::Mcp => {
            let errors = workload::load_over_mcp(&target, plan.clone()).await;
            eprintln!(
                "[bench] wrote {} notes x {} users over MCP in {:.2} s",
                plan.corpus.notes.len(),
                args.users,
                t.elapsed().as_secs_f64()
            );
            errors
        }
        LoadMode::Auto | LoadMode::None => Tally::default(),
    };
    if load != LoadMode::None {
        settle_disk();
    }
    report_errors("loading", &load_errors);
    failures += load_errors.total();

    let threads = if args.ceiling_threads == 0 {
        cores()
    } else {
        args.ceiling_threads
    };
    let ceiling = Ceiling::start(0, threads)?;
    let ceiling_target = Target {
        url: ceiling.url.clone(),
        ..target.clone()
    };
    let measure = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_secs_f64(args.warmup.max(0.0));
    let mut rows = Vec::new();
    // The ceiling of a shared machine drifts: each workload is compared with a ceiling
    // measured right before it, over a shorter window.
    let adjacent = Spec {
        workload: Workload::Read,
        concurrency: 0,
        warmup: warmup.min(Duration::from_millis(500)),
        measure: (measure / 2).max(Duration::from_secs(1)).min(measure),
        seed: global.seed,
    };
    for &c in &args.concurrency {
        let mut runs: Vec<(&str, &Target, Workload)> =
            vec![("ceiling", &ceiling_target, Workload::Read)];
        runs.extend(args.workloads.iter().map(|w| (w.label(), &target, *w)));
        let mut first = true;
        for (label, tgt, kind) in runs {
            let is_ceiling = std::mem::take(&mut first);
            let rounds = if is_ceiling { 1 } else { args.rounds.max(1) };
            let mut measured: Vec<(f64, Option<f64>)> = Vec::new();
            let mut hist = workload::new_histogram();
            let mut errors = 0;
            for round in 1..=rounds {
                let ceiling_rps = if is_ceiling {
                    None
                } else {
                    let spec = Spec {
                        concurrency: c,
                        ..adjacent.clone()
                    };
                    let out = workload::drive(&ceiling_target, plan.clone(), &spec).await;
                    report_errors("ceiling", &out.errors);
                    failures += out.errors.total();
                    Some(out.rps())
                };
                eprintln!(
                    "[bench] {label} C={c} U={} (round {round}/{rounds}): {:.1} s warm-up + {:.1} s",
                    args.users,
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
                let out = workload::drive(tgt, plan.clone(), &spec).await;
                let rps = out.rps();
                report_errors(label, &out.errors);
                match &server {
                    Some(s) if out.errors.total() > 0 && !is_ceiling => {
                        eprintln!("[bench] server stderr, last lines:\n{}", s.stderr_tail());
                    }
                    _ => {}
                }
                failures += out.errors.total();
                errors += out.errors.total();
                // The histograms share their bounds, so adding cannot fail.
                let _ = hist.add(&out.hist);
                match ceiling_rps {
                    Some(ceil) => eprintln!(
                        "[bench]   {rps:.0} req/s, {} errors (ceiling just before: {ceil:.0} req/s)",
                        out.errors.total()
                    ),
                    None => eprintln!("[bench]   {rps:.0} req/s, {} errors", out.errors.total()),
                }
                measured.push((rps, ceiling_rps));
            }
            let rps = report::median(measured.iter().map(|m| m.0));
            let ceiling_rps = measured
                .iter()
                .map(|m| m.1)
                .collect::<Option<Vec<f64>>>()
                .map(|c| report::median(c.into_iter()));
            let pct = measured
                .iter()
                .map(|&(r, c)| c.map(|c| if c > 0.0 { r / c * 100.0 } else { 0.0 }))
                .collect::<Option<Vec<f64>>>()
                .map(|p| report::median(p.into_iter()));
            rows.push(Row {
                workload: label.to_string(),
                concurrency: c,
                users: args.users,
                rps,
                percentiles: report::percentiles(&hist),
                errors,
                rss: if is_ceiling {
                    None
                } else {
                    server.as_ref().and_then(|s| s.rss())
                },
                ceiling_rps,
                pct_of_ceiling: if is_ceiling { Some(100.0) } else { pct },
            });
        }
    }
    ceiling.stop();
    if let Some(server) = server {
        server.stop().await?;
    }
    print!("{}", report::render(&rows));
    Ok(failures)
}

/// The `edit` mode; returns the number of failed requests.
async fn edit_mode(global: &Global, args: &EditArgs, http: &reqwest::Client) -> Fallible<u64> {
    if args.users == 0 || args.concurrency.contains(&0) || args.seconds <= 0.0 {
        return Err("--users, --concurrency and --seconds must be positive".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("vault-bench-edit-")
        .tempdir()?;
    let cfg = server_config(global, dir.path().to_path_buf())?;
    let server = ServerProcess::start(&cfg).await?;
    eprintln!("[bench] server pid {} at {}", server.pid, server.url);
    let target = Target {
        http: http.clone(),
        url: server.url.clone(),
        tokens: tokens(&cfg.secret, &global.public_url, args.users)?,
    };
    let note = Arc::new(edits::BigNote::new(args.note_kb * 1024));
    let (warmup, measure) = (
        Duration::from_secs_f64(args.warmup.max(0.0)),
        Duration::from_secs_f64(args.seconds),
    );
    let mut rows = Vec::new();
    let mut failures = 0;
    for &c in &args.concurrency {
        for carrier in [edits::Carrier::WriteNote, edits::Carrier::EditNote] {
            eprintln!(
                "[bench] {} C={c} U={}: {:.1} s warm-up + {:.1} s",
                carrier.label(),
                args.users,
                warmup.as_secs_f64(),
                measure.as_secs_f64()
            );
            let out = edits::drive(&target, note.clone(), carrier, c, warmup, measure).await;
            failures += report_window(carrier.label(), &out.errors, out.rps(), &server);
            rows.push(report::EditRow {
                carrier: carrier.label().to_string(),
                concurrency: c,
                note_bytes: note.size(),
                rps: out.rps(),
                percentiles: report::percentiles(&out.hist),
                sent_per_request: out.per_request(out.sent),
                received_per_request: out.per_request(out.received),
                errors: out.errors.total(),
                rss: server.rss(),
            });
        }
    }
    server.stop().await?;
    print!("{}", report::render_edits(&rows));
    for pair in rows.chunks(2) {
        if let [write, edit] = pair {
            if let (Some(ws), Some(es)) = (write.sent_per_request, edit.sent_per_request) {
                println!(
                    "C={}: edit_note sends {:.0}x fewer bytes than write_note, at {:.2}x its req/s",
                    edit.concurrency,
                    ws / es,
                    if write.rps > 0.0 {
                        edit.rps / write.rps
                    } else {
                        0.0
                    }
                );
            }
        }
    }
    Ok(failures)
}

/// The label of the server the `watch` ratios compare with.
const WATCH_REFERENCE: &str = "watch off";

/// The `watch` mode; returns the number of failed requests.
async fn watch_mode(global: &Global, args: &WatchArgs, http: &reqwest::Client) -> Fallible<u64> {
    if args.users == 0 || args.concurrency.contains(&0) || args.seconds <= 0.0 || args.rounds == 0 {
        return Err("--users, --concurrency, --seconds and --rounds must be positive".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("vault-bench-watch-")
        .tempdir()?;
    let with_watch = |label: &'static str, bin: Option<&std::path::Path>, on: &str| {
        let mut config = server_config(global, dir.path().join(label.replace(' ', "-")))?;
        if let Some(bin) = bin {
            config.bin = server::find_binary(Some(bin))?;
        }
        config.extra_env.push(("WATCH_FILES".into(), on.into()));
        Ok::<_, Box<dyn Error>>(watch::Variant { label, config })
    };
    let mut variants = vec![
        with_watch("watch on", None, "true")?,
        with_watch(WATCH_REFERENCE, None, "false")?,
    ];
    if let Some(bin) = &args.baseline_bin {
        variants.push(with_watch("baseline", Some(bin), "false")?);
    }
    let corpus = build_corpus(global, args.notes)?;
    let plan = Arc::new(Plan::new(corpus));
    let mut servers = Vec::new();
    let mut targets = Vec::new();
    for v in &variants {
        for u in 0..args.users {
            plan.corpus.write_to(&v.config.vault_dir(&user_id(u)))?;
        }
        let server = ServerProcess::start(&v.config).await?;
        eprintln!(
            "[bench] {}: {} pid {} at {}",
            v.label,
            v.config.bin.display(),
            server.pid,
            server.url
        );
        let target = Target {
            http: http.clone(),
            url: server.url.clone(),
            tokens: tokens(&v.config.secret, &global.public_url, args.users)?,
        };
        let load_errors = workload::touch_users(&target).await;
        report_errors(&format!("{}: loading", v.label), &load_errors);
        if load_errors.total() > 0 {
            return Err(format!(
                "the first list_notes of a user failed on {}; server stderr, last lines:\n{}",
                v.label,
                server.stderr_tail()
            )
            .into());
        }
        servers.push(server);
        targets.push(target);
    }
    settle_disk();

    let (warmup, measure) = (
        Duration::from_secs_f64(args.warmup.max(0.0)),
        Duration::from_secs_f64(args.seconds),
    );
    let mut failures = 0;
    let mut rows = Vec::new();
    for &c in &args.concurrency {
        for &kind in &args.workloads {
            let mut cells: Vec<watch::Cell> = variants.iter().map(|_| watch::Cell::new()).collect();
            for round in 0..args.rounds {
                for i in watch::rotation(round, variants.len()) {
                    eprintln!(
                        "[bench] {} C={c} on {} (round {}/{}): {:.1} s warm-up + {:.1} s",
                        kind.label(),
                        variants[i].label,
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
                    let pid = servers[i].pid;
                    // CPU time at the start and the end of the measured window, about.
                    let sampler = tokio::spawn(async move {
                        tokio::time::sleep(warmup).await;
                        let before = watch::cpu_time(pid);
                        tokio::time::sleep(measure).await;
                        Some(watch::cpu_time(pid)?.saturating_sub(before?))
                    });
                    let out = workload::drive(&targets[i], plan.clone(), &spec).await;
                    let cpu = sampler.await.ok().flatten();
                    report_errors(variants[i].label, &out.errors);
                    if out.errors.total() > 0 {
                        eprintln!(
                            "[bench] server stderr, last lines:\n{}",
                            servers[i].stderr_tail()
                        );
                    }
                    failures += out.errors.total();
                    eprintln!(
                        "[bench]   {:.0} req/s, {} errors, server CPU {}",
                        out.rps(),
                        out.errors.total(),
                        cpu.map_or("?".to_string(), |c| format!("{:.2} s", c.as_secs_f64()))
                    );
                    cells[i].add(out, cpu);
                }
            }
            let reference = variants
                .iter()
                .position(|v| v.label == WATCH_REFERENCE)
                .map(|r| (cells[r].rps.clone(), cells[r].cpu_rounds()));
            for (i, cell) in cells.iter().enumerate() {
                let is_reference = variants[i].label == WATCH_REFERENCE;
                let cpu = cell.cpu_rounds();
                let (rps_ratio, cpu_ratio) = match (&reference, is_reference) {
                    (Some((ref_rps, ref_cpu)), false) => (
                        watch::paired_ratio(&cell.rps, ref_rps),
                        cpu.as_deref()
                            .zip(ref_cpu.as_deref())
                            .and_then(|(a, b)| watch::paired_ratio(a, b)),
                    ),
                    _ => (None, None),
                };
                rows.push(report::WatchRow {
                    workload: kind.label().to_string(),
                    concurrency: c,
                    variant: variants[i].label.to_string(),
                    rounds: cell.rps.clone(),
                    percentiles: report::percentiles(&cell.hist),
                    cpu_ms: cpu.map(|c| report::median(c.into_iter())),
                    rps_ratio,
                    cpu_ratio,
                    errors: cell.errors.total(),
                    rss: servers[i].rss(),
                });
            }
        }
    }
    for server in servers {
        server.stop().await?;
    }
    println!(
        "watch: {} rounds of {:.1} s (after {:.1} s warm-up) per server and workload; {} users, \
         {} notes each",
        args.rounds,
        measure.as_secs_f64(),
        warmup.as_secs_f64(),
        args.users,
        plan.corpus.notes.len()
    );
    for v in &variants {
        println!("  {:<10} {}", v.label, v.config.bin.display());
    }
    print!("{}", report::render_watch(&rows, WATCH_REFERENCE));
    Ok(failures)
}

/// Write back what loading left in the page cache (hundreds of MB of notes and fresh indexes),
/// so that the kernel's writeback does not run during, and weigh on, the measured workloads.
fn settle_disk() {
    let t = Instant::now();
    match std::process::Command::new("sync").status() {
        Ok(status) if status.success() => eprintln!(
            "[bench] flushed the loaded data to disk ({:.2} s)",
            t.elapsed().as_secs_f64()
        ),
        _ => eprintln!("[bench] could not run sync; loading may still be writing back"),
    }
}

/// The `scale` mode; returns the number of failed requests.
async fn scale_mode(global: &Global, args: &ScaleArgs, http: &reqwest::Client) -> Fallible<u64> {
    if args.actors == 0 {
        return Err("--actors must be positive".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("vault-bench-scale-")
        .tempdir()?;
    let base = server_config(global, dir.path().to_path_buf())?;
    let corpus = build_corpus(global, args.index_notes)?;
    let spec = scale::ScaleSpec {
        users: args.actors,
        open_concurrency: args.open_concurrency,
        idle_timeout: args.idle_timeout,
        cold_samples: args.cold_samples.max(1),
        live_cap: args.live_cap.max(1),
    };
    let report = scale::run(&base, &corpus, &spec, http).await?;
    report_errors("scale", &report.errors);
    print!("{}", report::render_pairs(&report.rows));
    Ok(report.errors.total())
}

/// One row kind of the `web` table.
struct WebPage {
    /// The page as a URL path, `/note/<random>` for the note page.
    label: String,
    urls: web::Pages,
    /// A folder listing, whose listed notes are counted.
    listing: bool,
}

/// The pages `kinds` name, in the corpus as the server holds it.
fn web_pages(kinds: &[PageKind], corpus: &Corpus) -> Vec<WebPage> {
    let paths = || corpus.notes.iter().map(|n| n.path.as_str());
    let listing = |url: String| WebPage {
        label: url.clone(),
        urls: web::Pages::Fixed(url),
        listing: true,
    };
    let folder_url = |folder: &str| format!("/browse/{}", web::url_path(folder));
    let fullest = web::fullest_folder(paths());
    let mut pages = Vec::new();
    for kind in kinds {
        match kind {
            PageKind::Root => pages.push(listing("/browse".into())),
            PageKind::Folder => match &fullest {
                Some((folder, n)) => {
                    eprintln!("[bench] folder page: {folder}/ holds {n} notes directly");
                    pages.push(listing(folder_url(folder)));
                }
                None => eprintln!("[bench] folder page skipped: every note is at the top"),
            },
            PageKind::Top => {
                // Another page than the folder page: the largest of the other top folders.
                let taken = fullest
                    .as_ref()
                    .filter(|_| kinds.contains(&PageKind::Folder))
                    .map(|(f, _)| format!("{f}/"));
                let others = paths().filter(|p| taken.as_ref().is_none_or(|f| !p.starts_with(f)));
                match web::largest_top_folder(others) {
                    Some((top, n)) => {
                        eprintln!("[bench] top page: {top}/ holds {n} notes in all");
                        pages.push(listing(folder_url(&top)));
                    }
                    None => eprintln!("[bench] top page skipped: no other top folder"),
                }
            }
            PageKind::Note => {
                let urls = paths().map(|p| format!("/note/{}", web::url_path(p)));
                pages.push(WebPage {
                    label: "/note/<random>".into(),
                    urls: web::Pages::AnyOf(Arc::new(urls.collect())),
                    listing: false,
                });
            }
        }
    }
    pages
}

/// The `web` mode; returns the number of failed requests.
async fn web_mode(global: &Global, args: &WebArgs) -> Fallible<u64> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) || args.seconds <= 0.0 {
        return Err("--concurrency and --seconds must be positive".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("vault-bench-web-")
        .tempdir()?;
    let cfg = ServerConfig {
        mode: ServerMode::Local,
        ..server_config(global, dir.path().to_path_buf())?
    };
    let mut corpus = build_corpus(global, args.notes)?;
    if global.corpus.is_none() && args.inbox > 0 {
        let moved = args.inbox.min(corpus.notes.len());
        corpus.gather_into("inbox", moved);
        eprintln!("[bench] moved {moved} of the notes into inbox/");
    }
    let t = Instant::now();
    corpus.write_to(&cfg.vault_dir("local"))?;
    eprintln!(
        "[bench] wrote the corpus into the vault of `local` ({:.2} s)",
        t.elapsed().as_secs_f64()
    );
    let server = ServerProcess::start(&cfg).await?;
    eprintln!("[bench] server pid {} at {}", server.pid, server.url);
    let link = server
        .login_link
        .clone()
        .ok_or("the server printed no login link (a version without the web app?)")?;
    let http = web::page_client()?;
    let cookie = web::sign_in(&http, &link, &server.url)
        .await
        .map_err(|e| format!("cannot sign in through {link}: {e}"))?;
    let browser = web::Browser {
        http,
        base: server.url.clone(),
        cookie,
    };
    let t = Instant::now();
    browser.fetch("/browse").await.map_err(|e| {
        format!(
            "the first page failed: {e}; server stderr, last lines:\n{}",
            server.stderr_tail()
        )
    })?;
    eprintln!(
        "[bench] first page (the actor opens and reconciles the index of {} notes) took {:.2} s",
        corpus.notes.len(),
        t.elapsed().as_secs_f64()
    );
    settle_disk();

    let pages = web_pages(&args.pages, &corpus);
    let mut failures = 0;
    // One GET of each listing before the measurement: what the page shows.
    let mut listed = Vec::with_capacity(pages.len());
    for page in &pages {
        let web::Pages::Fixed(url) = &page.urls else {
            listed.push(None);
            continue;
        };
        match browser.fetch(url).await {
            Ok(html) => {
                let n = web::note_links(&html);
                eprintln!(
                    "[bench] {}: {n} notes listed, {}",
                    page.label,
                    report::format_size(html.len() as f64)
                );
                listed.push(page.listing.then_some(n));
            }
            Err(e) => {
                eprintln!("[bench] {}: {e}", page.label);
                failures += 1;
                listed.push(None);
            }
        }
    }

    let warmup = Duration::from_secs_f64(args.warmup.max(0.0));
    let measure = Duration::from_secs_f64(args.seconds);
    let mut rows = Vec::new();
    for &c in &args.concurrency {
        for (page, listed) in pages.iter().zip(&listed) {
            let label = &page.label;
            eprintln!(
                "[bench] {label} C={c}: {:.1} s warm-up + {:.1} s",
                warmup.as_secs_f64(),
                measure.as_secs_f64()
            );
            let seed = global.seed ^ c as u64;
            let out = web::drive(&browser, &page.urls, c, warmup, measure, seed).await;
            failures += report_window(label, &out.errors, out.rps(), &server);
            rows.push(PageRow {
                page: label.clone(),
                concurrency: c,
                rps: out.rps(),
                percentiles: report::percentiles(&out.hist),
                max: (!out.hist.is_empty()).then(|| out.hist.max()),
                errors: out.errors.total(),
                page_bytes: (out.ok > 0).then(|| out.bytes as f64 / out.ok as f64),
                listed: *listed,
                rss: server.rss(),
            });
        }
    }
    server.stop().await?;
    print!("{}", report::render_pages(&rows));
    Ok(failures)
}

/// The `flood` mode; returns the number of failures (B's errors, and A not held to its limit).
async fn flood_mode(global: &Global, args: &FloodArgs, http: &reqwest::Client) -> Fallible<u64> {
    let burst = args.burst.unwrap_or(args.rate);
    if !(args.rate > 0.0 && burst >= 1.0 && args.seconds > 0.0 && args.a_sessions > 0) {
        return Err(
            "--rate, --seconds and --a-sessions must be positive, --burst at least 1".into(),
        );
    }
    if !(args.b_share > 0.0 && args.b_share < 1.0 && args.factor > 1.0) {
        return Err("--b-share must lie between 0 and 1, --factor above 1".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("vault-bench-flood-")
        .tempdir()?;
    let mut cfg = server_config(global, dir.path().to_path_buf())?;
    // The limit under test replaces the bench's usual "no limit"; --server-env still wins.
    let limit = [
        ("RATE_LIMIT_PER_SECOND", args.rate.to_string()),
        ("RATE_LIMIT_BURST", burst.to_string()),
    ];
    let mut env: Vec<(String, String)> = limit.map(|(k, v)| (k.to_string(), v)).into();
    env.append(&mut cfg.extra_env);
    cfg.extra_env = env;
    let corpus = build_corpus(global, args.notes)?;
    let (a_user, b_user) = (user_id(0), user_id(1));
    for user in [&a_user, &b_user] {
        corpus.write_to(&cfg.vault_dir(user))?;
    }
    let server = ServerProcess::start(&cfg).await?;
    eprintln!("[bench] server pid {} at {}", server.pid, server.url);
    let target = Target {
        http: http.clone(),
        url: server.url.clone(),
        tokens: tokens(&cfg.secret, &global.public_url, 2)?,
    };
    let load_errors = workload::touch_users(&target).await;
    report_errors("loading", &load_errors);
    if load_errors.total() > 0 {
        return Err(format!(
            "the first list_notes of A or B failed; server stderr, last lines:\n{}",
            server.stderr_tail()
        )
        .into());
    }
    settle_disk();

    let b = flood::open_patiently(http, &target.url, &target.tokens[1]).await?;
    let mut a = Vec::with_capacity(args.a_sessions);
    for _ in 0..args.a_sessions {
        a.push(flood::open_patiently(http, &target.url, &target.tokens[0]).await?);
    }
    let spec = flood::FloodSpec {
        rate: args.rate,
        burst,
        b_rate: args.rate * args.b_share,
        a_rate: args.rate * args.factor,
        a_sessions: args.a_sessions,
        phase: Duration::from_secs_f64(args.seconds),
        seed: global.seed,
    };
    eprintln!(
        "[bench] per-user limit {} req/s, burst {burst}; A is {a_user}, B is {b_user}",
        spec.rate
    );
    let paths = Arc::new(corpus.notes.iter().map(|n| n.path.clone()).collect());
    let phases = flood::run(&b, &a, paths, &spec, || server.rss()).await;

    let mut failures = 0;
    let mut rows = Vec::new();
    for row in &phases {
        let b_errors = row.b.errors.total() + row.b.limited + row.b.unsent;
        report_errors(&format!("{}: B", row.phase), &row.b.errors);
        if row.b.limited > 0 {
            eprintln!(
                "[bench] {}: B was refused {} times (429)",
                row.phase, row.b.limited
            );
        }
        failures += b_errors;
        let side = row.a.as_ref().map(|a| {
            report_errors(&format!("{}: A", row.phase), &a.errors);
            if a.limited == 0 {
                eprintln!(
                    "[bench] FAILED: A was never refused: is the server's per-user limit in force?"
                );
                failures += 1;
            }
            let bound = flood::admitted_bound(spec.rate, spec.burst, a.span);
            if a.ok > bound {
                eprintln!(
                    "[bench] FAILED: A got {} answers in {:.2} s, more than burst + rate x span \
                     + 1 = {bound}",
                    a.ok,
                    a.span.as_secs_f64()
                );
                failures += 1;
            } else {
                eprintln!(
                    "[bench] A got {} answers in {:.2} s (at most {bound} allowed)",
                    a.ok,
                    a.span.as_secs_f64()
                );
            }
            FloodSide {
                sent_rps: a.sent as f64 / spec.phase.as_secs_f64(),
                ok: a.ok,
                limited: a.limited,
                other: a.errors.total() + a.unsent,
            }
        });
        let b = &row.b.hist;
        rows.push(FloodRow {
            phase: row.phase.to_string(),
            b_rps: row.b.ok as f64 / spec.phase.as_secs_f64(),
            b_latency: (!b.is_empty())
                .then(|| [b.value_at_quantile(0.5), b.value_at_quantile(0.99), b.max()]),
            b_errors,
            a: side,
            rss: row.rss,
        });
    }
    if failures > 0 {
        eprintln!(
            "[bench] server stderr, last lines:\n{}",
            server.stderr_tail()
        );
    }
    if let [alone, flooded] = &rows[..] {
        if let (Some([_, p99, _]), Some([_, p99_flooded, _])) = (alone.b_latency, flooded.b_latency)
        {
            eprintln!(
                "[bench] B's p99: {} ms alone, {} ms under A's flood",
                report::format_ms(p99),
                report::format_ms(p99_flooded)
            );
        }
    }
    // Let A's bucket refill, so that closing its sessions is not refused.
    tokio::time::sleep(Duration::from_secs_f64((burst / spec.rate).min(5.0))).await;
    for session in a.into_iter().chain([b]) {
        if let Err(e) = session.close().await {
            eprintln!("[bench] closing a session: {e}");
        }
    }
    server.stop().await?;
    println!(
        "flood: per-user limit {} req/s (burst {burst}); B paced at {:.1} req/s, A at {:.0} \
         req/s over {} sessions; {:.1} s per phase",
        spec.rate,
        spec.b_rate,
        spec.a_rate,
        spec.a_sessions,
        spec.phase.as_secs_f64()
    );
    print!("{}", report::render_flood(&rows));
    Ok(failures)
}

/// The `sigterm` mode; returns the number of failures.
async fn sigterm_mode(
    global: &Global,
    args: &SigtermArgs,
    http: &reqwest::Client,
) -> Fallible<u64> {
    if args.sessions == 0 || args.users == 0 || args.warmup <= 0.0 {
        return Err("--sessions, --users and --warmup must be positive".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("vault-bench-sigterm-")
        .tempdir()?;
    let cfg = server_config(global, dir.path().to_path_buf())?;
    let corpus = build_corpus(global, args.notes)?;
    for u in 0..args.users {
        corpus.write_to(&cfg.vault_dir(&user_id(u)))?;
    }
    let (server, target) = start_touched(global, &cfg, http, args.users).await?;
    let spec = shutdown::ShutdownSpec {
        sessions: args.sessions,
        workload: args.workload,
        warmup: Duration::from_secs_f64(args.warmup),
        deadline: args.deadline,
        seed: global.seed,
    };
    eprintln!(
        "[bench] {} sessions of {} over {} users; SIGTERM after {:.1} s",
        spec.sessions,
        spec.workload.label(),
        args.users,
        args.warmup
    );
    let tail = server.stderr_tail.clone();
    let report = shutdown::run(server, &target, Arc::new(Plan::new(corpus)), &spec).await?;
    report_errors("session setup", &report.setup_errors);
    report_errors("all requests", &report.errors);

    let mut failures = report.setup_errors.total();
    let mut pairs = vec![(
        "sessions under load".to_string(),
        format!("{} of {}", report.sessions, spec.sessions),
    )];
    for (label, f) in [
        ("ended before SIGTERM", &report.before),
        ("in flight at SIGTERM", &report.in_flight),
        ("sent after SIGTERM", &report.after),
    ] {
        pairs.push((
            label.to_string(),
            format!(
                "{} requests: {} ok, {} refused, {} not connected, {} broken",
                f.total(),
                f.ok,
                f.refused,
                f.not_connected,
                f.broken
            ),
        ));
    }
    let before_failed = report.before.total() - report.before.ok;
    if before_failed > 0 {
        eprintln!("[bench] FAILED: {before_failed} requests failed before the signal");
        failures += before_failed;
    }
    if report.in_flight.broken > 0 {
        eprintln!(
            "[bench] FAILED: {} requests in flight at SIGTERM lost their connection",
            report.in_flight.broken
        );
        failures += report.in_flight.broken;
    }
    if report.in_flight.total() == 0 {
        eprintln!("[bench] no request was in flight at the signal: nothing to judge");
    }
    match report.exit {
        Some((after, status)) => pairs.push((
            "SIGTERM to exit".to_string(),
            format!(
                "{:.3} s ({status}; deadline {:.0} s)",
                after.as_secs_f64(),
                spec.deadline.as_secs_f64()
            ),
        )),
        None => {
            eprintln!(
                "[bench] FAILED: the server did not exit within {:?} of SIGTERM; killed",
                spec.deadline
            );
            pairs.push((
                "SIGTERM to exit".to_string(),
                format!("over {:.0} s: killed", spec.deadline.as_secs_f64()),
            ));
            failures += 1;
        }
    }
    if failures > 0 {
        eprintln!(
            "[bench] server stderr, last lines:\n{}",
            server::tail_text(&tail)
        );
    }
    print!("{}", report::render_pairs(&pairs));
    Ok(failures)
}

async fn ceiling_mode(args: &CeilingArgs) -> Fallible<u64> {
    let threads = if args.threads == 0 {
        cores()
    } else {
        args.threads
    };
    let ceiling = Ceiling::start(args.port, threads)?;
    println!("listening on {}", ceiling.url);
    eprintln!("[bench] ceiling serving until Ctrl-C or SIGTERM");
    // main() ends it on a signal; dropping `ceiling` then stops its thread.
    std::future::pending::<()>().await;
    drop(ceiling);
    Ok(0)
}

async fn dispatch(cli: Cli) -> Fallible<u64> {
    let command = match cli.command {
        Some(c) => c,
        None => Command::All {
            run: defaults()?,
            scale: defaults()?,
        },
    };
    let g = &cli.global;
    let http = client::http_client()?;
    match command {
        Command::Run(mut run) => {
            if g.smoke {
                run.smoke();
            }
            run_mode(g, &run, &http).await
        }
        Command::Scale(mut scale) => {
            if g.smoke {
                scale.smoke();
            }
            scale_mode(g, &scale, &http).await
        }
        Command::Web(mut web) => {
            if g.smoke {
                web.smoke();
            }
            web_mode(g, &web).await
        }
        Command::Flood(mut flood) => {
            if g.smoke {
                flood.smoke();
            }
            flood_mode(g, &flood, &http).await
        }
        Command::Sigterm(mut sigterm) => {
            if g.smoke {
                sigterm.smoke();
            }
            sigterm_mode(g, &sigterm, &http).await
        }
        Command::Edit(mut edit) => {
            if g.smoke {
                edit.smoke();
            }
            edit_mode(g, &edit, &http).await
        }
        Command::Watch(mut watch) => {
            if g.smoke {
                watch.smoke();
            }
            watch_mode(g, &watch, &http).await
        }
        Command::Stateless(mut args) => {
            if g.smoke {
                args.smoke();
            }
            stateless::stateless_mode(g, &args, &http).await
        }
        Command::All { mut run, mut scale } => {
            let mut web: WebArgs = defaults()?;
            let mut flood: FloodArgs = defaults()?;
            let mut edit: EditArgs = defaults()?;
            if g.smoke {
                run.smoke();
                scale.smoke();
                web.smoke();
                flood.smoke();
                edit.smoke();
            }
            let failures = run_mode(g, &run, &http).await?;
            if run.url.is_some() {
                eprintln!(
                    "[bench] scale, web, flood and edit skipped: they start and stop the \
                     server themselves, so they cannot use --url"
                );
                return Ok(failures);
            }
            println!();
            let failures = failures + scale_mode(g, &scale, &http).await?;
            println!();
            let failures = failures + web_mode(g, &web).await?;
            println!();
            let failures = failures + flood_mode(g, &flood, &http).await?;
            println!();
            Ok(failures + edit_mode(g, &edit, &http).await?)
        }
        Command::Ceiling(args) => ceiling_mode(&args).await,
    }
}

/// Resolves on SIGINT or SIGTERM (never, if the handlers cannot be installed).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving_ceiling = matches!(cli.command, Some(Command::Ceiling(_)));
    // Returning from main (rather than dying of the signal) drops the started server, which
    // kills it, and the temp folder, which deletes the vaults.
    let outcome = tokio::select! {
        r = dispatch(cli) => r,
        _ = shutdown_signal() => {
            if serving_ceiling {
                return ExitCode::SUCCESS;
            }
            eprintln!("[bench] interrupted");
            return ExitCode::from(130);
        }
    };
    match outcome {
        Ok(0) => ExitCode::SUCCESS,
        Ok(n) => {
            eprintln!("[bench] FAILED: {n} requests errored");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("[bench] error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_pages_are_the_inbox_an_area_and_random_notes() {
        let mut corpus = corpus::generate(800, 42);
        let plain = web_pages(&[PageKind::Folder], &corpus);
        // Without an inbox no folder holds a full 200-note page.
        let biggest = web::fullest_folder(corpus.notes.iter().map(|n| n.path.as_str()));
        assert!(biggest.is_some_and(|(_, n)| n < 200));
        assert!(plain[0].label.starts_with("/browse/area-"));

        corpus.gather_into("inbox", 250);
        let all = [
            PageKind::Root,
            PageKind::Folder,
            PageKind::Top,
            PageKind::Note,
        ];
        let pages = web_pages(&all, &corpus);
        let labels: Vec<&str> = pages.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels[..2], ["/browse", "/browse/inbox"]);
        assert!(labels[2].starts_with("/browse/area-") && !labels[2].contains("/topic-"));
        assert_eq!(labels[3], "/note/<random>");
        assert_eq!(pages.iter().filter(|p| p.listing).count(), 3);
        let web::Pages::AnyOf(notes) = &pages[3].urls else {
            panic!("the note page picks a note per request");
        };
        assert_eq!(notes.len(), 800);
        assert!(notes
            .iter()
            .all(|u| u.starts_with("/note/") && u.ends_with(".md")));

        // Alone, the top page is the largest top folder, the inbox here.
        let top = web_pages(&[PageKind::Top], &corpus);
        assert_eq!(top[0].label, "/browse/inbox");
    }
}
