//! OAuth Client ID Metadata Documents: a client whose `client_id` is an https URL describes
//! itself in a JSON document at that URL (name, redirect URIs). The server fetches it when the
//! client first shows up and keeps it for a while.
//!
//! The URL comes from whoever sends the request, so the fetch is fenced: https only, no
//! redirects, a timeout, a size limit, and never to a loopback, private, link-local or other
//! non-public address (the name is resolved first and the connection pinned to the checked
//! address, so a second lookup cannot point it elsewhere). Tests may allow plain http and
//! loopback for named `host:port` values ([`crate::config::OAuthConfig::metadata_http_hosts`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Deserialize;

/// How long a fetched document is used before it is fetched again.
const CACHE_TTL: Duration = Duration::from_secs(300);
/// Documents remembered at most.
const CACHE_ENTRIES: usize = 1024;
/// Largest document accepted.
const MAX_BYTES: usize = 64 * 1024;
/// Longest wait for a document.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the server uses of a client's metadata document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
}

/// Why a metadata document cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    #[error("the client_id URL is not acceptable: {0}")]
    Url(String),
    #[error("the client_id URL points at a non-public address ({0}); refused")]
    Address(String),
    #[error("fetching the client metadata document failed: {0}")]
    Fetch(String),
    #[error("the client metadata document is invalid: {0}")]
    Document(String),
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

/// Fetches and caches client metadata documents.
pub struct MetadataFetcher {
    /// `host:port` values allowed plain http and non-public addresses (tests).
    relaxed_hosts: Vec<String>,
    cache: Mutex<HashMap<String, (Instant, ClientMetadata)>>,
}

impl MetadataFetcher {
    pub fn new(relaxed_hosts: Vec<String>) -> Self {
        MetadataFetcher {
            relaxed_hosts,
            cache: Mutex::default(),
        }
    }

    /// Is `client_id` a metadata document URL (rather than a registered client's id)?
    pub fn is_metadata_url(client_id: &str) -> bool {
        client_id.starts_with("https://") || client_id.starts_with("http://")
    }

    /// The document at `client_id`, from the cache or fetched now.
    pub async fn fetch(&self, client_id: &str) -> Result<ClientMetadata, MetadataError> {
        if let Some((at, doc)) = self.lock().get(client_id) {
            if at.elapsed() < CACHE_TTL {
                return Ok(doc.clone());
            }
        }
        let doc = self.fetch_fresh(client_id).await?;
        let mut cache = self.lock();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(client_id.to_string(), (Instant::now(), doc.clone()));
        Ok(doc)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, ClientMetadata)>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn fetch_fresh(&self, client_id: &str) -> Result<ClientMetadata, MetadataError> {
        let url = Url::parse(client_id).map_err(|e| MetadataError::Url(e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| MetadataError::Url("no host".into()))?
            .to_string();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| MetadataError::Url("no port".into()))?;
        let relaxed = self
            .relaxed_hosts
            .iter()
            .any(|h| *h == format!("{host}:{port}"));
        match url.scheme() {
            "https" => {}
            "http" if relaxed => {}
            s => {
                return Err(MetadataError::Url(format!(
                    "scheme {s} (https is required)"
                )))
            }
        }
        if url.path() == "/" || url.path().is_empty() {
            return Err(MetadataError::Url("it must have a path".into()));
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(MetadataError::Url(
                "no fragment or credentials allowed".into(),
            ));
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| MetadataError::Fetch(format!("cannot resolve {host}: {e}")))?
            .collect();
        let Some(first) = addrs.first().copied() else {
            return Err(MetadataError::Fetch(format!("{host} has no address")));
        };
        if !relaxed {
            if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(MetadataError::Address(bad.ip().to_string()));
            }
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .no_proxy()
            // Connect to the address just checked, not to whatever a second lookup says.
            .resolve(&host, first)
            .build()
            .map_err(|e| MetadataError::Fetch(e.to_string()))?;
        let mut resp = client
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| MetadataError::Fetch(e.to_string()))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(MetadataError::Fetch(format!("status {}", resp.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| MetadataError::Fetch(e.to_string()))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(MetadataError::Document(format!(
                    "over the limit of {MAX_BYTES} bytes"
                )));
            }
        }
        let doc: Document =
            serde_json::from_slice(&body).map_err(|e| MetadataError::Document(e.to_string()))?;
        check_document(client_id, &host, doc)
    }
}

fn check_document(
    client_id: &str,
    host: &str,
    doc: Document,
) -> Result<ClientMetadata, MetadataError> {
    if doc.client_id != client_id {
        return Err(MetadataError::Document(format!(
            "its client_id {:?} is not the URL it was fetched from",
            doc.client_id
        )));
    }
    if doc.redirect_uris.is_empty() {
        return Err(MetadataError::Document("redirect_uris is empty".into()));
    }
    match doc.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(other) => {
            return Err(MetadataError::Document(format!(
                "token_endpoint_auth_method {other:?}: only public clients (none) are supported"
            )))
        }
    }
    let name = doc
        .client_name
        .map(|n| {
            n.chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect::<String>()
        })
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| host.to_string());
    Ok(ClientMetadata {
        client_id: client_id.to_string(),
        name,
        redirect_uris: doc.redirect_uris,
    })
}

/// An address on the public internet (not loopback, private, link-local, shared, multicast,
/// unspecified or otherwise reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn loopback_and_plain_http_are_refused_unless_relaxed_for_the_host() {
        let strict = MetadataFetcher::new(vec![]);
        let err = strict
            .fetch("http://127.0.0.1:9/client.json")
            .await
            .unwrap_err();
        assert!(matches!(err, MetadataError::Url(_)), "{err}");
        let err = strict
            .fetch("https://127.0.0.1:9/client.json")
            .await
            .unwrap_err();
        assert_eq!(err, MetadataError::Address("127.0.0.1".into()));
        let err = strict
            .fetch("https://localhost:9/client.json")
            .await
            .unwrap_err();
        assert!(matches!(err, MetadataError::Address(_)), "{err}");
        let err = strict.fetch("https://example.com/").await.unwrap_err();
        assert!(matches!(err, MetadataError::Url(_)), "{err}");
    }

    #[test]
    fn a_document_must_name_itself_and_its_redirects() {
        let doc = |id: &str, uris: Vec<&str>, auth: Option<&str>| Document {
            client_id: id.into(),
            client_name: Some("App\u{7}".into()),
            redirect_uris: uris.into_iter().map(String::from).collect(),
            token_endpoint_auth_method: auth.map(String::from),
        };
        let url = "https://app.example/oauth/client.json";
        let ok = check_document(
            url,
            "app.example",
            doc(url, vec!["https://app.example/cb"], None),
        );
        assert_eq!(ok.unwrap().name, "App");
        assert!(
            check_document(url, "h", doc("https://other/x", vec!["https://a/cb"], None)).is_err()
        );
        assert!(check_document(url, "h", doc(url, vec![], None)).is_err());
        assert!(check_document(
            url,
            "h",
            doc(url, vec!["https://a/cb"], Some("private_key_jwt"))
        )
        .is_err());
    }
}
