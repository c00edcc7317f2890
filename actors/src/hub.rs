//! The per-user notification hub: the senders of a user's open `GET` streams.
//!
//! It is held beside the supervisor's routing entry, not inside the user actor, so an open
//! stream never keeps an idle actor alive; the actor publishes into it while it runs.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use tokio::sync::mpsc;

/// Messages a stream may fall behind by before new ones are dropped for it.
const STREAM_BUFFER: usize = 64;

/// Open server-to-client streams of one user, by session id.
#[derive(Default)]
pub struct Hub {
    streams: Mutex<HashMap<String, mpsc::Sender<Value>>>,
}

impl Hub {
    /// Open the stream of `session_id`, replacing (and so ending) an older one.
    pub fn open(&self, session_id: &str) -> mpsc::Receiver<Value> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        self.lock().insert(session_id.to_string(), tx);
        rx
    }

    /// End the stream of `session_id`, if one is open.
    pub fn close(&self, session_id: &str) {
        self.lock().remove(session_id);
    }

    /// Send `message` to the stream of `session_id`; false when none is open or it is full.
    pub fn publish(&self, session_id: &str, message: Value) -> bool {
        let mut streams = self.lock();
        match streams.get(session_id).map(|tx| tx.try_send(message)) {
            Some(Ok(())) => true,
            Some(Err(mpsc::error::TrySendError::Closed(_))) => {
                streams.remove(session_id);
                false
            }
            _ => false,
        }
    }

    /// Number of open streams.
    pub fn open_streams(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Value>>> {
        // A panic while holding this lock cannot leave the map half-updated (every operation
        // is one HashMap call), so a poisoned lock is safe to keep using.
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
