//! Moving notes and folders with their links, note history and undo: [`Vault::move_note`],
//! [`Vault::note_history`] and [`Vault::restore`].
//!
//! A move is planned in memory first (which notes move, which links elsewhere must change so
//! that each still reaches the note it reached before), then applied through the
//! [`journal`](super::journal), so that a kill at any point leaves either the old vault or the
//! new one. The index follows in one transaction.
//!
//! `from` names a folder when it does not end in `.md` or ends with `/`; a folder is moved
//! whole (attachments and subfolders included, by one rename). The destination must not
//! exist (`already_exists`), whether a note or a folder.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::history::{Entry, History, Operation, Record};
use super::journal::{Journal, PrivateFiles, Rename, Rewrite};
use super::relink::{self, World};
use super::{files, hash, mtime_ns, now_ms, parse, paths, store, Change, Vault};
use crate::error::VaultError;
use crate::index::{Index, Scope};
use crate::note::{parse_folder, NotePath};
use crate::settings::Settings;

/// What a vault keeps to undo changes: the history file and where a move's journal goes.
pub struct Undo {
    history: History,
    journal: PathBuf,
}

impl Undo {
    /// Open the history beside `index_file`.
    pub fn open(index_file: &Path, settings: &Settings) -> Result<Self, VaultError> {
        let private = PrivateFiles::beside(index_file);
        Ok(Undo {
            history: History::open(
                &private.history,
                settings.history_per_note,
                settings.quotas.vault_bytes,
            )?,
            journal: private.journal,
        })
    }
}

/// What `move_note` is asked.
#[derive(Debug, Clone, Default)]
pub struct MoveRequest {
    pub from: String,
    pub to: String,
    pub if_version: Option<u64>,
    pub dry_run: bool,
}

/// The outcome of a move (or of its dry run).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Moved {
    pub from: String,
    pub to: String,
    /// A whole folder was moved.
    pub folder: bool,
    /// Nothing was changed: this is what the move would do.
    pub dry_run: bool,
    /// Every note moved, old and new path.
    pub notes: Vec<MovedNote>,
    /// Notes whose `[[links]]` were rewritten to keep reaching the moved notes.
    pub rewritten: Vec<RewrittenNote>,
    /// Shared by the history entries of this move; absent for a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MovedNote {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RewrittenNote {
    /// The note's path after the move.
    pub path: String,
    /// How many of its links changed.
    pub links: usize,
}

/// The outcome of `restore_note`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Restored {
    pub path: String,
    /// The history entry that was restored.
    pub history_id: i64,
    /// What the restore did: `content` (the kept version is the note again), `deleted` (the
    /// note did not exist before the undone change, so it is gone again) or `moved_back`.
    pub action: String,
    /// The note's version now (0 when it no longer exists).
    pub version: u64,
    /// For `moved_back`: the reverse move.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved: Option<Moved>,
}

/// One note of a move plan: its paths and texts before and after.
struct Planned {
    old: NotePath,
    new: NotePath,
    /// The file as it is now.
    text: String,
    /// The file after the move, when its links change.
    rewritten: Option<(String, usize)>,
    moved: bool,
    version: u64,
}

/// A history entry of an undone move, to be put back exactly while the note is unchanged.
struct Revert {
    /// The hash of the note's file as the undone move left it.
    after_hash: String,
    content: String,
}

impl Vault {
    /// Keep the version a write or delete is about to replace.
    pub(super) fn keep_history(
        &mut self,
        path: &NotePath,
        version: u64,
        old: Option<String>,
        operation: Operation,
    ) -> Result<(), VaultError> {
        let Some(old) = old else { return Ok(()) };
        self.undo.history.record(&Record {
            path: path.to_string(),
            version,
            operation,
            at_ms: now_ms(),
            size: old.len() as u64,
            content: Some(old),
            move_from: None,
            move_to: None,
            moved: false,
            after_hash: None,
            operation_id: None,
        })
    }

    /// A note's history, newest first (no content). `not_found` when the note neither
    /// exists nor has history.
    pub fn note_history(&self, raw_path: &str, limit: usize) -> Result<Vec<Entry>, VaultError> {
        let path = NotePath::parse(raw_path)?;
        let (_, meta) = paths::resolve_with_meta(&self.root, &path)?;
        let entries = self.undo.history.list(path.as_str(), limit)?;
        if entries.is_empty() && meta.is_none() {
            return Err(VaultError::NotFound(path.to_string()));
        }
        Ok(entries)
    }

    /// Finish a move a killed process left half done (its journal is still there). True when
    /// there was one; the index is then behind the files until the next reconcile.
    pub(super) fn finish_interrupted_move(&mut self) -> Result<bool, VaultError> {
        let Some(journal) = Journal::load(&self.undo.journal)? else {
            return Ok(false);
        };
        tracing::info!(operation = %journal.operation_id, "finishing a move interrupted by a crash");
        journal.apply(&self.root, &mut self.undo.history, &self.undo.journal)?;
        Ok(true)
    }

    /// Move or rename a note or a whole folder, rewriting the links that reached the moved
    /// notes. `may_write` is asked about every note the move changes (moved, or with links
    /// rewritten); a refusal changes nothing.
    pub fn move_note(
        &mut self,
        req: MoveRequest,
        may_write: &dyn Fn(&NotePath) -> Result<(), VaultError>,
    ) -> Result<Moved, VaultError> {
        if self.finish_interrupted_move()? {
            self.reconcile()?;
        }
        self.move_inner(&req, may_write, Operation::Move, &HashMap::new())
    }

    fn move_inner(
        &mut self,
        req: &MoveRequest,
        may_write: &dyn Fn(&NotePath) -> Result<(), VaultError>,
        operation: Operation,
        reverts: &HashMap<String, Revert>,
    ) -> Result<Moved, VaultError> {
        let folder = !req.from.ends_with(".md") || req.from.ends_with('/');
        let (rename, mut plan) = if folder {
            self.plan_folder(req)?
        } else {
            self.plan_note(req)?
        };
        let mut moved_map: HashMap<String, String> = HashMap::new();
        for p in &plan {
            moved_map.insert(p.old.to_string(), p.new.to_string());
        }
        self.plan_links(&mut plan, &moved_map)?;
        self.plan_reverts(&mut plan, reverts)?;
        for p in &plan {
            may_write(&p.old).map_err(|_| refused(p))?;
            may_write(&p.new).map_err(|_| refused(p))?;
        }
        self.check_room(&plan)?;
        let (from_shown, to_shown) = if folder {
            (format!("{}/", rename.from), format!("{}/", rename.to))
        } else {
            (rename.from.clone(), rename.to.clone())
        };
        let mut out = Moved {
            from: from_shown.clone(),
            to: to_shown.clone(),
            folder,
            dry_run: req.dry_run,
            notes: plan
                .iter()
                .filter(|p| p.moved)
                .map(|p| MovedNote {
                    from: p.old.to_string(),
                    to: p.new.to_string(),
                })
                .collect(),
            rewritten: plan
                .iter()
                .filter_map(|p| {
                    p.rewritten.as_ref().map(|(_, n)| RewrittenNote {
                        path: p.new.to_string(),
                        links: *n,
                    })
                })
                .collect(),
            operation_id: None,
        };
        if req.dry_run {
            return Ok(out);
        }
        let operation_id = new_operation_id();
        let at_ms = now_ms();
        let journal = Journal {
            operation_id: operation_id.clone(),
            renames: vec![rename],
            writes: plan
                .iter()
                .filter_map(|p| {
                    p.rewritten.as_ref().map(|(text, _)| Rewrite {
                        path: p.new.to_string(),
                        text: text.clone(),
                    })
                })
                .collect(),
            history: plan
                .iter()
                .map(|p| Record {
                    path: p.new.to_string(),
                    version: p.version,
                    operation,
                    at_ms,
                    size: p.text.len() as u64,
                    content: p.rewritten.as_ref().map(|_| p.text.clone()),
                    move_from: Some(from_shown.clone()),
                    move_to: Some(to_shown.clone()),
                    moved: p.moved,
                    after_hash: p.rewritten.as_ref().map(|(t, _)| hash(t.as_bytes())),
                    operation_id: Some(operation_id.clone()),
                })
                .collect(),
            renamed_notes: plan
                .iter()
                .filter(|p| p.moved)
                .map(|p| (p.old.to_string(), p.new.to_string()))
                .collect(),
        };
        journal.save(&self.undo.journal)?;
        journal.apply(&self.root, &mut self.undo.history, &self.undo.journal)?;
        self.index_moved(&plan)?;
        out.operation_id = Some(operation_id);
        Ok(out)
    }

    /// A single note: `from` must exist, `to` must not.
    fn plan_note(&self, req: &MoveRequest) -> Result<(Rename, Vec<Planned>), VaultError> {
        let from = NotePath::parse(&req.from)?;
        let to = NotePath::parse(&req.to)?;
        if from == to {
            return Err(VaultError::InvalidArguments(
                "from and to are the same path".into(),
            ));
        }
        let (from_file, meta) = paths::resolve_with_meta(&self.root, &from)?;
        if meta.is_none() {
            return Err(VaultError::NotFound(from.to_string()));
        }
        let (_, to_meta) = paths::resolve_with_meta(&self.root, &to)?;
        if to_meta.is_some() {
            return Err(VaultError::AlreadyExists(to.to_string()));
        }
        let version = self.index.current_version(from.as_str())?;
        if let Some(expected) = req.if_version {
            if expected != version {
                return Err(VaultError::Conflict {
                    path: from.to_string(),
                    expected,
                    current: version,
                });
            }
        }
        let text = read_note_file(&from_file, &from, self.max_note_bytes)?;
        let rename = Rename {
            from: from.to_string(),
            to: to.to_string(),
        };
        let planned = Planned {
            old: from,
            new: to,
            text,
            rewritten: None,
            moved: true,
            version,
        };
        Ok((rename, vec![planned]))
    }

    /// A folder: every note below it moves by one rename of the folder.
    fn plan_folder(&self, req: &MoveRequest) -> Result<(Rename, Vec<Planned>), VaultError> {
        if req.if_version.is_some() {
            return Err(VaultError::InvalidArguments(
                "if_version applies to a single note, not to a folder".into(),
            ));
        }
        let from = parse_folder(&req.from)?;
        let to = parse_folder(&req.to)?;
        if from.is_empty() || to.is_empty() {
            return Err(VaultError::InvalidArguments(
                "the vault root cannot be moved or be the destination; name a folder".into(),
            ));
        }
        if to == from || to.starts_with(&format!("{from}/")) {
            return Err(VaultError::InvalidArguments(format!(
                "cannot move the folder {from}/ into itself ({to}/)"
            )));
        }
        paths::check_folder(&self.root, &from)?;
        paths::check_folder(&self.root, &to)?;
        match std::fs::symlink_metadata(self.root.join(&from)) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(VaultError::invalid_path(
                    &from,
                    "not a folder (a link or a file)",
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VaultError::NotFound(format!("{from}/")))
            }
            Err(e) => return Err(e.into()),
        }
        match std::fs::symlink_metadata(self.root.join(&to)) {
            Ok(_) => return Err(VaultError::AlreadyExists(format!("{to}/"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let mut notes = Vec::new();
        notes_under(&self.root, &self.root.join(&from), &mut notes);
        notes.sort();
        let mut plan = Vec::new();
        for old in notes {
            let rest = &old.as_str()[from.len()..];
            let new = NotePath::parse(&format!("{to}{rest}"))?;
            let text = read_note_file(&self.root.join(old.as_str()), &old, self.max_note_bytes)?;
            let version = self.index.current_version(old.as_str())?;
            plan.push(Planned {
                old,
                new,
                text,
                rewritten: None,
                moved: true,
                version,
            });
        }
        Ok((Rename { from, to }, plan))
    }

    /// Find every link that would reach another note after the move than before, and plan
    /// the rewrite of its note (adding notes that do not move to `plan`).
    fn plan_links(
        &self,
        plan: &mut Vec<Planned>,
        moved: &HashMap<String, String>,
    ) -> Result<(), VaultError> {
        let indexed = indexed_notes(&self.index)?;
        let mut before_titles: Vec<(String, String)> = Vec::new();
        let mut after_titles: Vec<(String, String)> = Vec::new();
        for (path, title) in &indexed {
            if !moved.contains_key(path) {
                before_titles.push((path.clone(), title.clone()));
                after_titles.push((path.clone(), title.clone()));
            }
        }
        for p in plan.iter() {
            before_titles.push((p.old.to_string(), title_of(&p.old, &p.text)));
            after_titles.push((p.new.to_string(), title_of(&p.new, &p.text)));
        }
        let before = World::new(before_titles.iter().map(|(p, t)| (p.as_str(), t.as_str())));
        let after = World::new(after_titles.iter().map(|(p, t)| (p.as_str(), t.as_str())));
        let map = |p: &str| moved.get(p).cloned().unwrap_or_else(|| p.to_string());

        // Notes that stay where they are, with a link whose destination changes.
        let mut referrers: BTreeMap<String, ()> = BTreeMap::new();
        for (src, target) in indexed_links(&self.index)? {
            if moved.contains_key(&src) {
                continue;
            }
            let folder = src.rsplit_once('/').map_or("", |(f, _)| f);
            let Some(old_dest) = before.resolve(&target, folder) else {
                continue;
            };
            if after.resolve(&target, folder) != Some(map(old_dest).as_str()) {
                referrers.insert(src, ());
            }
        }
        for (src, ()) in referrers {
            let path = NotePath::parse(&src)?;
            let file = paths::resolve(&self.root, &path)?;
            let text = match read_note_file(&file, &path, self.max_note_bytes) {
                Ok(t) => t,
                // Gone from disk since it was indexed: nothing to rewrite there.
                Err(VaultError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let version = self.index.current_version(path.as_str())?;
            plan.push(Planned {
                old: path.clone(),
                new: path,
                text,
                rewritten: None,
                moved: false,
                version,
            });
        }
        for p in plan.iter_mut() {
            let edits = relink_edits(
                &p.text,
                p.old.folder(),
                p.new.folder(),
                &before,
                &after,
                &map,
            )?;
            if !edits.is_empty() {
                let text = relink::rewrite(&p.text, &edits);
                p.rewritten = Some((text, edits.len()));
            }
        }
        plan.retain(|p| p.moved || p.rewritten.is_some());
        Ok(())
    }

    /// For a restore of a move: a note the move rewrote and that is still exactly as the move
    /// left it gets its old content back (rather than freshly rewritten links).
    fn plan_reverts(
        &self,
        plan: &mut Vec<Planned>,
        reverts: &HashMap<String, Revert>,
    ) -> Result<(), VaultError> {
        if reverts.is_empty() {
            return Ok(());
        }
        let mut planned: HashSet<String> = plan.iter().map(|p| p.old.to_string()).collect();
        for path in reverts.keys() {
            if planned.contains(path) {
                continue;
            }
            let note = NotePath::parse(path)?;
            let file = paths::resolve(&self.root, &note)?;
            let Ok(text) = read_note_file(&file, &note, self.max_note_bytes) else {
                continue;
            };
            let version = self.index.current_version(note.as_str())?;
            planned.insert(path.clone());
            plan.push(Planned {
                old: note.clone(),
                new: note,
                text,
                rewritten: None,
                moved: false,
                version,
            });
        }
        for p in plan.iter_mut() {
            if let Some(revert) = reverts.get(p.old.as_str()) {
                if hash(p.text.as_bytes()) == revert.after_hash && p.text != revert.content {
                    p.rewritten = Some((revert.content.clone(), 0));
                }
            }
        }
        Ok(())
    }

    /// The rewritten notes must fit the note size limit and the vault's byte quota.
    fn check_room(&mut self, plan: &[Planned]) -> Result<(), VaultError> {
        let mut growth: i64 = 0;
        for p in plan {
            if let Some((text, _)) = &p.rewritten {
                if text.len() > self.max_note_bytes {
                    return Err(VaultError::TooLarge {
                        what: "note file",
                        actual: text.len(),
                        limit: self.max_note_bytes,
                    });
                }
                growth += text.len() as i64 - p.text.len() as i64;
            }
        }
        let usage = self.usage()?;
        if growth > 0 && usage.bytes + growth as u64 > self.quotas.vault_bytes {
            return Err(VaultError::QuotaExceeded {
                limit: crate::quotas::Quotas::VAULT_BYTES,
                max: self.quotas.vault_bytes,
                current: usage.bytes,
            });
        }
        Ok(())
    }

    /// The index after a move: old paths gone, new paths and rewritten notes stored, every
    /// link resolved again; subscribers are told.
    fn index_moved(&mut self, plan: &[Planned]) -> Result<(), VaultError> {
        self.index.flush_full_text()?;
        let root = self.root.clone();
        let updated_ms = now_ms();
        let mut stored = Vec::new();
        for p in plan {
            let text = p.rewritten.as_ref().map_or(&p.text, |(t, _)| t);
            let meta = std::fs::metadata(root.join(p.new.as_str()))?;
            let parsed = parse(&p.new, text)
                .map_err(|e| VaultError::InvalidFrontmatter(format!("{}: {e}", p.new)));
            stored.push((p, parsed, meta, hash(text.as_bytes())));
        }
        self.change_index(|tx| {
            for (p, _, _, _) in &stored {
                if p.moved {
                    Index::remove(tx, p.old.as_str(), Scope::Bulk)?;
                }
            }
            for (p, parsed, meta, hash) in &stored {
                // A note whose frontmatter is broken moves all the same; it stays out of the
                // index, as a scan would leave it.
                let Ok(parsed) = parsed else { continue };
                store(
                    tx,
                    &p.new,
                    parsed,
                    meta.len(),
                    mtime_ns(meta),
                    hash,
                    updated_ms,
                    true,
                    Scope::Bulk,
                )?;
            }
            Index::resolve_all_links(tx)?;
            Ok(())
        })?;
        self.last_change_ms = Some(updated_ms);
        for p in plan {
            if p.moved {
                self.changes.push(Change::Deleted {
                    path: p.old.to_string(),
                });
            }
            self.changes.push(Change::Written {
                path: p.new.to_string(),
                created: p.moved,
            });
        }
        Ok(())
    }

    /// Undo the newest change of a note (or the history entry `history_id`): its kept
    /// content comes back; a change that created the note is undone by deleting it again;
    /// an entry of a move moves every note back and puts back the links it rewrote. The
    /// restore is itself recorded, so it can be undone.
    pub fn restore(
        &mut self,
        raw_path: &str,
        history_id: Option<i64>,
        if_version: Option<u64>,
        may_write: &dyn Fn(&NotePath) -> Result<(), VaultError>,
    ) -> Result<Restored, VaultError> {
        if self.finish_interrupted_move()? {
            self.reconcile()?;
        }
        let path = NotePath::parse(raw_path)?;
        let file = paths::resolve(&self.root, &path)?;
        let Some(entry) = self.undo.history.find(path.as_str(), history_id)? else {
            return Err(VaultError::HistoryNotFound {
                path: path.to_string(),
                id: history_id,
            });
        };
        let current = self.index.current_version(path.as_str())?;
        if let Some(expected) = if_version {
            if expected != current {
                return Err(VaultError::Conflict {
                    path: path.to_string(),
                    expected,
                    current,
                });
            }
        }
        may_write(&path)?;
        let record = entry.record;
        if let (Some(from), Some(to)) = (record.move_from.clone(), record.move_to.clone()) {
            let moved = self.undo_move(&record, &to, &from, may_write)?;
            let now_at = moved
                .notes
                .iter()
                .find(|n| n.from == path.as_str())
                .map_or(path.to_string(), |n| n.to.clone());
            return Ok(Restored {
                version: self.index.current_version(&now_at)?,
                path: now_at,
                history_id: entry.id,
                action: "moved_back".into(),
                moved: Some(moved),
            });
        }
        let existing = match std::fs::read_to_string(&file) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let restore_record = |content: Option<String>| Record {
            path: path.to_string(),
            version: current,
            operation: Operation::Restore,
            at_ms: now_ms(),
            size: content.as_ref().map_or(0, |c| c.len() as u64),
            content,
            move_from: None,
            move_to: None,
            moved: false,
            after_hash: None,
            operation_id: None,
        };
        match record.content {
            Some(content) => {
                let usage = self.usage()?;
                let replaced = self.index.file_facts(path.as_str())?.map(|(size, _)| size);
                usage.check_write(&self.quotas, replaced, content.len() as u64)?;
                let parsed = parse(&path, &content)
                    .map_err(|e| VaultError::InvalidFrontmatter(e.to_string()))?;
                self.undo
                    .history
                    .record(&restore_record(existing.clone()))?;
                files::write_atomic(&file, content.as_bytes())?;
                let meta = std::fs::metadata(&file)?;
                let updated_ms = now_ms();
                let version = self.change_index(|tx| {
                    store(
                        tx,
                        &path,
                        &parsed,
                        meta.len(),
                        mtime_ns(&meta),
                        &hash(content.as_bytes()),
                        updated_ms,
                        true,
                        Scope::Single,
                    )
                })?;
                self.last_change_ms = Some(updated_ms);
                self.changes.push(Change::Written {
                    path: path.to_string(),
                    created: existing.is_none(),
                });
                Ok(Restored {
                    path: path.to_string(),
                    history_id: entry.id,
                    action: "content".into(),
                    version,
                    moved: None,
                })
            }
            None => {
                let Some(existing) = existing else {
                    return Err(VaultError::NotFound(path.to_string()));
                };
                self.undo.history.record(&restore_record(Some(existing)))?;
                files::remove_durably(&file)?;
                self.unindex(&path)?;
                self.last_change_ms = Some(now_ms());
                self.changes.push(Change::Deleted {
                    path: path.to_string(),
                });
                Ok(Restored {
                    path: path.to_string(),
                    history_id: entry.id,
                    action: "deleted".into(),
                    version: 0,
                    moved: None,
                })
            }
        }
    }

    /// Reverse the move `record` belongs to: `to` back to `from`, links put back.
    fn undo_move(
        &mut self,
        record: &Record,
        to: &str,
        from: &str,
        may_write: &dyn Fn(&NotePath) -> Result<(), VaultError>,
    ) -> Result<Moved, VaultError> {
        let entries = match &record.operation_id {
            Some(id) => self.undo.history.operation(id)?,
            None => Vec::new(),
        };
        let mut reverts = HashMap::new();
        for e in entries {
            if let (Some(content), Some(after_hash)) = (e.record.content, e.record.after_hash) {
                reverts.insert(
                    e.record.path,
                    Revert {
                        after_hash,
                        content,
                    },
                );
            }
        }
        let req = MoveRequest {
            from: to.to_string(),
            to: from.to_string(),
            if_version: None,
            dry_run: false,
        };
        self.move_inner(&req, may_write, Operation::Restore, &reverts)
    }
}

/// `insufficient_scope` naming the note a move would change outside the token's folders.
fn refused(p: &Planned) -> VaultError {
    if p.moved {
        VaultError::InsufficientScope(
            "move this note: it or its destination is outside the folders the token may write",
        )
    } else {
        VaultError::InsufficientScope(
            "move this note: a note whose links the move rewrites is outside the folders the \
             token may write",
        )
    }
}

/// The target edits that keep each link of `text` reaching the note it reached before.
fn relink_edits(
    text: &str,
    old_folder: &str,
    new_folder: &str,
    before: &World,
    after: &World,
    map: &dyn Fn(&str) -> String,
) -> Result<Vec<(Range<usize>, String)>, VaultError> {
    let body = match super::split(text) {
        Ok((_, body)) => body,
        // Broken frontmatter: the whole file is the body as far as links go.
        Err(_) => text,
    };
    let offset = text.len() - body.len();
    let mut edits = Vec::new();
    for located in relink::located_links(body) {
        let target = &located.link.target;
        let Some(old_dest) = before.resolve(target, old_folder) else {
            continue;
        };
        let dest = map(old_dest);
        if after.resolve(target, new_folder) == Some(dest.as_str()) {
            continue;
        }
        let new = relink::new_target(target, old_dest, &dest, new_folder, after);
        let range = located.target.start + offset..located.target.end + offset;
        edits.push((range, new));
    }
    Ok(edits)
}

/// The title a note has for link resolution (frontmatter title, first heading, or stem).
fn title_of(path: &NotePath, text: &str) -> String {
    parse(path, text).map_or_else(|_| path.stem().to_string(), |p| p.title)
}

fn read_note_file(file: &Path, path: &NotePath, max: usize) -> Result<String, VaultError> {
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VaultError::NotFound(path.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    super::read_text(file, &meta, path, max)
}

/// Every note file below `dir` (dot-entries and links skipped, as a scan does).
fn notes_under(root: &Path, dir: &Path, out: &mut Vec<NotePath>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let full = entry.path();
        if kind.is_dir() {
            notes_under(root, &full, out);
        } else if kind.is_file() {
            let rel = full.strip_prefix(root).ok().and_then(|p| p.to_str());
            if let Some(path) = rel.and_then(|r| NotePath::parse(r).ok()) {
                out.push(path);
            }
        }
    }
}

/// Every indexed note's path and title.
fn indexed_notes(index: &Index) -> Result<Vec<(String, String)>, VaultError> {
    let mut stmt = index.conn().prepare("SELECT path, title FROM notes")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every indexed link: the linking note's path and the target as written.
fn indexed_links(index: &Index) -> Result<Vec<(String, String)>, VaultError> {
    let mut stmt = index
        .conn()
        .prepare("SELECT n.path, l.target FROM links l JOIN notes n ON n.id = l.src")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn new_operation_id() -> String {
    let mut random = [0u8; 6];
    let _ = getrandom::fill(&mut random);
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{:x}-{suffix}", now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::tests::*;

    fn anyone(_: &NotePath) -> Result<(), VaultError> {
        Ok(())
    }

    fn mv(v: &mut Vault, from: &str, to: &str) -> Result<Moved, VaultError> {
        v.move_note(
            MoveRequest {
                from: from.into(),
                to: to.into(),
                ..Default::default()
            },
            &anyone,
        )
    }

    fn file(dir: &tempfile::TempDir, path: &str) -> Option<String> {
        std::fs::read_to_string(dir.path().join("v").join(path)).ok()
    }

    #[test]
    fn a_write_and_a_delete_are_undone_and_the_undo_is_undone_too() {
        let (dir, mut v) = vault();
        write(&mut v, "a.md", "first");
        let first = file(&dir, "a.md").unwrap();
        write(&mut v, "a.md", "second");
        let second = file(&dir, "a.md").unwrap();
        let r = v.restore("a.md", None, None, &anyone).unwrap();
        assert_eq!(r.action, "content");
        assert_eq!(file(&dir, "a.md").unwrap(), first);
        // Undo the undo.
        v.restore("a.md", None, None, &anyone).unwrap();
        assert_eq!(file(&dir, "a.md").unwrap(), second);

        v.delete("a.md", None).unwrap();
        let r = v.restore(
            "a.md",
            None,
            Some(v.index().current_version("a.md").unwrap()),
            &anyone,
        );
        assert_eq!(r.unwrap().action, "content");
        assert_eq!(file(&dir, "a.md").unwrap(), second);
        assert_eq!(v.search("second", None, &[], 5).unwrap().len(), 1);
        // Undoing the restore of a deleted note deletes it again.
        let r = v.restore("a.md", None, None, &anyone).unwrap();
        assert_eq!(r.action, "deleted");
        assert!(file(&dir, "a.md").is_none());
        let ops: Vec<Operation> = v
            .note_history("a.md", 10)
            .unwrap()
            .into_iter()
            .map(|e| e.operation)
            .collect();
        assert_eq!(
            ops,
            [
                Operation::Restore,
                Operation::Restore,
                Operation::Delete,
                Operation::Restore,
                Operation::Restore,
                Operation::Write
            ]
        );
        let missing = v.restore("never.md", None, None, &anyone).unwrap_err();
        assert_eq!(missing.code(), "history_not_found");
    }

    #[test]
    fn a_move_rewrites_links_keeping_their_shape_and_its_undo_puts_them_back() {
        let (dir, mut v) = vault();
        write(&mut v, "projects/plan.md", "# Plan\nsee [[idea]]");
        write(&mut v, "projects/idea.md", "# Idea");
        let referrer = "[[projects/plan#Goals|the plan]] and ![[plan.md]] and [[Plan]] \
                        and `[[projects/plan]]` and [[other]]";
        write(&mut v, "ref.md", referrer);
        write(&mut v, "other.md", "x");
        let before_ref = file(&dir, "ref.md").unwrap();
        let moved = mv(&mut v, "projects/plan.md", "archive/2024/plan.md").unwrap();
        assert_eq!(moved.notes.len(), 1);
        let after_ref = file(&dir, "ref.md").unwrap();
        assert!(
            after_ref.contains("[[archive/2024/plan#Goals|the plan]] and ![[plan.md]] and [[Plan]] and `[[projects/plan]]`"),
            "{after_ref}"
        );
        assert!(file(&dir, "projects/plan.md").is_none());
        // The moved note's own link still reaches the idea by its name.
        assert!(file(&dir, "archive/2024/plan.md")
            .unwrap()
            .contains("[[idea]]"));
        let back: Vec<String> = v
            .backlinks("archive/2024/plan.md")
            .unwrap()
            .into_iter()
            .map(|n| n.path)
            .collect();
        assert_eq!(back, ["ref.md"]);

        let r = v
            .restore("archive/2024/plan.md", None, None, &anyone)
            .unwrap();
        assert_eq!(
            (r.action.as_str(), r.path.as_str()),
            ("moved_back", "projects/plan.md")
        );
        assert_eq!(
            file(&dir, "ref.md").unwrap(),
            before_ref,
            "links put back exactly"
        );
        assert!(file(&dir, "archive/2024/plan.md").is_none());
        assert!(file(&dir, "projects/plan.md").is_some());
        // And the undo of the undo moves it again.
        v.restore("projects/plan.md", None, None, &anyone).unwrap();
        assert_eq!(file(&dir, "ref.md").unwrap(), after_ref);
    }

    #[test]
    fn a_taken_destination_changes_nothing() {
        let (dir, mut v) = vault();
        write(&mut v, "a.md", "[[b]]");
        write(&mut v, "b.md", "b");
        write(&mut v, "c.md", "c");
        std::fs::create_dir_all(dir.path().join("v/f")).unwrap();
        write(&mut v, "g/x.md", "x");
        let err = mv(&mut v, "b.md", "c.md").unwrap_err();
        assert_eq!(err.code(), "already_exists");
        assert_eq!(mv(&mut v, "g", "f").unwrap_err().code(), "already_exists");
        assert_eq!(
            mv(&mut v, "g/", "g/sub").unwrap_err().code(),
            "invalid_arguments"
        );
        assert_eq!(
            mv(&mut v, "nope.md", "n.md").unwrap_err().code(),
            "not_found"
        );
        assert_eq!(file(&dir, "a.md").unwrap(), file(&dir, "a.md").unwrap());
        assert!(file(&dir, "a.md").unwrap().ends_with("[[b]]"));
        assert_eq!(file(&dir, "c.md").map(|t| t.ends_with("c")), Some(true));
    }

    #[test]
    fn a_dry_run_reports_and_writes_nothing() {
        let (dir, mut v) = vault();
        write(&mut v, "f/a.md", "a");
        write(&mut v, "r.md", "[[f/a]]");
        let before = file(&dir, "r.md");
        let out = v
            .move_note(
                MoveRequest {
                    from: "f/".into(),
                    to: "g".into(),
                    dry_run: true,
                    ..Default::default()
                },
                &anyone,
            )
            .unwrap();
        assert_eq!(out.rewritten.len(), 1);
        assert_eq!(file(&dir, "r.md"), before);
        assert!(file(&dir, "f/a.md").is_some());
    }

    #[test]
    fn a_note_outside_the_writable_folders_refuses_the_move() {
        let (dir, mut v) = vault();
        write(&mut v, "f/a.md", "a");
        write(&mut v, "elsewhere/r.md", "[[f/a]]");
        let only_f = |p: &NotePath| {
            if p.as_str().starts_with("f/") || p.as_str().starts_with("g/") {
                Ok(())
            } else {
                Err(VaultError::InsufficientScope("x"))
            }
        };
        let req = MoveRequest {
            from: "f".into(),
            to: "g".into(),
            ..Default::default()
        };
        let err = v.move_note(req, &only_f).unwrap_err();
        assert_eq!(err.code(), "insufficient_scope");
        assert!(file(&dir, "f/a.md").is_some());
    }

    #[test]
    fn a_journal_left_by_a_crash_is_finished_at_the_next_open() {
        let (dir, mut v) = vault();
        write(&mut v, "f/a.md", "a");
        write(&mut v, "r.md", "[[f/a]]");
        // What a move writes before it touches the vault; the process dies right after.
        let journal = Journal {
            operation_id: "crash".into(),
            renames: vec![Rename {
                from: "f".into(),
                to: "g".into(),
            }],
            writes: vec![Rewrite {
                path: "r.md".into(),
                text: file(&dir, "r.md").unwrap().replace("[[f/a]]", "[[g/a]]"),
            }],
            ..Default::default()
        };
        journal.save(&v.undo.journal).unwrap();
        drop(v);
        let mut v = open_in(&dir);
        v.reconcile().unwrap();
        assert!(file(&dir, "f/a.md").is_none());
        assert!(file(&dir, "r.md").unwrap().contains("[[g/a]]"));
        let back: Vec<String> = v
            .backlinks("g/a.md")
            .unwrap()
            .into_iter()
            .map(|n| n.path)
            .collect();
        assert_eq!(back, ["r.md"]);
    }

    #[test]
    fn history_survives_the_loss_of_the_index_file() {
        let (dir, mut v) = vault();
        write(&mut v, "a.md", "one");
        write(&mut v, "a.md", "two");
        drop(v);
        for f in ["i.sqlite", "i.sqlite-wal", "i.sqlite-shm"] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
        let mut v = open_in(&dir);
        v.reconcile().unwrap();
        assert_eq!(v.note_history("a.md", 10).unwrap().len(), 1);
        v.restore("a.md", None, None, &anyone).unwrap();
        assert!(file(&dir, "a.md").unwrap().ends_with("one"));
    }

    #[test]
    fn history_is_bounded_per_note_by_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::for_data_dir(dir.path());
        settings.history_per_note = 2;
        let mut v = Vault::open(
            &dir.path().join("v"),
            &dir.path().join("i.sqlite"),
            &settings,
        )
        .unwrap();
        for i in 0..6 {
            write(&mut v, "a.md", &format!("v{i}"));
        }
        let entries = v.note_history("a.md", 10).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].version, 5);
    }
}
