//! Full-text search over one user's notes: FTS5 `bm25` with the title weighted over the body,
//! best first (lower bm25 is better), a small bonus for recently updated notes, and `<mark>`
//! snippets.
//!
//! Queries that are a plain AND of words and prefixes, without tag filter, are answered by the
//! in-memory ranker (same scores as FTS5, a fraction of the cost); everything else by FTS5.

use rusqlite::types::Value as SqlValue;
use rusqlite::OptionalExtension;
use serde::Serialize;

use super::fts_query::{plain_terms, unsegment_cjk};
use super::{snippet, Index, ListedNote, TagCount};

/// A title match counts this many times a body match. Whole numbers keep the in-memory scores
/// bit-equal to FTS5's (see `ranker`).
const TITLE_WEIGHT: f64 = 10.0;
const BODY_WEIGHT: f64 = 1.0;
/// At most this fraction of a note's score comes from recency; it only breaks near-ties.
const RECENCY_BONUS: f64 = 0.05;
/// Age (days) at which the recency bonus has halved.
const RECENCY_HALF_LIFE_DAYS: f64 = 30.0;

/// Narrowing beyond the text query.
#[derive(Debug, Default, Clone)]
pub struct SearchFilter {
    /// Only notes in this folder or below ("" = whole vault).
    pub folder: String,
    /// Only notes carrying every one of these tags.
    pub tags: Vec<String>,
}

/// One search result.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SearchHit {
    pub path: String,
    pub title: String,
    /// Text around the match, with matched terms wrapped in `<mark>`.
    pub snippet: String,
    /// Relevance, higher is better.
    pub score: f64,
    pub updated: Option<String>,
}

impl Index {
    /// The notes carrying every tag of `filter` (in its folder), most recently updated first:
    /// a search by tags alone, with no words to rank by.
    pub fn tagged(&self, filter: &SearchFilter, limit: usize) -> rusqlite::Result<Vec<SearchHit>> {
        let prefix = if filter.folder.is_empty() {
            String::new()
        } else {
            format!("{}/", filter.folder)
        };
        let marks = vec!["?"; filter.tags.len()].join(", ");
        let sql = format!(
            "SELECT n.path, n.title, n.updated FROM tags t JOIN notes n ON n.id = t.note
             WHERE t.tag IN ({marks}) AND substr(n.path, 1, length(?)) = ?
             GROUP BY n.id HAVING count(*) = ?
             ORDER BY n.updated_ms DESC, n.path LIMIT ?"
        );
        let mut args: Vec<SqlValue> = filter
            .tags
            .iter()
            .map(|t| SqlValue::Text(t.clone()))
            .collect();
        args.push(SqlValue::Text(prefix.clone()));
        args.push(SqlValue::Text(prefix));
        args.push(SqlValue::Integer(filter.tags.len() as i64));
        args.push(SqlValue::Integer(limit as i64));
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok(SearchHit {
                path: r.get(0)?,
                title: r.get(1)?,
                snippet: String::new(),
                score: 0.0,
                updated: r.get(2)?,
            })
        })?;
        rows.collect()
    }

    /// Run an FTS5 `match_expr` (built by `fts_query::build_match_query`) with `filter`: the
    /// `limit` best notes, best first.
    pub fn search(
        &mut self,
        match_expr: &str,
        filter: &SearchFilter,
        limit: usize,
        now_ms: i64,
    ) -> rusqlite::Result<Vec<SearchHit>> {
        if filter.tags.is_empty() {
            if let Some(hits) = self.search_in_memory(match_expr, &filter.folder, limit, now_ms)? {
                return Ok(hits);
            }
        }
        self.search_fts(match_expr, filter, limit, now_ms)
    }

    /// The answer of the in-memory ranker, or `None` when the query is not a plain AND of
    /// single-token terms or the ranker does not fit in memory.
    fn search_in_memory(
        &mut self,
        match_expr: &str,
        folder: &str,
        limit: usize,
        now_ms: i64,
    ) -> rusqlite::Result<Option<Vec<SearchHit>>> {
        let Some(plain) = plain_terms(match_expr) else {
            return Ok(None);
        };
        // One read transaction for the dozens of small reads below: each would otherwise
        // take and release the WAL read lock on its own.
        let read = self.conn.unchecked_transaction()?;
        let Some(terms) = self.ranker.query_terms(&self.conn, &plain)? else {
            return Ok(None);
        };
        let weights = (TITLE_WEIGHT, BODY_WEIGHT);
        let candidates = limit + limit / 2 + 5;
        let Some(mut top) = self
            .ranker
            .rank(&self.conn, &terms, folder, candidates, weights)?
        else {
            return Ok(None);
        };
        self.apply_recency(&mut top, now_ms)?;
        top.truncate(limit);
        let tokenizer = self.ranker.tokenizer(&self.conn)?;
        let mut note = self
            .conn
            .prepare_cached("SELECT path, title, updated FROM notes WHERE id = ?1")?;
        let mut text = self
            .conn
            .prepare_cached("SELECT title, body FROM notes_fts WHERE rowid = ?1")?;
        let mut hits = Vec::with_capacity(top.len());
        for (id, score) in top {
            let Some(mut hit) = note
                .query_row([id], |r| {
                    Ok(SearchHit {
                        path: r.get(0)?,
                        title: r.get(1)?,
                        snippet: String::new(),
                        score: -score,
                        updated: r.get(2)?,
                    })
                })
                .optional()?
            else {
                continue;
            };
            let raw = text
                .query_row([id], |r| {
                    let title = r.get_ref(0)?.as_str_or_null()?.unwrap_or("");
                    let body = r.get_ref(1)?.as_str_or_null()?.unwrap_or("");
                    snippet::snippet(tokenizer, &terms, title, body)
                })
                .optional()?;
            hit.snippet = unsegment_cjk(&raw.unwrap_or_default());
            hits.push(hit);
        }
        drop((note, text));
        read.commit()?;
        Ok(Some(hits))
    }

    /// The recency bonus (at most RECENCY_BONUS of a score) only reorders near-ties among the
    /// candidates; `top` ends sorted best first.
    fn apply_recency(&self, top: &mut [(i64, f64)], now_ms: i64) -> rusqlite::Result<()> {
        let mut updated = self
            .conn
            .prepare_cached("SELECT updated_ms FROM notes WHERE id = ?1")?;
        for (id, score) in top.iter_mut() {
            let updated_ms: Option<i64> = updated.query_row([*id], |r| r.get(0)).optional()?;
            let age_days = (now_ms - updated_ms.unwrap_or(now_ms)).max(0) as f64 / 86_400_000.0;
            *score *= 1.0 + RECENCY_BONUS / (1.0 + age_days / RECENCY_HALF_LIFE_DAYS);
        }
        top.sort_by(|a, b| a.1.total_cmp(&b.1));
        Ok(())
    }

    /// The FTS5 path: any match expression, any filter.
    fn search_fts(
        &self,
        match_expr: &str,
        filter: &SearchFilter,
        limit: usize,
        now_ms: i64,
    ) -> rusqlite::Result<Vec<SearchHit>> {
        // 1. Rank every match by bm25 alone: the one cost that grows with the number of
        //    matches, so nothing else is computed per match. Keep some slack for step 2.
        let mut ranked = format!(
            "SELECT f.rowid, bm25(notes_fts, {TITLE_WEIGHT}, {BODY_WEIGHT}) AS b
             FROM notes_fts f WHERE notes_fts MATCH ?1"
        );
        let mut args: Vec<SqlValue> = vec![SqlValue::Text(match_expr.to_string())];
        if !filter.folder.is_empty() {
            args.push(SqlValue::Text(format!("{}/", filter.folder)));
            let n = args.len();
            ranked.push_str(&format!(
                " AND f.rowid IN (SELECT id FROM notes WHERE substr(path, 1, length(?{n})) = ?{n})"
            ));
        }
        for tag in &filter.tags {
            args.push(SqlValue::Text(tag.clone()));
            let n = args.len();
            ranked.push_str(&format!(
                " AND f.rowid IN (SELECT note FROM tags WHERE tag = ?{n})"
            ));
        }
        let candidates = limit + limit / 2 + 5;
        args.push(SqlValue::Integer(candidates as i64));
        ranked.push_str(&format!(" ORDER BY b ASC LIMIT ?{}", args.len()));
        let mut top: Vec<(i64, f64)> = {
            let mut stmt = self.conn().prepare_cached(&ranked)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if top.is_empty() {
            return Ok(Vec::new());
        }
        // 2. Recency, among the candidates only.
        self.apply_recency(&mut top, now_ms)?;
        top.truncate(limit);
        // 3. Snippets, the expensive part, for the page only.
        let ids = top
            .iter()
            .map(|(id, _)| id.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut details: std::collections::HashMap<i64, SearchHit> = {
            let mut stmt = self.conn().prepare(&format!(
                "SELECT f.rowid, n.path, n.title,
                        snippet(notes_fts, -1, '<mark>', '</mark>', '…', {}), n.updated
                 FROM notes_fts f JOIN notes n ON n.id = f.rowid
                 WHERE notes_fts MATCH ?1 AND f.rowid IN ({ids})",
                snippet::WINDOW
            ))?;
            let rows = stmt.query_map([match_expr], |r| {
                let snippet: String = r.get(3)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    SearchHit {
                        path: r.get(1)?,
                        title: r.get(2)?,
                        snippet: unsegment_cjk(&snippet),
                        score: 0.0,
                        updated: r.get(4)?,
                    },
                ))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        Ok(top
            .into_iter()
            .filter_map(|(id, score)| {
                details.remove(&id).map(|mut hit| {
                    hit.score = -score;
                    hit
                })
            })
            .collect())
    }
}

/// `(substr(column, 1, length(?n)) = ?n OR ...)` for each folder of `folders` (none: false),
/// with the `folder/` prefixes pushed onto `args`.
fn within_folders(column: &str, folders: &[String], args: &mut Vec<SqlValue>) -> String {
    if folders.is_empty() {
        return "0".to_string();
    }
    let tests: Vec<String> = folders
        .iter()
        .map(|folder| {
            args.push(SqlValue::Text(format!("{folder}/")));
            let n = args.len();
            format!("substr({column}, 1, length(?{n})) = ?{n}")
        })
        .collect();
    format!("({})", tests.join(" OR "))
}

/// Queries narrowed to a token's folders (see `caller::FolderSet`): the folders are disjoint
/// trees, and only notes inside them are counted or returned.
impl Index {
    /// Every tag carried by a note in `folders`, with the number of those notes, most used
    /// first.
    pub fn tags_within(&self, folders: &[String]) -> rusqlite::Result<Vec<TagCount>> {
        let mut args = Vec::new();
        let inside = within_folders("n.path", folders, &mut args);
        let sql = format!(
            "SELECT t.tag, count(*) AS c FROM tags t JOIN notes n ON n.id = t.note
             WHERE {inside} GROUP BY t.tag ORDER BY c DESC, t.tag"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok(TagCount {
                tag: r.get(0)?,
                count: r.get(1)?,
            })
        })?;
        rows.collect()
    }

    /// How many notes lie in `folders`.
    pub fn count_within(&self, folders: &[String]) -> rusqlite::Result<u64> {
        let mut args = Vec::new();
        let inside = within_folders("path", folders, &mut args);
        self.conn()
            .prepare(&format!("SELECT count(*) FROM notes WHERE {inside}"))?
            .query_row(rusqlite::params_from_iter(args), |r| r.get(0))
    }

    /// Notes in `folders` carrying `tag`, ordered by path.
    pub fn notes_with_tag_within(
        &self,
        tag: &str,
        folders: &[String],
        limit: usize,
    ) -> rusqlite::Result<Vec<ListedNote>> {
        let mut args = vec![SqlValue::Text(tag.to_string())];
        let inside = within_folders("n.path", folders, &mut args);
        args.push(SqlValue::Integer(limit as i64));
        let sql = format!(
            "SELECT n.path, n.title, s.version, n.size, n.updated
             FROM tags t JOIN notes n ON n.id = t.note JOIN note_state s ON s.path = n.path
             WHERE t.tag = ?1 AND {inside} ORDER BY n.path LIMIT ?{}",
            args.len()
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok(ListedNote {
                path: r.get(0)?,
                title: r.get(1)?,
                version: r.get(2)?,
                size: r.get(3)?,
                updated: r.get(4)?,
            })
        })?;
        rows.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::fts_query::build_match_query;
    use crate::index::testing::{corpus, put};

    fn filter(folder: &str) -> SearchFilter {
        SearchFilter {
            folder: folder.to_string(),
            tags: Vec::new(),
        }
    }

    /// (path, score) ordered by score, then path: the same list whatever order ties came in.
    fn by_score(hits: &[SearchHit]) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = hits.iter().map(|h| (h.path.clone(), h.score)).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    #[test]
    fn in_memory_answers_equal_the_fts5_path() {
        let mut index = Index::open_in_memory().unwrap();
        put(&mut index, &corpus(300, 8));
        let now = 86_400_000 * 3;
        for (query, folder) in [
            ("the", ""),
            ("tea cafe", ""),
            ("co*", "work"),
            ("rust", "home"),
            ("müller", "work/deep"),
            ("note", "nowhere"),
            ("absent", ""),
        ] {
            let expr = build_match_query(query, 200).unwrap();
            for limit in [10, 1000] {
                let fast = index.search(&expr, &filter(folder), limit, now).unwrap();
                let slow = index
                    .search_fts(&expr, &filter(folder), limit, now)
                    .unwrap();
                assert_eq!(fast.len(), slow.len(), "{query:?} in {folder:?}");
                for (a, b) in fast.iter().zip(&slow) {
                    assert!(
                        (a.score - b.score).abs() <= 1e-9 * b.score.abs(),
                        "{query:?}"
                    );
                    assert!(a.path.starts_with(folder), "{query:?}: {}", a.path);
                    assert!(a.snippet.contains("<mark>"), "{query:?}: {}", a.snippet);
                }
                if limit == 1000 {
                    let (fast, slow) = (by_score(&fast), by_score(&slow));
                    let paths =
                        |v: &[(String, f64)]| v.iter().map(|h| h.0.clone()).collect::<Vec<_>>();
                    assert_eq!(paths(&fast), paths(&slow), "{query:?} in {folder:?}");
                }
            }
        }
        assert!(index.search_memory() > 0, "the ranker answered");
    }

    #[test]
    fn snippets_mark_the_same_words_as_fts5() {
        let mut index = Index::open_in_memory().unwrap();
        let notes = [
            ("de.md", "Reise", "Wir trinken Kaffee mit Frau Müller."),
            ("ja.md", "日記", "今日は東京都に住んでいます。"),
            ("title.md", "Kaffee", "A note about drinks."),
        ];
        put(
            &mut index,
            &notes.map(|(p, t, b)| (p.to_string(), t.to_string(), b.to_string())),
        );
        for (query, expected) in [
            ("muller", "Wir trinken Kaffee mit Frau <mark>Müller</mark>."),
            ("東", "今日は<mark>東</mark>京都に住んでいます。"),
            ("kaffee", "<mark>Kaffee</mark>"),
        ] {
            let expr = build_match_query(query, 200).unwrap();
            let fast = index.search(&expr, &filter(""), 10, 0).unwrap();
            let slow = index.search_fts(&expr, &filter(""), 10, 0).unwrap();
            let snippets = |hits: &[SearchHit]| {
                hits.iter()
                    .find(|h| h.path != "title.md" || query == "kaffee")
                    .map(|h| h.snippet.clone())
            };
            assert_eq!(snippets(&fast).as_deref(), Some(expected), "{query:?}");
            assert_eq!(snippets(&slow).as_deref(), Some(expected), "{query:?}");
        }
    }
}
