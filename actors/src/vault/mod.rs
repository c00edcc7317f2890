//! One user's vault: the markdown files (the source of truth) and the index that caches them.
//!
//! Every operation here is synchronous; the user actor runs them on a job thread. A write
//! goes to the file first (crash-safe), then to the index in one transaction, so the index can
//! always be rebuilt from the files.

pub mod body;
mod diff;
mod edit;
pub mod files;
pub mod frontmatter;
pub mod history;
mod journal;
pub mod moves;
pub mod paths;
mod recent;
mod reconcile;
mod relink;
mod sync;
mod text;
pub mod usage;
mod write;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::VaultError;
use crate::index::fts_query::build_match_query;
use crate::index::{
    FolderCount, Index, IndexTx, ListedNote, NoteRecord, OutgoingLink, Scope, SearchFilter,
    SearchHit, TagCount,
};
use crate::note::{NotePath, WikiLink};
use crate::settings::{Quotas, Settings};
pub use edit::{Edit, EditRequest, Edited};
use frontmatter::FrontmatterError;
pub use journal::PrivateFiles;
pub use moves::{MoveRequest, Moved, Restored};
pub use recent::{parse_since, RecentNote};
pub use reconcile::ReconcileReport;
pub use sync::SyncReport;
use usage::{IndexHealth, QuotaUse, QuotasUsed, Scan, Usage, VaultInfo};
pub use write::{WriteRequest, Written};

/// A user's vault, open.
pub struct Vault {
    /// Canonical vault folder; every note path is resolved (and checked) against it.
    root: PathBuf,
    index: Index,
    max_note_bytes: usize,
    max_query_chars: usize,
    /// Notes changed by operations since the last `take_changes`, for change notifications.
    changes: Vec<Change>,
    /// Recent search answers, valid while the index has not changed since: agents repeat
    /// searches, and ranking thousands of matches is the costliest thing a vault does.
    search_cache: SearchCache,
    quotas: Quotas,
    /// Notes in the index and their bytes, carried along by writes and deletes so that a
    /// write's quota check asks SQLite nothing; `None` until first needed and after any other
    /// change to the index (a scan, a read that re-indexed a file), then summed from the index.
    usage: Option<Usage>,
    /// When a write or delete through this vault last happened, for `vault_info`.
    last_change_ms: Option<i64>,
    /// What the last scan of the files found, for `vault_info`.
    last_scan: Option<Scan>,
    /// Note history and the move journal, kept outside the index so a rebuild keeps them.
    undo: moves::Undo,
}

/// Search answers by (query, folder, tags, limit), dropped whenever the index changes.
#[derive(Default)]
struct SearchCache {
    entries: std::collections::HashMap<(String, String, Vec<String>, usize), Vec<SearchHit>>,
}

/// Searches remembered at most; beyond it the cache starts over.
const SEARCH_CACHE_ENTRIES: usize = 256;

/// A change to a note, as subscribers are told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Written { path: String, created: bool },
    Deleted { path: String },
}

/// A note as `read_note` returns it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Note {
    pub path: String,
    pub title: String,
    /// The markdown body, without the frontmatter block.
    pub body: String,
    /// The frontmatter as an object (managed keys included).
    pub metadata: Map<String, Value>,
    pub tags: Vec<String>,
    pub version: u64,
    pub size: u64,
    pub created: Option<String>,
    pub updated: Option<String>,
}

/// The outcome of a delete.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Deleted {
    pub path: String,
    /// The version the note had when it was deleted.
    pub version: u64,
}

/// One page of `list_notes`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NotePage {
    pub notes: Vec<ListedNote>,
    /// With `recursive: false`: the folders directly below the listed one (on every page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folders: Option<Vec<FolderCount>>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A parsed note file, ready for the index.
struct Parsed {
    frontmatter: Map<String, Value>,
    body: String,
    title: String,
    tags: Vec<String>,
    links: Vec<WikiLink>,
}

impl Vault {
    /// Open the vault folder (created if missing) and its index file.
    pub fn open(
        vault_dir: &Path,
        index_file: &Path,
        settings: &Settings,
    ) -> Result<Self, VaultError> {
        std::fs::create_dir_all(vault_dir)?;
        if let Some(parent) = index_file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let root = std::fs::canonicalize(vault_dir)?;
        let mut index = Index::open(index_file)?;
        index.set_search_memory_limit(settings.search_memory_bytes);
        Ok(Vault {
            root,
            index,
            max_note_bytes: settings.max_note_bytes,
            max_query_chars: settings.max_query_chars,
            changes: Vec::new(),
            search_cache: SearchCache::default(),
            quotas: settings.quotas,
            usage: None,
            last_change_ms: None,
            last_scan: None,
            undo: moves::Undo::open(index_file, settings)?,
        })
    }

    /// Run `f` in one index transaction; any change drops the cached search answers.
    fn change_index<T>(
        &mut self,
        f: impl FnOnce(&IndexTx<'_>) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        self.search_cache.entries.clear();
        self.usage = None;
        self.index.transaction(f)
    }

    /// Notes in the index and their bytes (summed from the index once, then carried along).
    fn usage(&mut self) -> Result<Usage, VaultError> {
        if let Some(usage) = self.usage {
            return Ok(usage);
        }
        let (notes, bytes) = self.index.count_and_bytes()?;
        let usage = Usage { notes, bytes };
        self.usage = Some(usage);
        Ok(usage)
    }

    /// Counts, quotas, index health and last change, for `vault_info`; `sessions` is the
    /// user's session quota and use, which the vault does not keep.
    pub fn info(&mut self, sessions: QuotaUse) -> Result<VaultInfo, VaultError> {
        /// Queued note text older than this means flushes are failing.
        const QUEUE_AGE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
        let usage = self.usage()?;
        let (queued, waited) = self.index.full_text_backlog();
        let scan = self.last_scan;
        let skipped = scan.map_or(0, |s| s.skipped);
        let last_change_ms = self
            .index
            .newest_update_ms()?
            .into_iter()
            .chain(self.last_change_ms)
            .max();
        Ok(VaultInfo {
            notes: usage.notes,
            bytes: usage.bytes,
            tags: self.index.tag_count()?,
            sessions: sessions.used,
            quota: QuotasUsed {
                notes_per_vault: QuotaUse {
                    max: self.quotas.notes_per_vault,
                    used: usage.notes,
                },
                vault_bytes: QuotaUse {
                    max: self.quotas.vault_bytes,
                    used: usage.bytes,
                },
                sessions_per_user: sessions,
            },
            index: IndexHealth {
                healthy: skipped == 0 && waited.is_none_or(|w| w < QUEUE_AGE_LIMIT),
                indexed_notes: usage.notes,
                files_at_last_scan: scan.map_or(0, |s| s.files),
                skipped_at_last_scan: skipped,
                last_scan: scan.map(|s| rfc3339_of_ms(s.at_ms)),
                queued_full_text: queued as u64,
            },
            last_change: last_change_ms.map(rfc3339_of_ms),
        })
    }

    /// The changes made since the last call.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// The vault folder (canonical), for the file watcher.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Is note text waiting for [`Vault::flush_full_text`]?
    pub fn full_text_queued(&self) -> bool {
        self.index.full_text_queued()
    }

    /// Load what reads need about every note into memory, once after the vault opened (or its
    /// index was rebuilt); later calls return at once.
    pub fn load_note_facts(&self) -> Result<(), VaultError> {
        Ok(self.index.load_note_facts()?)
    }

    /// Write the queued note text to the full-text index (see `index::fulltext`).
    pub fn flush_full_text(&mut self) -> Result<(), VaultError> {
        Ok(self.index.flush_full_text()?)
    }

    /// The current version of an existing note (`not_found` when there is none).
    pub fn version_of(&self, raw_path: &str) -> Result<u64, VaultError> {
        let path = NotePath::parse(raw_path)?;
        paths::resolve(&self.root, &path)?;
        match self.index.current_version(path.as_str())? {
            0 => Err(VaultError::NotFound(path.to_string())),
            v => Ok(v),
        }
    }

    /// Up to `limit` note paths starting with `prefix` (case-insensitive), for completion.
    pub fn complete_paths(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<(Vec<String>, usize), VaultError> {
        Ok(self.index.paths_with_prefix(prefix, limit)?)
    }

    /// Up to `limit` tags starting with `prefix`, for completion.
    pub fn complete_tags(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<(Vec<String>, usize), VaultError> {
        let prefix = prefix.trim_start_matches('#').to_lowercase();
        let all: Vec<String> = self
            .index
            .tags()?
            .into_iter()
            .map(|t| t.tag)
            .filter(|t| t.starts_with(&prefix))
            .collect();
        let total = all.len();
        Ok((all.into_iter().take(limit).collect(), total))
    }

    /// Notes carrying `tag`, ordered by path.
    pub fn notes_with_tag(&self, tag: &str, limit: usize) -> Result<Vec<ListedNote>, VaultError> {
        Ok(self
            .index
            .notes_with_tag(&tag.trim_start_matches('#').to_lowercase(), limit)?)
    }

    /// Read a note from its file. A file changed on disk since it was indexed is re-indexed
    /// on the way, so what `read_note` returns and what search finds agree.
    pub fn read(&mut self, raw_path: &str) -> Result<Note, VaultError> {
        let path = NotePath::parse(raw_path)?;
        let (file, meta) = paths::resolve_with_meta(&self.root, &path)?;
        let Some(meta) = meta else {
            // Deleted outside the server: the index follows the disk at once, so list, search
            // and backlinks stop showing it, and subscribers hear of it.
            if self.unindex(&path)? {
                self.last_change_ms = Some(now_ms());
                self.changes.push(Change::Deleted {
                    path: path.to_string(),
                });
            }
            return Err(VaultError::NotFound(path.to_string()));
        };
        let text = read_text(&file, &meta, &path, self.max_note_bytes)?;
        let (size, mtime) = (meta.len(), mtime_ns(&meta));
        // Unchanged since it was indexed: title, tags and version come from the index, and only
        // the frontmatter needs parsing (links and inline tags are the costly part of a parse).
        if let Some((indexed, indexed_mtime)) = self.index.meta_and_mtime(path.as_str())? {
            if indexed.size == size && indexed_mtime == mtime {
                let (frontmatter, body) = split(&text)
                    .map_err(|e| VaultError::InvalidFrontmatter(format!("{path}: {e}")))?;
                return Ok(Note {
                    path: indexed.path,
                    title: indexed.title,
                    body: body.to_string(),
                    created: fm_string(&frontmatter, "created"),
                    updated: fm_string(&frontmatter, "updated"),
                    metadata: frontmatter,
                    tags: indexed.tags,
                    version: indexed.version,
                    size,
                });
            }
        }
        let parsed = parse(&path, &text)
            .map_err(|e| VaultError::InvalidFrontmatter(format!("{path}: {e}")))?;
        let hash = hash(text.as_bytes());
        let version = self.change_index(|tx| {
            store(
                tx,
                &path,
                &parsed,
                size,
                mtime,
                &hash,
                mtime / 1_000_000,
                false,
                Scope::Single,
            )
        })?;
        Ok(Note {
            path: path.to_string(),
            created: fm_string(&parsed.frontmatter, "created"),
            updated: fm_string(&parsed.frontmatter, "updated"),
            title: parsed.title,
            body: parsed.body,
            metadata: parsed.frontmatter,
            tags: parsed.tags,
            version,
            size,
        })
    }

    /// Drop `path` from the index (its version is kept for a later note there), keeping the
    /// running usage right; false when it was not indexed.
    fn unindex(&mut self, path: &NotePath) -> Result<bool, VaultError> {
        let usage = self.usage;
        let Some((size, _)) = self.index.file_facts(path.as_str())? else {
            return Ok(false);
        };
        self.change_index(|tx| Ok(Index::remove(tx, path.as_str(), Scope::Single)?))?;
        self.usage = usage.map(|u| u.after_delete(size));
        Ok(true)
    }

    /// A client's folder filter, checked lexically and against the file system.
    fn folder(&self, raw: Option<&str>) -> Result<String, VaultError> {
        let folder = crate::note::parse_folder(raw.unwrap_or(""))?;
        paths::check_folder(&self.root, &folder)?;
        Ok(folder)
    }

    /// A page of notes under `folder`, from the index.
    pub fn list(
        &self,
        folder: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<NotePage, VaultError> {
        let folder = self.folder(folder)?;
        let (notes, more) = self.index.list(&folder, cursor, limit)?;
        Ok(page(notes, more, None))
    }

    /// A page of the notes directly in `folder`, with the folders directly below it.
    pub fn list_folder(
        &self,
        folder: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<NotePage, VaultError> {
        let folder = self.folder(folder)?;
        let (notes, more) = self.index.list_direct(&folder, cursor, limit)?;
        let folders = self.index.subfolders(&folder)?;
        Ok(page(notes, more, Some(folders)))
    }

    /// The `[[links]]` written in a note, resolved or broken.
    pub fn links(&self, raw_path: &str) -> Result<Vec<OutgoingLink>, VaultError> {
        let path = NotePath::parse(raw_path)?;
        paths::resolve(&self.root, &path)?;
        if self.index.meta(path.as_str())?.is_none() {
            return Err(VaultError::NotFound(path.to_string()));
        }
        Ok(self.index.outgoing_links(path.as_str())?)
    }

    /// Full-text search, best first.
    pub fn search(
        &mut self,
        query: &str,
        folder: Option<&str>,
        tags: &[String],
        limit: usize,
    ) -> Result<Vec<SearchHit>, VaultError> {
        let filter = SearchFilter {
            folder: self.folder(folder)?,
            tags: tags
                .iter()
                .map(|t| t.trim_start_matches('#').to_lowercase())
                .collect(),
        };
        if query.trim().is_empty() && !filter.tags.is_empty() {
            return Ok(self.index.tagged(&filter, limit)?);
        }
        let expr = build_match_query(query, self.max_query_chars)
            .map_err(|e| VaultError::InvalidQuery(e.to_string()))?;
        let key = (expr, filter.folder.clone(), filter.tags.clone(), limit);
        if let Some(hits) = self.search_cache.entries.get(&key) {
            return Ok(hits.clone());
        }
        self.index.flush_full_text()?;
        let hits = self.index.search(&key.0, &filter, limit, now_ms())?;
        if self.search_cache.entries.len() >= SEARCH_CACHE_ENTRIES {
            self.search_cache.entries.clear();
        }
        self.search_cache.entries.insert(key, hits.clone());
        Ok(hits)
    }

    /// Notes linking to the note at `path`.
    pub fn backlinks(&self, raw_path: &str) -> Result<Vec<ListedNote>, VaultError> {
        let path = NotePath::parse(raw_path)?;
        paths::resolve(&self.root, &path)?;
        if self.index.meta(path.as_str())?.is_none() {
            return Err(VaultError::NotFound(path.to_string()));
        }
        Ok(self.index.backlinks(path.as_str())?)
    }

    /// Every tag with its count.
    pub fn tags(&self) -> Result<Vec<TagCount>, VaultError> {
        Ok(self.index.tags()?)
    }
}

/// A `list_notes` page; the cursor is the last path shown when more follow.
fn page(notes: Vec<ListedNote>, more: bool, folders: Option<Vec<FolderCount>>) -> NotePage {
    let next_cursor = if more {
        notes.last().map(|n| n.path.clone())
    } else {
        None
    };
    NotePage {
        notes,
        folders,
        next_cursor,
    }
}

/// Index one parsed note (file facts from the caller) and return its version.
#[allow(clippy::too_many_arguments)]
fn store(
    tx: &IndexTx<'_>,
    path: &NotePath,
    parsed: &Parsed,
    size: u64,
    mtime_ns: i64,
    hash: &str,
    updated_ms: i64,
    new_content: bool,
    scope: Scope,
) -> Result<u64, VaultError> {
    let created = fm_string(&parsed.frontmatter, "created");
    let updated = fm_string(&parsed.frontmatter, "updated");
    let record = NoteRecord {
        path,
        title: &parsed.title,
        body: &parsed.body,
        tags: &parsed.tags,
        links: &parsed.links,
        size,
        mtime_ns,
        hash,
        created: created.as_deref(),
        updated: updated.as_deref(),
        updated_ms,
    };
    Ok(Index::upsert(tx, &record, new_content, scope)?)
}

/// The frontmatter (parsed) and body of a note file.
fn split(text: &str) -> Result<(Map<String, Value>, &str), FrontmatterError> {
    let (yaml, body) = frontmatter::split_frontmatter(text)?;
    let frontmatter = match yaml {
        Some(y) => frontmatter::parse_frontmatter(y)?,
        None => Map::new(),
    };
    Ok((frontmatter, body))
}

/// Split and parse a note file; the title falls back to the first `# heading`, then the stem.
/// Tags are sorted, as the index keeps them.
fn parse(path: &NotePath, text: &str) -> Result<Parsed, FrontmatterError> {
    let (frontmatter, body) = split(text)?;
    let scanned = body::scan(body);
    let title = frontmatter
        .get("title")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .or(scanned.heading)
        .unwrap_or_else(|| path.stem().to_string());
    let mut tags = frontmatter::frontmatter_tags(&frontmatter);
    tags.extend(scanned.tags);
    tags.sort();
    tags.dedup();
    Ok(Parsed {
        links: scanned.links,
        body: body.to_string(),
        frontmatter,
        title,
        tags,
    })
}

fn read_text(
    file: &Path,
    meta: &std::fs::Metadata,
    path: &NotePath,
    max: usize,
) -> Result<String, VaultError> {
    if meta.len() as usize > max {
        return Err(VaultError::TooLarge {
            what: "note file",
            actual: meta.len() as usize,
            limit: max,
        });
    }
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        // Deleted between the check and the read.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VaultError::NotFound(path.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    String::from_utf8(bytes)
        .map_err(|_| VaultError::InvalidArguments(format!("{path} is not valid UTF-8 text")))
}

fn fm_string(fm: &Map<String, Value>, key: &str) -> Option<String> {
    match fm.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..32].to_string()
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn rfc3339_of_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn vault() -> (tempfile::TempDir, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let v = open_in(&dir);
        (dir, v)
    }

    pub(super) fn open_in(dir: &tempfile::TempDir) -> Vault {
        let settings = Settings::for_data_dir(dir.path());
        Vault::open(
            &dir.path().join("v"),
            &dir.path().join("i.sqlite"),
            &settings,
        )
        .unwrap()
    }

    pub(super) fn write(v: &mut Vault, path: &str, body: &str) {
        v.write(WriteRequest {
            path: path.into(),
            body: body.into(),
            ..Default::default()
        })
        .unwrap();
    }

    #[test]
    fn a_read_that_finds_the_file_gone_drops_the_note_from_the_index() {
        let (dir, mut v) = vault();
        write(&mut v, "a.md", "uniqueword [[b]]");
        write(&mut v, "b.md", "target");
        v.take_changes();
        std::fs::remove_file(dir.path().join("v/a.md")).unwrap();
        assert!(matches!(v.read("a.md"), Err(VaultError::NotFound(_))));
        let listed: Vec<String> = v
            .list(None, None, 10)
            .unwrap()
            .notes
            .into_iter()
            .map(|n| n.path)
            .collect();
        assert_eq!(listed, ["b.md"]);
        assert!(v.search("uniqueword", None, &[], 10).unwrap().is_empty());
        assert!(v.backlinks("b.md").unwrap().is_empty());
        assert_eq!(
            v.take_changes(),
            [Change::Deleted {
                path: "a.md".into()
            }]
        );
        // A later note at the path gets a newer version than the one that vanished.
        write(&mut v, "a.md", "again");
        assert_eq!(v.read("a.md").unwrap().version, 2);
    }

    /// Renames every note's title in the index file behind the vault's back: what a read
    /// shows afterwards tells whether it came from memory or from SQLite.
    pub(super) fn retitle_in_sqlite(v: &Vault, title: &str) {
        v.index()
            .conn()
            .execute("UPDATE notes SET title = ?1", [title])
            .unwrap();
    }

    #[test]
    fn reads_use_the_loaded_note_facts_and_every_change_replaces_them() {
        let (dir, mut v) = vault();
        write(&mut v, "a.md", "# First\n#one");
        write(&mut v, "b.md", "# Bee");
        v.load_note_facts().unwrap();
        retitle_in_sqlite(&v, "from sqlite");
        let a = v.read("a.md").unwrap();
        assert_eq!((a.title.as_str(), a.version), ("First", 1));
        assert_eq!(a.tags, ["one"]);

        // A write replaces the note's facts: title, tags and version are the new ones.
        write(&mut v, "a.md", "# Second\n#two #three");
        let a = v.read("a.md").unwrap();
        assert_eq!((a.title.as_str(), a.version), ("Second", 2));
        assert_eq!(a.tags, ["three", "two"]);
        // The other note was not touched, and still comes from memory.
        assert_eq!(v.read("b.md").unwrap().title, "Bee");

        // A file edited outside the server is re-indexed by the read that notices it.
        let file = dir.path().join("v/b.md");
        std::fs::write(&file, "# Changed outside\n#ext\n").unwrap();
        let b = v.read("b.md").unwrap();
        assert_eq!((b.title.as_str(), b.version), ("Changed outside", 2));
        assert_eq!(b.tags, ["ext"]);

        // Deleted: gone from memory too.
        v.delete("a.md", None).unwrap();
        assert!(matches!(v.read("a.md"), Err(VaultError::NotFound(_))));
        write(&mut v, "a.md", "# Back");
        assert_eq!(v.read("a.md").unwrap().version, 3);

        // A rebuild empties the note tables, and with them the facts in memory.
        retitle_in_sqlite(&v, "from sqlite");
        v.rebuild(&mut |_, _| true).unwrap();
        assert_eq!(v.read("b.md").unwrap().title, "Changed outside");
        v.load_note_facts().unwrap();
        retitle_in_sqlite(&v, "from sqlite");
        assert_eq!(v.read("b.md").unwrap().title, "Changed outside");
    }

    #[test]
    fn a_change_that_keeps_the_files_size_and_mtime_is_not_hidden_by_the_facts_in_memory() {
        let (dir, mut v) = vault();
        write(&mut v, "c.md", "# Cat");
        write(&mut v, "gone.md", "# Gone");
        v.load_note_facts().unwrap();
        assert_eq!(v.read("c.md").unwrap().title, "Cat");
        // A rewrite that leaves the same size and mtime (a coarse clock, a restored mtime):
        // only the write's own notice keeps the read from answering the old facts.
        let file = dir.path().join("v/c.md");
        let before = std::fs::metadata(&file).unwrap();
        write(&mut v, "c.md", "# Cow");
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(before.modified().unwrap()).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), before.len());
        let c = v.read("c.md").unwrap();
        assert_eq!((c.title.as_str(), c.version), ("Cow", 2));

        // A note whose file went away is forgotten by the rebuild that empties the tables.
        std::fs::remove_file(dir.path().join("v/gone.md")).unwrap();
        v.rebuild(&mut |_, _| true).unwrap();
        assert!(matches!(
            v.backlinks("gone.md"),
            Err(VaultError::NotFound(_))
        ));
        // A deleted note is forgotten too.
        v.load_note_facts().unwrap();
        assert!(v.backlinks("c.md").unwrap().is_empty());
        v.delete("c.md", None).unwrap();
        assert!(matches!(v.backlinks("c.md"), Err(VaultError::NotFound(_))));
    }

    #[test]
    fn a_note_read_before_the_load_is_kept_from_its_first_read() {
        let (_dir, mut v) = vault();
        write(&mut v, "a.md", "# Kept");
        assert_eq!(v.read("a.md").unwrap().title, "Kept");
        retitle_in_sqlite(&v, "from sqlite");
        assert_eq!(v.read("a.md").unwrap().title, "Kept");
    }

    #[test]
    fn cached_search_answers_are_dropped_when_a_note_changes() {
        let (_dir, mut v) = vault();
        write(&mut v, "a.md", "apple");
        assert_eq!(v.search("apple", None, &[], 10).unwrap().len(), 1);
        write(&mut v, "b.md", "apple pie");
        assert_eq!(v.search("apple", None, &[], 10).unwrap().len(), 2);
        v.delete("a.md", None).unwrap();
        assert_eq!(v.search("apple", None, &[], 10).unwrap().len(), 1);
    }

    pub(super) fn fts_rows(v: &Vault, word: &str) -> i64 {
        v.index()
            .conn()
            .query_row(
                "SELECT count(*) FROM notes_fts WHERE notes_fts MATCH ?1",
                [word],
                |r| r.get(0),
            )
            .unwrap()
    }

    #[test]
    fn single_writes_reach_the_full_text_index_in_one_batch() {
        let (_dir, mut v) = vault();
        for i in 0..5 {
            write(&mut v, &format!("n{i}.md"), "batched words");
        }
        assert!(v.full_text_queued());
        assert_eq!(
            fts_rows(&v, "batched"),
            0,
            "nothing written before the flush"
        );
        v.flush_full_text().unwrap();
        assert!(!v.full_text_queued());
        assert_eq!(fts_rows(&v, "batched"), 5);
    }

    #[test]
    fn a_search_flushes_queued_text_first() {
        let (_dir, mut v) = vault();
        write(&mut v, "a.md", "first draft");
        v.flush_full_text().unwrap();
        write(&mut v, "a.md", "second version");
        v.delete("a.md", None).unwrap_or_else(|e| panic!("{e}"));
        write(&mut v, "b.md", "second thoughts");
        let hits = v.search("second", None, &[], 10).unwrap();
        assert_eq!(
            hits.iter().map(|h| h.path.as_str()).collect::<Vec<_>>(),
            ["b.md"]
        );
        assert!(v.search("draft", None, &[], 10).unwrap().is_empty());
    }

    #[test]
    fn info_reports_counts_health_and_the_last_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("v")).unwrap();
        std::fs::write(dir.path().join("v/broken.md"), "---\n: [\n---\nbody").unwrap();
        let mut v = open_in(&dir);
        let info = v.info(QuotaUse { max: 32, used: 1 }).unwrap();
        assert_eq!((info.notes, info.bytes, info.sessions), (0, 0, 1));
        assert!(info.index.last_scan.is_none(), "not scanned yet");
        assert!(info.last_change.is_none());
        v.reconcile().unwrap();
        let info = v.info(QuotaUse::default()).unwrap();
        assert!(!info.index.healthy, "a file could not be indexed");
        assert_eq!(
            (
                info.index.files_at_last_scan,
                info.index.skipped_at_last_scan
            ),
            (1, 1)
        );
        assert!(info.index.last_scan.is_some());

        std::fs::remove_file(dir.path().join("v/broken.md")).unwrap();
        v.rebuild(&mut |_, _| true).unwrap();
        write(&mut v, "a.md", "#one #two");
        write(&mut v, "b.md", "#two");
        let written = v.read("b.md").unwrap();
        let info = v.info(QuotaUse::default()).unwrap();
        assert!(info.index.healthy);
        assert_eq!((info.notes, info.tags, info.index.indexed_notes), (2, 2, 2));
        assert_eq!(info.index.queued_full_text, 2);
        assert_eq!(info.bytes, v.index().count_and_bytes().unwrap().1);
        let last = info.last_change.clone().unwrap();
        assert_eq!(Some(last.clone()), written.updated, "the newest write");
        v.flush_full_text().unwrap();
        v.delete("a.md", None).unwrap();
        let info = v.info(QuotaUse::default()).unwrap();
        assert_eq!(info.index.queued_full_text, 1);
        assert!(info.last_change.unwrap() >= last, "a delete is a change");
    }
}
