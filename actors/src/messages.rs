//! The messages of the request path: what the supervisor is asked ([`SupervisorMsg`]) and what
//! a user actor is asked ([`UserMsg`]), with their answers.
//!
//! They live below both actors, so the supervisor (which routes [`UserMsg`]s) and the user actor
//! (which asks the supervisor to retire it) import them from here instead of from each other.

use ractor::{ActorId, RpcReplyPort};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::caller::{Access, Caller};
use crate::error::ActorError;
use crate::mcp::jsonrpc::{Message, RpcError};
use crate::mcp::listen::Listening;
use crate::mcp::stateless::RequestMeta;
use crate::user_id::UserId;
use crate::watch::WatchEvent;

/// Everything the supervisor can be asked.
pub enum SupervisorMsg {
    /// Deliver `msg` to `user`'s actor, spawning it if needed.
    Route { user: UserId, msg: UserMsg },
    /// Client messages that only steer requests already running (cancellations, answers to
    /// server-to-client requests): delivered through the user's hub, since the actor may be
    /// busy with the very request they concern.
    Control {
        user: UserId,
        session_id: String,
        messages: Vec<Message>,
    },
    /// `user`'s actor `actor` has been idle long enough: stop routing to it and let it finish.
    Retire { user: UserId, actor: ActorId },
    /// How many user actors are running now, how many have crashed since start, and how many
    /// streams are open.
    Stats(RpcReplyPort<SupervisorStats>),
    /// Stop `user`'s actor (it finishes what it was asked) and hand over the vault's ownership
    /// lock, so that the caller can take the vault for itself (account deletion, import).
    Release {
        user: UserId,
        reply: RpcReplyPort<std::sync::Arc<tokio::sync::Mutex<()>>>,
    },
}

/// Counters for tests, benchmarks and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SupervisorStats {
    pub live_actors: usize,
    pub crashes: u64,
    /// Open server-to-client streams (`GET /mcp`) over all users' hubs.
    pub open_streams: usize,
}

/// The answer to `initialize`: a minted session (on success) and the JSON-RPC response.
#[derive(Debug, Clone)]
pub struct Initialized {
    pub session_id: Option<String>,
    pub response: Value,
}

/// One request of the stateless revision, its `_meta` envelope already checked.
#[derive(Debug, Clone)]
pub struct StatelessRequest {
    pub meta: RequestMeta,
    pub id: Value,
    pub method: String,
    pub params: Option<Value>,
}

pub(crate) type Reply<T> = RpcReplyPort<Result<T, ActorError>>;

/// How long written note text may wait before it goes to the full-text index: writes within it
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
        /// The access of the token the stream is opened with.
        access: Access,
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
    /// Answer one request of the stateless revision (2026-07-28): no session is looked up or
    /// written; the reply is the JSON-RPC response.
    Stateless {
        caller: Caller,
        /// Boxed: it would make every message of the mailbox as large as itself.
        request: Box<StatelessRequest>,
        /// The POST's response stream, for progress sent before the answer.
        events: Option<mpsc::Sender<Value>>,
        reply: Reply<Value>,
    },
    /// Open a `subscriptions/listen` stream of the stateless revision; refused with the
    /// JSON-RPC error when its filter is malformed.
    Listen {
        caller: Caller,
        request: Box<StatelessRequest>,
        reply: Reply<Result<Listening, RpcError>>,
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
    /// The file watcher saw the vault's files change (sent from the watcher's thread).
    FilesChanged(WatchEvent),
    /// Timer tick: re-sync the changed files that have settled (see [`crate::watch::Debouncer`]).
    SyncFiles,
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
            UserMsg::Stateless { reply, .. } => drop(reply.send(Err(err))),
            UserMsg::Listen { reply, .. } => drop(reply.send(Err(err))),
            UserMsg::EndSession { reply, .. } => drop(reply.send(Err(err))),
            UserMsg::IdleCheck
            | UserMsg::FlushSoon
            | UserMsg::FlushFullText
            | UserMsg::WorkerFailed(_)
            | UserMsg::FilesChanged(_)
            | UserMsg::SyncFiles => {}
            #[cfg(feature = "test-hooks")]
            UserMsg::Crash { .. } => {}
        }
    }
}
