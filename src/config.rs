//! The process configuration: embedded defaults (`config.toml` at the repository root, compiled
//! in), an optional user file, environment variables and command-line flags, in rising order of
//! precedence. An invalid value stops start-up with the offending key named.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The defaults, documented key by key in the file itself.
pub const DEFAULTS: &str = include_str!("../config.toml");

/// Single user on a laptop, or many users on a Hugging Face Space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Local,
    Space,
}

/// Every setting, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub vault_base: PathBuf,
    pub index_base: PathBuf,
    /// Empty until the listener is bound, when it defaults to `http://HOST:PORT`.
    pub public_url: Option<String>,
    pub allowed_origins: Vec<String>,
    pub session_ttl: Duration,
    pub actor_idle_timeout: Duration,
    pub token_ttl: Duration,
    pub request_timeout: Duration,
    pub max_in_flight: usize,
    pub max_live_actors: usize,
    pub confirm_deletes: bool,
    /// Watch open vaults for changes made by other programs (live index updates).
    pub watch_files: bool,
    pub client_request_timeout: Duration,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// From `JWT_SECRET_KEY` only: secrets do not belong in files that get committed.
    pub jwt_secret: Option<String>,
    pub max_note_bytes: usize,
    pub max_body_bytes: usize,
    pub max_json_depth: usize,
    pub max_query_chars: usize,
    pub search_memory_bytes: usize,
    pub max_notes_per_vault: usize,
    pub max_vault_bytes: usize,
    pub max_sessions_per_user: usize,
    /// Enforced by the token API (the front), so not among the actors' settings.
    pub max_tokens_per_user: usize,
    pub history_per_note: usize,
    pub web_session_ttl: Duration,
    pub token_max_ttl: Duration,
    /// Sign-in with an OpenID provider (Hugging Face on a Space), when configured.
    pub oidc: Option<OidcConfig>,
    pub oauth: OAuthConfig,
    pub rate_limits: crate::http::limits::RateConfig,
    pub audit_max_bytes: usize,
    pub audit_keep: usize,
    /// A second listener serving only `/metrics`, without a token, for scrapers inside.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// From `METRICS_TOKEN` only (a secret): the bearer `/metrics` on the main port requires;
    /// without it that route is 404.
    pub metrics_token: Option<String>,
}

/// The authorization server's settings.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// `host:port` values allowed plain http and non-public addresses for metadata documents.
    pub metadata_http_hosts: Vec<String>,
    pub registrations_per_hour: usize,
}

/// The OpenID provider people sign in with, as a Space with `hf_oauth: true` is given it.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// `OPENID_PROVIDER_URL`: the issuer; endpoints come from its discovery document.
    pub provider_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// `OAUTH_SCOPES`, split on spaces (`openid` is always asked for).
    pub scopes: Vec<String>,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value for {key}: {value:?} ({reason})")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// The file layout of `config.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    mode: Mode,
    host: String,
    port: u16,
    data_dir: PathBuf,
    vault_base: PathBuf,
    index_base: PathBuf,
    public_url: String,
    allowed_origins: Vec<String>,
    session_ttl: String,
    actor_idle_timeout: String,
    token_ttl: String,
    request_timeout: String,
    max_in_flight: usize,
    max_live_actors: usize,
    confirm_deletes: bool,
    watch_files: bool,
    client_request_timeout: String,
    jwt: JwtSection,
    web: WebSection,
    oauth: OAuthSection,
    rate_limits: RateLimitsSection,
    audit: AuditSection,
    metrics: MetricsSection,
    limits: LimitsSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthSection {
    access_token_ttl: String,
    refresh_token_ttl: String,
    metadata_http_hosts: Vec<String>,
    registrations_per_hour: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebSection {
    session_ttl: String,
    token_max_ttl: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtSection {
    issuer: String,
    audience: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditSection {
    max_bytes: usize,
    keep: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitsSection {
    per_second: f64,
    burst: f64,
    auth_failures_per_minute: f64,
    sign_ins_per_hour: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_note_bytes: usize,
    max_body_bytes: usize,
    max_json_depth: usize,
    max_query_chars: usize,
    search_memory_bytes: usize,
    max_notes_per_vault: usize,
    max_vault_bytes: usize,
    max_sessions_per_user: usize,
    max_tokens_per_user: usize,
    history_per_note: usize,
}

/// Command-line values that override everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub mode: Option<Mode>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(value.trim()).map_err(|e| {
        invalid(
            key,
            value,
            format!("expected a duration like 30m or 7d: {e}"),
        )
    })?;
    if d.is_zero() {
        return Err(invalid(key, value, "must be longer than zero"));
    }
    Ok(d)
}

fn number<T: std::str::FromStr>(key: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, format!("expected {what}")))
}

fn non_empty(s: String) -> Option<String> {
    let t = s.trim().trim_end_matches('/').to_string();
    (!t.is_empty()).then_some(t)
}

/// Merge `over` into `base`, table by table, so a user file only needs the keys it changes.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The OpenID provider from the variables a Space receives: all of the URL, client id and
/// secret, or none of them.
fn oidc(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<OidcConfig>, ConfigError> {
    let (url, id, secret) = (
        get("OPENID_PROVIDER_URL"),
        get("OAUTH_CLIENT_ID"),
        get("OAUTH_CLIENT_SECRET"),
    );
    let (provider_url, client_id, client_secret) = match (url, id, secret) {
        (None, None, None) => return Ok(None),
        (Some(u), Some(i), Some(s)) => (u, i, s),
        (u, i, _) => {
            let missing = if u.is_none() {
                "OPENID_PROVIDER_URL"
            } else if i.is_none() {
                "OAUTH_CLIENT_ID"
            } else {
                "OAUTH_CLIENT_SECRET"
            };
            return Err(invalid(
                missing,
                "",
                "sign-in needs OPENID_PROVIDER_URL, OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET together",
            ));
        }
    };
    let provider_url = provider_url.trim().trim_end_matches('/').to_string();
    if !(provider_url.starts_with("https://") || provider_url.starts_with("http://")) {
        return Err(invalid(
            "OPENID_PROVIDER_URL",
            &provider_url,
            "expected an http:// or https:// URL",
        ));
    }
    let scopes = get("OAUTH_SCOPES")
        .unwrap_or_else(|| "openid profile".into())
        .split_whitespace()
        .map(str::to_string)
        .collect();
    Ok(Some(OidcConfig {
        provider_url,
        client_id,
        client_secret,
        scopes,
    }))
}

impl Config {
    /// Load the configuration: defaults, then `file`, then `env` (a lookup, so tests need not
    /// touch the process environment), then `flags`.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            DEFAULTS
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::File {
                    path: "config.toml (embedded)".into(),
                    reason: e.to_string(),
                })?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            let user: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::File {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    })?;
            merge(&mut table, user);
        }
        let f: FileConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::File {
                    path: file.map_or_else(|| "config.toml (embedded)".into(), Path::to_path_buf),
                    reason: e.to_string(),
                })?;

        let get = |key: &str| env(key).filter(|v| !v.is_empty());
        let mode = match (flags.mode, get("MODE")) {
            (Some(m), _) => m,
            (None, Some(v)) => match v.trim().to_ascii_lowercase().as_str() {
                "local" => Mode::Local,
                "space" => Mode::Space,
                _ => return Err(invalid("MODE", &v, "expected local or space")),
            },
            (None, None) => f.mode,
        };
        let host = flags.host.clone().or_else(|| get("HOST")).unwrap_or(f.host);
        let port = match (
            flags.port,
            get("PORT")
                .map(|v| ("PORT", v))
                .or_else(|| get("MCP_PORT").map(|v| ("MCP_PORT", v))),
        ) {
            (Some(p), _) => p,
            (None, Some((key, v))) => number(key, &v, "a port number 0-65535")?,
            (None, None) => f.port,
        };
        let data_dir = flags
            .data_dir
            .clone()
            .or_else(|| get("DATA_DIR").map(PathBuf::from))
            .unwrap_or(f.data_dir);
        let vault_base = get("VAULT_BASE_PATH")
            .map(PathBuf::from)
            .or_else(|| (!f.vault_base.as_os_str().is_empty()).then_some(f.vault_base))
            .unwrap_or_else(|| data_dir.join("vaults"));
        let index_base = get("INDEX_PATH")
            .map(PathBuf::from)
            .or_else(|| {
                get("DATABASE_PATH").map(|db| {
                    let db = PathBuf::from(db);
                    db.with_extension("")
                })
            })
            .or_else(|| (!f.index_base.as_os_str().is_empty()).then_some(f.index_base))
            .unwrap_or_else(|| data_dir.join("index"));
        let public_url = get("PUBLIC_URL")
            .or_else(|| get("SPACE_HOST").map(|h| format!("https://{h}")))
            .or_else(|| non_empty(f.public_url.clone()))
            .and_then(non_empty);
        if let Some(url) = &public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "PUBLIC_URL",
                    url,
                    "expected an http:// or https:// URL",
                ));
            }
        }
        let allowed_origins = match get("ALLOWED_ORIGINS") {
            Some(v) => v
                .split(',')
                .filter_map(|s| non_empty(s.to_string()))
                .collect(),
            None => f.allowed_origins,
        };
        let dur = |key: &str, file_value: &str| -> Result<Duration, ConfigError> {
            match get(key) {
                Some(v) => duration(key, &v),
                None => duration(&key.to_ascii_lowercase(), file_value),
            }
        };
        let num = |key: &str, file_value: usize| -> Result<usize, ConfigError> {
            let n = match get(key) {
                Some(v) => number(key, &v, "a whole number")?,
                None => file_value,
            };
            if n == 0 {
                return Err(invalid(key, "0", "must be at least 1"));
            }
            Ok(n)
        };
        Ok(Config {
            mode,
            host,
            port,
            vault_base,
            index_base,
            data_dir,
            public_url,
            allowed_origins,
            session_ttl: dur("SESSION_TTL", &f.session_ttl)?,
            actor_idle_timeout: dur("ACTOR_IDLE_TIMEOUT", &f.actor_idle_timeout)?,
            token_ttl: dur("TOKEN_TTL", &f.token_ttl)?,
            request_timeout: dur("REQUEST_TIMEOUT", &f.request_timeout)?,
            max_in_flight: num("MAX_IN_FLIGHT", f.max_in_flight)?,
            max_live_actors: num("MAX_LIVE_ACTORS", f.max_live_actors)?,
            confirm_deletes: match get("CONFIRM_DELETES") {
                Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(invalid("CONFIRM_DELETES", &v, "expected true or false")),
                },
                None => f.confirm_deletes,
            },
            watch_files: match get("WATCH_FILES") {
                Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(invalid("WATCH_FILES", &v, "expected true or false")),
                },
                None => f.watch_files,
            },
            client_request_timeout: dur("CLIENT_REQUEST_TIMEOUT", &f.client_request_timeout)?,
            jwt_issuer: get("JWT_ISSUER").or_else(|| non_empty(f.jwt.issuer)),
            jwt_audience: get("JWT_AUDIENCE").or_else(|| non_empty(f.jwt.audience)),
            jwt_secret: env("JWT_SECRET_KEY").filter(|v| !v.is_empty()),
            max_note_bytes: num("MAX_NOTE_BYTES", f.limits.max_note_bytes)?,
            max_body_bytes: num("MAX_BODY_BYTES", f.limits.max_body_bytes)?,
            max_json_depth: num("MAX_JSON_DEPTH", f.limits.max_json_depth)?,
            max_query_chars: num("MAX_QUERY_CHARS", f.limits.max_query_chars)?,
            search_memory_bytes: num("SEARCH_MEMORY_BYTES", f.limits.search_memory_bytes)?,
            max_notes_per_vault: num("MAX_NOTES_PER_VAULT", f.limits.max_notes_per_vault)?,
            max_vault_bytes: num("MAX_VAULT_BYTES", f.limits.max_vault_bytes)?,
            max_sessions_per_user: num("MAX_SESSIONS_PER_USER", f.limits.max_sessions_per_user)?,
            max_tokens_per_user: num("MAX_TOKENS_PER_USER", f.limits.max_tokens_per_user)?,
            history_per_note: num("HISTORY_PER_NOTE", f.limits.history_per_note)?,
            web_session_ttl: dur("WEB_SESSION_TTL", &f.web.session_ttl)?,
            token_max_ttl: dur("TOKEN_MAX_TTL", &f.web.token_max_ttl)?,
            oidc: oidc(&get)?,
            metrics_listen: match get("METRICS_LISTEN").unwrap_or(f.metrics.listen) {
                v if v.trim().is_empty() => None,
                v => Some(v.trim().parse().map_err(|_| {
                    invalid(
                        "METRICS_LISTEN",
                        &v,
                        "expected an address like 127.0.0.1:9464",
                    )
                })?),
            },
            metrics_token: env("METRICS_TOKEN").filter(|v| !v.trim().is_empty()),
            audit_max_bytes: num("AUDIT_MAX_BYTES", f.audit.max_bytes)?,
            audit_keep: num("AUDIT_KEEP", f.audit.keep)?,
            rate_limits: {
                let rate = |key: &str, file_value: f64| -> Result<f64, ConfigError> {
                    let v = match get(key) {
                        Some(v) => number(key, &v, "a number")?,
                        None => file_value,
                    };
                    if !(v > 0.0 && v.is_finite()) {
                        return Err(invalid(key, &v.to_string(), "must be above zero"));
                    }
                    Ok(v)
                };
                let r = &f.rate_limits;
                crate::http::limits::RateConfig {
                    user_per_second: rate("RATE_LIMIT_PER_SECOND", r.per_second)?,
                    user_burst: rate("RATE_LIMIT_BURST", r.burst)?,
                    auth_failures_per_minute: rate(
                        "AUTH_FAILURES_PER_MINUTE",
                        r.auth_failures_per_minute,
                    )?,
                    sign_ins_per_hour: rate("SIGN_INS_PER_HOUR", r.sign_ins_per_hour)?,
                }
            },
            oauth: OAuthConfig {
                access_token_ttl: dur("OAUTH_ACCESS_TOKEN_TTL", &f.oauth.access_token_ttl)?,
                refresh_token_ttl: dur("OAUTH_REFRESH_TOKEN_TTL", &f.oauth.refresh_token_ttl)?,
                metadata_http_hosts: match get("OAUTH_METADATA_HTTP_HOSTS") {
                    Some(v) => v
                        .split(',')
                        .map(str::trim)
                        .filter(|h| !h.is_empty())
                        .map(str::to_string)
                        .collect(),
                    None => f.oauth.metadata_http_hosts,
                },
                registrations_per_hour: num(
                    "OAUTH_REGISTRATIONS_PER_HOUR",
                    f.oauth.registrations_per_hour,
                )?,
            },
        })
    }

    /// The settings the actors need.
    pub fn actor_settings(&self) -> vault_actors::Settings {
        let mut s = vault_actors::Settings::for_data_dir(&self.data_dir);
        s.vault_base = self.vault_base.clone();
        s.index_base = self.index_base.clone();
        s.session_ttl = self.session_ttl;
        s.actor_idle_timeout = self.actor_idle_timeout;
        s.max_note_bytes = self.max_note_bytes;
        s.max_query_chars = self.max_query_chars;
        s.search_memory_bytes = self.search_memory_bytes;
        s.quotas = vault_actors::settings::Quotas {
            notes_per_vault: self.max_notes_per_vault as u64,
            vault_bytes: self.max_vault_bytes as u64,
            sessions_per_user: self.max_sessions_per_user as u64,
        };
        s.max_live_actors = self.max_live_actors;
        s.history_per_note = self.history_per_note;
        s.mcp.confirm_deletes = self.confirm_deletes;
        s.watch_files = self.watch_files;
        s.mcp.client_timeout = self.client_request_timeout;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(None, &|k| map.get(k).cloned(), &Overrides::default())
    }

    #[test]
    fn embedded_defaults_are_local_mode_on_7860_with_data_in_dot_data() {
        let c = load(&[]).unwrap();
        assert_eq!(c.mode, Mode::Local);
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 7860));
        assert_eq!(c.vault_base, PathBuf::from("./data/vaults"));
        assert_eq!(c.index_base, PathBuf::from("./data/index"));
        assert_eq!(c.session_ttl, Duration::from_secs(1800));
        assert_eq!(c.max_note_bytes, 1 << 20);
    }

    #[test]
    fn env_overrides_config_including_the_seed_names() {
        let c = load(&[
            ("MODE", "space"),
            ("MCP_PORT", "9000"),
            ("VAULT_BASE_PATH", "/srv/vaults"),
            ("DATABASE_PATH", "/srv/index.db"),
            ("SESSION_TTL", "5m"),
            ("ACTOR_IDLE_TIMEOUT", "90s"),
        ])
        .unwrap();
        assert_eq!(c.mode, Mode::Space);
        assert_eq!(c.port, 9000);
        assert_eq!(c.vault_base, PathBuf::from("/srv/vaults"));
        assert_eq!(c.index_base, PathBuf::from("/srv/index"));
        assert_eq!(c.session_ttl, Duration::from_secs(300));
        assert_eq!(c.actor_idle_timeout, Duration::from_secs(90));
        let c = load(&[
            ("HOST", "0.0.0.0"),
            ("PORT", "8080"),
            ("INDEX_PATH", "/srv/idx"),
            ("DATABASE_PATH", "/ignored/when/index/path/is/set.db"),
            ("JWT_SECRET_KEY", "k".repeat(40).as_str()),
        ])
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 8080));
        assert_eq!(c.index_base, PathBuf::from("/srv/idx"));
        assert_eq!(c.jwt_secret.as_deref(), Some("k".repeat(40).as_str()));
    }

    #[test]
    fn flags_override_the_environment() {
        let flags = Overrides {
            mode: Some(Mode::Local),
            port: Some(1),
            ..Overrides::default()
        };
        let c = Config::load(
            None,
            &|k| {
                (k == "PORT" || k == "MODE").then(|| {
                    if k == "PORT" {
                        "2".into()
                    } else {
                        "space".into()
                    }
                })
            },
            &flags,
        )
        .unwrap();
        assert_eq!((c.mode, c.port), (Mode::Local, 1));
    }

    #[test]
    fn invalid_values_name_their_key() {
        for (key, value) in [
            ("PORT", "seventy"),
            ("SESSION_TTL", "soon"),
            ("ACTOR_IDLE_TIMEOUT", "0s"),
            ("MODE", "cluster"),
            ("MAX_NOTE_BYTES", "-1"),
            ("PUBLIC_URL", "ftp://x"),
        ] {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn quotas_default_to_the_design_and_follow_their_variables() {
        let c = load(&[]).unwrap();
        let q = c.actor_settings().quotas;
        assert_eq!(
            (q.notes_per_vault, q.vault_bytes, q.sessions_per_user),
            (5_000, 1 << 30, 32)
        );
        assert_eq!(c.max_tokens_per_user, 50);
        let c = load(&[
            ("MAX_NOTES_PER_VAULT", "3"),
            ("MAX_VAULT_BYTES", "4096"),
            ("MAX_SESSIONS_PER_USER", "2"),
            ("MAX_TOKENS_PER_USER", "1"),
        ])
        .unwrap();
        let q = c.actor_settings().quotas;
        assert_eq!(
            (q.notes_per_vault, q.vault_bytes, q.sessions_per_user),
            (3, 4096, 2)
        );
        assert_eq!(c.max_tokens_per_user, 1);
        for key in [
            "MAX_NOTES_PER_VAULT",
            "MAX_SESSIONS_PER_USER",
            "MAX_TOKENS_PER_USER",
        ] {
            let err = load(&[(key, "0")]).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn metrics_are_off_the_main_port_unless_a_token_or_listener_is_set() {
        let c = load(&[]).unwrap();
        assert_eq!((c.metrics_listen, c.metrics_token), (None, None));
        let c = load(&[
            ("METRICS_LISTEN", "127.0.0.1:9464"),
            ("METRICS_TOKEN", "scrape-me"),
        ])
        .unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(c.metrics_token.as_deref(), Some("scrape-me"));
        let err = load(&[("METRICS_LISTEN", "everywhere")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("METRICS_LISTEN"), "{err}");
    }

    #[test]
    fn the_space_oauth_variables_configure_sign_in() {
        assert!(load(&[]).unwrap().oidc.is_none());
        let c = load(&[
            ("OPENID_PROVIDER_URL", "https://huggingface.co/"),
            ("OAUTH_CLIENT_ID", "id"),
            ("OAUTH_CLIENT_SECRET", "secret"),
            ("OAUTH_SCOPES", "openid profile"),
            ("SPACE_HOST", "alice-vault.hf.space"),
        ])
        .unwrap();
        let oidc = c.oidc.unwrap();
        assert_eq!(oidc.provider_url, "https://huggingface.co");
        assert_eq!(oidc.scopes, ["openid", "profile"]);
        assert_eq!(
            c.public_url.as_deref(),
            Some("https://alice-vault.hf.space")
        );
        let err = load(&[("OPENID_PROVIDER_URL", "https://huggingface.co")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("OAUTH_CLIENT_ID"), "{err}");
    }

    #[test]
    fn user_file_overrides_only_the_keys_it_sets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "port = 1234\n[limits]\nmax_note_bytes = 10\n").unwrap();
        let c = Config::load(Some(&path), &|_| None, &Overrides::default()).unwrap();
        assert_eq!(
            (c.port, c.max_note_bytes, c.max_body_bytes),
            (1234, 10, 4 << 20)
        );
        std::fs::write(&path, "prot = 1\n").unwrap();
        let err = Config::load(Some(&path), &|_| None, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
    }
}
