//! The user's data while their actor runs: the vault, the MCP sessions and the notification
//! hub, owned by the actor's [`crate::worker`] and changed only by its jobs. Each method is one
//! message of the user actor, run on a job thread.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::{mpsc, OwnedMutexGuard};

use crate::caller::{Access, Caller};
use crate::error::{ActorError, VaultError};
use crate::hub::Hub;
use crate::mcp::dispatch::{self, Env};
use crate::mcp::jsonrpc::{result_response, Message, RpcError, QUOTA_EXCEEDED};
use crate::mcp::protocol;
use crate::mcp::stateless;
use crate::messages::{Initialized, StatelessRequest};
use crate::note::uri::note_uri;
use crate::session::Sessions;
use crate::settings::{McpOptions, Settings};
use crate::user_id::UserId;
use crate::vault::{now_ms, Change, Vault};
use crate::watch::{FileBatch, Sink, WatchGuard, Watches};

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
    /// Keeps the vault folder watched while the core exists; declared before `_owner` so the
    /// watch is gone before a successor can take the vault. `None` when watching is off or
    /// failed (see [`crate::watch`]).
    _watch: Option<WatchGuard>,
    /// Held for as long as this core exists: a successor actor waits for it, so two actors
    /// never own one vault, even when this one died with jobs still queued.
    _owner: OwnedMutexGuard<()>,
}

impl UserCore {
    pub(crate) fn open(
        user: &UserId,
        settings: &Settings,
        hub: Arc<Hub>,
        owner: OwnedMutexGuard<()>,
        flush_soon: Box<dyn Fn() + Send>,
        files_changed: Sink,
    ) -> Result<Self, VaultError> {
        let started = Instant::now();
        let mut vault = Vault::open(
            &settings.vault_base.join(user.as_str()),
            &settings.index_base.join(format!("{user}.sqlite")),
            settings,
        )?;
        // Watched before the scan, so that nothing changed during it goes unnoticed.
        let watch = settings
            .watch_files
            .then(|| Watches::global().watch(vault.root(), files_changed))
            .flatten();
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
            _watch: watch,
            _owner: owner,
        })
    }

    /// After a job (its answer sent): if it left note text queued, make sure a flush
    /// follows; and the first time, load what reads need about every note, so that the actor's
    /// first answer does not wait for it.
    pub(crate) fn after_job(&mut self) {
        if !self.flush_scheduled && self.vault.full_text_queued() {
            self.flush_scheduled = true;
            (self.flush_soon)();
        }
        if let Err(e) = self.vault.load_note_facts() {
            // Reads look the facts up in SQLite instead; the next job tries again.
            tracing::warn!(error = %e, "loading note facts into memory failed");
        }
    }

    pub(crate) fn flush_full_text(&mut self) {
        self.flush_scheduled = false;
        if let Err(e) = self.vault.flush_full_text() {
            // The text stays queued (and marked in the file): the next flush retries.
            tracing::warn!(error = %e, "writing queued note text to the full-text index failed");
        }
        self.after_job();
    }

    /// Bring the index in line with files changed outside the server (a watcher's settled
    /// events), and tell subscribers, as for a write.
    pub(crate) fn sync_files(&mut self, batch: FileBatch) {
        let started = Instant::now();
        let paths = if batch.rescan {
            vec![std::path::PathBuf::new()]
        } else {
            batch.paths
        };
        match self.vault.sync_paths(&paths) {
            Ok(report) => tracing::debug!(
                paths = paths.len(),
                rescan = batch.rescan,
                indexed = report.indexed,
                removed = report.removed,
                skipped = report.skipped,
                ms = started.elapsed().as_millis() as u64,
                "outside file changes synced"
            ),
            // The files stay as they are: the next read, write or scan finds them again.
            Err(e) => tracing::warn!(error = %e, "syncing outside file changes failed"),
        }
        self.announce_changes();
        self.after_job();
    }

    pub(crate) fn initialize(
        &mut self,
        id: Value,
        params: Option<Value>,
    ) -> Result<Initialized, ActorError> {
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

    pub(crate) fn post(
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

    pub(crate) fn call_tool(&mut self, caller: &Caller, tool: &str, args: Value) -> Value {
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

    /// Answer one request of the stateless revision: no session is looked up or written.
    pub(crate) fn stateless(
        &mut self,
        caller: &Caller,
        request: StatelessRequest,
        events: Option<&mpsc::Sender<Value>>,
    ) -> Value {
        let mut env = Env {
            vault: &mut self.vault,
            hub: &self.hub,
            caller,
            options: &self.options,
            events,
            sessions: self.sessions.usage(now_ms()),
        };
        let StatelessRequest {
            meta,
            id,
            method,
            params,
        } = request;
        let answer = stateless::handle_request(&mut env, &meta, &id, &method, params);
        self.announce_changes();
        answer
    }

    /// Tell subscribers about the notes this message changed.
    pub(crate) fn announce_changes(&mut self) {
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

    pub(crate) fn open_stream(
        &mut self,
        session_id: &str,
        access: &Access,
    ) -> Result<mpsc::Receiver<Value>, ActorError> {
        self.sessions
            .get(self.vault.index(), session_id, now_ms())?
            .ok_or(ActorError::UnknownSession)?;
        Ok(self.hub.open_for(session_id, access))
    }

    pub(crate) fn end_session(&mut self, session_id: &str) -> Result<(), ActorError> {
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

    pub(crate) fn retire(&mut self) -> Result<(), VaultError> {
        self.vault.flush_full_text()?;
        self.sessions.evict_expired(self.vault.index(), now_ms())?;
        self.sessions.flush(self.vault.index())
    }
}
