//! The page script's JSON API: save and delete a note (tool calls with the version
//! precondition) and render a preview. Errors are `{code, message}` with the status from
//! [`super::tool::status_for_code`].

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::render::{render_markdown, Wikilinks};
use super::tool::{self, Failure};
use crate::http::extract::BadJson;
use crate::http::session::WebApi;
use crate::http::AppState;

/// A `{code, message}` error body with `status`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

/// The answer for a failed tool call; a conflict also carries the note as it is now.
async fn failure(state: &AppState, api: &WebApi, path: &str, f: Failure) -> Response {
    let mut body = match &f {
        Failure::Tool { details, .. } if details.is_object() => details.clone(),
        _ => json!({}),
    };
    body["code"] = json!(f.code());
    body["message"] = json!(f.message());
    if f.is("conflict") {
        // The conflict screen shows both versions; `null` when the note is gone.
        body["current"] =
            tool::call_value(state, &api.0.caller, "read_note", json!({ "path": path }))
                .await
                .unwrap_or(Value::Null);
    }
    let mut resp = (f.status(), Json(body)).into_response();
    if let Some(secs) = f.retry_after() {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Read a JSON body within the request size and nesting limits; a bad one is a 400 (413 when
/// too large) in our shape (axum's own `Json` rejection is plain text).
async fn read_json<T: DeserializeOwned>(
    state: &AppState,
    req: Request<Body>,
) -> Result<T, Response> {
    crate::http::extract::read_json(state, req.into_body())
        .await
        .map_err(|bad| {
            let code = match bad {
                BadJson::TooLarge(_) => "too_large",
                _ => "invalid_arguments",
            };
            error(bad.status(), code, &bad.message())
        })
}

#[derive(Deserialize)]
struct Save {
    path: String,
    body: String,
    title: Option<String>,
    /// Required: the browser always knows which version it edited (0 for a new note), and a
    /// save without it could silently overwrite a change made elsewhere.
    if_version: u64,
}

/// `POST /api/notes {path, body, title?, if_version}`: write the note; 200 with what was
/// written, 409 with the current note on a version conflict.
pub async fn save(State(state): State<AppState>, api: WebApi, req: Request<Body>) -> Response {
    let save: Save = match read_json(&state, req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let mut args = json!({ "path": save.path, "body": save.body, "if_version": save.if_version });
    if let Some(title) = save
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        args["title"] = json!(title);
    }
    match tool::call_value(&state, &api.0.caller, "write_note", args).await {
        Ok(written) => Json(written).into_response(),
        Err(f) => failure(&state, &api, &save.path, f).await,
    }
}

#[derive(Deserialize)]
struct Delete {
    path: String,
    if_version: u64,
}

/// `DELETE /api/notes {path, if_version}`.
pub async fn delete(State(state): State<AppState>, api: WebApi, req: Request<Body>) -> Response {
    let del: Delete = match read_json(&state, req).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let args = json!({ "path": del.path, "if_version": del.if_version });
    match tool::call_value(&state, &api.0.caller, "delete_note", args).await {
        Ok(deleted) => Json(deleted).into_response(),
        Err(f) => failure(&state, &api, &del.path, f).await,
    }
}

#[derive(Deserialize)]
struct Preview {
    body: String,
}

/// `POST /api/preview {body}` → `{html}`: the editor's live preview, through the same
/// sanitizing renderer as the note page.
pub async fn preview(State(state): State<AppState>, _api: WebApi, req: Request<Body>) -> Response {
    let preview: Preview = match read_json(&state, req).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    // Rendering a large note takes a few milliseconds: off the async workers.
    match tokio::task::spawn_blocking(move || {
        render_markdown(&preview.body, &Wikilinks::Unresolved)
    })
    .await
    {
        Ok(html) => Json(json!({ "html": html })).into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the preview could not be rendered",
        ),
    }
}
