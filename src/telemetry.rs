//! Logging: structured `tracing` events to stderr (stdout carries the start banner), filtered by
//! `RUST_LOG` (default `info`), as text or, with `LOG_FORMAT=json`, one JSON object a line.
//!
//! `LOG_FORMAT` is read from the environment only: logging starts before the configuration is
//! loaded, so that loading it can log.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`'s value: `text` (or unset/empty) or `json`; anything else is an error.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(format!(
                "LOG_FORMAT={other:?} is not text or json; logging as text"
            )),
        }
    }
}

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (format, problem) = match LogFormat::parse(std::env::var("LOG_FORMAT").ok().as_deref()) {
        Ok(f) => (f, None),
        Err(e) => (LogFormat::Text, Some(e)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    if let Some(problem) = problem {
        tracing::warn!("{problem}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_is_text_unless_json_is_asked_for() {
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("")), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some(" JSON ")), Ok(LogFormat::Json));
        assert!(LogFormat::parse(Some("yaml")).is_err());
    }
}
