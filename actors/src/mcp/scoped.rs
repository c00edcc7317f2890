//! The vault's read queries narrowed to the folders a caller may read, for the tools,
//! resources, prompts and completions of a folder-scoped token.
//!
//! A caller who may read the whole vault goes straight to the vault. Otherwise each query runs
//! once per readable folder (the folders are disjoint trees, see [`FolderSet`]) and the answers
//! are merged, so limits, order and cursors stay those of the unscoped query: a listing is the
//! folders' listings one after another in path order, a search the best hits of each folder
//! merged by score (scores do not depend on the folder filter). Nothing outside the folders is
//! counted, listed or completed.

use super::jsonrpc::RpcError;
use crate::caller::{Access, FolderSet};
use crate::error::VaultError;
use crate::index::{FolderCount, ListedNote, SearchHit, TagCount};
use crate::vault::{NotePage, Vault};

/// JSON-RPC error code of a request the token's scope does not allow (`data.code` is
/// `insufficient_scope`), for the methods that are not tools.
pub const INSUFFICIENT_SCOPE: i64 = -32004;

/// A scope refusal as a JSON-RPC error, with the tool error's details as `data`.
pub fn rpc_error(err: &VaultError) -> RpcError {
    RpcError::new(INSUFFICIENT_SCOPE, err.to_string()).with_data(err.details())
}

/// `insufficient_scope` unless the token may read at least some notes.
pub fn require_read(access: &Access) -> Result<(), VaultError> {
    if access.read.is_empty() {
        return Err(VaultError::InsufficientScope(
            "read notes (needs notes:read or notes:read:<folder>)",
        ));
    }
    Ok(())
}

/// `insufficient_scope` unless the token may read the whole vault: for answers about the vault
/// as a whole (`vault_info`), which would tell a folder-scoped token about notes it may not read.
pub fn require_whole_vault_read(access: &Access) -> Result<(), VaultError> {
    if access.read != FolderSet::All {
        return Err(VaultError::InsufficientScope(
            "see the whole vault's figures (needs notes:read over the whole vault)",
        ));
    }
    Ok(())
}

/// `insufficient_scope` unless the token may change the whole vault: for maintenance that
/// touches every note's index entry (`rebuild_index`).
pub fn require_whole_vault_write(access: &Access) -> Result<(), VaultError> {
    if access.write != FolderSet::All {
        return Err(VaultError::InsufficientScope(
            "maintain the whole vault (needs notes:write over the whole vault)",
        ));
    }
    Ok(())
}

/// A page of the readable notes under `folder` (or the whole vault), by path.
pub fn list(
    vault: &Vault,
    access: &Access,
    folder: Option<&str>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<NotePage, VaultError> {
    let folders = match access.readable_within(folder)? {
        FolderSet::All => return vault.list(folder, cursor, limit),
        FolderSet::Only(folders) => folders,
    };
    let mut notes: Vec<ListedNote> = Vec::new();
    let mut more = false;
    for tree in &folders {
        let prefix = format!("{tree}/");
        let start = match cursor {
            Some(c) if c.starts_with(&prefix) => Some(c),
            // The cursor lies past every path of this folder.
            Some(c) if c > prefix.as_str() => continue,
            _ => None,
        };
        if notes.len() == limit {
            // The page is full: is there anything after it?
            more = !vault.list(Some(tree), start, 1)?.notes.is_empty();
            if more {
                break;
            }
            continue;
        }
        let page = vault.list(Some(tree), start, limit - notes.len())?;
        notes.extend(page.notes);
        if page.next_cursor.is_some() {
            more = true;
            break;
        }
    }
    let next_cursor = if more {
        notes.last().map(|n| n.path.clone())
    } else {
        None
    };
    Ok(NotePage {
        notes,
        folders: None,
        next_cursor,
    })
}

/// The readable notes directly in `folder` and the folders below it that hold readable notes
/// (each counted by its readable notes only).
pub fn list_folder(
    vault: &Vault,
    access: &Access,
    folder: Option<&str>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<NotePage, VaultError> {
    let folders = match access.readable_within(folder)? {
        FolderSet::All => return vault.list_folder(folder, cursor, limit),
        FolderSet::Only(folders) => folders,
    };
    let here = crate::note::parse_folder(folder.unwrap_or(""))?;
    if access.read.covers_folder(&here) {
        return vault.list_folder(folder, cursor, limit);
    }
    // `folder` holds readable folders but is not readable itself: none of its own notes is
    // shown, and a subfolder is shown only for the readable notes below it.
    let below = vault
        .list_folder(folder, None, 1)?
        .folders
        .unwrap_or_default();
    let mut shown = Vec::new();
    for sub in below {
        let inside = FolderSet::Only(folders.clone()).within(&sub.path);
        if let FolderSet::Only(readable) = inside {
            if readable.is_empty() {
                continue;
            }
            let notes = if readable == [sub.path.clone()] {
                sub.notes
            } else {
                vault.index().count_within(&readable)?
            };
            shown.push(FolderCount {
                path: sub.path,
                notes,
            });
        }
    }
    Ok(NotePage {
        notes: Vec::new(),
        folders: Some(shown),
        next_cursor: None,
    })
}

/// Full-text (or tags-only) search over the readable notes under `folder`, best first.
pub fn search(
    vault: &mut Vault,
    access: &Access,
    query: &str,
    folder: Option<&str>,
    tags: &[String],
    limit: usize,
) -> Result<Vec<SearchHit>, VaultError> {
    let folders = match access.readable_within(folder)? {
        FolderSet::All => return vault.search(query, folder, tags, limit),
        FolderSet::Only(folders) => folders,
    };
    let mut hits = Vec::new();
    for tree in &folders {
        hits.extend(vault.search(query, Some(tree), tags, limit)?);
    }
    if query.trim().is_empty() && !tags.is_empty() {
        // Tags alone: most recently updated first, as the vault orders them.
        hits.sort_by(|a, b| b.updated.cmp(&a.updated).then(a.path.cmp(&b.path)));
    } else {
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.path.cmp(&b.path)));
    }
    hits.truncate(limit);
    Ok(hits)
}

/// Every tag of the readable notes, with how many readable notes carry it.
pub fn tags(vault: &Vault, access: &Access) -> Result<Vec<TagCount>, VaultError> {
    match &access.read {
        FolderSet::All => vault.tags(),
        FolderSet::Only(folders) => Ok(vault.index().tags_within(folders)?),
    }
}

/// Readable notes carrying `tag`, by path.
pub fn notes_with_tag(
    vault: &Vault,
    access: &Access,
    tag: &str,
    limit: usize,
) -> Result<Vec<ListedNote>, VaultError> {
    match &access.read {
        FolderSet::All => vault.notes_with_tag(tag, limit),
        FolderSet::Only(folders) => Ok(vault.index().notes_with_tag_within(
            &tag.trim_start_matches('#').to_lowercase(),
            folders,
            limit,
        )?),
    }
}

/// Up to `limit` readable note paths starting with `prefix`, and how many there are.
pub fn complete_paths(
    vault: &Vault,
    access: &Access,
    prefix: &str,
    limit: usize,
) -> Result<(Vec<String>, usize), VaultError> {
    if access.read == FolderSet::All {
        return vault.complete_paths(prefix, limit);
    }
    let (all, _) = vault.complete_paths(prefix, usize::MAX)?;
    let readable: Vec<String> = all
        .into_iter()
        .filter(|p| crate::note::NotePath::parse(p).is_ok_and(|p| access.allows_read(&p)))
        .collect();
    let total = readable.len();
    Ok((readable.into_iter().take(limit).collect(), total))
}

/// Up to `limit` tags of readable notes starting with `prefix`, and how many there are.
pub fn complete_tags(
    vault: &Vault,
    access: &Access,
    prefix: &str,
    limit: usize,
) -> Result<(Vec<String>, usize), VaultError> {
    if access.read == FolderSet::All {
        return vault.complete_tags(prefix, limit);
    }
    let prefix = prefix.trim_start_matches('#').to_lowercase();
    let all: Vec<String> = tags(vault, access)?
        .into_iter()
        .map(|t| t.tag)
        .filter(|t| t.starts_with(&prefix))
        .collect();
    let total = all.len();
    Ok((all.into_iter().take(limit).collect(), total))
}

/// Keep only the notes of `notes` the token may read.
pub fn readable(access: &Access, notes: Vec<ListedNote>) -> Vec<ListedNote> {
    notes
        .into_iter()
        .filter(|n| crate::note::NotePath::parse(&n.path).is_ok_and(|p| access.allows_read(&p)))
        .collect()
}
