//! An in-memory copy of what FTS5's `bm25()` reads, for the queries it is slow at.
//!
//! FTS5 computes `bm25()` for every row a query matches before it can sort them: about a
//! millisecond for a word found in thousands of notes. For a query that is a plain AND of words
//! and prefixes, this module computes the very same scores from memory: per term, the rows that
//! contain it with the number of occurrences in title and body; per row, its token count; the
//! row count and token total of the table. Same formula, same statistics, same floating-point
//! operations in the same order, so the scores equal FTS5's.
//!
//! The index is a cache of `notes_fts`, built at the first search that can use it by reading
//! every row and tokenizing it with FTS5's own tokenizer. A write only records which rows
//! changed ([`Ranker::fts_row_changed`], [`Ranker::fts_cleared`]); the next search re-reads
//! just those rows. The old postings of a changed row stay behind as tombstones (its slot is
//! marked dead) until there are enough of them to be worth a compaction, so a write never
//! costs a pass over every posting.
//!
//! Memory is bounded across the process: every index reserves its bytes from one shared
//! budget, and an index that does not fit is not built (the search falls back to FTS5).

use std::collections::BinaryHeap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

use foldhash::{HashMap, HashSet};
use rusqlite::Connection;

use super::budget::{Reservation, DEFAULT_MEMORY_LIMIT, IN_USE};
use super::fts_query::PlainTerm;
use super::tokenizer::Tokenizer;

/// FTS5 stores (and looks up) at most this many bytes of a token.
const FTS5_MAX_TOKEN_SIZE: usize = 32768;

/// The constants of FTS5's bm25 (fts5_aux.c).
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// A query with more distinct terms than this is left to FTS5 (snippets track terms in a
/// bit set); queries are short, so this never matters in practice.
const MAX_TERMS: usize = 128;

/// Written in a posting whose body count does not fit; the exact count is in `overflow`.
const SATURATED: u8 = u8::MAX;

/// Marks a slot whose row was changed or deleted; its postings are tombstones. Row ids are
/// `notes.id` values, never this one.
const DEAD: i64 = i64::MIN;

/// A slot of a row with no `notes` row (cannot happen through `Index::upsert`): like the SQL
/// path, such a row never matches a folder filter.
const NO_FOLDER: u32 = u32::MAX;

/// Rough heap cost of one term and of one row besides their postings (hash map entries with
/// their load factor, vector slots), for the budget.
const TERM_OVERHEAD: usize = 96;
const ROW_OVERHEAD: usize = 48;

/// A catch-up over more than 1/REBUILD_FRACTION of the rows builds afresh instead: cheaper
/// than re-reading them one by one and leaving a tombstone for each.
const REBUILD_FRACTION: usize = 2;

/// One query term, tokenized exactly as FTS5 tokenizes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueryTerm {
    /// The folded token, truncated like FTS5 truncates it.
    pub token: Vec<u8>,
    /// Matches every token that starts with `token`.
    pub prefix: bool,
}

impl QueryTerm {
    /// Whether FTS5 would count `token` (as the tokenizer gives it) as an instance of this term.
    pub fn matches(&self, token: &[u8]) -> bool {
        let token = fts5_key(token);
        if self.prefix {
            token.starts_with(&self.token)
        } else {
            token == self.token.as_slice()
        }
    }
}

/// `token` as FTS5 keys it.
fn fts5_key(token: &[u8]) -> &[u8] {
    &token[..token.len().min(FTS5_MAX_TOKEN_SIZE)]
}

/// The rows containing one term, as parallel arrays (5 bytes per row; most terms are in no
/// title, so title counts are kept apart).
#[derive(Default)]
struct Postings {
    /// Slots of the rows containing the term, ascending.
    slots: Vec<u32>,
    /// Occurrences in the body, per entry of `slots`; [`SATURATED`] sends the reader to
    /// `RankIndex::overflow`.
    body: Vec<u8>,
    /// (slot, occurrences) of the rows whose title contains the term, ascending.
    title: Vec<(u32, u32)>,
}

impl Postings {
    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<u32>()
            + self.body.capacity()
            + self.title.capacity() * size_of::<(u32, u32)>()
    }
}

/// A term's occurrences in one row, all of its tokens summed (for a prefix).
#[derive(Debug, Clone, Copy, Default)]
struct Hit {
    slot: u32,
    title: u32,
    body: u32,
}

/// The in-memory index: terms, postings and row statistics.
#[derive(Default)]
struct RankIndex {
    /// Term bytes → term id.
    ids: HashMap<Box<[u8]>, u32>,
    /// Term id → term bytes.
    terms: Vec<Box<[u8]>>,
    /// Term ids ordered by their bytes, for the terms a prefix covers.
    ordered: Vec<u32>,
    /// Whether `ordered` is sorted; a build sorts it once at the end instead of per insert.
    ordered_valid: bool,
    /// Term id → its rows (slots only ever grow and compaction keeps their order, so
    /// appending keeps every list sorted).
    postings: Vec<Postings>,
    /// Body counts that do not fit a posting, by (term id, slot).
    overflow: HashMap<(u32, u32), u32>,
    /// Slot → row id, [`DEAD`] once the row changed.
    rows: Vec<i64>,
    /// Slot → tokens in title and body together (FTS5's `xColumnSize(-1)`).
    lengths: Vec<u32>,
    /// Slot → folder id, for the folder filter.
    folders: Vec<u32>,
    /// Folder id → folder path ("" for the vault root).
    folder_names: Vec<Box<str>>,
    folder_ids: HashMap<Box<str>, u32>,
    /// Row id → its live slot.
    slots: HashMap<i64, u32>,
    /// Live rows, and their tokens: FTS5's row count and total size.
    live_rows: u64,
    total_tokens: u64,
    /// Slots of changed or deleted rows whose postings are still in the lists.
    dead_slots: usize,
    /// Heap bytes of all posting lists (their capacity), kept as they grow.
    posting_bytes: usize,
    /// Heap bytes of the term keys (each is held twice: in `ids` and `terms`).
    key_bytes: usize,
    /// Term id → position in `touched` while a row is being added, `u32::MAX` otherwise.
    scratch: Vec<u32>,
    /// (term id, title count, body count) of the row being added.
    touched: Vec<(u32, u32, u32)>,
}

impl RankIndex {
    /// Approximate heap bytes, for the budget.
    fn bytes(&self) -> usize {
        self.posting_bytes
            + self.terms.len() * TERM_OVERHEAD
            + self.key_bytes
            + self.rows.len() * ROW_OVERHEAD
            + self.overflow.len() * 32
            + self
                .folder_names
                .iter()
                .map(|f| 2 * f.len() + 64)
                .sum::<usize>()
    }

    fn term_id(&mut self, token: &[u8]) -> u32 {
        if let Some(&id) = self.ids.get(token) {
            return id;
        }
        let id = u32::try_from(self.terms.len()).unwrap_or(u32::MAX);
        self.key_bytes += 2 * token.len();
        self.ids.insert(token.into(), id);
        self.terms.push(token.into());
        self.postings.push(Postings::default());
        self.scratch.push(u32::MAX);
        if self.ordered_valid {
            let at = self
                .ordered
                .partition_point(|&other| &*self.terms[other as usize] < token);
            self.ordered.insert(at, id);
        } else {
            self.ordered.push(id);
        }
        id
    }

    fn folder_id(&mut self, path: Option<&str>) -> u32 {
        let Some(path) = path else {
            return NO_FOLDER;
        };
        let folder = path.rsplit_once('/').map_or("", |(folder, _)| folder);
        if let Some(&id) = self.folder_ids.get(folder) {
            return id;
        }
        let id = u32::try_from(self.folder_names.len()).unwrap_or(NO_FOLDER);
        self.folder_names.push(folder.into());
        self.folder_ids.insert(folder.into(), id);
        id
    }

    /// After a build: sort `ordered`, give back the slack of lists that grew by doubling.
    fn finish(&mut self) {
        if !self.ordered_valid {
            let terms = &self.terms;
            self.ordered
                .sort_unstable_by(|&a, &b| terms[a as usize].cmp(&terms[b as usize]));
            self.ordered_valid = true;
        }
        self.posting_bytes = 0;
        for list in &mut self.postings {
            list.slots.shrink_to_fit();
            list.body.shrink_to_fit();
            list.title.shrink_to_fit();
            self.posting_bytes += list.heap_bytes();
        }
    }

    /// Index one row of `notes_fts` (title and body as stored, i.e. CJK-segmented) at a new
    /// slot; `path` is the note's path, for the folder filter.
    fn add_row(
        &mut self,
        tokenizer: &mut Tokenizer,
        rowid: i64,
        title: &str,
        body: &str,
        path: Option<&str>,
    ) -> rusqlite::Result<()> {
        let slot = u32::try_from(self.rows.len()).map_err(|_| too_big())?;
        let mut length: u64 = 0;
        for (column, text) in [title, body].into_iter().enumerate() {
            tokenizer.tokenize(text, |token, _| {
                let id = self.term_id(fts5_key(token));
                let at = &mut self.scratch[id as usize];
                if *at == u32::MAX {
                    *at = self.touched.len() as u32;
                    self.touched.push((id, 0, 0));
                }
                let entry = &mut self.touched[*at as usize];
                if column == 0 {
                    entry.1 += 1;
                } else {
                    entry.2 += 1;
                }
                length += 1;
                ControlFlow::Continue(())
            })?;
        }
        for (id, title, body) in self.touched.drain(..) {
            self.scratch[id as usize] = u32::MAX;
            let list = &mut self.postings[id as usize];
            let before = list.heap_bytes();
            list.slots.push(slot);
            match u8::try_from(body) {
                Ok(body) if body != SATURATED => list.body.push(body),
                _ => {
                    list.body.push(SATURATED);
                    self.overflow.insert((id, slot), body);
                }
            }
            if title > 0 {
                list.title.push((slot, title));
            }
            self.posting_bytes += list.heap_bytes() - before;
        }
        let folder = self.folder_id(path);
        self.rows.push(rowid);
        self.lengths
            .push(u32::try_from(length).map_err(|_| too_big())?);
        self.folders.push(folder);
        self.slots.insert(rowid, slot);
        self.live_rows += 1;
        self.total_tokens += length;
        Ok(())
    }

    /// Forget a row (if indexed): its slot dies, its postings become tombstones.
    fn remove_row(&mut self, rowid: i64) {
        if let Some(slot) = self.slots.remove(&rowid) {
            let slot = slot as usize;
            self.rows[slot] = DEAD;
            self.live_rows -= 1;
            self.total_tokens -= u64::from(self.lengths[slot]);
            self.dead_slots += 1;
        }
    }

    fn worth_compacting(&self) -> bool {
        self.dead_slots > 64 && self.dead_slots * 4 > self.rows.len()
    }

    /// Drop tombstones: renumber live slots (in order, so lists stay sorted) and drop terms
    /// no live row has any more.
    fn compact(&mut self) {
        let mut new_slot = vec![u32::MAX; self.rows.len()];
        let mut next = 0u32;
        for (slot, &row) in self.rows.iter().enumerate() {
            if row != DEAD {
                new_slot[slot] = next;
                next += 1;
            }
        }
        let live = |slot: usize| new_slot[slot] != u32::MAX;
        for list in [&mut self.lengths, &mut self.folders] {
            let mut slot = 0;
            list.retain(|_| {
                slot += 1;
                live(slot - 1)
            });
            list.shrink_to_fit();
        }
        self.rows.retain(|&row| row != DEAD);
        self.rows.shrink_to_fit();
        for slot in self.slots.values_mut() {
            *slot = new_slot[*slot as usize];
        }

        let mut new_id = vec![u32::MAX; self.terms.len()];
        let mut terms = Vec::new();
        let mut postings = Vec::new();
        let mut overflow = HashMap::default();
        self.posting_bytes = 0;
        for (id, (term, mut list)) in std::mem::take(&mut self.terms)
            .into_iter()
            .zip(std::mem::take(&mut self.postings))
            .enumerate()
        {
            let id_now = terms.len() as u32;
            let mut kept = 0;
            for i in 0..list.slots.len() {
                let slot = list.slots[i];
                if !live(slot as usize) {
                    continue;
                }
                let moved = new_slot[slot as usize];
                if list.body[i] == SATURATED {
                    if let Some(&count) = self.overflow.get(&(id as u32, slot)) {
                        overflow.insert((id_now, moved), count);
                    }
                }
                list.slots[kept] = moved;
                list.body[kept] = list.body[i];
                kept += 1;
            }
            if kept == 0 {
                continue;
            }
            list.slots.truncate(kept);
            list.body.truncate(kept);
            list.title.retain(|&(slot, _)| live(slot as usize));
            for entry in &mut list.title {
                entry.0 = new_slot[entry.0 as usize];
            }
            list.slots.shrink_to_fit();
            list.body.shrink_to_fit();
            list.title.shrink_to_fit();
            self.posting_bytes += list.heap_bytes();
            new_id[id] = id_now;
            terms.push(term);
            postings.push(list);
        }
        self.ordered = self
            .ordered
            .iter()
            .map(|&id| new_id[id as usize])
            .filter(|&id| id != u32::MAX)
            .collect();
        self.ids = terms
            .iter()
            .enumerate()
            .map(|(id, term)| (term.clone(), id as u32))
            .collect();
        self.scratch = vec![u32::MAX; terms.len()];
        self.key_bytes = terms.iter().map(|t| 2 * t.len()).sum();
        self.terms = terms;
        self.postings = postings;
        self.overflow = overflow;
        self.dead_slots = 0;
    }

    /// The term ids `term` covers: its own, or every term starting with it.
    fn covered(&self, term: &QueryTerm) -> Vec<u32> {
        if !term.prefix {
            return self
                .ids
                .get(term.token.as_slice())
                .copied()
                .into_iter()
                .collect();
        }
        let start = self
            .ordered
            .partition_point(|&id| *self.terms[id as usize] < *term.token);
        self.ordered[start..]
            .iter()
            .take_while(|&&id| self.terms[id as usize].starts_with(&term.token))
            .copied()
            .collect()
    }

    /// Calls `f(slot, title, body)` for every live row containing term `id`, in slot order.
    fn for_each_row(&self, id: u32, mut f: impl FnMut(u32, u32, u32)) {
        let list = &self.postings[id as usize];
        let mut titles = list.title.iter().peekable();
        for (&slot, &body) in list.slots.iter().zip(&list.body) {
            let title = match titles.peek() {
                Some(&&(at, count)) if at == slot => {
                    titles.next();
                    count
                }
                _ => 0,
            };
            if self.dead_slots > 0 && self.rows[slot as usize] == DEAD {
                continue;
            }
            let body = if body == SATURATED {
                self.overflow.get(&(id, slot)).copied().unwrap_or(0)
            } else {
                u32::from(body)
            };
            f(slot, title, body);
        }
    }

    /// Every live row containing `term`, in slot order, with its occurrences summed over the
    /// tokens the term covers.
    fn hits(&self, term: &QueryTerm) -> Vec<Hit> {
        let ids = self.covered(term);
        let mut hits = Vec::new();
        match ids[..] {
            [] => {}
            [id] => {
                hits.reserve(self.postings[id as usize].slots.len());
                self.for_each_row(id, |slot, title, body| hits.push(Hit { slot, title, body }));
            }
            _ => {
                // Several tokens: sum per slot in a dense table, which also yields slot order.
                let mut sums = vec![(0u32, 0u32); self.rows.len()];
                for &id in &ids {
                    self.for_each_row(id, |slot, title, body| {
                        let sum = &mut sums[slot as usize];
                        sum.0 += title;
                        sum.1 += body;
                    });
                }
                hits.extend(
                    sums.into_iter()
                        .enumerate()
                        .filter(|(_, (title, body))| title + body > 0)
                        .map(|(slot, (title, body))| Hit {
                            slot: slot as u32,
                            title,
                            body,
                        }),
                );
            }
        }
        hits
    }

    /// The `limit` best rows matching every term, as (row id, FTS5 `bm25(notes_fts, w0, w1)`)
    /// best (lowest) first, ties by row id; only rows in `folder` or below when not empty.
    ///
    /// The weights must be whole numbers for the scores to equal FTS5's to the last bit (FTS5
    /// adds one weight per occurrence; whole numbers add up exactly in any order).
    fn rank(
        &self,
        terms: &[QueryTerm],
        folder: &str,
        limit: usize,
        weights: (f64, f64),
    ) -> Vec<(i64, f64)> {
        if self.live_rows == 0 || terms.is_empty() || limit == 0 {
            return Vec::new();
        }
        let n_rows = self.live_rows as i64;
        let avgdl = self.total_tokens as f64 / self.live_rows as f64;
        let mut lists: Vec<Vec<Hit>> = Vec::with_capacity(terms.len());
        let mut idf: Vec<f64> = Vec::with_capacity(terms.len());
        for term in terms {
            let hits = self.hits(term);
            if hits.is_empty() {
                return Vec::new();
            }
            let n_hit = hits.len() as i64;
            let value = (((n_rows - n_hit) as f64 + 0.5) / (n_hit as f64 + 0.5)).ln();
            idf.push(if value <= 0.0 { 1e-6 } else { value });
            lists.push(hits);
        }
        let in_folder: Option<Vec<bool>> = (!folder.is_empty()).then(|| {
            let wanted = format!("{folder}/");
            self.folder_names
                .iter()
                .map(|f| format!("{f}/").starts_with(&wanted))
                .collect()
        });

        let shortest = (0..lists.len())
            .min_by_key(|&i| lists[i].len())
            .unwrap_or(0);
        let mut cursors = vec![0usize; lists.len()];
        let mut freq = vec![0f64; lists.len()];
        let mut best: BinaryHeap<Ranked> = BinaryHeap::new();
        'rows: for hit in &lists[shortest] {
            let slot = hit.slot;
            if let Some(in_folder) = &in_folder {
                let folder = self.folders[slot as usize];
                if !in_folder.get(folder as usize).copied().unwrap_or(false) {
                    continue;
                }
            }
            for (i, list) in lists.iter().enumerate() {
                let h = if i == shortest {
                    hit
                } else {
                    cursors[i] = seek(list, cursors[i], slot);
                    match list.get(cursors[i]) {
                        Some(h) if h.slot == slot => h,
                        _ => continue 'rows,
                    }
                };
                freq[i] = f64::from(h.title) * weights.0 + f64::from(h.body) * weights.1;
            }
            let d = f64::from(self.lengths[slot as usize]);
            // The expression of fts5Bm25Function, operation for operation.
            let mut score = 0.0;
            for (idf, f) in idf.iter().zip(&freq) {
                score += idf * ((f * (K1 + 1.0)) / (f + K1 * (1.0 - B + B * d / avgdl)));
            }
            let ranked = Ranked {
                // FTS5 multiplies by -1.0, which is exactly a negation.
                bm25: -score,
                rowid: self.rows[slot as usize],
            };
            if best.len() < limit {
                best.push(ranked);
            } else if best.peek().is_some_and(|worst| ranked < *worst) {
                best.pop();
                best.push(ranked);
            }
        }
        best.into_sorted_vec()
            .into_iter()
            .map(|r| (r.rowid, r.bm25))
            .collect()
    }
}

/// The first position at or after `from` whose slot is not below `slot`: a galloping search,
/// cheap both when the lists are alike (a step or two) and when one is much shorter.
fn seek(list: &[Hit], from: usize, slot: u32) -> usize {
    let mut low = from;
    let mut step = 1;
    while low + step < list.len() && list[low + step].slot < slot {
        low += step;
        step *= 2;
    }
    let high = (low + step + 1).min(list.len());
    low + list[low..high].partition_point(|h| h.slot < slot)
}

fn too_big() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_TOOBIG),
        Some("too many rows or tokens for the in-memory ranker".to_string()),
    )
}

/// A scored row, ordered best (lowest bm25) first, then by row id.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    bm25: f64,
    rowid: i64,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bm25
            .total_cmp(&other.bm25)
            .then(self.rowid.cmp(&other.rowid))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ranked {}

/// What the ranker has.
enum State {
    /// Nothing yet (or the FTS table was emptied): the next search builds.
    Unbuilt,
    /// An index that matches `notes_fts` except for the rows in `stale`.
    Built {
        index: Box<RankIndex>,
        stale: HashSet<i64>,
        /// The index's share of the budget.
        reservation: Reservation,
    },
    /// The last build needed at least `need` bytes and the budget did not have them; retried
    /// once that much is free.
    OverBudget { need: usize },
}

/// The in-memory ranker of one index, with its tokenizer and its memory limit.
pub struct Ranker {
    state: State,
    /// Most bytes all rankers of the process may hold together.
    limit: usize,
    /// The budget counter ([`IN_USE`] outside tests of the budget itself).
    pool: &'static AtomicUsize,
    /// FTS5's tokenizer, created at first use.
    tokenizer: Option<Tokenizer>,
}

impl Default for Ranker {
    fn default() -> Self {
        Ranker {
            state: State::Unbuilt,
            limit: DEFAULT_MEMORY_LIMIT,
            pool: &IN_USE,
            tokenizer: None,
        }
    }
}

/// One row of `notes_fts` with its note's path, and all of them.
const ROW: &str = "SELECT f.title, f.body, n.path FROM notes_fts f
                   LEFT JOIN notes n ON n.id = f.rowid WHERE f.rowid = ?1";
const ALL_ROWS: &str = "SELECT f.rowid, f.title, f.body, n.path FROM notes_fts f
                        LEFT JOIN notes n ON n.id = f.rowid";

impl Ranker {
    /// Most bytes all rankers of the process may hold together (checked at the next growth).
    pub fn set_limit(&mut self, bytes: usize) {
        self.limit = bytes;
    }

    /// Bytes this ranker holds from the budget (0 when it has no index).
    pub fn reserved(&self) -> usize {
        match &self.state {
            State::Built { reservation, .. } => reservation.held(),
            _ => 0,
        }
    }

    /// Row `rowid` of `notes_fts` was inserted, replaced or deleted.
    pub fn fts_row_changed(&mut self, rowid: i64) {
        if let State::Built { stale, .. } = &mut self.state {
            stale.insert(rowid);
        }
    }

    /// Every row of `notes_fts` may have changed (emptied, dropped, rebuilt).
    pub fn fts_cleared(&mut self) {
        self.state = State::Unbuilt;
    }

    /// FTS5's tokenizer, found through `conn` the first time.
    pub fn tokenizer(&mut self, conn: &Connection) -> rusqlite::Result<&mut Tokenizer> {
        match &mut self.tokenizer {
            Some(tokenizer) => Ok(tokenizer),
            slot => Ok(slot.insert(Tokenizer::unicode61(conn)?)),
        }
    }

    /// `terms` tokenized as FTS5 tokenizes them, when each is exactly one token (a term that
    /// unicode61 splits or drops is left to FTS5, and so is a very long query).
    pub fn query_terms(
        &mut self,
        conn: &Connection,
        terms: &[PlainTerm<'_>],
    ) -> rusqlite::Result<Option<Vec<QueryTerm>>> {
        if terms.len() > MAX_TERMS {
            return Ok(None);
        }
        let tokenizer = self.tokenizer(conn)?;
        let mut out = Vec::with_capacity(terms.len());
        for term in terms {
            let mut tokens = Vec::new();
            tokenizer.tokenize(term.text, |token, _| {
                tokens.push(fts5_key(token).to_vec());
                ControlFlow::Continue(())
            })?;
            match <[Vec<u8>; 1]>::try_from(tokens) {
                Ok([token]) => out.push(QueryTerm {
                    token,
                    prefix: term.prefix,
                }),
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// Rank like `bm25(notes_fts, weights.0, weights.1)` for the AND of `terms`: the `limit`
    /// best (row id, bm25) in `folder`, best first. `None` when the index does not fit the
    /// memory budget (the caller asks FTS5 instead).
    pub fn rank(
        &mut self,
        conn: &Connection,
        terms: &[QueryTerm],
        folder: &str,
        limit: usize,
        weights: (f64, f64),
    ) -> rusqlite::Result<Option<Vec<(i64, f64)>>> {
        match self.current(conn) {
            Ok(Some(index)) => Ok(Some(index.rank(terms, folder, limit, weights))),
            Ok(None) => Ok(None),
            Err(e) => {
                // A half-applied catch-up cannot be trusted: start over next time.
                self.state = State::Unbuilt;
                Err(e)
            }
        }
    }

    /// The index, brought up to date with `notes_fts`; `None` when over budget.
    fn current(&mut self, conn: &Connection) -> rusqlite::Result<Option<&RankIndex>> {
        let rebuild = match &self.state {
            State::Unbuilt => true,
            State::OverBudget { need } => {
                let free = self.limit.saturating_sub(self.pool.load(Ordering::Relaxed));
                if free < *need {
                    return Ok(None);
                }
                true
            }
            State::Built { index, stale, .. } => {
                stale.len() > 64 && stale.len() * REBUILD_FRACTION > index.rows.len()
            }
        };
        if rebuild {
            // Free the old index before building the new one.
            self.state = State::Unbuilt;
            self.state = self.build(conn)?;
        } else {
            self.catch_up(conn)?;
        }
        match &self.state {
            State::Built { index, .. } => Ok(Some(index)),
            _ => Ok(None),
        }
    }

    fn build(&mut self, conn: &Connection) -> rusqlite::Result<State> {
        let (limit, pool) = (self.limit, self.pool);
        let tokenizer = self.tokenizer(conn)?;
        let mut index = Box::<RankIndex>::default();
        let mut reservation = Reservation::new(pool);
        let mut stmt = conn.prepare(ALL_ROWS)?;
        let mut rows = stmt.query([])?;
        let mut added = 0usize;
        while let Some(row) = rows.next()? {
            let path = row.get_ref(3)?.as_str_or_null()?;
            index.add_row(
                tokenizer,
                row.get(0)?,
                row.get_ref(1)?.as_str_or_null()?.unwrap_or(""),
                row.get_ref(2)?.as_str_or_null()?.unwrap_or(""),
                path,
            )?;
            added += 1;
            if added.is_multiple_of(256) && !reservation.resize(index.bytes(), limit) {
                return Ok(State::OverBudget {
                    need: index.bytes(),
                });
            }
        }
        index.finish();
        if !reservation.resize(index.bytes(), limit) {
            return Ok(State::OverBudget {
                need: index.bytes(),
            });
        }
        Ok(State::Built {
            index,
            stale: HashSet::default(),
            reservation,
        })
    }

    fn catch_up(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let limit = self.limit;
        let tokenizer = match &mut self.tokenizer {
            Some(tokenizer) => tokenizer,
            slot => slot.insert(Tokenizer::unicode61(conn)?),
        };
        let State::Built {
            index,
            stale,
            reservation,
        } = &mut self.state
        else {
            return Ok(());
        };
        if stale.is_empty() {
            return Ok(());
        }
        let mut stmt = conn.prepare_cached(ROW)?;
        for rowid in stale.drain() {
            index.remove_row(rowid);
            let mut rows = stmt.query([rowid])?;
            if let Some(row) = rows.next()? {
                index.add_row(
                    tokenizer,
                    rowid,
                    row.get_ref(0)?.as_str_or_null()?.unwrap_or(""),
                    row.get_ref(1)?.as_str_or_null()?.unwrap_or(""),
                    row.get_ref(2)?.as_str_or_null()?,
                )?;
            }
        }
        if index.worth_compacting() {
            index.compact();
        }
        let need = index.bytes();
        if !reservation.resize(need, limit) {
            self.state = State::OverBudget { need };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::fts_query::{build_match_query, plain_terms};
    use crate::index::testing::{corpus, fts5_ranking, put, remove};
    use crate::index::{Index, Scope};

    /// Queries the ranker must answer, of every kind it takes: frequent and rare words, other
    /// spellings of stored words, numbers, CJK characters, pairs, repeats, prefixes narrow and
    /// broad, and words found nowhere.
    const QUERIES: &[&str] = &[
        "the",
        "note",
        "rust",
        "RUST",
        "tea",
        "cafe",
        "café",
        "CAFÉ",
        "naive",
        "Müller",
        "MULLER",
        "resume",
        "straße",
        "STRAßE",
        "2024",
        "42",
        "v1",
        "東",
        "京",
        "学",
        "语",
        "привет",
        "МИР",
        "mail",
        "x86",
        "ǆemal",
        "ﬁne",
        "αθηναι",
        "zebra",
        "absent",
        "tea cafe",
        "rust note",
        "the the",
        "quantum quark",
        "zebra absent",
        "東 京",
        "co*",
        "c*",
        "qua*",
        "t*",
        "mar*",
        "q*",
        "z*",
        "zz*",
        "東*",
        "ﬁ*",
        "co* tea",
        "rust qua*",
        "qua* qua*",
        "the and note tea",
        "OR",
        "note OR",
    ];

    /// The ranker's whole answer for what a user typed, `None` when it leaves it to FTS5.
    fn ranked(index: &mut Index, user_query: &str, folder: &str) -> Option<Vec<(i64, f64)>> {
        let expr = build_match_query(user_query, 100_000).unwrap();
        let plain = plain_terms(&expr)?;
        let terms = index.ranker.query_terms(&index.conn, &plain).unwrap()?;
        index
            .ranker
            .rank(&index.conn, &terms, folder, usize::MAX, (10.0, 1.0))
            .unwrap()
    }

    fn assert_same_as_fts5(index: &mut Index, user_query: &str) {
        let expr = build_match_query(user_query, 100_000).unwrap();
        let ours = ranked(index, user_query, "")
            .unwrap_or_else(|| panic!("{user_query:?} was not answered by the ranker"));
        let theirs = fts5_ranking(index, &expr);
        let ids = |r: &[(i64, f64)]| r.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        assert_eq!(ids(&ours), ids(&theirs), "{user_query:?}");
        for ((_, a), (_, b)) in ours.iter().zip(&theirs) {
            assert!(
                (a - b).abs() <= 1e-9 * b.abs(),
                "{user_query:?}: {a} vs FTS5 {b}"
            );
        }
    }

    fn assert_all_same_as_fts5(index: &mut Index) {
        for query in QUERIES {
            assert_same_as_fts5(index, query);
        }
    }

    /// The built index, to look at its bookkeeping.
    fn built(index: &Index) -> &RankIndex {
        match &index.ranker.state {
            State::Built { index, .. } => index,
            _ => panic!("the ranker is not built"),
        }
    }

    #[test]
    fn rankings_and_scores_equal_fts5_bm25() {
        let mut index = Index::open_in_memory().unwrap();
        put(&mut index, &corpus(400, 1));
        assert_all_same_as_fts5(&mut index);
        assert!(index.search_memory() > 0);
        // Sanity of the comparison itself: the queries do find notes, many for some.
        let expr = build_match_query("the", 100).unwrap();
        assert!(fts5_ranking(&index, &expr).len() > 300);
        let expr = build_match_query("c*", 100).unwrap();
        assert!(fts5_ranking(&index, &expr).len() > 300);
    }

    #[test]
    fn other_query_shapes_are_left_to_fts5() {
        let mut index = Index::open_in_memory().unwrap();
        put(&mut index, &corpus(20, 1));
        for query in [
            "e-mail",
            "x86_64",
            "東京",
            "Rust言語",
            "rust OR tea",
            "tea -rust",
            "\"the note\"",
            "Ⓐ",
        ] {
            assert_eq!(ranked(&mut index, query, ""), None, "{query:?}");
        }
    }

    #[test]
    fn the_folder_filter_keeps_notes_in_the_folder_and_below() {
        let mut index = Index::open_in_memory().unwrap();
        let notes = corpus(200, 3);
        put(&mut index, &notes);
        let all = ranked(&mut index, "the", "").unwrap();
        for folder in ["work", "work/deep", "home", "wor", "nothing"] {
            let prefix = format!("{folder}/");
            let expected: Vec<(i64, f64)> = all
                .iter()
                .copied()
                .filter(|(id, _)| {
                    let path: String = index
                        .conn
                        .query_row("SELECT path FROM notes WHERE id = ?1", [id], |r| r.get(0))
                        .unwrap();
                    path.starts_with(&prefix)
                })
                .collect();
            assert_eq!(ranked(&mut index, "the", folder).unwrap(), expected);
        }
        assert!(!ranked(&mut index, "the", "work").unwrap().is_empty());
    }

    #[test]
    fn writes_deletes_and_clears_are_caught_up() {
        let mut index = Index::open_in_memory().unwrap();
        let notes = corpus(300, 2);
        put(&mut index, &notes);
        assert_all_same_as_fts5(&mut index);

        // Rewrite some notes, delete others, add new ones: only those rows are re-read.
        let mut rewritten = corpus(40, 20);
        for (i, note) in rewritten.iter_mut().enumerate() {
            note.0 = notes[i * 7].0.clone();
        }
        put(&mut index, &rewritten);
        let gone: Vec<String> = (1..30)
            .filter(|i| i % 7 != 0)
            .map(|i| notes[i].0.clone())
            .collect();
        remove(&mut index, &gone);
        let mut added = corpus(20, 21);
        for note in &mut added {
            note.0 = format!("new/{}", note.0.replace('/', "-"));
        }
        put(&mut index, &added);
        assert_all_same_as_fts5(&mut index);
        let live = 300 - gone.len() + 20;
        assert_eq!(built(&index).live_rows, live as u64);
        assert_eq!(
            built(&index).rows.len(),
            300 + 40 + 20,
            "caught up, not rebuilt"
        );

        // Enough churn for a compaction, checked after every round.
        for round in 0..4 {
            let mut again = corpus(40, 30 + round);
            for (i, note) in again.iter_mut().enumerate() {
                note.0 = notes[100 + i].0.clone();
            }
            put(&mut index, &again);
            assert_all_same_as_fts5(&mut index);
        }
        assert!(built(&index).dead_slots < 64, "compacted");
        assert_eq!(built(&index).live_rows, live as u64);

        // Deleted notes that come back, and notes written twice in one transaction.
        put(&mut index, &notes[1..3]);
        let first_draft = (notes[5].0.clone(), "draft".into(), "tea zebra".into());
        put(&mut index, &[first_draft, notes[5].clone()]);
        assert_all_same_as_fts5(&mut index);

        index.transaction(Index::clear).unwrap();
        for query in QUERIES {
            assert_eq!(ranked(&mut index, query, ""), Some(Vec::new()), "{query:?}");
        }
        put(&mut index, &notes);
        assert_all_same_as_fts5(&mut index);

        index.drop_index().unwrap();
        put(&mut index, &notes[..50]);
        assert_all_same_as_fts5(&mut index);
    }

    #[test]
    fn a_rolled_back_write_leaves_the_ranking_as_fts5_has_it() {
        let mut index = Index::open_in_memory().unwrap();
        let notes = corpus(50, 4);
        put(&mut index, &notes);
        assert_all_same_as_fts5(&mut index);
        let failed: Result<(), rusqlite::Error> = index.transaction(|tx| {
            Index::remove(tx, &notes[0].0, Scope::Bulk)?;
            Err(rusqlite::Error::QueryReturnedNoRows)
        });
        assert!(failed.is_err());
        assert_all_same_as_fts5(&mut index);
    }

    #[test]
    fn counts_beyond_a_posting_field_stay_exact() {
        let mut index = Index::open_in_memory().unwrap();
        let many = "x ".repeat(70_000);
        let title = "x ".repeat(3);
        put(
            &mut index,
            &[
                ("a.md".into(), title.clone(), many.clone()),
                ("b.md".into(), "".into(), "x y x".into()),
                ("c.md".into(), "y".into(), format!("{many} xylophone")),
            ],
        );
        for query in ["x", "x*", "x y", "y"] {
            assert_same_as_fts5(&mut index, query);
        }
        // Compaction carries the exact counts over.
        for round in 0..70 {
            put(
                &mut index,
                &[(format!("churn{}.md", round % 2), "".into(), "x z".into())],
            );
            assert_same_as_fts5(&mut index, "x");
        }
        assert!(built(&index).dead_slots < 64);
        assert!(!built(&index).overflow.is_empty());
        assert_same_as_fts5(&mut index, "x*");
    }

    #[test]
    fn tokens_are_truncated_like_fts5_truncates_them() {
        let mut index = Index::open_in_memory().unwrap();
        let long = "a".repeat(FTS5_MAX_TOKEN_SIZE);
        put(
            &mut index,
            &[
                ("b.md".into(), "".into(), format!("{long}b and more")),
                ("c.md".into(), "".into(), format!("{long}c")),
                ("d.md".into(), "".into(), "aaa".into()),
            ],
        );
        for query in [
            format!("{long}b"),
            format!("{long}zzz"),
            "aa*".into(),
            "and".into(),
        ] {
            assert_same_as_fts5(&mut index, &query);
        }
    }

    #[test]
    fn an_index_over_the_budget_is_not_built_until_there_is_room() {
        let mut index = Index::open_in_memory().unwrap();
        put(&mut index, &corpus(100, 5));
        index.set_search_memory_limit(1000);
        assert_eq!(ranked(&mut index, "the", ""), None);
        assert_eq!(index.search_memory(), 0);
        index.set_search_memory_limit(DEFAULT_MEMORY_LIMIT);
        assert!(ranked(&mut index, "the", "").is_some());
        assert!(index.search_memory() > 0);
    }

    #[test]
    fn the_budget_is_shared_and_given_back_on_drop() {
        static POOL: AtomicUsize = AtomicUsize::new(0);
        let mut first = Index::open_in_memory().unwrap();
        let mut second = Index::open_in_memory().unwrap();
        let notes = corpus(200, 6);
        put(&mut first, &notes);
        put(&mut second, &notes);
        for index in [&mut first, &mut second] {
            index.ranker.pool = &POOL;
        }
        assert!(ranked(&mut first, "the", "").is_some());
        let one = first.search_memory();
        assert_eq!(POOL.load(Ordering::Relaxed), one);
        // Room for one index, not two.
        second.set_search_memory_limit(one + one / 2);
        assert_eq!(ranked(&mut second, "the", ""), None);
        assert_eq!(POOL.load(Ordering::Relaxed), one);
        drop(first);
        assert_eq!(POOL.load(Ordering::Relaxed), 0);
        assert!(ranked(&mut second, "the", "").is_some());
        assert_eq!(POOL.load(Ordering::Relaxed), second.search_memory());
        second.fts_cleared();
        assert_eq!(POOL.load(Ordering::Relaxed), 0);
    }
}
