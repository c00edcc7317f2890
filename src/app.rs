//! Building and running the server: bind the socket, resolve the public URL and the signing
//! secret, start the supervisor, serve until told to stop, then drain.

use std::collections::HashSet;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vault_actors::{Supervisor, UserId};

use crate::account_data;
use crate::accounts::{AccountStore, NewToken};
use crate::audit::Audit;
use crate::auth::{self, TokenKeys, MIN_SECRET_BYTES};
use crate::cli::TokenArgs;
use crate::config::{Config, Mode};
use crate::http::{self, AppState, Layers, LoginKind, OAuthServer, WebState};
use crate::lock::DataLock;
use crate::signin::SignIn;

/// How long local mode's one-time login link printed at start stays usable.
const LOCAL_LINK_TTL: Duration = Duration::from_secs(3600);
/// How often the times tokens were last used are written.
const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(30);

/// Why the server could not start (or a command could not run).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("JWT_SECRET_KEY must be set to at least {MIN_SECRET_BYTES} bytes in space mode (it is {0}); generate one with `openssl rand -hex 32`")]
    SecretRequired(&'static str),
    #[error("JWT_SECRET_KEY is {0} bytes; it must be at least {MIN_SECRET_BYTES}")]
    SecretTooShort(usize),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot prepare the data folder: {0}")]
    Data(std::io::Error),
    #[error("{0}")]
    Lock(#[from] crate::lock::LockError),
    #[error("cannot open the accounts file: {0}")]
    Accounts(String),
    #[error("sign-in is misconfigured: {0}")]
    SignIn(String),
    #[error("cannot start the supervisor: {0}")]
    Supervisor(String),
    #[error("{0}")]
    Token(String),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// A bound, ready server.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    config: Config,
    /// Local mode's one-time login code, printed in the banner.
    local_login: Option<String>,
    /// This process's hold on the data folder, for as long as the server runs.
    lock: DataLock,
    /// The listener serving only `/metrics` (`METRICS_LISTEN`), when configured.
    metrics_listener: Option<TcpListener>,
}

/// The signing secret: `JWT_SECRET_KEY`, or in local mode the generated one in the data folder.
fn secret(config: &Config) -> Result<String, StartError> {
    match (&config.jwt_secret, config.mode) {
        (Some(s), _) if s.len() >= MIN_SECRET_BYTES => Ok(s.clone()),
        (Some(s), _) => Err(StartError::SecretTooShort(s.len())),
        (None, Mode::Space) => Err(StartError::SecretRequired("not set")),
        (None, Mode::Local) => auth::local_secret(&config.data_dir).map_err(StartError::Data),
    }
}

/// The URL clients use: configured, or `http://HOST:PORT` with a wildcard host shown as
/// loopback.
fn public_url(config: &Config, port: u16) -> String {
    config.public_url.clone().unwrap_or_else(|| {
        let host = match config.host.as_str() {
            "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
            h => h,
        };
        format!("http://{host}:{port}")
    })
}

fn keys(config: &Config, public_url: &str) -> Result<TokenKeys, StartError> {
    let secret = secret(config)?;
    Ok(TokenKeys::new(
        secret.as_bytes(),
        config.jwt_issuer.as_deref().unwrap_or(public_url),
        config.jwt_audience.as_deref().unwrap_or(public_url),
    ))
}

impl Application {
    /// Check the secret, bind the listener, start the supervisor and build the router.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        // Before anything is written to the data folder: it may be another process's.
        let mut lock = DataLock::acquire(&config.data_dir, "serve (starting)")?;
        // Checked before binding so a misconfigured Space fails fast with the reason.
        secret(&config)?;
        let addr = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(StartError::Data)?;
        let metrics_listener = match config.metrics_listen {
            Some(at) => Some(
                TcpListener::bind(at)
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: at.to_string(),
                        source,
                    })?,
            ),
            None => None,
        };
        let public_url = public_url(&config, addr.port());
        lock.describe(&format!("vault-mcp serve on {public_url}/mcp"))
            .map_err(StartError::Data)?;
        for dir in [&config.vault_base, &config.index_base] {
            std::fs::create_dir_all(dir).map_err(StartError::Data)?;
        }
        let accounts = AccountStore::open(&config.data_dir)
            .map_err(|e| StartError::Accounts(e.to_string()))?;
        let keys = keys(&config, &public_url)?
            .with_resource(&format!("{public_url}/mcp"))
            .with_revocations(accounts.revocations());
        let (login, signin) = match (config.mode, &config.oidc) {
            (Mode::Local, _) => (LoginKind::Local, None),
            (Mode::Space, Some(oidc)) => {
                let signin = SignIn::new(oidc.clone(), &public_url)
                    .map_err(|e| StartError::SignIn(e.to_string()))?;
                (LoginKind::HuggingFace, Some(signin))
            }
            (Mode::Space, None) => (LoginKind::Unavailable, None),
        };
        let web = WebState::new(
            signin,
            config.web_session_ttl,
            config.token_max_ttl,
            public_url.starts_with("https://"),
        );
        let local_login = (login == LoginKind::Local).then(|| web.local_link(LOCAL_LINK_TTL));
        let supervisor = Supervisor::start(config.actor_settings())
            .await
            .map_err(|e| StartError::Supervisor(e.to_string()))?;
        let mut origins: HashSet<String> = config.allowed_origins.iter().cloned().collect();
        origins.insert(origin_of(&public_url));
        origins.insert(format!("http://localhost:{}", addr.port()));
        origins.insert(format!("http://127.0.0.1:{}", addr.port()));
        let storage = account_data::Storage::from_settings(&config.actor_settings());
        let state = AppState {
            storage: Arc::new(storage),
            supervisor,
            session_ids: Arc::new(http::SessionIds::new(&keys)),
            keys: Arc::new(keys),
            public_url: public_url.into(),
            allowed_origins: Arc::new(origins),
            max_body_bytes: config.max_body_bytes,
            max_json_depth: config.max_json_depth,
            max_tokens_per_user: config.max_tokens_per_user,
            login,
            oauth: Arc::new(OAuthServer::new(config.oauth.clone())),
            limits: Arc::new(http::limits::RateLimits::new(config.rate_limits)),
            audit: Arc::new(
                Audit::open(
                    &config.data_dir,
                    config.audit_max_bytes as u64,
                    config.audit_keep,
                )
                .map_err(StartError::Data)?,
            ),
            accounts,
            web: Arc::new(web),
            shutdown: CancellationToken::new(),
            observe: Arc::new(http::observe::Observe::new(
                crate::metrics::install(),
                config.metrics_token.as_deref(),
                &config.data_dir,
            )),
        };
        Ok(Application {
            listener,
            addr,
            state,
            config,
            local_login,
            lock,
            metrics_listener,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The port of the `/metrics`-only listener, when `METRICS_LISTEN` set one.
    pub fn metrics_port(&self) -> Option<u16> {
        let listener = self.metrics_listener.as_ref()?;
        listener.local_addr().ok().map(|a| a.port())
    }

    pub fn public_url(&self) -> &str {
        &self.state.public_url
    }

    /// Local mode's one-time link that signs the web page in as `local`.
    pub fn local_login_url(&self) -> Option<String> {
        let code = self.local_login.as_ref()?;
        Some(format!("{}/login/local?code={code}", self.public_url()))
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.state.supervisor
    }

    /// Mint a token with this server's keys (used by the banner and by tests).
    pub fn mint(
        &self,
        user: &UserId,
        ttl: Duration,
        scopes: &[String],
    ) -> Result<String, StartError> {
        self.state
            .keys
            .mint(user, ttl, scopes)
            .map_err(|e| StartError::Token(e.to_string()))
    }

    /// Mint a full-access token and record it, so its owner sees it on the account page.
    fn mint_recorded(
        &self,
        user: &UserId,
        ttl: Duration,
        name: &str,
    ) -> Result<String, StartError> {
        let minted = self
            .state
            .keys
            .mint_token(user, ttl, &[])
            .map_err(|e| StartError::Token(e.to_string()))?;
        self.state
            .accounts
            .record_token_blocking(&NewToken {
                jti: &minted.jti,
                user,
                name,
                scope: "write",
                created: minted.issued_at,
                expires: minted.expires_at,
            })
            .map_err(|e| StartError::Accounts(e.to_string()))?;
        Ok(minted.token)
    }

    /// Print where the server listens and, in local mode, a ready token and client setup.
    /// Written in one piece and never fatal: a closed stdout must not stop the server.
    pub fn print_banner(&self) {
        let _ = std::io::stdout().write_all(self.banner().as_bytes());
        let _ = std::io::stdout().flush();
    }

    fn banner(&self) -> String {
        let url = format!("{}/mcp", self.public_url());
        let mut out = format!("listening on http://{}\nMCP endpoint: {url}\n", self.addr);
        if self.config.mode != Mode::Local {
            let signin = match self.state.login {
                LoginKind::HuggingFace => "people sign in there and make their tokens",
                _ => {
                    "sign-in is not configured (OPENID_PROVIDER_URL, OAUTH_CLIENT_ID, \
                      OAUTH_CLIENT_SECRET); tokens come from `vault-mcp token`"
                }
            };
            out.push_str(&format!(
                "mode: space; web page: {}/ ({signin})\n",
                self.public_url()
            ));
            return out;
        }
        let Ok(user) = UserId::parse("local") else {
            return out;
        };
        if let Some(link) = self.local_login_url() {
            out.push_str(&format!("web page (one-time login link): {link}\n"));
        }
        match self.mint_recorded(&user, self.config.token_ttl, "printed at start") {
            Ok(token) => {
                let ttl = humantime::format_duration(self.config.token_ttl);
                let entry = serde_json::json!({
                    "mcpServers": { "vault": {
                        "type": "http",
                        "url": url,
                        "headers": { "Authorization": format!("Bearer {token}") },
                    }}
                });
                out.push_str(&format!(
                    "bearer token for user `local` (valid {ttl}):\n{token}\n\n\
                     Claude Code:\n  claude mcp add --transport http vault {url} --header \"Authorization: Bearer {token}\"\n\n\
                     mcpServers entry:\n{}\n",
                    serde_json::to_string_pretty(&entry).unwrap_or_default()
                ));
            }
            Err(e) => tracing::error!(error = %e, "could not mint the local token"),
        }
        out
    }

    /// Serve until `shutdown` resolves, then close open streams, stop accepting, let user
    /// actors finish what they were asked, and return.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let layers = Layers {
            request_timeout: self.config.request_timeout,
            max_in_flight: self.config.max_in_flight,
        };
        let token = self.state.shutdown.clone();
        let supervisor = self.state.supervisor.clone();
        let (keys, accounts) = (self.state.keys.clone(), self.state.accounts.clone());
        tokio::spawn(return_free_memory(token.clone()));
        let metrics = self.state.observe.handle.clone();
        tokio::spawn(crate::metrics::upkeep(metrics, token.clone()));
        if let Some(listener) = self.metrics_listener {
            let (router, stop) = (
                http::observe::metrics_only(self.state.clone()),
                token.clone(),
            );
            tokio::spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            });
        }
        let usage = tokio::spawn(record_token_usage(keys, accounts, token.clone()));
        let router = http::router(self.state, layers);
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, service)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down");
                // Streams end, `/ready` fails and answers say `Connection: close`; requests
                // keep being answered for the drain, so clients move off their kept-alive
                // connections before the idle ones are closed.
                token.cancel();
                tokio::time::sleep(SHUTDOWN_DRAIN).await;
            })
            .await;
        supervisor.shutdown().await;
        let _ = usage.await;
        // Only now may another process take the data folder.
        drop(self.lock);
        served.map_err(StartError::Serve)
    }
}

/// How long the server goes on answering after a stop signal, with `Connection: close` on every
/// answer, before it stops accepting and closes idle connections.
const SHUTDOWN_DRAIN: Duration = Duration::from_millis(500);

/// Write when tokens were last used, every little while and once more at shutdown.
async fn record_token_usage(keys: Arc<TokenKeys>, accounts: AccountStore, stop: CancellationToken) {
    let mut tick = tokio::time::interval(USAGE_FLUSH_EVERY);
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tick.tick() => false,
        };
        if let Err(e) = accounts.record_usage(keys.take_usage()).await {
            tracing::warn!(error = %e, "recording token use failed");
        }
        if stopping {
            return;
        }
    }
}

/// Every few seconds, hand memory that stopped actors freed back to the OS. The allocator keeps
/// freed pages in per-thread arenas for reuse; after a crowd of users idles out that would hold
/// the peak forever.
async fn return_free_memory(stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// A future that resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed by this
/// call, not when the future is first polled: call it before announcing the server, so that a
/// signal sent as soon as the banner appears is not lost. Must be called within the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    let wait = |listener: std::io::Result<Signal>| async move {
        match listener {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    async move {
        tokio::select! {
            _ = wait(interrupt) => {},
            _ = wait(terminate) => {},
        }
    }
}

/// `vault-mcp token`: print a token for `--user` signed with this configuration's secret.
pub fn print_token(config: &Config, args: &TokenArgs) -> Result<(), StartError> {
    let user = UserId::parse(&args.user).map_err(|e| StartError::Token(format!("--user: {e}")))?;
    let ttl = humantime::parse_duration(&args.ttl)
        .map_err(|e| StartError::Token(format!("--ttl {:?}: {e}", args.ttl)))?;
    let (claim, access) = args.scope_claim().map_err(StartError::Token)?;
    let url = public_url(config, config.port);
    let minted = keys(config, &url)?
        .mint_token(&user, ttl, &claim)
        .map_err(|e| StartError::Token(e.to_string()))?;
    // Recorded so its owner can see and revoke it on the account page.
    let accounts =
        AccountStore::open(&config.data_dir).map_err(|e| StartError::Accounts(e.to_string()))?;
    let scope = crate::auth::scope_label(&access);
    accounts
        .record_token_blocking(&NewToken {
            jti: &minted.jti,
            user: &user,
            name: "vault-mcp token (command line)",
            scope: &scope,
            created: minted.issued_at,
            expires: minted.expires_at,
        })
        .map_err(|e| StartError::Accounts(e.to_string()))?;
    let audit = Audit::open(
        &config.data_dir,
        config.audit_max_bytes as u64,
        config.audit_keep,
    )
    .map_err(StartError::Data)?;
    let detail = serde_json::json!({ "token_id": minted.jti, "scope": scope,
                                     "expires_at": minted.expires_at, "via": "command line" });
    audit.record(
        "token_issued",
        Some(user.as_str()),
        &Default::default(),
        detail,
    );
    println!("{}", minted.token);
    Ok(())
}

/// `vault-mcp import <folder or archive>`: import into `--user`'s vault while no server runs
/// (the data folder's lock is taken first), print the report as JSON and audit it.
pub fn run_import(
    config: &crate::config::Config,
    args: &crate::cli::ImportArgs,
) -> Result<(), StartError> {
    let user = UserId::parse(&args.user).map_err(|e| StartError::Token(format!("--user: {e}")))?;
    let _lock =
        crate::lock::DataLock::acquire(&config.data_dir, &format!("vault-mcp import for {user}"))?;
    let meta = std::fs::metadata(&args.source)
        .map_err(|e| StartError::Token(format!("{}: {e}", args.source.display())))?;
    let source = if meta.is_dir() {
        account_data::Source::Folder(args.source.clone())
    } else {
        account_data::Source::Archive(args.source.clone())
    };
    let storage = account_data::Storage::from_settings(&config.actor_settings());
    let report = account_data::import(&source, &storage.vault_dir(&user), &storage)
        .map_err(|e| StartError::Token(e.to_string()))?;
    let audit = crate::audit::Audit::open(
        &config.data_dir,
        config.audit_max_bytes as u64,
        config.audit_keep,
    )
    .map_err(StartError::Data)?;
    let detail = serde_json::json!({ "notes": report.notes(), "attachments": report.attachments(),
                                     "skipped": report.skipped.len(), "via": "command line" });
    audit.record(
        "account_imported",
        Some(user.as_str()),
        &Default::default(),
        detail,
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    Ok(())
}
