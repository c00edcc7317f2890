//! Notes in the index: upsert and removal (with their FTS row, tags and links), versions, and
//! the listing queries that answer from the index instead of re-reading files.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use super::links::{self, link_key};
use super::{Index, IndexTx};
use crate::note::NotePath;
use crate::note::WikiLink;

/// Everything the index stores about one note, handed over by the vault after parsing.
pub struct NoteRecord<'a> {
    pub path: &'a NotePath,
    pub title: &'a str,
    pub body: &'a str,
    pub tags: &'a [String],
    pub links: &'a [WikiLink],
    pub size: u64,
    pub mtime_ns: i64,
    pub hash: &'a str,
    pub created: Option<&'a str>,
    pub updated: Option<&'a str>,
    pub updated_ms: i64,
}

/// What kind of change an upsert or removal is part of; it decides when links are re-resolved
/// and when the text reaches the FTS table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A single write: links are resolved now, for this note and every link it could satisfy;
    /// the FTS row is marked stale and the text queued for the next batch (see `fulltext`).
    Single,
    /// Part of a bulk reconcile or rebuild: the text goes to the FTS table in this transaction,
    /// links are resolved afterwards in one pass over the whole vault.
    Bulk,
}

/// What the index knows of a note, enough to skip re-reading an unchanged file.
#[derive(Debug, Clone)]
pub struct IndexedNote {
    pub size: u64,
    pub mtime_ns: i64,
    pub hash: String,
}

/// The stored facts of one note, as tools report them.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NoteMeta {
    pub path: String,
    pub title: String,
    pub version: u64,
    pub size: u64,
    pub created: Option<String>,
    pub updated: Option<String>,
    pub tags: Vec<String>,
}

/// One row of `list_notes`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ListedNote {
    pub path: String,
    pub title: String,
    pub version: u64,
    pub size: u64,
    pub updated: Option<String>,
}

/// A folder directly below the listed one, and how many notes it holds (at any depth).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FolderCount {
    pub path: String,
    pub notes: u64,
}

/// One `[[link]]` of a note, in the order the note has them.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct OutgoingLink {
    /// The link target as written, e.g. `Plan` in `[[Plan#Goals|the plan]]`.
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// `![[...]]`: the target is embedded rather than linked.
    pub embed: bool,
    /// The note the link resolves to; absent for a broken link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
}

/// A tag and how many notes carry it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TagCount {
    pub tag: String,
    pub count: u64,
}

/// A `ListedNote` from a row of (path, title, version, size, updated).
fn listed_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ListedNote> {
    Ok(ListedNote {
        path: r.get(0)?,
        title: r.get(1)?,
        version: r.get(2)?,
        size: r.get(3)?,
        updated: r.get(4)?,
    })
}

fn bump_version(
    tx: &Transaction<'_>,
    path: &str,
    hash: &str,
    always: bool,
) -> rusqlite::Result<u64> {
    let old: Option<(u64, Option<String>, bool)> = tx
        .prepare_cached("SELECT version, hash, live FROM note_state WHERE path = ?1")?
        .query_row([path], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let version = match old {
        None => 1,
        Some((v, h, live)) if always || !live || h.as_deref() != Some(hash) => v + 1,
        Some((v, _, _)) => v,
    };
    tx.prepare_cached(
        "INSERT INTO note_state(path, version, hash, live) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT(path) DO UPDATE SET version = ?2, hash = ?3, live = 1",
    )?
    .execute(params![path, version, hash])?;
    Ok(version)
}

fn indexed_file_row(
    conn: &rusqlite::Connection,
    path: &str,
) -> rusqlite::Result<Option<IndexedNote>> {
    conn.prepare_cached("SELECT size, mtime_ns, hash FROM notes WHERE path = ?1")?
        .query_row([path], |r| {
            Ok(IndexedNote {
                size: r.get(0)?,
                mtime_ns: r.get(1)?,
                hash: r.get(2)?,
            })
        })
        .optional()
}

/// The facts of notes (tags apart), as [`note_facts_row`] reads them.
const NOTE_FACTS: &str = "SELECT n.id, n.path, n.title, s.version, n.size, n.created, n.updated,
                          n.mtime_ns FROM notes n JOIN note_state s ON s.path = n.path";

/// Note id, facts (no tags yet) and indexed mtime from a [`NOTE_FACTS`] row.
fn note_facts_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, NoteMeta, i64)> {
    Ok((
        r.get(0)?,
        NoteMeta {
            path: r.get(1)?,
            title: r.get(2)?,
            version: r.get(3)?,
            size: r.get(4)?,
            created: r.get(5)?,
            updated: r.get(6)?,
            tags: Vec::new(),
        },
        r.get(7)?,
    ))
}

impl Index {
    /// Store a note (new or changed) with its text, tags and links; returns its version.
    /// `new_content` says a client wrote it (the version always goes up); a reconcile passes
    /// false, so an unchanged file keeps its version even after the index was rebuilt.
    pub fn upsert(
        tx: &IndexTx<'_>,
        note: &NoteRecord<'_>,
        new_content: bool,
        scope: Scope,
    ) -> rusqlite::Result<u64> {
        let path = note.path.as_str();
        tx.note_changed(path);
        let (path_key, _) = link_key(path);
        let stem = note.path.stem().to_lowercase();
        let title_key = note.title.to_lowercase();
        let existing: Option<(i64, String)> = tx
            .prepare_cached("SELECT id, title_key FROM notes WHERE path = ?1")?
            .query_row([path], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        // Which note a link resolves to depends only on paths, stems and titles: a rewrite of
        // a note that keeps its title changes no link's destination.
        let keys_changed = existing.as_ref().is_none_or(|(_, old)| *old != title_key);
        let id = match existing.map(|(id, _)| id) {
            Some(id) => {
                tx.prepare_cached(
                    "UPDATE notes SET title = ?2, title_key = ?3, size = ?4, mtime_ns = ?5,
                     hash = ?6, created = ?7, updated = ?8, updated_ms = ?9 WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    note.title,
                    title_key,
                    note.size,
                    note.mtime_ns,
                    note.hash,
                    note.created,
                    note.updated,
                    note.updated_ms
                ])?;
                tx.prepare_cached("DELETE FROM links WHERE src = ?1")?
                    .execute([id])?;
                tx.prepare_cached("DELETE FROM tags WHERE note = ?1")?
                    .execute([id])?;
                id
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO notes(path, path_key, folder, stem, title, title_key, size,
                     mtime_ns, hash, created, updated, updated_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    path,
                    path_key,
                    note.path.folder(),
                    stem,
                    note.title,
                    title_key,
                    note.size,
                    note.mtime_ns,
                    note.hash,
                    note.created,
                    note.updated,
                    note.updated_ms
                ])?;
                tx.last_insert_rowid()
            }
        };
        match scope {
            Scope::Single => Index::mark_full_text(tx, id, Some((note.title, note.body)))?,
            Scope::Bulk => Index::put_full_text(tx, id, note.title, note.body)?,
        }
        {
            let mut add_tag =
                tx.prepare_cached("INSERT OR IGNORE INTO tags(note, tag) VALUES (?1, ?2)")?;
            for tag in note.tags {
                add_tag.execute(params![id, tag])?;
            }
        }
        {
            let mut add_link = tx.prepare_cached(
                "INSERT INTO links(src, target, target_key, target_last, heading, alias, embed, dst)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for link in note.links {
                let (key, last) = link_key(&link.target);
                let dst = match scope {
                    Scope::Single => links::resolve_one(tx, note.path.folder(), &key, &last)?,
                    Scope::Bulk => None,
                };
                add_link.execute(params![
                    id,
                    link.target,
                    key,
                    last,
                    link.heading,
                    link.alias,
                    link.embed,
                    dst
                ])?;
            }
        }
        if scope == Scope::Single && keys_changed {
            links::re_resolve_for_note(tx, id, &path_key, &stem, &title_key)?;
        }
        bump_version(tx, path, note.hash, new_content)
    }

    /// Forget a note; its version is kept so a later note at the same path continues from it.
    /// Links that pointed at it are re-resolved (another note may satisfy them now).
    pub fn remove(tx: &IndexTx<'_>, path: &str, scope: Scope) -> rusqlite::Result<bool> {
        tx.note_changed(path);
        let Some(id) = links::note_id(tx, path)? else {
            return Ok(false);
        };
        let pointing: Vec<i64> = {
            let mut stmt = tx.prepare_cached("SELECT rowid FROM links WHERE dst = ?1")?;
            let rows = stmt.query_map([id], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        match scope {
            Scope::Single => Index::mark_full_text(tx, id, None)?,
            Scope::Bulk => Index::drop_full_text(tx, id)?,
        }
        tx.prepare_cached("DELETE FROM notes WHERE id = ?1")?
            .execute([id])?;
        tx.prepare_cached("UPDATE note_state SET live = 0 WHERE path = ?1")?
            .execute([path])?;
        if scope == Scope::Single {
            for rowid in pointing {
                links::re_resolve_where(tx, "l.rowid = ?1", &[&rowid])?;
            }
        }
        Ok(true)
    }

    /// Resolve every link in one pass (after a bulk reconcile).
    pub fn resolve_all_links(tx: &Transaction<'_>) -> rusqlite::Result<()> {
        links::resolve_all(tx)
    }

    /// Size, mtime and hash of every indexed note, for the start-up reconcile.
    pub fn indexed_files(
        &self,
    ) -> rusqlite::Result<std::collections::HashMap<String, IndexedNote>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT path, size, mtime_ns, hash FROM notes")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                IndexedNote {
                    size: r.get(1)?,
                    mtime_ns: r.get(2)?,
                    hash: r.get(3)?,
                },
            ))
        })?;
        rows.collect()
    }

    /// Size and mtime of the indexed file at `path`, to tell whether it changed on disk.
    pub fn file_facts(&self, path: &str) -> rusqlite::Result<Option<(u64, i64)>> {
        self.conn()
            .prepare_cached("SELECT size, mtime_ns FROM notes WHERE path = ?1")?
            .query_row([path], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    }

    /// Size, mtime and content hash of the indexed file at `path`, to tell whether the file
    /// changed on disk since (before a write, or on a watcher's event).
    pub fn indexed_file(&self, path: &str) -> rusqlite::Result<Option<IndexedNote>> {
        indexed_file_row(self.conn(), path)
    }

    /// [`Index::indexed_file`], inside a transaction.
    pub fn indexed_file_tx(tx: &IndexTx<'_>, path: &str) -> rusqlite::Result<Option<IndexedNote>> {
        indexed_file_row(tx, path)
    }

    /// Record a new mtime for a file whose content did not change (touched, or copied back).
    pub fn touch(tx: &IndexTx<'_>, path: &str, mtime_ns: i64) -> rusqlite::Result<()> {
        tx.note_changed(path);
        tx.prepare_cached("UPDATE notes SET mtime_ns = ?2 WHERE path = ?1")?
            .execute(params![path, mtime_ns])?;
        Ok(())
    }

    /// The current version of a note: 0 when there is no note at that path now.
    pub fn current_version(&self, path: &str) -> rusqlite::Result<u64> {
        Ok(self
            .conn()
            .prepare_cached("SELECT version FROM note_state WHERE path = ?1 AND live = 1")?
            .query_row([path], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// What the index stores about one note.
    pub fn meta(&self, path: &str) -> rusqlite::Result<Option<NoteMeta>> {
        Ok(self.meta_and_mtime(path)?.map(|(meta, _)| meta))
    }

    /// What the index stores about one note, with the file mtime it was indexed at (to tell
    /// whether the file changed since).
    pub fn meta_and_mtime(&self, path: &str) -> rusqlite::Result<Option<(NoteMeta, i64)>> {
        if let Some(known) = self.note_facts.borrow().get(path) {
            return Ok(Some(known));
        }
        let row = self
            .conn()
            .prepare_cached(&format!("{NOTE_FACTS} WHERE n.path = ?1"))?
            .query_row([path], note_facts_row)
            .optional()?;
        let Some((id, mut meta, mtime)) = row else {
            return Ok(None);
        };
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT tag FROM tags WHERE note = ?1 ORDER BY tag")?;
        meta.tags = stmt
            .query_map([id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        self.note_facts.borrow_mut().insert(&meta, mtime);
        Ok(Some((meta, mtime)))
    }

    /// Read every note's facts into memory in one pass (once after the index is opened or
    /// emptied), so that reads find them there; as many as the memory budget allows.
    pub fn load_note_facts(&self) -> rusqlite::Result<()> {
        if !self.note_facts.borrow().wants_load() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
        let mut stmt = self
            .conn()
            .prepare("SELECT note, tag FROM tags ORDER BY note, tag")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            tags.entry(r.get(0)?).or_default().push(r.get(1)?);
        }
        let mut stmt = self.conn().prepare(NOTE_FACTS)?;
        let notes = stmt
            .query_map([], note_facts_row)?
            .map(|row| {
                row.map(|(id, mut meta, mtime)| {
                    meta.tags = tags.remove(&id).unwrap_or_default();
                    (meta, mtime)
                })
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let count = notes.len();
        self.note_facts.borrow_mut().load(notes);
        tracing::debug!(
            notes = count,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "note facts loaded"
        );
        Ok(())
    }

    /// A page of notes under `folder` (all when empty), ordered by path, starting after
    /// `after`; one extra row is fetched to tell whether another page exists.
    pub fn list(
        &self,
        folder: &str,
        after: Option<&str>,
        limit: usize,
    ) -> rusqlite::Result<(Vec<ListedNote>, bool)> {
        let prefix = if folder.is_empty() {
            String::new()
        } else {
            format!("{folder}/")
        };
        let mut stmt = self.conn().prepare_cached(
            "SELECT n.path, n.title, s.version, n.size, n.updated
             FROM notes n JOIN note_state s ON s.path = n.path
             WHERE substr(n.path, 1, length(?1)) = ?1 AND n.path > ?2
             ORDER BY n.path LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![prefix, after.unwrap_or(""), limit as i64 + 1],
            listed_row,
        )?;
        let mut notes: Vec<ListedNote> = rows.collect::<rusqlite::Result<_>>()?;
        let more = notes.len() > limit;
        notes.truncate(limit);
        Ok((notes, more))
    }

    /// A page of the notes directly in `folder` (not in its subfolders), ordered by path,
    /// starting after `after`; one extra row is fetched to tell whether another page exists.
    pub fn list_direct(
        &self,
        folder: &str,
        after: Option<&str>,
        limit: usize,
    ) -> rusqlite::Result<(Vec<ListedNote>, bool)> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT n.path, n.title, s.version, n.size, n.updated
             FROM notes n JOIN note_state s ON s.path = n.path
             WHERE n.folder = ?1 AND n.path > ?2
             ORDER BY n.path LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![folder, after.unwrap_or(""), limit as i64 + 1],
            listed_row,
        )?;
        let mut notes: Vec<ListedNote> = rows.collect::<rusqlite::Result<_>>()?;
        let more = notes.len() > limit;
        notes.truncate(limit);
        Ok((notes, more))
    }

    /// The folders directly below `folder` (the vault's top level when empty), by path, each
    /// with the number of notes it holds at any depth.
    pub fn subfolders(&self, folder: &str) -> rusqlite::Result<Vec<FolderCount>> {
        let prefix = if folder.is_empty() {
            String::new()
        } else {
            format!("{folder}/")
        };
        let mut stmt = self.conn().prepare_cached(
            "SELECT folder, count(*) FROM notes
             WHERE folder != ?1 AND substr(folder, 1, length(?2)) = ?2
             GROUP BY folder ORDER BY folder",
        )?;
        let rows = stmt.query_map(params![folder, prefix], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?))
        })?;
        let mut out: Vec<FolderCount> = Vec::new();
        for row in rows {
            let (below, count) = row?;
            let rest = &below[prefix.len()..];
            let child = format!("{prefix}{}", rest.split('/').next().unwrap_or(rest));
            match out.last_mut() {
                Some(last) if last.path == child => last.notes += count,
                _ => out.push(FolderCount {
                    path: child,
                    notes: count,
                }),
            }
        }
        Ok(out)
    }

    /// The links written in the note at `path`, in the order they appear, with where each one
    /// resolves to.
    pub fn outgoing_links(&self, path: &str) -> rusqlite::Result<Vec<OutgoingLink>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT l.target, l.heading, l.alias, l.embed, d.path
             FROM notes s JOIN links l ON l.src = s.id LEFT JOIN notes d ON d.id = l.dst
             WHERE s.path = ?1 ORDER BY l.rowid",
        )?;
        let rows = stmt.query_map([path], |r| {
            Ok(OutgoingLink {
                target: r.get(0)?,
                heading: r.get(1)?,
                alias: r.get(2)?,
                embed: r.get::<_, i64>(3)? != 0,
                resolved: r.get(4)?,
            })
        })?;
        rows.collect()
    }

    /// Every tag with its note count, most used first.
    pub fn tags(&self) -> rusqlite::Result<Vec<TagCount>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT tag, count(*) AS c FROM tags GROUP BY tag ORDER BY c DESC, tag",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TagCount {
                tag: r.get(0)?,
                count: r.get(1)?,
            })
        })?;
        rows.collect()
    }

    /// Notes whose links resolve to the note at `path`, ordered by path.
    pub fn backlinks(&self, path: &str) -> rusqlite::Result<Vec<ListedNote>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT DISTINCT s.path, s.title, st.version, s.size, s.updated
             FROM notes t JOIN links l ON l.dst = t.id JOIN notes s ON s.id = l.src
             JOIN note_state st ON st.path = s.path
             WHERE t.path = ?1 ORDER BY s.path",
        )?;
        let rows = stmt.query_map([path], listed_row)?;
        rows.collect()
    }

    /// Empty the index tables inside `tx` (the state tables stay), before a full rebuild.
    pub fn clear(tx: &IndexTx<'_>) -> rusqlite::Result<()> {
        tx.execute_batch(
            "DELETE FROM links; DELETE FROM tags; DELETE FROM notes_fts; DELETE FROM notes;
             DELETE FROM fts_pending;",
        )?;
        tx.fts_cleared();
        tx.notes_cleared();
        Ok(())
    }

    /// Up to `limit` paths starting with `prefix`, ignoring case, and how many there are.
    pub fn paths_with_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> rusqlite::Result<(Vec<String>, usize)> {
        let lower = prefix.to_lowercase();
        let mut stmt = self.conn().prepare_cached(
            "SELECT path FROM notes WHERE substr(lower(path), 1, length(?1)) = ?1 ORDER BY path",
        )?;
        let all: Vec<String> = stmt
            .query_map([lower], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let total = all.len();
        Ok((all.into_iter().take(limit).collect(), total))
    }

    /// Notes carrying `tag`, ordered by path.
    pub fn notes_with_tag(&self, tag: &str, limit: usize) -> rusqlite::Result<Vec<ListedNote>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT n.path, n.title, s.version, n.size, n.updated
             FROM tags t JOIN notes n ON n.id = t.note JOIN note_state s ON s.path = n.path
             WHERE t.tag = ?1 ORDER BY n.path LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![tag, limit as i64], listed_row)?;
        rows.collect()
    }

    /// Up to `limit` notes under `folder` (all when empty) whose last change (`updated_ms`)
    /// is at or after `since_ms`, newest first (then by path), each with that time.
    pub fn recent(
        &self,
        folder: &str,
        since_ms: Option<i64>,
        limit: usize,
    ) -> rusqlite::Result<Vec<(ListedNote, i64)>> {
        let prefix = if folder.is_empty() {
            String::new()
        } else {
            format!("{folder}/")
        };
        let mut stmt = self.conn().prepare_cached(
            "SELECT n.path, n.title, s.version, n.size, n.updated, n.updated_ms
             FROM notes n JOIN note_state s ON s.path = n.path
             WHERE substr(n.path, 1, length(?1)) = ?1 AND n.updated_ms >= ?2
             ORDER BY n.updated_ms DESC, n.path LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![prefix, since_ms.unwrap_or(i64::MIN), limit as i64],
            |r| Ok((listed_row(r)?, r.get(5)?)),
        )?;
        rows.collect()
    }

    /// Number of indexed notes.
    pub fn count(&self) -> rusqlite::Result<u64> {
        self.conn()
            .prepare_cached("SELECT count(*) FROM notes")?
            .query_row([], |r| r.get(0))
    }

    /// Number of indexed notes and the sum of their file sizes, in one pass.
    pub fn count_and_bytes(&self) -> rusqlite::Result<(u64, u64)> {
        self.conn()
            .prepare_cached("SELECT count(*), coalesce(sum(size), 0) FROM notes")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
    }

    /// The newest `updated_ms` of any note (by the `notes_updated` index), if there is a note.
    pub fn newest_update_ms(&self) -> rusqlite::Result<Option<i64>> {
        self.conn()
            .prepare_cached("SELECT max(updated_ms) FROM notes")?
            .query_row([], |r| r.get(0))
    }

    /// Number of distinct tags.
    pub fn tag_count(&self) -> rusqlite::Result<u64> {
        self.conn()
            .prepare_cached("SELECT count(DISTINCT tag) FROM tags")?
            .query_row([], |r| r.get(0))
    }
}
