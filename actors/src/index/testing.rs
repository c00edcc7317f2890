//! Helpers for the index's own tests: notes through the normal upsert path, a generated corpus
//! with varied words, and FTS5's own ranking to compare with.

use super::{Index, NoteRecord, Scope};
use crate::note::NotePath;

/// Store notes (path, title, body) in one transaction, as the vault does.
pub fn put(index: &mut Index, notes: &[(String, String, String)]) {
    index
        .transaction(|tx| {
            for (path, title, body) in notes {
                let path = NotePath::parse(path).unwrap();
                let record = NoteRecord {
                    path: &path,
                    title,
                    body,
                    tags: &[],
                    links: &[],
                    size: body.len() as u64,
                    mtime_ns: 0,
                    hash: "hash",
                    created: None,
                    updated: None,
                    updated_ms: 0,
                };
                Index::upsert(tx, &record, true, Scope::Bulk)?;
            }
            Ok::<_, rusqlite::Error>(())
        })
        .unwrap();
}

/// Remove notes by path, in one transaction.
pub fn remove(index: &mut Index, paths: &[String]) {
    index
        .transaction(|tx| {
            for path in paths {
                Index::remove(tx, path, Scope::Bulk)?;
            }
            Ok::<_, rusqlite::Error>(())
        })
        .unwrap();
}

/// SplitMix64, so the corpus is the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

/// Words of several scripts and spellings; the first ones are drawn far more often.
pub const WORDS: &[&str] = &[
    "the",
    "and",
    "note",
    "Rust",
    "tea",
    "café",
    "Cafe",
    "CAFÉ",
    "naïve",
    "Müller",
    "muller",
    "résumé",
    "Straße",
    "2024",
    "42",
    "v1.2",
    "東京都に住んでいます",
    "学习中文",
    "Rust言語",
    "Привет",
    "мир",
    "coffee",
    "cofactor",
    "code",
    "coder",
    "coding",
    "market",
    "marker",
    "Ἀθῆναι",
    "e-mail",
    "x86_64",
    "ǅemal",
    "ﬁne",
    "zebra",
    "quantum",
    "quark",
    "quartz",
];

/// `n` notes in a few folders, bodies of 20–200 words skewed towards the head of [`WORDS`].
pub fn corpus(n: usize, seed: u64) -> Vec<(String, String, String)> {
    let mut rng = Rng::new(seed);
    let word = |rng: &mut Rng| {
        // min of two draws skews towards frequent words
        let a = rng.below(WORDS.len());
        let b = rng.below(WORDS.len());
        WORDS[a.min(b)]
    };
    (0..n)
        .map(|i| {
            let folder = ["", "work/", "work/deep/", "home/"][rng.below(4)];
            let title: Vec<&str> = (0..rng.below(4)).map(|_| word(&mut rng)).collect();
            let len = 20 + rng.below(180);
            let body: Vec<&str> = (0..len).map(|_| word(&mut rng)).collect();
            (
                format!("{folder}n{i}.md"),
                title.join(" "),
                body.join(if i % 3 == 0 { ", " } else { " " }),
            )
        })
        .collect()
}

/// FTS5's own answer for `match_expr`: (row id, bm25) best first, ties by row id.
pub fn fts5_ranking(index: &Index, match_expr: &str) -> Vec<(i64, f64)> {
    let mut stmt = index
        .conn
        .prepare(
            "SELECT rowid, bm25(notes_fts, 10.0, 1.0) AS b FROM notes_fts
             WHERE notes_fts MATCH ?1 ORDER BY b, rowid",
        )
        .unwrap();
    let rows = stmt
        .query_map([match_expr], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}
