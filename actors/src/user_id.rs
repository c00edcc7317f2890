//! The validated identity of a vault's owner.
//!
//! A user id becomes a directory name and a file name, so it is checked once, here, and every
//! other layer takes a [`UserId`] instead of a string.

use std::fmt;

/// A user id that is safe as a single path component: 1–64 characters of `[A-Za-z0-9._-]`,
/// and not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

/// Why a string is not a usable user id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("user id must be 1-64 characters of [A-Za-z0-9._-] and not '.' or '..'")]
pub struct InvalidUserId;

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, InvalidUserId> {
        let ok_len = (1..=64).contains(&raw.len());
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok_len && ok_chars && raw != "." && raw != ".." {
            Ok(UserId(raw.to_string()))
        } else {
            Err(InvalidUserId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hugging_face_style_ids() {
        for ok in ["local", "alice", "hf_user_123", "Some.Name-2", "a"] {
            assert!(UserId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_anything_that_could_escape_a_directory() {
        let long = "x".repeat(65);
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "a b",
            "é",
            "a\0",
            long.as_str(),
        ] {
            assert_eq!(UserId::parse(bad), Err(InvalidUserId), "{bad:?}");
        }
    }
}
