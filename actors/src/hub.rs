//! The per-user hub: everything about a user's live connections that must not live in the user
//! actor.
//!
//! It is held beside the supervisor's routing entry, so it outlives the user's actors:
//! - the senders of open `GET` streams (an open stream never keeps an idle actor alive);
//! - resource subscriptions, which are about delivery to those streams, and the access of each
//!   session's latest request, so a note outside that token's folders is never announced to it;
//! - cancellation flags of running requests and the reply slots of server-to-client requests,
//!   which must be reachable while the actor is busy running the very request they concern.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::caller::Access;
use crate::mcp::jsonrpc::notification;
use crate::note::uri::path_of;
use crate::note::NotePath;

/// Messages a stream may fall behind by before new ones are dropped for it.
const STREAM_BUFFER: usize = 64;

/// A flag a running request polls to learn that its client cancelled it.
pub type CancelFlag = Arc<AtomicBool>;

#[derive(Default)]
struct HubState {
    /// Open server-to-client streams, by session id.
    streams: HashMap<String, mpsc::Sender<Value>>,
    /// Resource URIs each session subscribed to.
    subscriptions: HashMap<String, HashSet<String>>,
    /// The access of each session's latest request: a session may be used with several
    /// tokens of its user, and only the latest one's folders are announced to it.
    access: HashMap<String, Access>,
    /// The access of the token that opened each session's stream: what the stream carries is
    /// bounded by it too, whatever token the session's requests use.
    stream_access: HashMap<String, Access>,
    /// Cancellation flags of running requests, by (session id, request id as JSON text).
    running: HashMap<(String, String), CancelFlag>,
    /// Reply slots of server-to-client requests, by request id (ids are unique per hub).
    pending: HashMap<String, (String, std::sync::mpsc::SyncSender<Value>)>,
}

/// Live connection state of one user.
#[derive(Default)]
pub struct Hub {
    state: Mutex<HubState>,
    next_request: AtomicU64,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        // Every operation is a few map calls that cannot leave the maps half-updated, so a
        // poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Open the stream of `session_id`, replacing (and so ending) an older one.
    pub fn open(&self, session_id: &str) -> mpsc::Receiver<Value> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        self.lock().streams.insert(session_id.to_string(), tx);
        rx
    }

    /// [`Hub::open`] for a stream opened with a token of `access`: the stream hears only of
    /// notes that token may read.
    pub fn open_for(&self, session_id: &str, access: &Access) -> mpsc::Receiver<Value> {
        let rx = self.open(session_id);
        self.lock()
            .stream_access
            .insert(session_id.to_string(), access.clone());
        rx
    }

    /// Streams open now: registered and their client still reading (a stream whose client
    /// left is only forgotten at the next publish or close).
    pub fn open_streams(&self) -> usize {
        self.lock()
            .streams
            .values()
            .filter(|tx| !tx.is_closed())
            .count()
    }

    /// Forget everything about `session_id` (its stream ends).
    pub fn close(&self, session_id: &str) {
        let mut s = self.lock();
        s.streams.remove(session_id);
        s.subscriptions.remove(session_id);
        s.access.remove(session_id);
        s.stream_access.remove(session_id);
    }

    /// Note the access of the request `session_id` is running now.
    pub fn set_access(&self, session_id: &str, access: &Access) {
        let mut s = self.lock();
        if s.access.get(session_id) != Some(access) {
            s.access.insert(session_id.to_string(), access.clone());
        }
    }

    /// Send `message` to the stream of `session_id`; false when none is open or it is full.
    pub fn publish(&self, session_id: &str, message: Value) -> bool {
        let mut s = self.lock();
        match s.streams.get(session_id).map(|tx| tx.try_send(message)) {
            Some(Ok(())) => true,
            Some(Err(mpsc::error::TrySendError::Closed(_))) => {
                s.streams.remove(session_id);
                false
            }
            _ => false,
        }
    }

    pub fn subscribe(&self, session_id: &str, uri: &str) {
        self.lock()
            .subscriptions
            .entry(session_id.to_string())
            .or_default()
            .insert(uri.to_string());
    }

    pub fn unsubscribe(&self, session_id: &str, uri: &str) {
        if let Some(set) = self.lock().subscriptions.get_mut(session_id) {
            set.remove(uri);
        }
    }

    /// Tell every session subscribed to `uri` that it changed, unless the token of its latest
    /// request may not read that note.
    pub fn resource_updated(&self, uri: &str) {
        let path = path_of(uri).ok().and_then(|p| NotePath::parse(&p).ok());
        let s = self.lock();
        let allows = |access: Option<&Access>| match (access, &path) {
            (None, _) => true,
            (Some(access), Some(path)) => access.allows_read(path),
            // Not a note URI (test fixtures): only a token that reads everything hears of it.
            (Some(access), None) => access.read == crate::caller::FolderSet::All,
        };
        let readable =
            |session: &str| allows(s.access.get(session)) && allows(s.stream_access.get(session));
        let sessions: Vec<String> = s
            .subscriptions
            .iter()
            .filter(|(session, uris)| uris.contains(uri) && readable(session))
            .map(|(session, _)| session.clone())
            .collect();
        drop(s);
        for s in sessions {
            self.publish(
                &s,
                notification(
                    "notifications/resources/updated",
                    serde_json::json!({ "uri": uri }),
                ),
            );
        }
    }

    /// Tell every session with an open stream that the list of resources changed.
    pub fn resource_list_changed(&self) {
        let sessions: Vec<String> = self.lock().streams.keys().cloned().collect();
        for s in sessions {
            self.publish(
                &s,
                notification(
                    "notifications/resources/list_changed",
                    serde_json::json!({}),
                ),
            );
        }
    }

    /// Register a running request so the client can cancel it.
    pub fn start_request(&self, session_id: &str, request_id: &Value) -> CancelFlag {
        let flag = CancelFlag::default();
        self.lock().running.insert(
            (session_id.to_string(), request_id.to_string()),
            flag.clone(),
        );
        flag
    }

    pub fn finish_request(&self, session_id: &str, request_id: &Value) {
        self.lock()
            .running
            .remove(&(session_id.to_string(), request_id.to_string()));
    }

    /// The client cancelled `request_id` of `session_id`; true when it was running.
    pub fn cancel(&self, session_id: &str, request_id: &Value) -> bool {
        match self
            .lock()
            .running
            .get(&(session_id.to_string(), request_id.to_string()))
        {
            Some(flag) => {
                flag.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Reserve an id for a server-to-client request of `session_id`; the answer arrives on the
    /// returned channel.
    pub fn expect_response(&self, session_id: &str) -> (String, std::sync::mpsc::Receiver<Value>) {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        let id = format!("vault-{n}");
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.lock()
            .pending
            .insert(id.clone(), (session_id.to_string(), tx));
        (id, rx)
    }

    /// Stop waiting for the answer to `id` (answered, timed out or cancelled).
    pub fn forget_response(&self, id: &str) {
        self.lock().pending.remove(id);
    }

    /// Deliver a client's answer (`result` or `error` object) to the request `id`; only the
    /// session that was asked can answer.
    pub fn resolve(&self, session_id: &str, id: &Value, answer: Value) -> bool {
        let key = match id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut s = self.lock();
        match s.pending.remove(&key) {
            Some((owner, tx)) if owner == session_id => tx.try_send(answer).is_ok(),
            // Another session's request: leave it waiting for its own answer.
            Some(entry) => {
                s.pending.insert(key, entry);
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_asked_session_can_answer() {
        let hub = Hub::default();
        let (id, rx) = hub.expect_response("s1");
        assert!(!hub.resolve("s2", &json!(id), json!({"result": 1})));
        assert!(hub.resolve("s1", &json!(id), json!({"result": 2})));
        assert_eq!(rx.recv().unwrap(), json!({"result": 2}));
    }

    #[test]
    fn cancel_sets_the_flag_of_that_request_only() {
        let hub = Hub::default();
        let a = hub.start_request("s", &json!(1));
        let b = hub.start_request("s", &json!(2));
        assert!(hub.cancel("s", &json!(1)));
        assert!(a.load(Ordering::SeqCst) && !b.load(Ordering::SeqCst));
        hub.finish_request("s", &json!(1));
        assert!(!hub.cancel("s", &json!(1)));
    }

    #[tokio::test]
    async fn subscribers_get_resource_updates() {
        let hub = Hub::default();
        let mut rx = hub.open("s");
        hub.subscribe("s", "note:///a.md");
        hub.resource_updated("note:///b.md");
        hub.resource_updated("note:///a.md");
        let msg = rx.recv().await.unwrap();
        assert_eq!(msg["params"]["uri"], "note:///a.md");
        assert!(rx.try_recv().is_err());
    }
}
