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
        let mut sql = format!(
            "SELECT n.path, n.title,
                    snippet(notes_fts, -1, '<mark>', '</mark>', '…', 24),
                    bm25(notes_fts, {TITLE_WEIGHT}, 1.0)
                      * (1.0 + {RECENCY_BONUS} / (1.0 + max(?2 - n.updated_ms, 0) / 86400000.0
                                                     / {RECENCY_HALF_LIFE_DAYS})) AS score,
                    n.updated
             FROM notes_fts JOIN notes n ON n.id = notes_fts.rowid
             WHERE notes_fts MATCH ?1"
        );
        let mut args: Vec<SqlValue> = vec![
            SqlValue::Text(match_expr.to_string()),
            SqlValue::Integer(now_ms),
        ];
        if !filter.folder.is_empty() {
            args.push(SqlValue::Text(format!("{}/", filter.folder)));
            let n = args.len();
            sql.push_str(&format!(" AND substr(n.path, 1, length(?{n})) = ?{n}"));
        }
        for tag in &filter.tags {
            args.push(SqlValue::Text(tag.clone()));
            let n = args.len();
            sql.push_str(&format!(
                " AND n.id IN (SELECT note FROM tags WHERE tag = ?{n})"
            ));
        }
        args.push(SqlValue::Integer(limit as i64));
        sql.push_str(&format!(" ORDER BY score ASC LIMIT ?{}", args.len()));
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            let snippet: String = r.get(2)?;
            let bm25: f64 = r.get(3)?;
            Ok(SearchHit {
                path: r.get(0)?,
                title: r.get(1)?,
                snippet: unsegment_cjk(&snippet),
                score: -bm25,
                updated: r.get(4)?,
            })
        })?;
        rows.collect()
    }
}
