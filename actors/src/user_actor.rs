//! One actor per user: the only owner of that user's vault folder, SQLite connection and MCP
//! sessions.
//!
//! Messages are handled one at a time and become jobs, in order, on the actor's worker queue,
//! drained on the shared job threads (SQL and file I/O never run on the async workers), so a
//! user's operations are serialised and users never share a lock. The actor stops itself,
//! through the supervisor, after `actor_idle_timeout` without a message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::hub::Hub;
use crate::mcp::listen;
use crate::messages::{SupervisorMsg, UserMsg};
use crate::settings::Settings;
use crate::user_core::UserCore;
use crate::user_id::UserId;
use crate::watch::{Debouncer, Sink};
use crate::worker::Worker;

/// share one FTS5 transaction. A search never waits for it (it flushes first).
const FULL_TEXT_FLUSH_DELAY: Duration = Duration::from_millis(200);

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
    /// Files the watcher saw change, gathered until they settle.
    files: Debouncer,
    /// A `SyncFiles` tick is on its way.
    files_tick: bool,
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

    /// Make sure a `SyncFiles` tick comes when the next changed file settles.
    fn schedule_files(&mut self, myself: &ActorRef<UserMsg>) {
        if self.files_tick {
            return;
        }
        if let Some(due) = self.files.next_due() {
            self.files_tick = true;
            let wait = due.saturating_duration_since(Instant::now());
            myself.send_after(wait, || UserMsg::SyncFiles);
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
            files: Debouncer::default(),
            files_tick: false,
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
        let watched = myself.clone();
        let files_changed: Sink = Arc::new(move |e| drop(watched.cast(UserMsg::FilesChanged(e))));
        let worker = Worker::start(
            move || UserCore::open(&user, &settings, hub, owner, flush_soon, files_changed),
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
                | UserMsg::FilesChanged(_)
                | UserMsg::SyncFiles
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
            UserMsg::Stateless {
                caller,
                request,
                events,
                reply,
            } => state.run(move |c| {
                let out = c.stateless(&caller, *request, events.as_ref());
                // The POST's event stream ends before its answer arrives.
                drop(events);
                let _ = reply.send(Ok(out));
                c.after_job();
            })?,
            // Only the hub is involved (no vault, no session): answered here, at once.
            UserMsg::Listen {
                caller,
                request,
                reply,
            } => {
                let params = request.params.as_ref();
                let max_streams = state.args.settings.quotas.sessions_per_user;
                let _ = reply.send(Ok(listen::listen(
                    &state.args.hub,
                    &caller,
                    &request.id,
                    params,
                    max_streams,
                )));
            }
            UserMsg::FlushSoon => {
                myself.send_after(FULL_TEXT_FLUSH_DELAY, || UserMsg::FlushFullText);
            }
            UserMsg::FlushFullText => state.run(UserCore::flush_full_text)?,
            UserMsg::OpenStream {
                session_id,
                access,
                reply,
            } => state.run(move |c| drop(reply.send(c.open_stream(&session_id, &access))))?,
            UserMsg::EndSession { session_id, reply } => {
                state.run(move |c| drop(reply.send(c.end_session(&session_id))))?
            }
            UserMsg::WorkerFailed(reason) => return Err(ActorProcessingErr::from(reason)),
            UserMsg::FilesChanged(event) => {
                state.files.push(event, Instant::now());
                state.schedule_files(&myself);
            }
            UserMsg::SyncFiles => {
                state.files_tick = false;
                if let Some(batch) = state.files.take_due(Instant::now()) {
                    state.run(move |c| c.sync_files(batch))?;
                }
                state.schedule_files(&myself);
            }
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
