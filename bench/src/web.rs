//! The web app's pages as a browser gets them: sign-in through local mode's one-time link, then
//! closed-loop GETs of folder and note pages with the session cookie.
//!
//! Every client shares the one session the link gives (one person with many tabs): local mode
//! has a single user, and the link works once. Redirects are not followed, so a page that sends
//! the client back to sign-in counts as an error instead of as the sign-in page's 200.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::client::CallError;
use crate::corpus::Rng;
use crate::workload::{new_histogram, Tally};

/// The session cookie's names: plain over http, `__Host-` bound over https.
const COOKIE_NAMES: [&str; 2] = ["vault_session", "__Host-vault_session"];

/// A client for pages: redirects are answers to check, not to follow.
pub fn page_client() -> Result<reqwest::Client, CallError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(usize::MAX)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(CallError::from)
}

/// The login link on the server the bench started: the banner names the server by its public
/// URL, which need not resolve from here. `http://public.example/login/local?code=x` on
/// `http://127.0.0.1:9` → `http://127.0.0.1:9/login/local?code=x`.
pub fn rebase(link: &str, base: &str) -> Option<String> {
    let (_, rest) = link.split_once("://")?;
    let path = &rest[rest.find('/')?..];
    Some(format!("{}{path}", base.trim_end_matches('/')))
}

/// `name=value` of the session cookie among `Set-Cookie` values.
pub fn session_cookie<'a>(set_cookies: impl IntoIterator<Item = &'a str>) -> Option<String> {
    set_cookies.into_iter().find_map(|header| {
        let pair = header.split(';').next()?.trim();
        let (name, value) = pair.split_once('=')?;
        (COOKIE_NAMES.contains(&name) && !value.is_empty()).then(|| pair.to_string())
    })
}

/// Signs in through the one-time link; returns the `Cookie` header value for pages.
pub async fn sign_in(http: &reqwest::Client, link: &str, base: &str) -> Result<String, CallError> {
    let url = rebase(link, base)
        .ok_or_else(|| CallError::BadResponse(format!("cannot read the login link {link}")))?;
    let resp = http.get(&url).send().await?;
    if !resp.status().is_redirection() {
        return Err(CallError::Status(resp.status().as_u16()));
    }
    let cookies = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    session_cookie(cookies).ok_or_else(|| {
        let to = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok());
        CallError::BadResponse(format!(
            "login link answered {} (to {to:?}) without a session cookie",
            resp.status()
        ))
    })
}

/// A note path as a URL path: everything but unreserved characters and `/` percent-encoded.
pub fn url_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The folder holding the most notes directly in it (not the root), with that count.
pub fn fullest_folder<'a>(paths: impl IntoIterator<Item = &'a str>) -> Option<(String, usize)> {
    let mut direct: BTreeMap<&str, usize> = BTreeMap::new();
    for path in paths {
        if let Some((folder, _)) = path.rsplit_once('/') {
            *direct.entry(folder).or_default() += 1;
        }
    }
    most(direct)
}

/// The top-level folder with the most notes anywhere under it, with that count.
pub fn largest_top_folder<'a>(paths: impl IntoIterator<Item = &'a str>) -> Option<(String, usize)> {
    let mut under: BTreeMap<&str, usize> = BTreeMap::new();
    for path in paths {
        if let Some((top, _)) = path.split_once('/') {
            *under.entry(top).or_default() += 1;
        }
    }
    most(under)
}

/// The entry with the highest count; the first by name among equals, so the choice is stable.
fn most(counts: BTreeMap<&str, usize>) -> Option<(String, usize)> {
    counts
        .into_iter()
        .rev()
        .max_by_key(|&(_, n)| n)
        .map(|(f, n)| (f.to_string(), n))
}

/// What one client requests.
#[derive(Clone, Debug)]
pub enum Pages {
    /// The same URL path every time.
    Fixed(String),
    /// A random one of these URL paths each time.
    AnyOf(Arc<Vec<String>>),
}

impl Pages {
    fn pick(&self, rng: &mut Rng) -> &str {
        match self {
            Pages::Fixed(path) => path,
            Pages::AnyOf(paths) => &paths[rng.below(paths.len())],
        }
    }
}

/// Where pages come from and as whom.
#[derive(Clone)]
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
}

impl Browser {
    /// GETs `path`; anything but a 200 with HTML is an error. Returns the answer's size.
    pub async fn get(&self, path: &str) -> Result<usize, CallError> {
        Ok(self.answer(path).await?.bytes().await?.len())
    }

    /// GETs `path` like [`Browser::get`] and keeps the page.
    pub async fn fetch(&self, path: &str) -> Result<Vec<u8>, CallError> {
        Ok(self.answer(path).await?.bytes().await?.to_vec())
    }

    /// The response to a GET of `path`, if it is a 200 with HTML, its body still to read.
    async fn answer(&self, path: &str) -> Result<reqwest::Response, CallError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await?;
        let status = resp.status();
        let html = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html"));
        if status == StatusCode::OK && html {
            return Ok(resp);
        }
        // Read to the end all the same, so the connection can be reused.
        let _ = resp.bytes().await;
        Err(if status != StatusCode::OK {
            CallError::Status(status.as_u16())
        } else {
            CallError::BadResponse("a 200 that is not text/html".into())
        })
    }
}

/// Notes a page links to: the entries of a folder listing (or a note's backlinks).
pub fn note_links(html: &[u8]) -> usize {
    let needle = br#"class="note-link""#;
    html.windows(needle.len()).filter(|w| w == needle).count()
}

/// What one page kind at one concurrency produced.
pub struct PageOutcome {
    /// Successful requests started in the measured window.
    pub ok: u64,
    /// Their bytes, for the mean page size.
    pub bytes: u64,
    pub hist: Histogram<u64>,
    pub measured: Duration,
    /// Every failure, warm-up included.
    pub errors: Tally,
}

impl PageOutcome {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.measured.as_secs_f64()
    }
}

/// Drives `concurrency` closed-loop clients over `pages` for `warmup` then `measure`.
pub async fn drive(
    browser: &Browser,
    pages: &Pages,
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
    seed: u64,
) -> PageOutcome {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + measure;
    let mut clients = JoinSet::new();
    for i in 0..concurrency {
        let browser = browser.clone();
        let pages = pages.clone();
        let mut rng = Rng::new(seed ^ (i as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
        clients.spawn(async move {
            let mut hist = new_histogram();
            let (mut ok, mut bytes) = (0u64, 0u64);
            let mut errors = Tally::default();
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                match browser.get(pages.pick(&mut rng)).await {
                    Ok(size) if sent >= measure_from => {
                        hist.saturating_record(sent.elapsed().as_micros() as u64);
                        ok += 1;
                        bytes += size as u64;
                    }
                    Ok(_) => {}
                    Err(e) => errors.add(&e),
                }
            }
            (hist, ok, bytes, errors)
        });
    }
    let mut outcome = PageOutcome {
        ok: 0,
        bytes: 0,
        hist: new_histogram(),
        measured: measure,
        errors: Tally::default(),
    };
    while let Some(joined) = clients.join_next().await {
        match joined {
            Ok((hist, ok, bytes, errors)) => {
                // Same bounds on both sides, so adding cannot fail.
                let _ = outcome.hist.add(&hist);
                outcome.ok += ok;
                outcome.bytes += bytes;
                outcome.errors.merge(errors);
            }
            Err(e) => outcome
                .errors
                .add(&CallError::Transport(format!("task: {e}"))),
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_link_is_rebased_on_the_server() {
        assert_eq!(
            rebase(
                "http://bench.invalid/login/local?code=Ab_9-x",
                "http://127.0.0.1:4321/"
            )
            .as_deref(),
            Some("http://127.0.0.1:4321/login/local?code=Ab_9-x")
        );
        assert_eq!(
            rebase(
                "https://h.example:8443/login/local?code=1",
                "http://127.0.0.1:1"
            )
            .as_deref(),
            Some("http://127.0.0.1:1/login/local?code=1")
        );
        assert_eq!(rebase("no link here", "http://127.0.0.1:1"), None);
        assert_eq!(rebase("http://host-only", "http://127.0.0.1:1"), None);
    }

    #[test]
    fn finds_the_session_cookie() {
        let headers = [
            "vault_login=; Path=/login; HttpOnly; Max-Age=0; SameSite=Lax",
            "vault_session=s3cr3t; Path=/; HttpOnly; SameSite=Lax",
        ];
        assert_eq!(
            session_cookie(headers).as_deref(),
            Some("vault_session=s3cr3t")
        );
        let secure = ["__Host-vault_session=abc; Path=/; Secure; HttpOnly"];
        assert_eq!(
            session_cookie(secure).as_deref(),
            Some("__Host-vault_session=abc")
        );
        assert_eq!(session_cookie(["vault_session=; Max-Age=0"]), None);
        assert_eq!(session_cookie(["other=1", "vault_sessionx=2"]), None);
    }

    #[test]
    fn url_paths_are_percent_encoded() {
        assert_eq!(
            url_path("area-3/topic-12/note-00042.md"),
            "area-3/topic-12/note-00042.md"
        );
        assert_eq!(url_path("My notes/a b#?.md"), "My%20notes/a%20b%23%3F.md");
        assert_eq!(url_path("café.md"), "caf%C3%A9.md");
    }

    #[test]
    fn picks_the_fullest_and_the_largest_folders() {
        let paths = [
            "top.md", "a/1.md", "a/x/2.md", "a/x/3.md", "a/y/4.md", "b/5.md", "b/6.md", "c/7.md",
            "c/8.md",
        ];
        // a/x, b and c each hold two notes directly: the first by name wins.
        assert_eq!(fullest_folder(paths), Some(("a/x".to_string(), 2)));
        assert_eq!(largest_top_folder(paths), Some(("a".to_string(), 4)));
        assert_eq!(fullest_folder(["top.md"]), None);
    }

    #[test]
    fn counts_listed_notes() {
        let html = br#"<li><a class="note-link" href="/note/a.md">A</a></li>
            <li><a class="folder-link" href="/browse/x">x/</a></li>
            <li><a class="note-link" href="/note/b.md">B</a></li>"#;
        assert_eq!(note_links(html), 2);
        assert_eq!(note_links(b""), 0);
    }
}
