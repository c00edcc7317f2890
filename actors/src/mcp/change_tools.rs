//! The handlers of the tools about changing notes in place and finding what changed:
//! `edit_note` and `recent_notes`. Their catalog entries are in [`super::tools`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::context::RequestContext;
use crate::caller::FolderSet;
use crate::error::VaultError;
use crate::session::LogLevel;
use crate::vault::{Edit, EditRequest, Edited, RecentNote, Vault};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditNoteArgs {
    /// Note path relative to the vault, ending in .md, e.g. `projects/plan.md`.
    path: String,
    /// The edits, applied in order to the result of the previous one; if any fails, none
    /// is applied.
    #[schemars(length(min = 1))]
    edits: Vec<Edit>,
    /// Only edit if the note's current version is this (from read_note).
    if_version: Option<u64>,
    /// true: change nothing, only return the diff the edits would make.
    dry_run: Option<bool>,
}

pub(crate) fn edit_note(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    a: EditNoteArgs,
) -> Result<Edited, VaultError> {
    ctx.caller.access.check_write(&a.path)?;
    let edited = vault.edit(EditRequest {
        path: a.path,
        edits: a.edits,
        if_version: a.if_version,
        dry_run: a.dry_run.unwrap_or(false),
    })?;
    if edited.changed && !edited.dry_run {
        ctx.log(
            LogLevel::Info,
            json!(format!(
                "edited {} (version {})",
                edited.path, edited.version
            )),
        );
    }
    Ok(edited)
}

const DEFAULT_RECENT_LIMIT: u32 = 20;
const MAX_RECENT_LIMIT: u32 = 200;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecentNotesArgs {
    /// Only notes in this folder or below, e.g. `projects`. Omit for the whole vault.
    folder: Option<String>,
    /// Most notes to return (1-200, default 20).
    #[schemars(range(min = 1, max = 200))]
    limit: Option<u32>,
    /// Only notes changed at or after this time (RFC 3339, e.g. `2025-06-01T12:00:00Z`, or
    /// the `changed` of a note from an earlier answer).
    since: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct RecentNotes {
    /// Most recently changed first.
    notes: Vec<RecentNote>,
}

pub(crate) fn recent_notes(
    vault: &mut Vault,
    ctx: &RequestContext<'_>,
    a: RecentNotesArgs,
) -> Result<RecentNotes, VaultError> {
    let limit = match a.limit.unwrap_or(DEFAULT_RECENT_LIMIT) {
        n if (1..=MAX_RECENT_LIMIT).contains(&n) => n as usize,
        n => {
            return Err(VaultError::InvalidArguments(format!(
                "limit must be between 1 and {MAX_RECENT_LIMIT}, got {n}"
            )))
        }
    };
    let since = a
        .since
        .as_deref()
        .map(crate::vault::parse_since)
        .transpose()?;
    let folder = a.folder.as_deref();
    let notes = match ctx.caller.access.readable_within(folder)? {
        FolderSet::All => vault.recent(folder, since, limit)?,
        // The readable folders are disjoint trees: the newest of each, merged.
        FolderSet::Only(trees) => {
            let mut notes = Vec::new();
            for tree in &trees {
                notes.extend(vault.recent(Some(tree), since, limit)?);
            }
            notes.sort_by(|a, b| {
                b.changed_ms
                    .cmp(&a.changed_ms)
                    .then_with(|| a.path.cmp(&b.path))
            });
            notes.truncate(limit);
            notes
        }
    };
    Ok(RecentNotes { notes })
}
