//! Full-text search over one user's notes: FTS5 `bm25` with the title weighted over the body,
//! best first (lower bm25 is better), a small bonus for recently updated notes, and `<mark>`
//! snippets.

use rusqlite::types::Value as SqlValue;
use serde::Serialize;

use super::fts_query::unsegment_cjk;
use super::Index;

/// A title match counts this many times a body match.
const TITLE_WEIGHT: f64 = 10.0;
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
    /// Run an FTS5 `match_expr` (built by `fts_query::build_match_query`) with `filter`.
    pub fn search(
        &self,
        match_expr: &str,
        filter: &SearchFilter,
        limit: usize,
        now_ms: i64,
    ) -> rusqlite::Result<Vec<SearchHit>> {
        // 1. Rank every match by bm25 alone: the one cost that grows with the number of
        //    matches, so nothing else is computed per match. Keep some slack for step 2.
        let mut ranked = format!(
            "SELECT f.rowid, bm25(notes_fts, {TITLE_WEIGHT}, 1.0) AS b
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
        // 2. The recency bonus (at most RECENCY_BONUS of a score) only reorders near-ties
        //    among the candidates.
        let ids = top
            .iter()
            .map(|(id, _)| id.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let updated: std::collections::HashMap<i64, i64> = {
            let mut stmt = self.conn().prepare(&format!(
                "SELECT id, updated_ms FROM notes WHERE id IN ({ids})"
            ))?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (id, score) in top.iter_mut() {
            let age_days =
                (now_ms - updated.get(id).copied().unwrap_or(now_ms)).max(0) as f64 / 86_400_000.0;
            *score *= 1.0 + RECENCY_BONUS / (1.0 + age_days / RECENCY_HALF_LIFE_DAYS);
        }
        top.sort_by(|a, b| a.1.total_cmp(&b.1));
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
                        snippet(notes_fts, -1, '<mark>', '</mark>', '…', 24), n.updated
                 FROM notes_fts f JOIN notes n ON n.id = f.rowid
                 WHERE notes_fts MATCH ?1 AND f.rowid IN ({ids})"
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
