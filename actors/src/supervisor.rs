//! The supervisor: the only way to reach a user's actor.
//!
//! It spawns a user's actor on first use, forwards every message for that user to it, restarts
//! it on the next request after a crash (refusing for a while when it crashes in a loop), and
//! retires it when it reports itself idle. Each user has a [`Slot`] that outlives its actors:
//! the notification hub (so open streams do not pin an actor) and the vault's ownership lock
//! (so a successor waits until its predecessor has let go of the vault).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, MessagingErr, SupervisionEvent};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::caller::Caller;
use crate::error::ActorError;
use crate::hub::Hub;
use crate::mcp::jsonrpc::{Message, RpcError};
use crate::mcp::listen::Listening;
pub use crate::messages::SupervisorStats;
use crate::messages::{Initialized, StatelessRequest, SupervisorMsg, UserMsg};
use crate::settings::Settings;
use crate::user_actor::{UserActor, UserArgs};
use crate::user_id::UserId;

/// Per-user bookkeeping that outlives the user's actors.
struct Slot {
    actor: Option<ActorRef<UserMsg>>,
    hub: Arc<Hub>,
    owner: Arc<tokio::sync::Mutex<()>>,
    /// When this user's actor crashed recently (oldest first), for the crash-loop guard.
    crashes: VecDeque<Instant>,
    /// When a message was last sent to this user (ms since start), to pick whom to retire at
    /// the cap; shared with the routing table, whose readers bump it.
    last_used: Arc<AtomicU64>,
}

/// The running user actors, published by the supervisor for the handle to read: a request for
/// a user whose actor runs goes straight to it, without queueing in the supervisor's mailbox.
/// Only the supervisor writes it (spawn, retire, crash); a reader that finds a stale entry gets
/// its message back and routes it through the supervisor instead.
type Routes = Arc<RwLock<HashMap<UserId, (ActorRef<UserMsg>, Arc<AtomicU64>)>>>;

/// Milliseconds since `epoch`, for `last_used`.
fn ms_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

pub struct SupervisorState {
    settings: Arc<Settings>,
    slots: HashMap<UserId, Slot>,
    routes: Routes,
    epoch: Instant,
    /// Which user a running actor belongs to, to interpret supervision events.
    owners: HashMap<ActorId, UserId>,
    /// User actors that crashed since start.
    crashes: u64,
    /// Slots with a running actor (kept in step with `Slot::actor`).
    live: usize,
}

/// The supervisor actor.
pub struct SupervisorActor;

impl SupervisorState {
    /// The actor for `user`, spawned if there is none; `Err` when the crash-loop guard refuses.
    async fn actor_for(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        user: &UserId,
    ) -> Result<ActorRef<UserMsg>, ActorError> {
        let settings = self.settings.clone();
        let slot = self.slots.entry(user.clone()).or_insert_with(|| Slot {
            actor: None,
            hub: Arc::new(Hub::default()),
            owner: Arc::new(tokio::sync::Mutex::new(())),
            crashes: VecDeque::new(),
            last_used: Arc::new(AtomicU64::new(0)),
        });
        slot.last_used
            .store(ms_since(self.epoch), Ordering::Relaxed);
        if let Some(actor) = &slot.actor {
            return Ok(actor.clone());
        }
        while slot
            .crashes
            .front()
            .is_some_and(|t| t.elapsed() > settings.crash_window)
        {
            slot.crashes.pop_front();
        }
        if slot.crashes.len() >= settings.crash_limit {
            let oldest = slot
                .crashes
                .front()
                .map_or(Duration::ZERO, Instant::elapsed);
            let retry = settings
                .crash_window
                .saturating_sub(oldest)
                .as_secs()
                .max(1);
            return Err(ActorError::CrashLoop {
                retry_after_secs: retry,
            });
        }
        let args = UserArgs {
            user: user.clone(),
            settings: settings.clone(),
            hub: slot.hub.clone(),
            owner: slot.owner.clone(),
            supervisor: myself.clone(),
        };
        if self.live >= settings.max_live_actors {
            self.retire_least_recent(user);
        }
        let (actor, _) = Actor::spawn_linked(None, UserActor, args, myself.get_cell())
            .await
            .map_err(|e| ActorError::Storage(format!("could not start the user's actor: {e}")))?;
        if let Some(slot) = self.slots.get_mut(user) {
            slot.actor = Some(actor.clone());
            write(&self.routes).insert(user.clone(), (actor.clone(), slot.last_used.clone()));
        }
        self.live += 1;
        self.owners.insert(actor.get_id(), user.clone());
        Ok(actor)
    }

    /// Stop routing to `user`'s actor and let it finish what it was asked (`drain`): its
    /// sessions stay valid and the next request starts a fresh actor.
    fn retire(&mut self, user: &UserId) {
        if let Some(actor) = self.slots.get_mut(user).and_then(|s| s.actor.take()) {
            write(&self.routes).remove(user);
            self.live = self.live.saturating_sub(1);
            let _ = actor.drain();
        }
    }

    /// At the cap of live actors: retire the one whose user was served longest ago.
    fn retire_least_recent(&mut self, except: &UserId) {
        let victim = self
            .slots
            .iter()
            .filter(|(u, s)| s.actor.is_some() && *u != except)
            .min_by_key(|(_, s)| s.last_used.load(Ordering::Relaxed))
            .map(|(u, _)| u.clone());
        if let Some(user) = victim {
            tracing::debug!(user = %user, "retiring the least recently used actor at the cap");
            self.retire(&user);
        }
    }

    /// Stop routing to actor `id` (found stopped, or reported ended). Its owner entry stays
    /// until its supervision event arrives, so a crash is still counted then.
    fn detach(&mut self, id: ActorId) {
        let Some(user) = self.owners.get(&id) else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(user) {
            if slot.actor.as_ref().is_some_and(|a| a.get_id() == id) {
                slot.actor = None;
                write(&self.routes).remove(user);
                self.live = self.live.saturating_sub(1);
            }
        }
    }

    /// Forget the actor behind a supervision event, counting it when it crashed.
    fn forget(&mut self, id: ActorId, crashed: bool) {
        self.detach(id);
        let Some(user) = self.owners.remove(&id) else {
            return;
        };
        if let (true, Some(slot)) = (crashed, self.slots.get_mut(&user)) {
            slot.crashes.push_back(Instant::now());
            self.crashes += 1;
        }
    }
}

impl Actor for SupervisorActor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = (Arc<Settings>, Routes, Instant);

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        (settings, routes, epoch): (Arc<Settings>, Routes, Instant),
    ) -> Result<SupervisorState, ActorProcessingErr> {
        Ok(SupervisorState {
            settings,
            routes,
            epoch,
            slots: HashMap::new(),
            owners: HashMap::new(),
            crashes: 0,
            live: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Route { user, msg } => {
                let mut msg = msg;
                // Two tries: the first actor may have died without its event processed yet.
                for _ in 0..2 {
                    let actor = match state.actor_for(&myself, &user).await {
                        Ok(a) => a,
                        Err(e) => {
                            msg.fail(e);
                            return Ok(());
                        }
                    };
                    match actor.cast(msg) {
                        Ok(()) => return Ok(()),
                        Err(MessagingErr::SendErr(back)) => {
                            state.detach(actor.get_id());
                            msg = back;
                        }
                        Err(_) => return Ok(()),
                    }
                }
                msg.fail(ActorError::Restarted);
            }
            SupervisorMsg::Control {
                user,
                session_id,
                messages,
            } => {
                if let Some(slot) = state.slots.get(&user) {
                    for m in messages {
                        match m {
                            Message::Response { id, body } => {
                                slot.hub.resolve(&session_id, &id, body);
                            }
                            Message::Notification { params, .. } => {
                                if let Some(id) = params.as_ref().and_then(|p| p.get("requestId")) {
                                    slot.hub.cancel(&session_id, id);
                                }
                            }
                            Message::Request { .. } => {}
                        }
                    }
                }
            }
            SupervisorMsg::Retire { user, actor } => {
                let current = state.slots.get(&user).and_then(|s| s.actor.as_ref());
                if current.is_some_and(|a| a.get_id() == actor) {
                    // drain: messages routed before this point are still answered.
                    state.retire(&user);
                    tracing::debug!(user = %user, "user actor retired after idling");
                }
            }
            SupervisorMsg::Release { user, reply } => {
                state.retire(&user);
                let slot = state.slots.entry(user).or_insert_with(|| Slot {
                    actor: None,
                    hub: Arc::new(Hub::default()),
                    owner: Arc::new(tokio::sync::Mutex::new(())),
                    crashes: VecDeque::new(),
                    last_used: Arc::new(AtomicU64::new(0)),
                });
                let _ = reply.send(slot.owner.clone());
            }
            SupervisorMsg::Stats(reply) => {
                let open_streams = state.slots.values().map(|s| s.hub.open_streams()).sum();
                let _ = reply.send(SupervisorStats {
                    live_actors: state.live,
                    crashes: state.crashes,
                    open_streams,
                });
            }
        }
        Ok(())
    }

    // The default stops the supervisor when any child exits; a user actor's exit is routine.
    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                tracing::error!(actor = %cell.get_id(), error = %err, "user actor crashed; it restarts on the next request");
                state.forget(cell.get_id(), true);
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let killed = reason.as_deref() == Some("killed");
                state.forget(cell.get_id(), killed);
            }
            _ => {}
        }
        Ok(())
    }
}

/// The reply to an `ask`; a dropped reply port means the actor stopped before answering.
async fn answer<T>(
    rx: tokio::sync::oneshot::Receiver<Result<T, ActorError>>,
) -> Result<T, ActorError> {
    rx.await.unwrap_or(Err(ActorError::Restarted))
}

/// Cancellations and answers to our own requests steer running work; they never wait for the
/// user's actor.
fn is_control(m: &Message) -> bool {
    match m {
        Message::Response { .. } => true,
        Message::Notification { method, .. } => method == "notifications/cancelled",
        Message::Request { .. } => false,
    }
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    // Every write is one map call: a poisoned lock holds a consistent map.
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// A handle on the running supervisor: the typed API the front calls.
#[derive(Clone)]
pub struct Supervisor {
    actor: ActorRef<SupervisorMsg>,
    routes: Routes,
    epoch: Instant,
}

impl Supervisor {
    /// Start the supervisor (no user actor runs until its user's first request).
    pub async fn start(settings: Settings) -> Result<Self, ractor::SpawnErr> {
        let routes = Routes::default();
        let epoch = Instant::now();
        let args = (Arc::new(settings), routes.clone(), epoch);
        let (actor, _) = Actor::spawn(None, SupervisorActor, args).await?;
        Ok(Supervisor {
            actor,
            routes,
            epoch,
        })
    }

    /// Send a message built around a reply port to `user`'s actor — directly when it runs,
    /// else through the supervisor, which starts it — and wait for the answer.
    async fn ask<T: Send + 'static>(
        &self,
        user: &UserId,
        build: impl FnOnce(ractor::RpcReplyPort<Result<T, ActorError>>) -> UserMsg,
    ) -> Result<T, ActorError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut msg = build(tx.into());
        let route = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user)
            .cloned();
        if let Some((actor, last_used)) = route {
            last_used.store(ms_since(self.epoch), Ordering::Relaxed);
            match actor.cast(msg) {
                Ok(()) => return answer(rx).await,
                // Retired or dead a moment ago: the supervisor knows what to do.
                Err(MessagingErr::SendErr(back)) => msg = back,
                Err(_) => return Err(ActorError::Restarted),
            }
        }
        let routed = SupervisorMsg::Route {
            user: user.clone(),
            msg,
        };
        if self.actor.cast(routed).is_err() {
            return Err(ActorError::Storage("supervisor unavailable".into()));
        }
        answer(rx).await
    }

    /// Start a session for `caller` with an `initialize` request.
    pub async fn initialize(
        &self,
        caller: Caller,
        id: Value,
        params: Option<Value>,
    ) -> Result<Initialized, ActorError> {
        let user = caller.user.clone();
        self.ask(&user, |reply| UserMsg::Initialize {
            caller,
            id,
            params,
            reply,
        })
        .await
    }

    /// Deliver messages posted on `session_id`; `batch` when they came as a JSON array.
    /// Notifications and requests the actor sends before its answer go to `events`.
    pub async fn post(
        &self,
        caller: Caller,
        session_id: String,
        messages: Vec<Message>,
        batch: bool,
        events: Option<mpsc::Sender<Value>>,
    ) -> Result<Option<Value>, ActorError> {
        if messages.iter().all(is_control) {
            let _ = self.actor.cast(SupervisorMsg::Control {
                user: caller.user,
                session_id,
                messages,
            });
            return Ok(None);
        }
        let user = caller.user.clone();
        self.ask(&user, |reply| UserMsg::Post {
            caller,
            session_id,
            messages,
            batch,
            events,
            reply,
        })
        .await
    }

    /// Open the server-to-client stream of `session_id`.
    pub async fn open_stream(
        &self,
        caller: &Caller,
        session_id: String,
    ) -> Result<mpsc::Receiver<Value>, ActorError> {
        self.ask(&caller.user, |reply| UserMsg::OpenStream {
            session_id,
            access: caller.access.clone(),
            reply,
        })
        .await
    }

    /// Run `tool` with `args` for `caller` outside any MCP session (the web app), through the
    /// user's actor like every MCP request; the answer is the `tools/call` result.
    pub async fn call_tool(
        &self,
        caller: &Caller,
        tool: &str,
        args: Value,
    ) -> Result<Value, ActorError> {
        let (caller, tool) = (caller.clone(), tool.to_string());
        let user = caller.user.clone();
        self.ask(&user, |reply| UserMsg::CallTool {
            caller,
            tool,
            args,
            reply,
        })
        .await
    }

    /// Answer one request of the stateless revision for `caller` on the user's actor, without
    /// a session; progress sent before the answer goes to `events`.
    pub async fn stateless(
        &self,
        caller: Caller,
        request: StatelessRequest,
        events: Option<mpsc::Sender<Value>>,
    ) -> Result<Value, ActorError> {
        let user = caller.user.clone();
        self.ask(&user, |reply| UserMsg::Stateless {
            caller,
            request: Box::new(request),
            events,
            reply,
        })
        .await
    }

    /// Open a `subscriptions/listen` stream for `caller` (a stateless request whose envelope
    /// is checked); its notifications follow the caller's folder scope.
    pub async fn listen(
        &self,
        caller: Caller,
        request: StatelessRequest,
    ) -> Result<Result<Listening, RpcError>, ActorError> {
        let user = caller.user.clone();
        self.ask(&user, |reply| UserMsg::Listen {
            caller,
            request: Box::new(request),
            reply,
        })
        .await
    }

    /// End `session_id`.
    pub async fn end_session(&self, caller: &Caller, session_id: String) -> Result<(), ActorError> {
        self.ask(&caller.user, |reply| UserMsg::EndSession {
            session_id,
            reply,
        })
        .await
    }

    /// Take `user`'s vault away from their actor: the actor is stopped (after finishing what
    /// it was asked) and the returned guard holds the vault's ownership lock. While it is held
    /// no actor of the user touches the vault or its index; requests that arrive meanwhile
    /// start a successor that waits for the guard to be dropped, then opens whatever the vault
    /// is by then (reconciling the index with the files).
    pub async fn hold_vault(
        &self,
        user: &UserId,
    ) -> Result<tokio::sync::OwnedMutexGuard<()>, ActorError> {
        let user = user.clone();
        let owner = match self
            .actor
            .call(|reply| SupervisorMsg::Release { user, reply }, None)
            .await
        {
            Ok(CallResult::Success(owner)) => owner,
            _ => return Err(ActorError::Storage("supervisor unavailable".into())),
        };
        Ok(owner.lock_owned().await)
    }

    /// Running actors, crashes so far and open streams (zeros when the supervisor is gone).
    pub async fn stats(&self) -> SupervisorStats {
        self.try_stats().await.unwrap_or_default()
    }

    /// [`Supervisor::stats`], or `None` when the supervisor does not answer (readiness).
    pub async fn try_stats(&self) -> Option<SupervisorStats> {
        match self.actor.call(SupervisorMsg::Stats, None).await {
            Ok(CallResult::Success(s)) => Some(s),
            _ => None,
        }
    }

    /// How many user actors are running.
    pub async fn live_actors(&self) -> usize {
        self.stats().await.live_actors
    }

    /// Make `user`'s actor panic, in the actor itself or in a job on its thread (it is
    /// spawned first if needed).
    #[cfg(feature = "test-hooks")]
    pub async fn crash_user(&self, user: &UserId, in_worker: bool) {
        let _ = self.actor.cast(SupervisorMsg::Route {
            user: user.clone(),
            msg: UserMsg::Crash { in_worker },
        });
    }

    /// Stop every user actor (finishing what they were asked) and then the supervisor.
    pub async fn shutdown(&self) {
        self.actor
            .drain_children_and_wait(Some(Duration::from_secs(10)))
            .await;
        let _ = self
            .actor
            .stop_and_wait(None, Some(Duration::from_secs(5)))
            .await;
    }
}
