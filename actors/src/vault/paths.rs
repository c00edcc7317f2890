//! Note paths: the only way a string from a client becomes a file name.
//!
//! A [`NotePath`] is checked lexically when it is parsed, and [`resolve`] checks it again against
//! the real file system, because a symlink inside the vault could lead anywhere.

use std::fmt;
use std::path::{Path, PathBuf};

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

/// Map a note path to its file under `root` (the canonical vault root), refusing any path that
/// leaves the vault through a symlink and any symlink as the note file itself.
///
/// Missing folders are fine (a write creates them); the deepest folder that exists must lie
/// inside the vault after its symlinks are resolved.
pub fn resolve(root: &Path, path: &NotePath) -> Result<PathBuf, VaultError> {
    resolve_with_meta(root, path).map(|(file, _)| file)
}

/// [`resolve`], also returning the note file's metadata when it exists (the check has it at
/// hand; since the note is never a symlink it is the file's own).
pub fn resolve_with_meta(
    root: &Path,
    path: &NotePath,
) -> Result<(PathBuf, Option<std::fs::Metadata>), VaultError> {
    let full = root.join(path.as_str());
    if folders_hold_a_symlink(root, path.folder())? {
        check_real_folder(root, path.as_str(), full.parent())?;
    }
    match std::fs::symlink_metadata(&full) {
        Ok(meta) if meta.file_type().is_symlink() => Err(VaultError::invalid_path(
            path.as_str(),
            "the note is a symbolic link; links are not followed",
        )),
        Ok(meta) if meta.is_dir() => Err(VaultError::invalid_path(
            path.as_str(),
            "this path is a folder, not a note",
        )),
        Ok(meta) => Ok((full, Some(meta))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((full, None)),
        Err(e) => Err(e.into()),
    }
}

/// Check a folder filter (from [`parse_folder`]) against the file system: listing or
/// searching a folder that is a symlink leading out of the vault is refused like a note path
/// through it, rather than answered with an empty page that hides why.
pub fn check_folder(root: &Path, folder: &str) -> Result<(), VaultError> {
    if folders_hold_a_symlink(root, folder)? {
        check_real_folder(root, folder, Some(&root.join(folder)))?;
    }
    Ok(())
}

/// Is any existing folder of `folder`, below the canonical `root`, a symlink? Without one, and
/// with no `..` segment (the lexical rules), every folder lies inside the vault as spelled,
/// which costs one `lstat` per folder instead of resolving the whole path from `/`.
fn folders_hold_a_symlink(root: &Path, folder: &str) -> Result<bool, VaultError> {
    let mut dir = root.to_path_buf();
    for part in folder.split('/').filter(|p| !p.is_empty()) {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

/// The deepest existing folder of `folder`, with its symlinks resolved, must lie inside
/// `root`; `shown` is the path the client sent, for the error.
fn check_real_folder(root: &Path, shown: &str, folder: Option<&Path>) -> Result<(), VaultError> {
    let mut existing = folder.map(Path::to_path_buf);
    while let Some(dir) = existing {
        match std::fs::canonicalize(&dir) {
            Ok(real) => {
                if !real.starts_with(root) {
                    return Err(VaultError::invalid_path(
                        shown,
                        "a folder on this path is a link that leads outside the vault",
                    ));
                }
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                existing = dir.parent().map(Path::to_path_buf);
            }
            Err(e) => return Err(e.into()),
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

    #[test]
    fn symlinked_folder_leading_out_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let vault = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(vault.path()).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("escape")).unwrap();
        let p = NotePath::parse("escape/x.md").unwrap();
        assert_eq!(resolve(&root, &p).unwrap_err().code(), "invalid_path");
        let deeper = NotePath::parse("escape/new/deeper/x.md").unwrap();
        assert_eq!(resolve(&root, &deeper).unwrap_err().code(), "invalid_path");
        for folder in ["escape", "escape/new/deeper"] {
            assert_eq!(
                check_folder(&root, folder).unwrap_err().code(),
                "invalid_path"
            );
        }
        std::fs::create_dir(root.join("real")).unwrap();
        for folder in ["", "real", "real/missing", "missing"] {
            assert!(check_folder(&root, folder).is_ok(), "{folder}");
        }
    }

    #[test]
    fn symlink_as_the_note_itself_is_refused() {
        let vault = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(vault.path()).unwrap();
        std::fs::write(root.join("real.md"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("real.md"), root.join("link.md")).unwrap();
        let p = NotePath::parse("link.md").unwrap();
        assert_eq!(resolve(&root, &p).unwrap_err().code(), "invalid_path");
        let real = NotePath::parse("real.md").unwrap();
        assert_eq!(resolve(&root, &real).unwrap(), root.join("real.md"));
    }

    #[test]
    fn symlinked_folder_inside_the_vault_is_followed_and_a_deeper_escape_is_caught() {
        let outside = tempfile::tempdir().unwrap();
        let vault = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(vault.path()).unwrap();
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        std::fs::write(root.join("real/sub/n.md"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("alias")).unwrap();
        let inside = NotePath::parse("alias/sub/n.md").unwrap();
        let (file, meta) = resolve_with_meta(&root, &inside).unwrap();
        assert_eq!(file, root.join("alias/sub/n.md"));
        assert!(meta.is_some_and(|m| m.is_file()));
        std::os::unix::fs::symlink(outside.path(), root.join("real/out")).unwrap();
        let nested = NotePath::parse("real/out/x.md").unwrap();
        assert_eq!(resolve(&root, &nested).unwrap_err().code(), "invalid_path");
        let missing = NotePath::parse("real/new/x.md").unwrap();
        assert_eq!(
            resolve_with_meta(&root, &missing).unwrap().1.map(|_| ()),
            None
        );
    }
}
