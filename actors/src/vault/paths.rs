//! Note paths on the file system: [`resolve`] maps a lexically checked [`NotePath`] to its
//! file under the vault root and refuses any path that leaves the vault through a symlink.

use std::path::{Path, PathBuf};

use crate::error::VaultError;
use crate::note::NotePath;

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

/// Check a folder filter (from [`crate::note::parse_folder`]) against the file system: listing or
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
