//! The frame every page shares (head, header with navigation, search box and sign-out, the
//! skip link) and the headers every response of the web app carries.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::assets;
use super::render::encode_path;
use crate::http::session::WebUser;

/// The Content-Security-Policy of every page: scripts and styles only from our own files (no
/// inline code, so an injected `<script>` or `style=` does nothing), images from us or https,
/// and framing only by ourselves and Hugging Face (a Space is shown inside huggingface.co).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' https: data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
frame-ancestors 'self' https://huggingface.co";

/// Middleware adding the security headers to every response of the web app. Public so the
/// sign-in pages served elsewhere can use the same policy.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    // A page may narrow or widen one directive itself (the OAuth consent page lets its form
    // lead to the client's redirect); every other page gets the app's policy.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // Pages hold private notes and the CSRF token: never kept by a shared cache or on disk.
    // Assets set their own (long) policy.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// What the header's search box shows.
#[derive(Default)]
pub struct SearchBox<'a> {
    pub query: &'a str,
    /// A tag filter kept while refining a tag search.
    pub tag: Option<&'a str>,
}

/// A full page: `title` in the tab, `main` as the content, the signed-in header when there is
/// a user.
pub fn page(title: &str, user: Option<&WebUser>, search: &SearchBox<'_>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · vault" }
                @if let Some(user) = user {
                    meta name="csrf-token" content=(user.csrf);
                }
                // No favicon file: an empty one keeps browsers from asking for /favicon.ico.
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(assets::css_url());
                script src=(assets::js_url()) defer {}
            }
            body {
                a.skip-link href="#main" { "Skip to content" }
                header.site-header {
                    a.brand href=(if user.is_some() { "/browse" } else { "/" }) { "vault" }
                    @if let Some(user) = user {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/browse" { "Notes" } }
                                li { a href="/search" { "Search" } }
                                li { a href="/account" { "Account" } }
                            }
                        }
                        form.search-form role="search" method="get" action="/search" {
                            label.visually-hidden for="search-input" { "Search notes" }
                            input #search-input type="search" name="q" value=(search.query)
                                placeholder="Search  ( / )" autocomplete="off";
                            @if let Some(tag) = search.tag {
                                input type="hidden" name="tag" value=(tag);
                            }
                            button type="submit" { "Search" }
                        }
                        div.user {
                            @if let Some(avatar) = user.avatar.as_deref().filter(|a| a.starts_with("https://")) {
                                img.avatar src=(avatar) alt="" width="24" height="24";
                            }
                            span.username { (user.username) }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(user.csrf);
                                button #sign-out type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    (main)
                }
            }
        }
    }
}

/// An HTML response with `status`.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// A page saying something went wrong, with the status it is sent with.
pub fn error_page(
    user: Option<&WebUser>,
    status: StatusCode,
    heading: &str,
    message: &str,
    retry_after: Option<u64>,
) -> Response {
    let markup = page(
        heading,
        user,
        &SearchBox::default(),
        html! {
            section.error-page {
                h1 { (heading) }
                p { (message) }
                p {
                    @if user.is_some() {
                        a href="/browse" { "Back to your notes" }
                    } @else {
                        a href="/" { "Back to the start page" }
                    }
                }
            }
        },
    );
    let mut resp = respond(status, markup);
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(
            HeaderName::from_static("retry-after"),
            HeaderValue::from(secs),
        );
    }
    resp
}

/// The folder part of a note path (`a/b` for `a/b/c.md`, empty at the top).
pub fn folder_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(folder, _)| folder)
}

/// The URL of a folder's page.
pub fn folder_url(folder: &str) -> String {
    if folder.is_empty() {
        "/browse".to_string()
    } else {
        format!("/browse/{}", encode_path(folder))
    }
}

/// The URL of a note's page.
pub fn note_url(path: &str) -> String {
    format!("/note/{}", encode_path(path))
}

/// Breadcrumbs from the top of the vault down to `folder`; the last is the current place
/// unless `current_is_folder` is false (a note page, whose note follows).
pub fn breadcrumbs(folder: &str, current_is_folder: bool) -> Markup {
    let parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    html! {
        nav.breadcrumbs aria-label="Breadcrumbs" {
            ol {
                @if parts.is_empty() && current_is_folder {
                    li { span aria-current="page" { "All notes" } }
                } @else {
                    li { a.folder-link href="/browse" { "All notes" } }
                }
                @for (i, part) in parts.iter().enumerate() {
                    @let is_current = current_is_folder && i + 1 == parts.len();
                    li {
                        @if is_current {
                            span aria-current="page" { (part) }
                        } @else {
                            a.folder-link href=(folder_url(&parts[..=i].join("/"))) { (part) }
                        }
                    }
                }
            }
        }
    }
}

/// A timestamp as stored (RFC 3339) shown to the minute, with the full value machine-readable.
pub fn timestamp(value: Option<&str>) -> Markup {
    match value {
        Some(v) => {
            let shown = match (v.get(..10), v.get(10..11), v.get(11..16)) {
                (Some(date), Some("T"), Some(time)) => format!("{date} {time}"),
                _ => v.to_string(),
            };
            html! { time datetime=(v) { (shown) } }
        }
        None => html! { span.muted { "—" } },
    }
}
