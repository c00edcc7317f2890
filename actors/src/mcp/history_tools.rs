//! The handlers of the tools that move notes and undo changes: `move_note`, `note_history`
//! and `restore_note`. Their catalog entries are in [`super::tools`].
//!
//! Scope: every note a move or restore changes needs write scope — the moved notes at both
//! paths, and every note whose links the move rewrites. A note outside the token's folders
//! refuses the whole call with `insufficient_scope` and nothing changes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::context::RequestContext;
use crate::caller::Access;
use crate::error::VaultError;
use crate::note::{parse_folder, NotePath};
use crate::session::LogLevel;
use crate::vault::history::Entry;
use crate::vault::{MoveRequest, Moved, Restored, Vault};

const DEFAULT_HISTORY_LIMIT: u32 = 20;
const MAX_HISTORY_LIMIT: u32 = 100;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveNoteArgs {
    /// The note (`projects/plan.md`) or folder (`projects` or `projects/`) to move. A path
    /// that does not end in `.md`, or ends with `/`, names a folder, moved whole.
    from: String,
    /// The new path: a note path for a note, a folder for a folder. Must not exist yet.
    to: String,
    /// Only move if the note's current version is this (notes only, not folders).
    if_version: Option<u64>,
    /// true: change nothing, only report what would move and which links would change.
    dry_run: Option<bool>,
}

/// May the caller write `p`? The vault asks this of every note a move or restore changes.
fn writable(access: &Access) -> impl Fn(&NotePath) -> Result<(), VaultError> + '_ {
    move |p| {
        if access.allows_write(p) {
            Ok(())
        } else {
            Err(VaultError::InsufficientScope(
                "change this note: it is outside the folders the token may write",
            ))
        }
    }
}

pub(crate) fn move_note(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    a: MoveNoteArgs,
) -> Result<Moved, VaultError> {
    let access = &ctx.caller.access;
    let folder = !a.from.ends_with(".md") || a.from.ends_with('/');
    if folder {
        // Attachments and subfolders move too: the token must cover both folders whole.
        for raw in [&a.from, &a.to] {
            if !access.write.covers_folder(&parse_folder(raw)?) {
                return Err(VaultError::InsufficientScope(
                    "move this folder: it or its destination is outside the folders the token \
                     may write",
                ));
            }
        }
    } else {
        access.check_write(&a.from)?;
        access.check_write(&a.to)?;
    }
    let moved = vault.move_note(
        MoveRequest {
            from: a.from,
            to: a.to,
            if_version: a.if_version,
            dry_run: a.dry_run.unwrap_or(false),
        },
        &writable(access),
    )?;
    if !moved.dry_run {
        ctx.log(
            LogLevel::Info,
            json!(format!(
                "moved {} to {} ({} notes, links rewritten in {})",
                moved.from,
                moved.to,
                moved.notes.len(),
                moved.rewritten.len()
            )),
        );
    }
    Ok(moved)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoteHistoryArgs {
    /// Note path relative to the vault, ending in .md. After a move, its history is under
    /// the new path.
    path: String,
    /// Most entries to return, newest first (1-100, default 20).
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct NoteHistory {
    path: String,
    /// Kept versions, newest first; content is not included (restore_note brings one back).
    entries: Vec<Entry>,
}

pub(crate) fn note_history(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    a: NoteHistoryArgs,
) -> Result<NoteHistory, VaultError> {
    ctx.caller.access.check_read(&a.path)?;
    let limit = match a.limit.unwrap_or(DEFAULT_HISTORY_LIMIT) {
        n if (1..=MAX_HISTORY_LIMIT).contains(&n) => n as usize,
        n => {
            return Err(VaultError::InvalidArguments(format!(
                "limit must be between 1 and {MAX_HISTORY_LIMIT}, got {n}"
            )))
        }
    };
    let entries = vault.note_history(&a.path, limit)?;
    Ok(NoteHistory {
        path: a.path,
        entries,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RestoreNoteArgs {
    /// Note path relative to the vault, ending in .md (for an undone delete, the path the
    /// note had; for an undone move, its new path).
    path: String,
    /// The entry to restore (from note_history). Default: the newest, which undoes the last
    /// change.
    history_id: Option<i64>,
    /// Only restore if the note's current version is this (0 = the note must not exist).
    if_version: Option<u64>,
}

pub(crate) fn restore_note(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    a: RestoreNoteArgs,
) -> Result<Restored, VaultError> {
    let access = &ctx.caller.access;
    access.check_write(&a.path)?;
    let restored = vault.restore(&a.path, a.history_id, a.if_version, &writable(access))?;
    ctx.log(
        LogLevel::Info,
        json!(format!(
            "restored {} from history entry {} ({})",
            restored.path, restored.history_id, restored.action
        )),
    );
    Ok(restored)
}
