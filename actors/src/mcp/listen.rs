//! `subscriptions/listen` of the stateless revision: one request whose answer is a stream of
//! the change notifications its filter asked for, for as long as the client keeps it open.
//!
//! A listener is registered in the user's hub under its own key, like a session's stream: it
//! hears of the notes its token may read ([`Hub::set_access`]) and of the URIs it subscribed
//! to. It is forgotten when its [`ListenGuard`] is dropped, i.e. when the stream ends.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::jsonrpc::{notification, RpcError, QUOTA_EXCEEDED};
use super::resources;
use crate::caller::Caller;
use crate::hub::Hub;

/// `_meta` key naming, on every notification of a listen stream, the request that opened it.
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

const LIST_CHANGED: &str = "notifications/resources/list_changed";

/// The notifications a listener asked for (`params.notifications`). Tools and prompts never
/// change while the server runs, so their list-changed flags are read and never honoured.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    resources_list_changed: bool,
    #[serde(default)]
    resource_subscriptions: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    tools_list_changed: bool,
    #[serde(default)]
    #[allow(dead_code)]
    prompts_list_changed: bool,
}

/// An open listener: what to send first, what comes next, and how to send it.
pub struct Listening {
    /// `notifications/subscriptions/acknowledged` with the part of the filter honoured.
    pub acknowledged: Value,
    /// Change notifications from the user's hub, to pass through [`Delivery::stamp`].
    pub events: mpsc::Receiver<Value>,
    pub delivery: Delivery,
    /// Keeps the listener registered; drop it when the stream ends.
    pub guard: ListenGuard,
}

/// How a hub notification goes out on a listen stream.
pub struct Delivery {
    /// The id of the `subscriptions/listen` request.
    subscription_id: Value,
    /// The hub tells every stream that the list changed: only listeners that asked hear it.
    list_changed: bool,
}

impl Delivery {
    /// `message` stamped with the subscription's id, or `None` when the filter left it out.
    pub fn stamp(&self, mut message: Value) -> Option<Value> {
        if message["method"] == LIST_CHANGED && !self.list_changed {
            return None;
        }
        if !message["params"].is_object() {
            message["params"] = json!({});
        }
        message["params"]["_meta"] = json!({ META_SUBSCRIPTION_ID: self.subscription_id });
        Some(message)
    }
}

/// Forgets a listener in the hub when dropped.
pub struct ListenGuard {
    hub: Arc<Hub>,
    key: String,
}

impl Drop for ListenGuard {
    fn drop(&mut self) {
        self.hub.close(&self.key);
    }
}

/// Register a listener for `caller` (request `id`, with its `params`) in `hub`. URIs the
/// caller's token may not read are left out of the acknowledgment and never announced.
///
/// A user's open streams (sessions' and listeners') are capped at `max_streams`, the
/// sessions quota: a listener beyond it is refused like a session beyond it (`-32003`).
pub fn listen(
    hub: &Arc<Hub>,
    caller: &Caller,
    id: &Value,
    params: Option<&Value>,
    max_streams: u64,
) -> Result<Listening, RpcError> {
    let open = hub.open_streams() as u64;
    if open >= max_streams {
        let refused = crate::VaultError::QuotaExceeded {
            limit: crate::settings::Quotas::SESSIONS_PER_USER,
            max: max_streams,
            current: open,
        };
        metrics::counter!("vault_mcp_quota_hits_total", "limit" => crate::settings::Quotas::SESSIONS_PER_USER)
            .increment(1);
        return Err(RpcError::new(QUOTA_EXCEEDED, refused.to_string()).with_data(refused.details()));
    }
    let filter: Filter = match params.and_then(|p| p.get("notifications")) {
        Some(n) => serde_json::from_value(n.clone()).map_err(|e| {
            RpcError::invalid_params(format!("subscriptions/listen notifications: {e}"))
        })?,
        None => {
            return Err(RpcError::invalid_params(
                "subscriptions/listen needs params.notifications",
            ))
        }
    };
    let key = format!("listen:{}", uuid::Uuid::new_v4());
    let events = hub.open(&key);
    hub.set_access(&key, &caller.access);
    let guard = ListenGuard {
        hub: hub.clone(),
        key,
    };
    let mut honoured = Vec::new();
    for uri in filter.resource_subscriptions {
        if resources::check_uri(&caller.access, &uri).is_ok() && !honoured.contains(&uri) {
            hub.subscribe(&guard.key, &uri);
            honoured.push(uri);
        }
    }
    let mut agreed = json!({});
    if filter.resources_list_changed {
        agreed["resourcesListChanged"] = json!(true);
    }
    if !honoured.is_empty() {
        agreed["resourceSubscriptions"] = json!(honoured);
    }
    let delivery = Delivery {
        subscription_id: id.clone(),
        list_changed: filter.resources_list_changed,
    };
    let acknowledged = delivery
        .stamp(notification(
            "notifications/subscriptions/acknowledged",
            json!({ "notifications": agreed }),
        ))
        .unwrap_or(Value::Null);
    Ok(Listening {
        acknowledged,
        events,
        delivery,
        guard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user_id::UserId;

    fn caller() -> Caller {
        Caller::full(UserId::parse("alice").unwrap())
    }

    #[test]
    fn a_listener_hears_what_it_asked_for_until_dropped() {
        let hub = Arc::new(Hub::default());
        let params = json!({ "notifications": { "resourceSubscriptions": ["note:///a.md"] } });
        let mut l = listen(&hub, &caller(), &json!(7), Some(&params), 2).unwrap();
        let _second = listen(&hub, &caller(), &json!(8), Some(&params), 2).unwrap();
        let Err(third) = listen(&hub, &caller(), &json!(9), Some(&params), 2) else {
            panic!("a third stream is over the cap");
        };
        assert_eq!(third.code, QUOTA_EXCEEDED);
        assert_eq!(
            l.acknowledged["params"]["notifications"]["resourceSubscriptions"],
            json!(["note:///a.md"])
        );
        assert_eq!(l.acknowledged["params"]["_meta"][META_SUBSCRIPTION_ID], 7);
        hub.resource_list_changed();
        hub.resource_updated("note:///a.md");
        let first = l.events.try_recv().unwrap();
        assert!(
            l.delivery.stamp(first).is_none(),
            "list changes were not asked for"
        );
        let second = l.delivery.stamp(l.events.try_recv().unwrap()).unwrap();
        assert_eq!(second["params"]["uri"], "note:///a.md");
        assert_eq!(second["params"]["_meta"][META_SUBSCRIPTION_ID], 7);
        assert_eq!(hub.open_streams(), 2);
        drop(l);
        assert_eq!(hub.open_streams(), 1);
    }
}
