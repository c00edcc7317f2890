//! The stylesheet and the script, compiled into the binary (no build step, no CDN), served
//! under a URL carrying a hash of their content so browsers may cache them for good.

use axum::extract::Query;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

const APP_CSS: &str = include_str!("assets/app.css");
const APP_JS: &str = include_str!("assets/app.js");

/// FNV-1a of both files, computed at compile time: a new build with changed assets gets new
/// URLs, so a cached old copy is never used with new pages.
const VERSION: u64 = fnv1a(
    APP_JS.as_bytes(),
    fnv1a(APP_CSS.as_bytes(), 0xcbf2_9ce4_8422_2325),
);

const fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The asset version as it appears in URLs.
pub fn version() -> String {
    format!("{VERSION:016x}")
}

pub fn css_url() -> String {
    format!("/assets/app.css?v={}", version())
}

pub fn js_url() -> String {
    format!("/assets/app.js?v={}", version())
}

#[derive(Deserialize)]
pub struct Versioned {
    v: Option<String>,
}

pub async fn css(Query(q): Query<Versioned>) -> Response {
    serve(APP_CSS, "text/css; charset=utf-8", q.v.as_deref())
}

pub async fn js(Query(q): Query<Versioned>) -> Response {
    serve(APP_JS, "text/javascript; charset=utf-8", q.v.as_deref())
}

fn serve(body: &'static str, content_type: &'static str, asked: Option<&str>) -> Response {
    // Only the URL naming this exact content may be cached for good; any other (an old page
    // asking for an old version) is revalidated each time.
    let cache = if asked == Some(version().as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_urls_carry_the_content_version() {
        assert!(css_url().starts_with("/assets/app.css?v="));
        assert_eq!(version().len(), 16);
        assert_ne!(fnv1a(b"a", 1), fnv1a(b"b", 1));
    }

    #[test]
    fn script_has_no_inline_handlers_or_eval() {
        // CSP forbids them anyway; this keeps them from creeping in unnoticed.
        assert!(!APP_JS.contains("eval("));
        assert!(
            !APP_JS.contains("innerHTML") && !APP_JS.contains("document.write"),
            "build DOM nodes; rendered HTML goes through the inert DOMParser"
        );
    }
}
