//! Taking your data with you, over HTTP: `GET /api/export` (the vault as a `.tar.gz`, streamed),
//! `POST /api/import` (a `.tar.gz` or `.zip` upload, answered with what was imported and what
//! was skipped and why) and `POST /api/account/delete` (everything of the account, after an
//! explicit confirmation). The file work is in [`crate::account_data`].
//!
//! Export and import take a bearer token (read scope over the whole vault to export, write
//! scope to import) or the signed-in page. Deleting an account takes the signed-in page only:
//! a token handed to an AI client must not be able to erase its owner.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use vault_actors::caller::FolderSet;
use vault_actors::Caller;

use super::client::RequestOrigin;
use super::error::json_error;
use super::extract::{Bearer, JsonBody};
use super::session::WebApi;
use super::AppState;
use crate::account_data::{self, ImportError, Source};
use crate::audit::Origin;
use crate::auth::now_secs;

/// Chunks of an export waiting to be sent at most (each up to [`CHUNK_BYTES`]).
const EXPORT_CHUNKS: usize = 8;
/// Size of the chunks an export is sent in.
const CHUNK_BYTES: usize = 64 << 10;

/// The vault's owner, proven by a bearer token or by the signed-in page (whose changes carry
/// its CSRF token).
pub struct Owner {
    pub caller: Caller,
    /// `token` or `page`, for the audit log.
    pub via: &'static str,
}

impl FromRequestParts<AppState> for Owner {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            let Bearer(verified) = Bearer::from_request_parts(parts, state).await?;
            return Ok(Owner {
                caller: verified.caller,
                via: "token",
            });
        }
        let WebApi(user) = WebApi::from_request_parts(parts, state).await?;
        Ok(Owner {
            caller: user.caller,
            via: "page",
        })
    }
}

fn insufficient_scope(needed: &str) -> Response {
    json_error(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        &format!("this needs a token with {needed} over the whole vault"),
    )
}

fn storage_failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "account data storage failed");
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage",
        "the vault could not be read or written; retry shortly",
    )
}

/// A `Write` that hands what is written to the response body, chunk by chunk; it fails once
/// the client has gone, which ends the export.
struct BodyWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl std::io::Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /api/export`: the vault as one `.tar.gz`, streamed as it is read.
pub async fn export(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    owner: Owner,
) -> Response {
    if owner.caller.access.read != FolderSet::All {
        return insufficient_scope("read access");
    }
    let user = owner.caller.user.clone();
    let vault = state.storage.vault_dir(&user);
    let (tx, rx) = mpsc::channel(EXPORT_CHUNKS);
    let (audit, via) = (state.audit.clone(), owner.via);
    let user_s = user.to_string();
    tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(CHUNK_BYTES, BodyWriter { tx: tx.clone() });
        let result = account_data::export(&vault, out);
        let detail = match &result {
            Ok(done) => json!({ "files": done.files, "bytes": done.bytes, "via": via,
                                "complete": true }),
            Err(e) => json!({ "via": via, "complete": false, "error": e.kind().to_string() }),
        };
        audit.record("account_exported", Some(&user_s), &origin, detail);
        if let Err(e) = result {
            // The client sees a broken download rather than a truncated archive taken as whole.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let date = time::OffsetDateTime::now_utc().date();
    let name = format!("vault-{user}-{date}.tar.gz");
    let mut resp = Body::from_stream(ReceiverStream::new(rx)).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Receive the request body into a fresh file (the archive is read from disk, never held in
/// memory); refused past `limit` bytes.
async fn receive(body: Body, path: &std::path::Path, limit: u64) -> Result<(), Response> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(storage_failed)?;
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            json_error(
                StatusCode::BAD_REQUEST,
                "upload_failed",
                &format!("the upload did not arrive whole: {e}"),
            )
        })?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!("the archive is over the limit of {limit} bytes"),
            ));
        }
        file.write_all(&chunk).await.map_err(storage_failed)?;
    }
    file.flush().await.map_err(storage_failed)?;
    Ok(())
}

/// An uploaded file removed when the import is done, whatever happens.
struct Upload(std::path::PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `POST /api/import` with a `.tar.gz` or `.zip` body (an export of this server, or an
/// Obsidian vault folder zipped): the files are added to the vault; the answer lists what was
/// imported and what was skipped, with why.
pub async fn import(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    owner: Owner,
    req: Request,
) -> Response {
    if owner.caller.access.write != FolderSet::All {
        return insufficient_scope("write access");
    }
    let user = owner.caller.user.clone();
    let storage = state.storage.clone();
    if let Err(e) = std::fs::create_dir_all(&storage.index_base) {
        return storage_failed(e);
    }
    let upload = Upload(
        storage
            .index_base
            .join(format!(".import-{}.upload", uuid::Uuid::new_v4().simple())),
    );
    if let Err(refused) = receive(req.into_body(), &upload.0, storage.max_upload_bytes()).await {
        return refused;
    }
    // The actor stops and none starts until the files are in; the next one indexes them.
    let hold = match state.supervisor.hold_vault(&user).await {
        Ok(hold) => hold,
        Err(e) => return storage_failed(e),
    };
    let vault = storage.vault_dir(&user);
    let source = Source::Archive(upload.0.clone());
    // The hold and the upload go with the work: a request that times out must not let an
    // actor onto the vault while files are still being written.
    let result = tokio::task::spawn_blocking(move || {
        let report = account_data::import(&source, &vault, &storage);
        drop((hold, upload));
        report
    })
    .await;
    let report = match result {
        Ok(Ok(report)) => report,
        Ok(Err(ImportError::Io(e))) => return storage_failed(e),
        Ok(Err(e)) => return json_error(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
        Err(e) => return storage_failed(e),
    };
    audit_import(&state, &user, &origin, owner.via, &report);
    Json(report).into_response()
}

fn audit_import(
    state: &AppState,
    user: &vault_actors::UserId,
    origin: &Origin,
    via: &str,
    report: &account_data::ImportReport,
) {
    let detail = json!({
        "notes": report.notes(),
        "attachments": report.attachments(),
        "skipped": report.skipped.len(),
        "via": via,
    });
    state
        .audit
        .record("account_imported", Some(user.as_str()), origin, detail);
}

#[derive(Deserialize)]
pub struct DeleteAccount {
    /// The user id, typed again: nothing is deleted without it.
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /api/account/delete {confirm: "<user id>"}` from the signed-in page: remove the
/// vault, its index (sessions and history with it), every token, web session and connected
/// application of the account. Tokens issued before are refused from then on.
pub async fn delete(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    WebApi(web): WebApi,
    JsonBody(req): JsonBody<DeleteAccount>,
) -> Response {
    let user = web.caller.user.clone();
    if req.confirm.as_deref() != Some(user.as_str()) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "confirmation_required",
            "to delete the account, send confirm with your user id exactly",
        );
    }
    // Credentials first, so nothing new reaches the vault while it goes.
    if let Err(e) = state.accounts.delete_user(&user, now_secs()).await {
        return storage_failed(e);
    }
    let hold = match state.supervisor.hold_vault(&user).await {
        Ok(hold) => hold,
        Err(e) => return storage_failed(e),
    };
    let storage = state.storage.clone();
    let gone = user.clone();
    let removed = tokio::task::spawn_blocking(move || {
        let removed = storage.remove_user_files(&gone);
        drop(hold);
        removed
    })
    .await;
    match removed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return storage_failed(e),
        Err(e) => return storage_failed(e),
    }
    let detail = json!({ "vault": "removed", "index": "removed", "credentials": "removed" });
    state
        .audit
        .record("account_deleted", Some(user.as_str()), &origin, detail);
    Json(json!({ "deleted": true, "user": user.as_str() })).into_response()
}
