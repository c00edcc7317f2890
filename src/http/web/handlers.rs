//! The page handlers: each reads what its page needs through tool calls (one for a folder,
//! three for a note) and hands the data to a builder in [`super::pages`].

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::layout::{error_page, respond};
use super::pages::{self, Editing, Searched};
use super::render::{render_markdown, Wikilinks};
use super::tool::{
    self, Backlinks, Failure, FolderPage, Links, NoteView, SearchResults, VaultUsage,
};
use crate::http::session::{safe_next, MaybeSignedIn, SignedIn, WebUser};
use crate::http::AppState;

/// Notes per folder page.
const PAGE_SIZE: u32 = 200;
/// Results per search.
const SEARCH_LIMIT: u32 = 50;

/// The page for a failed tool call.
fn failure_page(user: &WebUser, failure: &Failure) -> Response {
    let status = failure.status();
    let heading = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
        s if s.is_client_error() => "That did not work",
        _ => "Something went wrong",
    };
    error_page(
        Some(user),
        status,
        heading,
        &failure.message(),
        failure.retry_after(),
    )
}

#[derive(Deserialize)]
pub struct HomeQuery {
    next: Option<String>,
}

/// `GET /`: the sign-in page, or straight to the notes when signed in.
pub async fn home(
    State(state): State<AppState>,
    MaybeSignedIn(user): MaybeSignedIn,
    Query(q): Query<HomeQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if user.is_some() {
        return Redirect::to(&next).into_response();
    }
    respond(StatusCode::OK, pages::sign_in_page(state.login, &next))
}

#[derive(Deserialize)]
pub struct BrowseQuery {
    cursor: Option<String>,
}

/// `GET /browse`: the top of the vault.
pub async fn browse_root(
    state: State<AppState>,
    user: SignedIn,
    query: Query<BrowseQuery>,
) -> Response {
    browse_folder(state, user, String::new(), query).await
}

/// `GET /browse/{*folder}`.
pub async fn browse(
    state: State<AppState>,
    user: SignedIn,
    Path(folder): Path<String>,
    query: Query<BrowseQuery>,
) -> Response {
    browse_folder(state, user, folder, query).await
}

async fn browse_folder(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    folder: String,
    Query(q): Query<BrowseQuery>,
) -> Response {
    let folder = folder.trim_matches('/').to_string();
    let mut args = json!({ "recursive": false, "limit": PAGE_SIZE });
    if !folder.is_empty() {
        args["folder"] = json!(folder);
    }
    if let Some(cursor) = &q.cursor {
        args["cursor"] = json!(cursor);
    }
    match tool::call::<FolderPage>(&state, &user.caller, "list_notes", args).await {
        Ok(listing) => respond(
            StatusCode::OK,
            pages::browse_page(&user, &folder, &listing, q.cursor.as_deref()),
        ),
        Err(f) => failure_page(&user, &f),
    }
}

/// `GET /note/{*path}`: the note rendered, with resolved wikilinks and backlinks.
pub async fn note(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(path): Path<String>,
) -> Response {
    let caller = &user.caller;
    let args = json!({ "path": path });
    // Three requests queued together: the actor answers them back to back.
    let (note, links, backlinks) = tokio::join!(
        tool::call::<NoteView>(&state, caller, "read_note", args.clone()),
        tool::call::<Links>(&state, caller, "get_links", args.clone()),
        tool::call::<Backlinks>(&state, caller, "get_backlinks", args),
    );
    let note = match note {
        Ok(note) => note,
        Err(f) if f.is("not_found") => return not_found(&user, &path),
        Err(f) => return failure_page(&user, &f),
    };
    // Links and backlinks are extras: a failure there shows the note without them.
    let targets: HashMap<String, Option<String>> = links
        .map(|l| {
            l.links
                .into_iter()
                .map(|l| (l.target, l.resolved))
                .collect()
        })
        .unwrap_or_default();
    let backlinks = backlinks.map(|b| b.backlinks).unwrap_or_default();
    let title = note.title.clone();
    let Some((note, html)) = render_off_thread(note, move |body| {
        let below_title = pages::body_below_title(&title, body);
        render_markdown(below_title, &Wikilinks::Resolved(&targets))
    })
    .await
    else {
        return failure_page(&user, &Failure::Unexpected);
    };
    respond(
        StatusCode::OK,
        pages::note_page(&user, &note, &html, &backlinks),
    )
}

/// Render a note's body on a blocking thread: a long note takes milliseconds to render and
/// sanitize, which the async workers serving everyone else should not spend. `None` if the
/// renderer panicked.
async fn render_off_thread(
    note: NoteView,
    render: impl FnOnce(&str) -> String + Send + 'static,
) -> Option<(NoteView, String)> {
    tokio::task::spawn_blocking(move || {
        let html = render(&note.body);
        (note, html)
    })
    .await
    .ok()
}

fn not_found(user: &WebUser, path: &str) -> Response {
    error_page(
        Some(user),
        StatusCode::NOT_FOUND,
        "Note not found",
        &format!("There is no note {path:?} in your vault. It may have been moved or deleted."),
        None,
    )
}

/// `GET /edit/{*path}`: the editor on an existing note.
pub async fn edit(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(path): Path<String>,
) -> Response {
    match tool::call::<NoteView>(&state, &user.caller, "read_note", json!({ "path": path })).await {
        Ok(note) => {
            let Some((note, preview)) =
                render_off_thread(note, |body| render_markdown(body, &Wikilinks::Unresolved)).await
            else {
                return failure_page(&user, &Failure::Unexpected);
            };
            respond(
                StatusCode::OK,
                pages::editor_page(
                    &user,
                    &Editing::Existing {
                        note: &note,
                        preview_html: &preview,
                    },
                ),
            )
        }
        Err(f) if f.is("not_found") => not_found(&user, &path),
        Err(f) => failure_page(&user, &f),
    }
}

#[derive(Deserialize)]
pub struct NewQuery {
    folder: Option<String>,
    path: Option<String>,
}

/// `GET /new?folder=…&path=…`: the editor on a note to create.
pub async fn new_note(SignedIn(user): SignedIn, Query(q): Query<NewQuery>) -> Response {
    let path = match (q.path, q.folder) {
        (Some(path), _) if !path.trim().is_empty() => path.trim().to_string(),
        (_, Some(folder)) if !folder.trim_matches('/').is_empty() => {
            format!("{}/", folder.trim_matches('/'))
        }
        _ => String::new(),
    };
    respond(
        StatusCode::OK,
        pages::editor_page(&user, &Editing::New { path: &path }),
    )
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    tag: Option<String>,
}

#[derive(Deserialize)]
struct TagList {
    tags: Vec<TagCount>,
}

#[derive(Deserialize)]
struct TagCount {
    tag: String,
    count: u64,
}

/// `GET /search?q=…&tag=…`.
pub async fn search(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Query(q): Query<SearchQuery>,
) -> Response {
    let query = q.q.trim();
    let tag = q
        .tag
        .as_deref()
        .map(|t| t.trim().trim_start_matches('#'))
        .filter(|t| !t.is_empty());
    let caller = &user.caller;
    if query.is_empty() && tag.is_none() {
        let tags: Vec<(String, u64)> =
            match tool::call::<TagList>(&state, caller, "get_tags", json!({})).await {
                Ok(list) => list.tags.into_iter().map(|t| (t.tag, t.count)).collect(),
                Err(f) => return failure_page(&user, &f),
            };
        let page = pages::search_page(&user, "", None, &Searched::Nothing { tags: &tags });
        return respond(StatusCode::OK, page);
    }
    let mut args = json!({ "query": query, "limit": SEARCH_LIMIT });
    if let Some(tag) = tag {
        args["tags"] = json!([tag]);
    }
    let mut outcome =
        tool::call::<SearchResults>(&state, caller, "search_notes", args.clone()).await;
    // A tag alone is no query for the full-text search: look for the tag's words among the
    // notes carrying it (notes tagged only in their frontmatter without the word in their text
    // are missed until the search accepts a tag filter without words).
    if query.is_empty() {
        if let (Err(f), Some(tag)) = (&outcome, tag) {
            if f.is("invalid_query") || f.is("invalid_arguments") {
                args["query"] = json!(tag.replace(['/', '-', '_'], " "));
                outcome = tool::call::<SearchResults>(&state, caller, "search_notes", args).await;
            }
        }
    }
    match outcome {
        Ok(found) => respond(
            StatusCode::OK,
            pages::search_page(&user, query, tag, &Searched::Results(&found.results)),
        ),
        Err(f) if f.status() == StatusCode::BAD_REQUEST => {
            let message = f.message();
            respond(
                StatusCode::BAD_REQUEST,
                pages::search_page(&user, query, tag, &Searched::Refused(&message)),
            )
        }
        Err(f) => failure_page(&user, &f),
    }
}

/// `GET /account`: profile, the vault's use of its quotas (`vault_info`) and MCP tokens (the
/// token list is loaded by the script).
pub async fn account(State(state): State<AppState>, SignedIn(user): SignedIn) -> Response {
    // The usage is an extra: without it the page still manages tokens.
    let usage = tool::call::<VaultUsage>(&state, &user.caller, "vault_info", json!({}))
        .await
        .ok();
    respond(
        StatusCode::OK,
        pages::account_page(&user, &state.public_url, usage.as_ref()),
    )
}
