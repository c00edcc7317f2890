//! The web app people use in a browser: server-rendered pages (folders, notes, editor,
//! search, account) plus one small script, with the notes reached only through tool calls to
//! the user's actor — the same path as MCP, so a change made here reaches subscribed MCP
//! sessions like any other.
//!
//! - [`handlers`] read what a page needs and [`pages`] turn it into HTML (inside
//!   [`layout`]'s frame); [`api`] is the script's JSON API (save, delete, preview).
//! - [`render`] is the only markdown renderer, and it sanitizes: a note cannot run code here.
//! - [`tool`] is the only way to the data, and the one mapping from tool errors to statuses.
//! - [`assets`] serves the embedded stylesheet and script.
//!
//! Every response carries a strict Content-Security-Policy (no inline script or style at all).

mod api;
mod assets;
mod handlers;
mod layout;
mod pages;
mod render;
mod tool;

use axum::routing::{get, post};
use axum::{middleware, Router};

use crate::http::AppState;

pub use layout::{security_headers, CSP};

/// The web app's routes, with the security headers on every response.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(handlers::home))
        .route("/browse", get(handlers::browse_root))
        .route("/browse/{*folder}", get(handlers::browse))
        .route("/note/{*path}", get(handlers::note))
        .route("/edit/{*path}", get(handlers::edit))
        .route("/new", get(handlers::new_note))
        .route("/search", get(handlers::search))
        .route("/account", get(handlers::account))
        .route("/api/notes", post(api::save).delete(api::delete))
        .route("/api/preview", post(api::preview))
        .route("/assets/app.css", get(assets::css))
        .route("/assets/app.js", get(assets::js))
        .layer(middleware::from_fn(security_headers))
}
