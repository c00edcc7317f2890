//! One user's vault: the markdown files (the source of truth) and the index that caches them.
//!
//! Every operation here is synchronous; the user actor runs them on a job thread. A write
//! goes to the file first (crash-safe), then to the index in one transaction, so the index can
//! always be rebuilt from the files.

pub mod files;
pub mod markdown;
pub mod paths;
pub mod usage;

use std::collections::HashSet;
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
use crate::settings::{Quotas, Settings};
use paths::NotePath;
use usage::{IndexHealth, QuotaUse, QuotasUsed, Scan, Usage, VaultInfo};

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

/// What a client asks `write_note` to store.
#[derive(Debug, Clone, Default)]
pub struct WriteRequest {
    pub path: String,
    pub body: String,
    pub title: Option<String>,
    pub metadata: Option<Value>,
    pub if_version: Option<u64>,
}

/// The outcome of a write.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Written {
    pub path: String,
    pub version: u64,
    /// True when the note did not exist before this write.
    pub created_note: bool,
    pub title: String,
    pub tags: Vec<String>,
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

/// What a reconcile did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub indexed: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub skipped: usize,
    /// Bytes of all the note files found (skipped ones included), from the walk's metadata.
    pub bytes: u64,
}

/// A parsed note file, ready for the index.
struct Parsed {
    frontmatter: Map<String, Value>,
    body: String,
    title: String,
    tags: Vec<String>,
    links: Vec<markdown::WikiLink>,
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

    /// Bring the index in line with the files: new and changed files are (re)indexed, files
    /// gone from disk leave the index, files that cannot be parsed are skipped and logged.
    /// Unchanged files (same size and mtime) are not read at all.
    pub fn reconcile(&mut self) -> Result<ReconcileReport, VaultError> {
        self.sync(false, &mut |_, _| true)
    }

    /// Rebuild the index from the files: every file is read again. Versions of unchanged notes
    /// are kept (they live in the state tables). `progress(done, total)` is called as files are
    /// indexed; when it returns false the rebuild stops and the old index is kept untouched.
    pub fn rebuild(
        &mut self,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<ReconcileReport, VaultError> {
        self.sync(true, progress)
    }

    fn sync(
        &mut self,
        full: bool,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<ReconcileReport, VaultError> {
        // Queued text first, so the bulk pass below starts from a settled FTS table.
        self.index.flush_full_text()?;
        let indexed = if full {
            Default::default()
        } else {
            self.index.indexed_files()?
        };
        let mut files = Vec::new();
        walk(&self.root, &self.root, &mut files);
        let mut report = ReconcileReport {
            bytes: files.iter().map(|(_, meta)| meta.len()).sum(),
            ..ReconcileReport::default()
        };
        let mut keep: HashSet<String> = HashSet::new();
        let max = self.max_note_bytes;
        let root = self.root.clone();
        let total = files.len();
        self.change_index(|tx| -> Result<(), VaultError> {
            let mut changed = full;
            if full {
                Index::clear(tx)?;
            }
            // Notes whose FTS row a crash left stale are read again whatever their file facts.
            let stale: HashSet<String> = Index::stale_full_text(tx)?.into_iter().collect();
            for (done, (path, meta)) in files.iter().enumerate() {
                if done % 64 == 0 && !progress(done, total) {
                    return Err(VaultError::Cancelled);
                }
                let key = path.as_str();
                let size = meta.len();
                let mtime_ns = mtime_ns(meta);
                let known = indexed.get(key).filter(|_| !stale.contains(key));
                if let Some(known) = known {
                    if known.size == size && known.mtime_ns == mtime_ns {
                        keep.insert(key.to_string());
                        report.unchanged += 1;
                        continue;
                    }
                }
                if size as usize > max {
                    tracing::warn!(path = key, size, limit = max, "skipping note over the size limit");
                    report.skipped += 1;
                    continue;
                }
                let bytes = match std::fs::read(root.join(key)) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(path = key, error = %e, "skipping unreadable note");
                        report.skipped += 1;
                        continue;
                    }
                };
                let hash = hash(&bytes);
                if known.is_some_and(|k| k.hash == hash) {
                    Index::touch(tx, key, mtime_ns)?;
                    keep.insert(key.to_string());
                    report.unchanged += 1;
                    continue;
                }
                let Ok(text) = String::from_utf8(bytes) else {
                    tracing::warn!(path = key, "skipping note that is not valid UTF-8");
                    report.skipped += 1;
                    continue;
                };
                let parsed = match parse(path, &text) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(path = key, error = %e, "skipping note with broken frontmatter");
                        report.skipped += 1;
                        continue;
                    }
                };
                let updated_ms = parsed
                    .frontmatter
                    .get("updated")
                    .and_then(Value::as_str)
                    .and_then(parse_rfc3339_ms)
                    .unwrap_or(mtime_ns / 1_000_000);
                store(tx, path, &parsed, size, mtime_ns, &hash, updated_ms, false, Scope::Bulk)?;
                keep.insert(key.to_string());
                report.indexed += 1;
                changed = true;
            }
            let gone: Vec<&String> = indexed.keys().filter(|k| !keep.contains(*k)).collect();
            for path in &gone {
                Index::remove(tx, path, Scope::Bulk)?;
                report.removed += 1;
                changed = true;
            }
            if changed {
                Index::resolve_all_links(tx)?;
            }
            Index::unmark_all_full_text(tx)?;
            progress(total, total);
            Ok(())
        })?;
        self.last_scan = Some(Scan {
            at_ms: now_ms(),
            files: total as u64,
            skipped: report.skipped as u64,
        });
        Ok(report)
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

    /// Write a note: crash-safe file replace, then the index in one transaction.
    pub fn write(&mut self, req: WriteRequest) -> Result<Written, VaultError> {
        let path = NotePath::parse(&req.path)?;
        if req.body.len() > self.max_note_bytes {
            return Err(VaultError::TooLarge {
                what: "note body",
                actual: req.body.len(),
                limit: self.max_note_bytes,
            });
        }
        let file = paths::resolve(&self.root, &path)?;
        let current = self.index.current_version(path.as_str())?;
        if let Some(expected) = req.if_version {
            if expected != current {
                return Err(VaultError::Conflict {
                    path: path.to_string(),
                    expected,
                    current,
                });
            }
        }
        let existing = match std::fs::read_to_string(&file) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let existing_fm = match &existing {
            Some(text) => Some(existing_frontmatter(text, req.metadata.is_some())?),
            None => None,
        };
        let (body_fm, body) =
            split(&req.body).map_err(|e| VaultError::InvalidFrontmatter(e.to_string()))?;
        let now = now_rfc3339();
        let frontmatter = compose_frontmatter(existing_fm, req.metadata, body_fm, req.title, &now)?;
        let text = markdown::render(&frontmatter, body);
        if text.len() > self.max_note_bytes {
            return Err(VaultError::TooLarge {
                what: "note file",
                actual: text.len(),
                limit: self.max_note_bytes,
            });
        }
        let parsed =
            parse(&path, &text).map_err(|e| VaultError::InvalidFrontmatter(e.to_string()))?;
        // Quotas are checked against the index: the size it has for the note being replaced.
        let usage = self.usage()?;
        let replaced = self.index.file_facts(path.as_str())?.map(|(size, _)| size);
        usage.check_write(&self.quotas, replaced, text.len() as u64)?;
        files::write_atomic(&file, text.as_bytes())?;
        let meta = std::fs::metadata(&file)?;
        let hash = hash(text.as_bytes());
        let updated_ms = now_ms();
        let version = self.change_index(|tx| {
            store(
                tx,
                &path,
                &parsed,
                meta.len(),
                mtime_ns(&meta),
                &hash,
                updated_ms,
                true,
                Scope::Single,
            )
        })?;
        self.usage = Some(usage.after_write(replaced, meta.len()));
        self.last_change_ms = Some(updated_ms);
        self.changes.push(Change::Written {
            path: path.to_string(),
            created: existing.is_none(),
        });
        Ok(Written {
            path: path.to_string(),
            version,
            created_note: existing.is_none(),
            created: fm_string(&parsed.frontmatter, "created"),
            updated: fm_string(&parsed.frontmatter, "updated"),
            title: parsed.title,
            tags: parsed.tags,
            size: meta.len(),
        })
    }

    /// Delete a note's file and forget it in the index (its version is kept).
    pub fn delete(
        &mut self,
        raw_path: &str,
        if_version: Option<u64>,
    ) -> Result<Deleted, VaultError> {
        let path = NotePath::parse(raw_path)?;
        let file = paths::resolve(&self.root, &path)?;
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
        let gone_already = match files::remove_durably(&file) {
            Ok(()) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(e.into()),
        };
        self.unindex(&path)?;
        if gone_already {
            // Gone from disk already: the index now agrees; tell the caller.
            return Err(VaultError::NotFound(path.to_string()));
        }
        self.last_change_ms = Some(now_ms());
        self.changes.push(Change::Deleted {
            path: path.to_string(),
        });
        Ok(Deleted {
            path: path.to_string(),
            version: current,
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
        let folder = paths::parse_folder(raw.unwrap_or(""))?;
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
fn split(text: &str) -> Result<(Map<String, Value>, &str), markdown::FrontmatterError> {
    let (yaml, body) = markdown::split_frontmatter(text)?;
    let frontmatter = match yaml {
        Some(y) => markdown::parse_frontmatter(y)?,
        None => Map::new(),
    };
    Ok((frontmatter, body))
}

/// Split and parse a note file; the title falls back to the first `# heading`, then the stem.
/// Tags are sorted, as the index keeps them.
fn parse(path: &NotePath, text: &str) -> Result<Parsed, markdown::FrontmatterError> {
    let (frontmatter, body) = split(text)?;
    let title = frontmatter
        .get("title")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .or_else(|| markdown::first_heading(body))
        .unwrap_or_else(|| path.stem().to_string());
    let mut tags = markdown::frontmatter_tags(&frontmatter);
    tags.extend(markdown::extract_inline_tags(body));
    tags.sort();
    tags.dedup();
    Ok(Parsed {
        links: markdown::extract_links(body),
        body: body.to_string(),
        frontmatter,
        title,
        tags,
    })
}

/// The frontmatter of the note being replaced. When the caller passes new metadata the old
/// frontmatter is only needed for `created`, so a broken one is not an obstacle then.
fn existing_frontmatter(text: &str, replacing: bool) -> Result<Map<String, Value>, VaultError> {
    match split(text).map(|(fm, _)| fm) {
        Ok(fm) => Ok(fm),
        Err(_) if replacing => Ok(Map::new()),
        Err(e) => Err(VaultError::InvalidFrontmatter(format!(
            "the stored note has broken frontmatter ({e}); pass `metadata` to replace it"
        ))),
    }
}

/// The frontmatter of a write: the client's `metadata` (or, without it, the stored
/// frontmatter), then a frontmatter block at the top of `body`, then `title`; `created` is kept
/// from the stored note and `updated` is set to now.
fn compose_frontmatter(
    existing: Option<Map<String, Value>>,
    metadata: Option<Value>,
    body_fm: Map<String, Value>,
    title: Option<String>,
    now: &str,
) -> Result<Map<String, Value>, VaultError> {
    let stored_created = existing.as_ref().and_then(|m| m.get("created").cloned());
    let mut fm = match metadata {
        None | Some(Value::Null) => existing.unwrap_or_default(),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(VaultError::InvalidFrontmatter(format!(
                "metadata must be an object (a YAML mapping), not {}",
                json_kind(&other)
            )))
        }
    };
    for (k, v) in body_fm {
        fm.insert(k, v);
    }
    if let Some(t) = title {
        fm.insert("title".into(), Value::String(t));
    }
    let created = stored_created
        .or_else(|| fm.get("created").filter(|v| v.is_string()).cloned())
        .unwrap_or_else(|| Value::String(now.to_string()));
    fm.insert("created".into(), created);
    fm.insert("updated".into(), Value::String(now.to_string()));
    Ok(fm)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
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

/// Every `*.md` file below `dir`, skipping dot-entries (temp files, `.obsidian`, `.trash`)
/// and symlinks; names that are not valid note paths are logged and skipped.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(NotePath, std::fs::Metadata)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot list vault folder");
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text.starts_with('.') {
            // A write's temp file (`.<note>.md.<suffix>.tmp`) still here was left by a crash
            // between writing it and renaming it: its note was never acknowledged. A scan runs
            // inside the vault's only actor, so no write of ours is in progress.
            if text.ends_with(".tmp")
                && text.contains(".md.")
                && entry.file_type().is_ok_and(|k| k.is_file())
            {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(file = %entry.path().display(), "removed a temp file left by a crash")
                    }
                    Err(e) => {
                        tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove a leftover temp file")
                    }
                }
            }
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let full = entry.path();
        if kind.is_dir() {
            walk(root, &full, out);
        } else if kind.is_file() && name.to_string_lossy().ends_with(".md") {
            let Some(rel) = full.strip_prefix(root).ok().and_then(|p| p.to_str()) else {
                tracing::warn!(file = %full.display(), "skipping note whose name is not UTF-8");
                continue;
            };
            match NotePath::parse(rel) {
                Ok(path) => {
                    if let Ok(meta) = entry.metadata() {
                        out.push((path, meta));
                    }
                }
                Err(e) => {
                    tracing::warn!(file = rel, error = %e, "skipping file with an invalid note path")
                }
            }
        }
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

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
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

    fn vault() -> (tempfile::TempDir, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let v = open_in(&dir);
        (dir, v)
    }

    fn open_in(dir: &tempfile::TempDir) -> Vault {
        let settings = Settings::for_data_dir(dir.path());
        Vault::open(
            &dir.path().join("v"),
            &dir.path().join("i.sqlite"),
            &settings,
        )
        .unwrap()
    }

    fn write(v: &mut Vault, path: &str, body: &str) {
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

    #[test]
    fn a_scan_removes_temp_files_a_crash_left_and_nothing_else_hidden() {
        let (dir, mut v) = vault();
        write(&mut v, "sub/a.md", "kept");
        let root = dir.path().join("v");
        let leftover = root.join("sub/.a.md.x1y2.tmp");
        std::fs::write(&leftover, "half a note").unwrap();
        std::fs::create_dir_all(root.join(".obsidian")).unwrap();
        std::fs::write(root.join(".obsidian/app.json"), "{}").unwrap();
        std::fs::write(root.join(".notes.tmp"), "someone else's").unwrap();
        v.reconcile().unwrap();
        assert!(
            !leftover.exists(),
            "the leftover of an interrupted write is gone"
        );
        assert!(root.join(".obsidian/app.json").exists());
        assert!(
            root.join(".notes.tmp").exists(),
            "only our own temp files are removed"
        );
        assert_eq!(v.read("sub/a.md").unwrap().body.trim(), "kept");
    }

    /// Renames every note's title in the index file behind the vault's back: what a read
    /// shows afterwards tells whether it came from memory or from SQLite.
    fn retitle_in_sqlite(v: &Vault, title: &str) {
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
    fn cancelled_rebuild_keeps_the_old_index() {
        let (_dir, mut v) = vault();
        for i in 0..200 {
            write(&mut v, &format!("n{i}.md"), "findme");
        }
        let mut calls = 0;
        let err = v
            .rebuild(&mut |done, _| {
                calls += 1;
                done < 64
            })
            .unwrap_err();
        assert_eq!(err.code(), "cancelled");
        assert_eq!(calls, 2, "stopped at the first check after the limit");
        assert_eq!(v.index().count().unwrap(), 200);
        assert_eq!(v.search("findme", None, &[], 100).unwrap().len(), 100);
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

    #[test]
    fn rebuild_reports_progress_to_the_total_and_keeps_versions() {
        let (_dir, mut v) = vault();
        write(&mut v, "a.md", "one");
        write(&mut v, "a.md", "two");
        let mut seen = Vec::new();
        let report = v
            .rebuild(&mut |done, total| {
                seen.push((done, total));
                true
            })
            .unwrap();
        assert_eq!(report.indexed, 1);
        assert_eq!(seen.last(), Some(&(1, 1)));
        assert_eq!(v.read("a.md").unwrap().version, 2);
    }

    fn fts_rows(v: &Vault, word: &str) -> i64 {
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
    fn text_a_crash_left_queued_is_indexed_at_the_next_open() {
        let (dir, mut v) = vault();
        write(&mut v, "kept.md", "old words");
        write(&mut v, "gone.md", "vanishing words");
        v.flush_full_text().unwrap();
        write(&mut v, "kept.md", "fresh words");
        v.delete("gone.md", None).unwrap();
        write(&mut v, "new.md", "newborn words");
        // The process dies here: the queue in memory is lost, the marks in the file are not.
        drop(v);
        let mut v = open_in(&dir);
        v.reconcile().unwrap();
        assert!(!v.full_text_queued());
        assert_eq!(fts_rows(&v, "fresh"), 1);
        assert_eq!(fts_rows(&v, "old"), 0);
        assert_eq!(fts_rows(&v, "vanishing"), 0);
        assert_eq!(fts_rows(&v, "newborn"), 1);
        let paths = |v: &mut Vault, q: &str| -> Vec<String> {
            v.search(q, None, &[], 10)
                .unwrap()
                .into_iter()
                .map(|h| h.path)
                .collect()
        };
        assert_eq!(paths(&mut v, "words").len(), 2);
        assert_eq!(v.read("kept.md").unwrap().version, 2);
    }

    fn open_with_quotas(dir: &tempfile::TempDir, notes: u64, bytes: u64) -> Vault {
        let mut settings = Settings::for_data_dir(dir.path());
        settings.quotas.notes_per_vault = notes;
        settings.quotas.vault_bytes = bytes;
        Vault::open(
            &dir.path().join("v"),
            &dir.path().join("i.sqlite"),
            &settings,
        )
        .unwrap()
    }

    fn try_write(v: &mut Vault, path: &str, body: &str) -> Result<Written, VaultError> {
        v.write(WriteRequest {
            path: path.into(),
            body: body.into(),
            ..Default::default()
        })
    }

    /// The running usage agrees with a fresh sum over the index.
    fn assert_usage_is_the_index_sum(v: &mut Vault) {
        let carried = v.usage().unwrap();
        let (notes, bytes) = v.index().count_and_bytes().unwrap();
        assert_eq!(carried, Usage { notes, bytes });
    }

    #[test]
    fn a_write_past_a_quota_is_refused_before_the_note_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = open_with_quotas(&dir, 2, 10_000);
        write(&mut v, "a.md", "first");
        write(&mut v, "b.md", "second");
        let err = try_write(&mut v, "c.md", "third").unwrap_err();
        assert_eq!(err.code(), "quota_exceeded");
        assert_eq!(
            err.details(),
            serde_json::json!({"code": "quota_exceeded", "message": err.to_string(),
                "limit": "notes_per_vault", "max": 2, "current": 2})
        );
        assert!(!dir.path().join("v/c.md").exists());

        // Bytes: a rewrite that grows the vault past the quota leaves the stored note as it was.
        let used = v.usage().unwrap().bytes;
        let mut v = {
            drop(v);
            open_with_quotas(&dir, 2, used + 10)
        };
        let before = std::fs::read(dir.path().join("v/a.md")).unwrap();
        let err = try_write(&mut v, "a.md", &"x".repeat(100)).unwrap_err();
        assert_eq!(err.details()["limit"], "vault_bytes");
        assert_eq!(err.details()["current"], used);
        assert_eq!(std::fs::read(dir.path().join("v/a.md")).unwrap(), before);
        assert_eq!(v.read("a.md").unwrap().version, 1);
        // Growing within the room left, and shrinking, are allowed.
        try_write(&mut v, "a.md", "first!").unwrap();
        try_write(&mut v, "a.md", "1").unwrap();
        assert_usage_is_the_index_sum(&mut v);
    }

    #[test]
    fn the_running_usage_follows_writes_deletes_scans_and_edits_from_outside() {
        let (dir, mut v) = vault();
        write(&mut v, "a.md", "one");
        write(&mut v, "b.md", "two");
        assert_usage_is_the_index_sum(&mut v);
        write(&mut v, "a.md", &"longer ".repeat(50));
        v.delete("b.md", None).unwrap();
        assert_usage_is_the_index_sum(&mut v);
        // A file grown outside the server and re-indexed by a read.
        std::fs::write(dir.path().join("v/a.md"), "# Grown\n".repeat(300)).unwrap();
        v.read("a.md").unwrap();
        assert_usage_is_the_index_sum(&mut v);
        assert_eq!(v.usage().unwrap().bytes, 8 * 300);
        // A file copied in, found by the scan.
        std::fs::write(dir.path().join("v/copied.md"), "hello").unwrap();
        v.reconcile().unwrap();
        assert_eq!(
            v.usage().unwrap(),
            Usage {
                notes: 2,
                bytes: 8 * 300 + 5
            }
        );
        // Deleting a note the index never had leaves the usage alone.
        v.delete("nothing.md", None).unwrap_err();
        assert_usage_is_the_index_sum(&mut v);
    }

    #[test]
    fn files_copied_in_past_the_quota_are_indexed_and_only_growth_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("v")).unwrap();
        for i in 0..4 {
            std::fs::write(dir.path().join(format!("v/n{i}.md")), "# Copied\nwords").unwrap();
        }
        let mut v = open_with_quotas(&dir, 2, 10_000);
        let report = v.reconcile().unwrap();
        assert_eq!(report.indexed, 4);
        assert_eq!(v.search("words", None, &[], 10).unwrap().len(), 4);
        let info = v.info(QuotaUse::default()).unwrap();
        assert_eq!(
            (
                info.quota.notes_per_vault.used,
                info.quota.notes_per_vault.max
            ),
            (4, 2)
        );
        assert_eq!(
            try_write(&mut v, "new.md", "more").unwrap_err().code(),
            "quota_exceeded"
        );
        // Editing a note already there is not growth in notes.
        try_write(&mut v, "n0.md", "edited").unwrap();
        v.delete("n1.md", None).unwrap();
        v.delete("n2.md", None).unwrap();
        assert_eq!(
            try_write(&mut v, "new.md", "more").unwrap_err().code(),
            "quota_exceeded",
            "3 notes, still over 2"
        );
        v.delete("n3.md", None).unwrap();
        try_write(&mut v, "new.md", "room again").unwrap();
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
