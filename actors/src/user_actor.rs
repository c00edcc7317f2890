//! One actor per user: the only owner of that user's vault folder, SQLite connection and MCP
//! sessions.
//!
//! Messages are handled one at a time and become jobs, in order, on the actor's worker queue,
//! drained on the shared job threads (SQL and file I/O never run on the async workers), so a
//! user's operations are serialised and users never share a lock. The actor stops itself,
//! through the supervisor, after `actor_idle_timeout` without a message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::Value;
use tokio::sync::{mpsc, OwnedMutexGuard};

use crate::caller::Caller;
use crate::error::VaultError;
use crate::hub::Hub;
use crate::mcp::context::McpOptions;
use crate::mcp::dispatch::{self, Env};
use crate::mcp::jsonrpc::{result_response, Message, RpcError, QUOTA_EXCEEDED};
use crate::mcp::protocol;
use crate::mcp::resources::note_uri;
use crate::session::Sessions;
use crate::settings::Settings;
use crate::supervisor::SupervisorMsg;
use crate::user_id::UserId;
use crate::vault::{now_ms, Change, Vault};
use crate::worker::Worker;

/// Why a message to a user actor could not be answered with an MCP reply.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ActorError {
    /// The session is unknown, expired, ended — or another user's (the same answer).
    #[error("session not found")]
    UnknownSession,
    #[error("JSON-RPC batches are only accepted in sessions of protocol version 2025-03-26")]
    BatchNotSupported,
    /// The user's data could not be opened or updated outside a tool.
    #[error("storage unavailable: {0}")]
    Storage(String),
    /// The actor stopped (crashed or was killed) before it answered; retrying is safe.
    #[error("the user's actor restarted before answering; retry the request")]
    Restarted,
    /// The user's actor keeps crashing; the supervisor refuses to restart it for a while.
    #[error("this vault is temporarily unavailable after repeated failures")]
    CrashLoop { retry_after_secs: u64 },
}

impl From<VaultError> for ActorError {
    fn from(e: VaultError) -> Self {
        ActorError::Storage(e.to_string())
    }
}

/// The answer to `initialize`: a minted session (on success) and the JSON-RPC response.
#[derive(Debug, Clone)]
pub struct Initialized {
    pub session_id: Option<String>,
    pub response: Value,
}

type Reply<T> = RpcReplyPort<Result<T, ActorError>>;

/// How long written note text may wait before it goes to the full-text index: writes within it
/// share one FTS5 transaction. A search never waits for it (it flushes first).
const FULL_TEXT_FLUSH_DELAY: Duration = Duration::from_millis(200);

/// Everything a user actor can be asked.
pub enum UserMsg {
    /// Start a session (`initialize` request `id` with `params`).
    Initialize {
        caller: Caller,
        id: Value,
        params: Option<Value>,
        reply: Reply<Initialized>,
    },
    /// Messages posted on an existing session; the reply is the JSON-RPC answer, if any
    /// (notifications alone have none).
    Post {
        caller: Caller,
        session_id: String,
        messages: Vec<Message>,
        batch: bool,
        /// The POST's response stream, for notifications and requests sent before the answer.
        events: Option<mpsc::Sender<Value>>,
        reply: Reply<Option<Value>>,
    },
    /// Open the session's server-to-client stream.
    OpenStream {
        session_id: String,
        reply: Reply<mpsc::Receiver<Value>>,
    },
    /// Run one tool outside any MCP session (the web app): the same catalog, scopes and
    /// change notifications as `tools/call`, answered with the `tools/call` result.
    CallTool {
        caller: Caller,
        tool: String,
        args: Value,
        reply: Reply<Value>,
    },
    /// End a session (`DELETE`).
    EndSession {
        session_id: String,
        reply: Reply<()>,
    },
    /// Timer tick: stop if nothing happened for `actor_idle_timeout`.
    IdleCheck,
    /// A job queued note text for the full-text index: flush it a little later.
    FlushSoon,
    /// Timer tick: write the queued note text to the full-text index.
    FlushFullText,
    /// The worker could not open the vault or a job panicked: the actor must die.
    WorkerFailed(String),
    /// Panic on purpose (in the actor, or in one of its jobs), so tests can show what
    /// survives a crash.
    #[cfg(feature = "test-hooks")]
    Crash { in_worker: bool },
}

impl UserMsg {
    /// Answer the message with `err` without running it (the supervisor could not deliver it).
    pub fn fail(self, err: ActorError) {
        match self {
            UserMsg::Initialize { reply, .. } => drop(reply.send(Err(err))),
            UserMsg::Post { reply, .. } => drop(reply.send(Err(err))),
            UserMsg::OpenStream { reply, .. } => drop(reply.send(Err(err))),
            UserMsg::CallTool { reply, .. } => drop(reply.send(Err(err))),
            UserMsg::EndSession { reply, .. } => drop(reply.send(Err(err))),
            UserMsg::IdleCheck
            | UserMsg::FlushSoon
            | UserMsg::FlushFullText
            | UserMsg::WorkerFailed(_) => {}
            #[cfg(feature = "test-hooks")]
            UserMsg::Crash { .. } => {}
        }
    }
}

/// The user's data, owned by the actor's worker.
pub struct UserCore {
    vault: Vault,
    sessions: Sessions,
    hub: Arc<Hub>,
    options: McpOptions,
    /// Asks the actor for a `FlushFullText` a little later.
    flush_soon: Box<dyn Fn() + Send>,
    /// A flush is already on its way.
    flush_scheduled: bool,
    /// Held for as long as this core exists: a successor actor waits for it, so two actors
    /// never own one vault, even when this one died with jobs still queued.
    _owner: OwnedMutexGuard<()>,
}

impl UserCore {
    fn open(
        user: &UserId,
        settings: &Settings,
        hub: Arc<Hub>,
        owner: OwnedMutexGuard<()>,
        flush_soon: Box<dyn Fn() + Send>,
    ) -> Result<Self, VaultError> {
        let started = Instant::now();
        let mut vault = Vault::open(
            &settings.vault_base.join(user.as_str()),
            &settings.index_base.join(format!("{user}.sqlite")),
            settings,
        )?;
        let report = vault.reconcile()?;
        tracing::info!(
            user = %user,
            indexed = report.indexed,
            unchanged = report.unchanged,
            removed = report.removed,
            skipped = report.skipped,
            ms = started.elapsed().as_millis() as u64,
            "vault opened"
        );
        // Vault sizes for operators (no user label: the distribution only).
        let notes = (report.indexed + report.unchanged) as f64;
        metrics::histogram!("vault_mcp_vault_notes").record(notes);
        metrics::histogram!("vault_mcp_vault_bytes").record(report.bytes as f64);
        let mut sessions = Sessions::new(settings.session_ttl, settings.quotas.sessions_per_user);
        sessions.load(vault.index(), now_ms())?;
        Ok(UserCore {
            vault,
            sessions,
            hub,
            options: settings.mcp.clone(),
            flush_soon,
            flush_scheduled: false,
            _owner: owner,
        })
    }

    /// After a job (its answer sent): if it left note text queued, make sure a flush
    /// follows; and the first time, load what reads need about every note, so that the actor's
    /// first answer does not wait for it.
    fn after_job(&mut self) {
        if !self.flush_scheduled && self.vault.full_text_queued() {
            self.flush_scheduled = true;
            (self.flush_soon)();
        }
        if let Err(e) = self.vault.load_note_facts() {
            // Reads look the facts up in SQLite instead; the next job tries again.
            tracing::warn!(error = %e, "loading note facts into memory failed");
        }
    }

    fn flush_full_text(&mut self) {
        self.flush_scheduled = false;
        if let Err(e) = self.vault.flush_full_text() {
            // The text stays queued (and marked in the file): the next flush retries.
            tracing::warn!(error = %e, "writing queued note text to the full-text index failed");
        }
        self.after_job();
    }

    fn initialize(&mut self, id: Value, params: Option<Value>) -> Result<Initialized, ActorError> {
        let params = params.unwrap_or(Value::Null);
        let Some(requested) = params.get("protocolVersion").and_then(Value::as_str) else {
            let err =
                RpcError::invalid_params("initialize needs params.protocolVersion (a string)");
            return Ok(Initialized {
                session_id: None,
                response: err.to_response(&id),
            });
        };
        let version = protocol::negotiate(requested);
        let created = self.sessions.create(
            self.vault.index(),
            version,
            params.get("clientInfo").cloned().unwrap_or(Value::Null),
            params.get("capabilities").cloned().unwrap_or(Value::Null),
            now_ms(),
        );
        let session_id = match created {
            Ok(session_id) => session_id,
            // An answer, not a session: the client learns which limit and how far it is used.
            Err(e @ VaultError::QuotaExceeded { limit, .. }) => {
                metrics::counter!("vault_mcp_quota_hits_total", "limit" => limit).increment(1);
                let err = RpcError::new(QUOTA_EXCEEDED, e.to_string()).with_data(e.details());
                return Ok(Initialized {
                    session_id: None,
                    response: err.to_response(&id),
                });
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Initialized {
            session_id: Some(session_id),
            response: result_response(&id, protocol::initialize_result(version)),
        })
    }

    fn post(
        &mut self,
        caller: &Caller,
        session_id: &str,
        messages: Vec<Message>,
        batch: bool,
        events: Option<&mpsc::Sender<Value>>,
    ) -> Result<Option<Value>, ActorError> {
        let UserCore {
            vault,
            sessions,
            hub,
            options,
            ..
        } = self;
        let now = now_ms();
        // Counted before the lookup borrows the session: a few comparisons, no query.
        let session_usage = sessions.usage(now);
        let session = sessions
            .get(vault.index(), session_id, now)?
            .ok_or(ActorError::UnknownSession)?;
        if batch && session.protocol_version != protocol::BATCH_VERSION {
            return Err(ActorError::BatchNotSupported);
        }
        let level_before = session.log_level;
        let mut env = Env {
            vault,
            hub,
            caller,
            options,
            events,
            sessions: session_usage,
        };
        let mut responses = Vec::new();
        for message in messages {
            match message {
                Message::Request { id, method, params } => {
                    let answer = dispatch::handle_request(&mut env, session, &id, &method, params);
                    responses.push(match answer {
                        Ok(result) => result_response(&id, result),
                        Err(e) => e.to_response(&id),
                    });
                }
                Message::Notification { method, params } => {
                    dispatch::handle_notification(&env, session, &method, params)
                }
                Message::Response { id, body } => {
                    hub.resolve(session_id, &id, body);
                }
            }
        }
        if session.log_level != level_before {
            sessions.save(vault.index(), session_id)?;
        }
        self.announce_changes();
        Ok(if batch {
            (!responses.is_empty()).then_some(Value::Array(responses))
        } else {
            responses.pop()
        })
    }

    fn call_tool(&mut self, caller: &Caller, tool: &str, args: Value) -> Value {
        let result = dispatch::call_without_session(
            &mut self.vault,
            &self.hub,
            caller,
            &self.options,
            self.sessions.usage(now_ms()),
            tool,
            args,
        );
        self.announce_changes();
        result
    }

    /// Tell subscribers about the notes this message changed.
    fn announce_changes(&mut self) {
        let mut list_changed = false;
        for change in self.vault.take_changes() {
            match change {
                Change::Written { path, created } => {
                    self.hub.resource_updated(&note_uri(&path));
                    list_changed |= created;
                }
                Change::Deleted { path } => {
                    self.hub.resource_updated(&note_uri(&path));
                    list_changed = true;
                }
            }
        }
        if list_changed {
            self.hub.resource_list_changed();
        }
    }

    fn open_stream(&mut self, session_id: &str) -> Result<mpsc::Receiver<Value>, ActorError> {
        self.sessions
            .get(self.vault.index(), session_id, now_ms())?
            .ok_or(ActorError::UnknownSession)?;
        Ok(self.hub.open(session_id))
    }

    fn end_session(&mut self, session_id: &str) -> Result<(), ActorError> {
        // An expired session is as gone as an unknown one.
        if self
            .sessions
            .get(self.vault.index(), session_id, now_ms())?
            .is_none()
        {
            return Err(ActorError::UnknownSession);
        }
        self.sessions.end(self.vault.index(), session_id)?;
        self.hub.close(session_id);
        Ok(())
    }

    fn retire(&mut self) -> Result<(), VaultError> {
        self.vault.flush_full_text()?;
        self.sessions.evict_expired(self.vault.index(), now_ms())?;
        self.sessions.flush(self.vault.index())
    }
}

/// What the supervisor gives a new user actor.
pub struct UserArgs {
    pub user: UserId,
    pub settings: Arc<Settings>,
    pub hub: Arc<Hub>,
    /// The vault's ownership lock; the actor takes it before opening anything.
    pub owner: Arc<tokio::sync::Mutex<()>>,
    pub supervisor: ActorRef<SupervisorMsg>,
}

/// State of a running user actor.
pub struct UserState {
    args: UserArgs,
    /// The thread that owns the user's data; `None` only between `pre_start` and `post_start`.
    worker: Option<Worker>,
    last_activity: Instant,
}

/// The user actor (stateless itself; all state is in [`UserState`]).
pub struct UserActor;

impl UserState {
    /// Queue `job` on the user's worker. The job answers its caller itself; when the worker is
    /// broken the actor fails (and its supervisor restarts it).
    fn run(
        &self,
        job: impl FnOnce(&mut UserCore) + Send + 'static,
    ) -> Result<(), ActorProcessingErr> {
        match &self.worker {
            Some(w) if w.run(Box::new(job)) => Ok(()),
            _ => Err(ActorProcessingErr::from("the user's worker is broken")),
        }
    }
}

impl Actor for UserActor {
    type Msg = UserMsg;
    type State = UserState;
    type Arguments = UserArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<UserMsg>,
        args: UserArgs,
    ) -> Result<UserState, ActorProcessingErr> {
        // Kept cheap: it runs inside the supervisor's spawn. Opening the vault is post_start's.
        Ok(UserState {
            args,
            worker: None,
            last_activity: Instant::now(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<UserMsg>,
        state: &mut UserState,
    ) -> Result<(), ActorProcessingErr> {
        // Wait until a predecessor has let go of this vault (its core holds the guard).
        let owner = state.args.owner.clone().lock_owned().await;
        let (user, settings, hub) = (
            state.args.user.clone(),
            state.args.settings.clone(),
            state.args.hub.clone(),
        );
        let me = myself.clone();
        let flusher = myself.clone();
        let flush_soon = Box::new(move || drop(flusher.cast(UserMsg::FlushSoon)));
        let worker = Worker::start(
            move || UserCore::open(&user, &settings, hub, owner, flush_soon),
            move |reason| drop(me.cast(UserMsg::WorkerFailed(reason))),
        );
        state.worker = Some(worker);
        state.last_activity = Instant::now();
        myself.send_after(state.args.settings.actor_idle_timeout, || {
            UserMsg::IdleCheck
        });
        Ok(())
    }

    /// A clean stop (idle, evicted, shutdown): after the queued jobs, drop expired sessions and
    /// write the `last_seen` times that lag, so sessions outlive this actor with the right age.
    /// Not run after a crash, which loses at most those lagging times.
    async fn post_stop(
        &self,
        _myself: ActorRef<UserMsg>,
        state: &mut UserState,
    ) -> Result<(), ActorProcessingErr> {
        let user = state.args.user.clone();
        if let Some(worker) = state.worker.take() {
            worker.run(Box::new(move |c: &mut UserCore| {
                if let Err(e) = c.retire() {
                    tracing::warn!(user = %user, error = %e, "session cleanup at stop failed");
                }
            }));
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<UserMsg>,
        message: UserMsg,
        state: &mut UserState,
    ) -> Result<(), ActorProcessingErr> {
        let housekeeping = matches!(
            message,
            UserMsg::IdleCheck
                | UserMsg::FlushSoon
                | UserMsg::FlushFullText
                | UserMsg::WorkerFailed(_)
        );
        if !housekeeping {
            state.last_activity = Instant::now();
        }
        match message {
            UserMsg::Initialize {
                id, params, reply, ..
            } => state.run(move |c| drop(reply.send(c.initialize(id, params))))?,
            UserMsg::Post {
                caller,
                session_id,
                messages,
                batch,
                events,
                reply,
            } => state.run(move |c| {
                let out = c.post(&caller, &session_id, messages, batch, events.as_ref());
                // The POST's event stream ends before its answer arrives.
                drop(events);
                let _ = reply.send(out);
                c.after_job();
            })?,
            UserMsg::CallTool {
                caller,
                tool,
                args,
                reply,
            } => state.run(move |c| {
                let _ = reply.send(Ok(c.call_tool(&caller, &tool, args)));
                c.after_job();
            })?,
            UserMsg::FlushSoon => {
                myself.send_after(FULL_TEXT_FLUSH_DELAY, || UserMsg::FlushFullText);
            }
            UserMsg::FlushFullText => state.run(UserCore::flush_full_text)?,
            UserMsg::OpenStream { session_id, reply } => {
                state.run(move |c| drop(reply.send(c.open_stream(&session_id))))?
            }
            UserMsg::EndSession { session_id, reply } => {
                state.run(move |c| drop(reply.send(c.end_session(&session_id))))?
            }
            UserMsg::WorkerFailed(reason) => return Err(ActorProcessingErr::from(reason)),
            UserMsg::IdleCheck => {
                let idle_for = state.last_activity.elapsed();
                let limit = state.args.settings.actor_idle_timeout;
                if idle_for >= limit {
                    // The supervisor stops routing here and drains us; post_stop tidies up.
                    let _ = state.args.supervisor.cast(SupervisorMsg::Retire {
                        user: state.args.user.clone(),
                        actor: myself.get_id(),
                    });
                } else {
                    myself.send_after(limit - idle_for, || UserMsg::IdleCheck);
                }
            }
            #[cfg(feature = "test-hooks")]
            UserMsg::Crash { in_worker: false } => panic!("crash requested by a test hook"),
            #[cfg(feature = "test-hooks")]
            UserMsg::Crash { in_worker: true } => {
                state.run(|_| panic!("crash in a job requested by a test hook"))?
            }
        }
        Ok(())
    }
}
