//! Note paths: the only way a string from a client becomes a note or folder name.
//!
//! A [`NotePath`] is checked lexically when it is parsed (no file system access here);
//! `vault::paths::resolve` checks it again against the real file system, because a symlink
//! inside the vault could lead anywhere.

use std::fmt;

use crate::error::VaultError;

/// Longest note path, in characters.
pub const MAX_PATH_CHARS: usize = 256;

/// Longest file or folder name, in bytes: Linux file systems hold 255, and a write goes through
/// a temporary file whose name adds 22 bytes to the note's (`.{name}.{16 hex digits}.tmp`).
/// A longer name would pass every other rule and then fail as a storage error.
pub const MAX_NAME_BYTES: usize = 233;

/// A vault-relative, `/`-separated path of a markdown note that passed every lexical rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotePath(String);

impl NotePath {
    /// Check a client-supplied note path: relative, `/`-separated, ends in `.md`, 1–256
    /// characters, no empty, `.` or `..` segment, no name over [`MAX_NAME_BYTES`], no `\`, no
    /// NUL or control characters.
    /// Names like `do...while` are fine: only a whole `..` segment could climb out.
    ///
    /// A path is kept exactly as sent, neither case-folded nor Unicode-normalized, and compared
    /// byte for byte (as the file system and the index compare it): `Plan.md` and `plan.md`,
    /// or `café.md` composed and decomposed, are two distinct notes, never one replacing the
    /// other.
    pub fn parse(raw: &str) -> Result<Self, VaultError> {
        check_relative(raw, "note path")?;
        if !raw.ends_with(".md") || raw.rsplit('/').next() == Some(".md") {
            return Err(VaultError::invalid_path(raw, "a note path must end in .md"));
        }
        Ok(NotePath(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The folder part (`""` at the vault root).
    pub fn folder(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(folder, _)| folder)
    }

    /// The file name without `.md`.
    pub fn stem(&self) -> &str {
        let name = self.0.rsplit('/').next().unwrap_or(&self.0);
        name.strip_suffix(".md").unwrap_or(name)
    }
}

impl fmt::Display for NotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Check a folder filter with the same lexical rules as a note path (no `.md` needed).
/// An empty string or `/` means the whole vault; a trailing `/` is dropped.
pub fn parse_folder(raw: &str) -> Result<String, VaultError> {
    let trimmed = raw.strip_suffix('/').unwrap_or(raw);
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    check_relative(trimmed, "folder")?;
    Ok(trimmed.to_string())
}

fn check_relative(raw: &str, what: &str) -> Result<(), VaultError> {
    let chars = raw.chars().count();
    if chars == 0 {
        return Err(VaultError::invalid_path(raw, format!("{what} is empty")));
    }
    if chars > MAX_PATH_CHARS {
        return Err(VaultError::invalid_path(
            raw,
            format!("{what} is {chars} characters, over the limit of {MAX_PATH_CHARS}"),
        ));
    }
    if raw.starts_with('/') {
        return Err(VaultError::invalid_path(
            raw,
            format!("{what} must be relative to the vault (no leading '/')"),
        ));
    }
    if raw.contains('\\') {
        return Err(VaultError::invalid_path(
            raw,
            "use '/' to separate folders; '\\' is not allowed",
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(VaultError::invalid_path(
            raw,
            "NUL and control characters are not allowed",
        ));
    }
    for segment in raw.split('/') {
        match segment {
            "" => return Err(VaultError::invalid_path(raw, "empty path segment ('//')")),
            "." | ".." => {
                return Err(VaultError::invalid_path(
                    raw,
                    format!("'{segment}' segments are not allowed"),
                ))
            }
            _ if segment.len() > MAX_NAME_BYTES => {
                return Err(VaultError::invalid_path(
                    raw,
                    format!(
                        "a file or folder name is {} bytes (UTF-8), over the limit of \
                         {MAX_NAME_BYTES}",
                        segment.len()
                    ),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &str) -> &'static str {
        match NotePath::parse(raw) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn ordinary_paths_are_accepted() {
        for ok in [
            "a.md",
            "folder/sub/note.md",
            "statements/do...while/index.md",
            "Über/日本語.md",
            "..hidden.md",
            "a..b.md",
        ] {
            assert_eq!(code(ok), "ok", "{ok}");
        }
    }

    #[test]
    fn escaping_and_malformed_paths_are_invalid() {
        let long = format!("{}.md", "x".repeat(254));
        for bad in [
            "../x.md",
            "a/../../x.md",
            "/etc/x.md",
            "a\\b.md",
            "a\0b.md",
            "a\nb.md",
            "notes/x.txt",
            "x",
            "",
            "a//b.md",
            "./a.md",
            "a/./b.md",
            "a/..",
            ".md",
            "a/.md",
            long.as_str(),
        ] {
            assert_eq!(code(bad), "invalid_path", "{bad:?}");
        }
    }

    #[test]
    fn folder_and_stem_are_split_from_the_path() {
        let p = NotePath::parse("a/b/c.md").unwrap();
        assert_eq!((p.folder(), p.stem()), ("a/b", "c"));
        let root = NotePath::parse("c.md").unwrap();
        assert_eq!((root.folder(), root.stem()), ("", "c"));
    }
}
