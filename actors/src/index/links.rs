//! Wikilink resolution: which note a `[[target]]` points at.
//!
//! Rule, in order: the target as a path from the vault root, then as a path from the linking
//! note's folder, then a note whose path ends with the target (a bare name matches the file
//! stem), then a note whose title is the target. Ties go to a note in the linking note's folder,
//! then to the lexicographically first path. Matching ignores case and a trailing `.md`.
//!
//! Broken links are stored with no destination and re-resolved whenever a note that could
//! satisfy them appears, moves or is retitled, and when the note they pointed at goes away.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

/// The normalised lookup key of a link target and its last segment: lower case, no leading
/// `/`, no `.md`.
pub fn link_key(target: &str) -> (String, String) {
    let trimmed = target.trim().trim_start_matches('/');
    let no_ext = if trimmed.len() >= 3
        && trimmed.is_char_boundary(trimmed.len() - 3)
        && trimmed[trimmed.len() - 3..].eq_ignore_ascii_case(".md")
    {
        &trimmed[..trimmed.len() - 3]
    } else {
        trimmed
    };
    let key = no_ext.to_lowercase();
    let last = key.rsplit('/').next().unwrap_or(&key).to_string();
    (key, last)
}

/// A note that might be the destination of a link.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: i64,
    pub path_key: String,
    pub folder: String,
    pub title_key: String,
}

/// Pick the destination of a link with key `key` written in a note in `src_folder`.
pub fn choose<'a>(
    candidates: impl IntoIterator<Item = &'a Candidate>,
    src_folder: &str,
    key: &str,
) -> Option<i64> {
    let relative = if src_folder.is_empty() {
        None
    } else {
        Some(format!("{}/{}", src_folder.to_lowercase(), key))
    };
    let suffix = format!("/{key}");
    candidates
        .into_iter()
        .filter_map(|c| {
            let rank = if c.path_key == key {
                0
            } else if relative.as_deref() == Some(c.path_key.as_str()) {
                1
            } else if c.path_key.ends_with(&suffix) {
                2
            } else if c.title_key == key {
                3
            } else {
                return None;
            };
            Some(((rank, c.folder != src_folder, c.path_key.as_str()), c.id))
        })
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, id)| id)
}

/// Notes that could satisfy a link with `key`/`last` from `src_folder`, straight from SQL.
fn candidates_for(
    conn: &Connection,
    src_folder: &str,
    key: &str,
    last: &str,
) -> rusqlite::Result<Vec<Candidate>> {
    let relative = format!("{}/{}", src_folder.to_lowercase(), key);
    let mut stmt = conn.prepare_cached(
        "SELECT id, path_key, folder, title_key FROM notes
         WHERE path_key = ?1 OR path_key = ?2 OR stem = ?3 OR title_key = ?1",
    )?;
    let rows = stmt.query_map(params![key, relative, last], |r| {
        Ok(Candidate {
            id: r.get(0)?,
            path_key: r.get(1)?,
            folder: r.get(2)?,
            title_key: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Resolve one link from SQL (used on single writes).
pub(super) fn resolve_one(
    conn: &Connection,
    src_folder: &str,
    key: &str,
    last: &str,
) -> rusqlite::Result<Option<i64>> {
    let cands = candidates_for(conn, src_folder, key, last)?;
    Ok(choose(&cands, src_folder, key))
}

/// Re-resolve the links chosen by `filter_sql` (a WHERE clause over `links l`) with `args`.
pub(super) fn re_resolve_where(
    conn: &Connection,
    filter_sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<()> {
    let sql = format!(
        "SELECT l.rowid, n.folder, l.target_key, l.target_last, l.dst
         FROM links l JOIN notes n ON n.id = l.src WHERE {filter_sql}"
    );
    let affected: Vec<(i64, String, String, String, Option<i64>)> = {
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(args, |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut update = conn.prepare_cached("UPDATE links SET dst = ?1 WHERE rowid = ?2")?;
    for (rowid, folder, key, last, old) in affected {
        let new = resolve_one(conn, &folder, &key, &last)?;
        if new != old {
            update.execute(params![new, rowid])?;
        }
    }
    Ok(())
}

/// Re-resolve links that a note with these keys could now satisfy, or that pointed at it.
pub(super) fn re_resolve_for_note(
    conn: &Connection,
    id: i64,
    path_key: &str,
    stem: &str,
    title_key: &str,
) -> rusqlite::Result<()> {
    re_resolve_where(
        conn,
        "l.target_last = ?1 OR l.target_key = ?2 OR l.target_key = ?3 OR l.dst = ?4",
        &[&stem, &title_key, &path_key, &id],
    )
}

/// Resolve every link of the vault in memory: one pass after a bulk reconcile, instead of one
/// SQL round per link.
pub(super) fn resolve_all(conn: &Connection) -> rusqlite::Result<()> {
    let mut by_path: HashMap<String, Vec<Candidate>> = HashMap::new();
    let mut by_stem: HashMap<String, Vec<Candidate>> = HashMap::new();
    let mut by_title: HashMap<String, Vec<Candidate>> = HashMap::new();
    {
        let mut stmt = conn.prepare("SELECT id, path_key, folder, title_key, stem FROM notes")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let c = Candidate {
                id: r.get(0)?,
                path_key: r.get(1)?,
                folder: r.get(2)?,
                title_key: r.get(3)?,
            };
            let stem: String = r.get(4)?;
            by_path
                .entry(c.path_key.clone())
                .or_default()
                .push(c.clone());
            by_title
                .entry(c.title_key.clone())
                .or_default()
                .push(c.clone());
            by_stem.entry(stem).or_default().push(c);
        }
    }
    let links: Vec<(i64, String, String, String, Option<i64>)> = {
        let mut stmt = conn.prepare(
            "SELECT l.rowid, n.folder, l.target_key, l.target_last, l.dst
             FROM links l JOIN notes n ON n.id = l.src",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut update = conn.prepare_cached("UPDATE links SET dst = ?1 WHERE rowid = ?2")?;
    let empty = Vec::new();
    for (rowid, folder, key, last, old) in links {
        let relative = format!("{}/{}", folder.to_lowercase(), key);
        let pools = [
            by_path.get(&key).unwrap_or(&empty),
            by_path.get(&relative).unwrap_or(&empty),
            by_stem.get(&last).unwrap_or(&empty),
            by_title.get(&key).unwrap_or(&empty),
        ];
        let new = choose(pools.into_iter().flatten(), &folder, &key);
        if new != old {
            update.execute(params![new, rowid])?;
        }
    }
    Ok(())
}

/// The id of the note at `path`, if indexed.
pub(super) fn note_id(conn: &Connection, path: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM notes WHERE path = ?1")?
        .query_row([path], |r| r.get(0))
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: i64, path: &str, title: &str) -> Candidate {
        let (path_key, _) = link_key(path);
        let folder = path.rsplit_once('/').map_or("", |(f, _)| f).to_string();
        Candidate {
            id,
            path_key,
            folder,
            title_key: title.to_lowercase(),
        }
    }

    #[test]
    fn key_ignores_case_extension_and_leading_slash() {
        assert_eq!(
            link_key(" /Folder/Note.MD "),
            ("folder/note".into(), "note".into())
        );
        assert_eq!(link_key("日本語"), ("日本語".into(), "日本語".into()));
    }

    #[test]
    fn path_beats_stem_beats_title_and_same_folder_wins_ties() {
        let notes = [
            cand(1, "b/target.md", "x"),
            cand(2, "a/target.md", "y"),
            cand(3, "z.md", "target"),
            cand(4, "target.md", "w"),
        ];
        assert_eq!(choose(&notes, "a", "target"), Some(4), "root path first");
        assert_eq!(choose(&notes[..3], "a", "target"), Some(2), "same folder");
        assert_eq!(
            choose(&notes[..3], "c", "target"),
            Some(2),
            "then lexicographic"
        );
        assert_eq!(choose(&notes[2..3], "c", "target"), Some(3), "title last");
        assert_eq!(choose(&notes, "a", "b/target"), Some(1), "folder path");
        assert_eq!(choose(&notes, "a", "nothing"), None);
    }
}
