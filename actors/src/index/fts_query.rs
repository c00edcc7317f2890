//! Safe FTS5 query building and CJK segmentation for the note index.
//!
//! Notes are indexed with SQLite's `unicode61` tokenizer, which only splits
//! text at separators such as spaces and punctuation. Chinese and Japanese are
//! written without spaces, so `東京都に住んでいます` would be stored as one
//! single token and a search for `東京` could never find it. To make such text
//! searchable, [`segment_cjk`] is applied to everything before it is indexed:
//! it puts a space between adjacent CJK characters, and a zero-width space
//! between a CJK character and a letter or digit written right next to it
//! (`Rust言語`), so that every CJK character becomes its own token. Query terms receive the same
//! segmentation and a term that turns into several tokens is searched as an
//! FTS5 phrase; phrases require adjacent tokens, which makes a CJK term behave
//! like a substring search.
//!
//! [`build_match_query`] turns whatever a user typed into a `MATCH`
//! expression in which every term is an FTS5 string, so nothing the user types
//! can reach FTS5 as operator or column-filter syntax. Snippets produced by
//! FTS5 come from the segmented text; [`unsegment_cjk`] removes the inserted
//! separators again before a snippet is shown.

use std::borrow::Cow;
use std::fmt;

const MARK_OPEN: &str = "<mark>";
const MARK_CLOSE: &str = "</mark>";

/// How a character takes part in segmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Gets a token of its own.
    Cjk,
    /// A letter or digit of a script that is written with spaces.
    Word,
    /// Separators: whitespace, punctuation, symbols.
    Other,
}

fn is_cjk(c: char) -> bool {
    // Kana punctuation (゠, ・) and the spacing voiced marks (゛, ゜) are left
    // out: unicode61 already treats them as separators.
    matches!(
        c as u32,
        0x3005..=0x3007 // 々 〆 〇 are used inside Japanese words
            | 0x303B // 〻
            | 0x3041..=0x3096 // Hiragana
            | 0x309D..=0x309F // Hiragana iteration marks, ゟ
            | 0x30A1..=0x30FA // Katakana
            | 0x30FC..=0x30FF // ー and Katakana iteration marks
            | 0x31F0..=0x31FF // Katakana phonetic extensions
            | 0x3400..=0x4DBF // Han extension A
            | 0x4E00..=0x9FFF // Han unified ideographs
            | 0xF900..=0xFAFF // CJK compatibility ideographs
            | 0xFF66..=0xFF9D // Half-width Katakana including ｰ
            | 0x1AFF0..=0x1B16F // Kana extensions and supplements
            | 0x20000..=0x3FFFF // Han extensions B to I, compatibility supplement
    )
}

/// Marks that modify the preceding character. They are never separated from
/// it, otherwise a voiced kana or a kanji variant would be cut in two.
fn is_attached_mark(c: char) -> bool {
    matches!(
        c as u32,
        0x0300..=0x036F // combining diacritics (decomposed Latin, Cyrillic…)
            | 0x3099..=0x309A // combining kana voiced marks
            | 0xFE00..=0xFE0F // variation selectors
            | 0xFF9E..=0xFF9F // half-width voiced marks ﾞ ﾟ
            | 0xE0100..=0xE01EF // ideographic variation selectors
    )
}

fn is_private_use(c: char) -> bool {
    matches!(
        c as u32,
        0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x10_0000..=0x10_FFFD
    )
}

/// Whether unicode61 (default categories `L* N* Co`) may keep `c` inside a
/// token. This is a superset of unicode61's token characters: FTS5 tokenizes
/// the quoted strings we emit again, so a character we keep but unicode61
/// drops only splits a phrase further, while the opposite would lose matches.
fn is_token_char(c: char) -> bool {
    c.is_alphanumeric() || is_private_use(c)
}

fn class(c: char) -> Class {
    if is_cjk(c) {
        Class::Cjk
    } else if is_token_char(c) {
        Class::Word
    } else {
        Class::Other
    }
}

/// Separates a CJK character from a letter or digit written right next to
/// it. Authors often type real spaces there (`Rust と Go`, `使用 Rust 编写`),
/// so an inserted ASCII space could not be told apart from theirs when
/// un-segmenting; a zero-width space is a separator for unicode61, is
/// invisible if the indexed text is ever shown as is, and is not typed by hand.
const BOUNDARY: char = '\u{200B}';

/// What [`segment_cjk`] puts between two adjacent characters, if anything.
/// A CJK character next to a letter or digit must be split off too, or
/// `Rust言語` would be indexed as the token `rust言` and neither `Rust` nor
/// `言語` would find it.
fn separator_between(before: Class, after: Class) -> Option<char> {
    match (before, after) {
        (Class::Cjk, Class::Cjk) => Some(' '),
        (Class::Cjk, Class::Word) | (Class::Word, Class::Cjk) => Some(BOUNDARY),
        _ => None,
    }
}

/// Insert one ASCII space between each pair of adjacent CJK characters, so
/// that `unicode61` indexes every CJK character as a token of its own. A CJK
/// character directly next to a non-CJK letter or digit (`Rust言語`, `2024年`)
/// is separated from it by a zero-width space (U+200B) instead, which keeps
/// both words findable while letting [`unsegment_cjk`] tell inserted
/// separators from spaces the author typed around Latin words.
///
/// CJK here means Han ideographs (including extensions and compatibility
/// ideographs), Hiragana and Katakana (including half-width forms and `ー`);
/// Hangul is not included because Korean is written with spaces. Combining
/// marks and variation selectors stay attached to the character before them.
///
/// Returns `Cow::Borrowed` without allocating when nothing needs inserting,
/// which is the case for all text without CJK.
pub fn segment_cjk(text: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let mut prev = Class::Other;
    for (i, c) in text.char_indices() {
        if is_attached_mark(c) {
            if let Some(out) = out.as_mut() {
                out.push(c);
            }
            continue;
        }
        let cur = class(c);
        if let Some(separator) = separator_between(prev, cur) {
            out.get_or_insert_with(|| {
                let mut started = String::with_capacity(text.len() + text.len() / 2);
                started.push_str(&text[..i]);
                started
            })
            .push(separator);
        }
        if let Some(out) = out.as_mut() {
            out.push(c);
        }
        prev = cur;
    }
    out.map_or(Cow::Borrowed(text), Cow::Owned)
}

fn strip_marker(s: &str) -> Option<&str> {
    s.strip_prefix(MARK_OPEN)
        .or_else(|| s.strip_prefix(MARK_CLOSE))
}

fn next_non_marker(mut s: &str) -> Option<char> {
    while let Some(rest) = strip_marker(s) {
        s = rest;
    }
    s.chars().next()
}

/// Undo [`segment_cjk`] on a snippet that may contain the markers `<mark>`
/// and `</mark>` between characters: a single space is removed when the
/// nearest non-marker characters on both sides are CJK characters, and a
/// zero-width space when they are a CJK character and a non-CJK letter or
/// digit. Marker tags stay where they are; runs of several spaces and spaces
/// between Latin words are kept.
///
/// A space the author typed between two CJK characters cannot be told apart
/// from an inserted one and is removed as well.
pub fn unsegment_cjk(snippet: &str) -> String {
    let mut out = String::with_capacity(snippet.len());
    let mut prev = Class::Other;
    let mut rest = snippet;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = strip_marker(rest) {
            out.push_str(&rest[..rest.len() - after.len()]);
            rest = after;
            continue;
        }
        rest = &rest[c.len_utf8()..];
        if c == ' ' || c == BOUNDARY {
            let inserted = next_non_marker(rest).is_some_and(|next| {
                !is_attached_mark(next) && separator_between(prev, class(next)) == Some(c)
            });
            if !inserted {
                out.push(c);
                prev = Class::Other;
            }
            continue;
        }
        out.push(c);
        if !is_attached_mark(c) {
            prev = class(c);
        }
    }
    out
}

/// Why a user's search string cannot be turned into a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// The query has no searchable term: it is empty, or consists only of
    /// punctuation and symbols.
    Empty,
    /// Every term is an exclusion (`-word`), which would have to list every
    /// note not containing those words.
    OnlyExclusions,
    /// The query has more than `max` characters.
    TooLong {
        /// The limit that was exceeded, in characters.
        max: usize,
    },
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Empty => f.write_str(
                "The search query contains no words to search for; \
                 include at least one word made of letters or digits.",
            ),
            QueryError::OnlyExclusions => f.write_str(
                "The search query only excludes words (terms starting with '-'); \
                 add at least one word the notes must contain, e.g. `budget -draft`.",
            ),
            QueryError::TooLong { max } => write!(
                f,
                "The search query is longer than {max} characters; \
                 shorten it to a few distinctive words."
            ),
        }
    }
}

impl std::error::Error for QueryError {}

/// One searchable item of the user's query.
#[derive(Debug)]
struct Term {
    /// Tokens separated by single spaces, already CJK-segmented.
    tokens: String,
    prefix: bool,
    excluded: bool,
}

#[derive(Debug)]
enum Element {
    Term(Term),
    Or,
}

/// Split `raw` the way unicode61 would and segment CJK like [`segment_cjk`],
/// but with plain spaces throughout so the emitted query stays readable;
/// FTS5 tokenizes both separators alike. Empty when `raw` has no token chars.
fn tokens_of(raw: &str) -> String {
    let mut tokens = String::with_capacity(raw.len() + raw.len() / 2);
    let mut prev = Class::Other;
    for c in raw.chars() {
        if prev != Class::Other && is_attached_mark(c) {
            tokens.push(c);
            continue;
        }
        let cur = class(c);
        if cur == Class::Other {
            prev = cur;
            continue;
        }
        let starts_token = prev == Class::Other || separator_between(prev, cur).is_some();
        if starts_token && !tokens.is_empty() {
            tokens.push(' ');
        }
        tokens.push(c);
        prev = cur;
    }
    tokens
}

/// A position in the user's query; slices are taken from the original string
/// so the lexer copies nothing but the resulting tokens.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn eat(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.pos += expected.len_utf8();
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = &self.text[self.pos..];
        let len = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }
}

/// Read the user's syntax. Terms without tokens are dropped here, and runs
/// of `OR` collapse into one, so that grouping only sees meaningful elements.
fn lex(query: &str) -> Vec<Element> {
    let mut elements = Vec::new();
    let mut cursor = Cursor {
        text: query,
        pos: 0,
    };
    loop {
        cursor.take_while(char::is_whitespace);
        if cursor.peek().is_none() {
            break;
        }
        // A dash only excludes when it is glued to what follows; on its own
        // it is punctuation, which carries no token.
        let excluded = cursor.eat('-') && cursor.peek().is_some_and(|c| !c.is_whitespace());
        let (raw, prefix) = if cursor.eat('"') {
            let raw = cursor.take_while(|c| c != '"');
            cursor.eat('"');
            let prefix = !cursor.take_while(|c| c == '*').is_empty();
            (raw, prefix)
        } else {
            let raw = cursor.take_while(|c| !c.is_whitespace() && c != '"');
            if raw == "OR" && !excluded {
                if !matches!(elements.last(), Some(Element::Or)) {
                    elements.push(Element::Or);
                }
                continue;
            }
            (raw, raw.ends_with('*'))
        };
        let tokens = tokens_of(raw);
        if !tokens.is_empty() {
            elements.push(Element::Term(Term {
                tokens,
                prefix,
                excluded,
            }));
        }
    }
    elements
}

fn is_positive(element: Option<&Element>) -> bool {
    matches!(element, Some(Element::Term(term)) if !term.excluded)
}

fn push_term(out: &mut String, term: &Term) {
    out.push('"');
    for c in term.tokens.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    if term.prefix {
        out.push_str(" *");
    }
}

fn push_any_of(out: &mut String, terms: &[Term]) {
    for (i, term) in terms.iter().enumerate() {
        if i > 0 {
            out.push_str(" OR ");
        }
        push_term(out, term);
    }
}

/// Translate a user's search string into a safe FTS5 `MATCH` expression for
/// a table tokenized with `unicode61` whose text went through [`segment_cjk`].
///
/// Accepted syntax: plain words (all must match), `"quoted phrases"`
/// (an unterminated quote runs to the end), prefixes `word*` and
/// `"phrase"*`, exclusions `-word` and `-"phrase"`, and the uppercase word
/// `OR` between two included items, binding tighter than the implicit AND
/// (`a b OR c` means a AND (b OR c)). An `OR` without an included item on
/// both sides is searched as the word "or". Everything else is literal text:
/// FTS5 operators, column filters and punctuation never become FTS5 syntax,
/// because every term is emitted as an FTS5 string (a prefix as `"term" *`).
///
/// Terms are split where unicode61 would split them and CJK-segmented; a
/// word that yields several tokens (`e-mail`, `東京`) becomes one phrase.
/// Exclusions are appended as `NOT (x OR y)` after the included part.
///
/// # Errors
///
/// [`QueryError::TooLong`] when `user_query` has more than `max_chars`
/// characters, [`QueryError::Empty`] when it has no searchable term, and
/// [`QueryError::OnlyExclusions`] when every term is an exclusion.
pub fn build_match_query(user_query: &str, max_chars: usize) -> Result<String, QueryError> {
    // nth() stops at the limit instead of counting a huge input to the end.
    if user_query.chars().nth(max_chars).is_some() {
        return Err(QueryError::TooLong { max: max_chars });
    }
    let elements = lex(user_query);

    let mut groups: Vec<Vec<Term>> = Vec::new();
    let mut excluded: Vec<Term> = Vec::new();
    let mut join_previous = false;
    let mut previous_positive = false;
    let mut elements = elements.into_iter().peekable();
    while let Some(element) = elements.next() {
        let term = match element {
            Element::Term(term) => term,
            Element::Or if previous_positive && is_positive(elements.peek()) => {
                join_previous = true;
                continue;
            }
            Element::Or => Term {
                tokens: "OR".to_owned(),
                prefix: false,
                excluded: false,
            },
        };
        previous_positive = !term.excluded;
        if term.excluded {
            excluded.push(term);
        } else if let (true, Some(group)) = (std::mem::take(&mut join_previous), groups.last_mut())
        {
            group.push(term);
        } else {
            groups.push(vec![term]);
        }
    }

    if groups.is_empty() {
        return Err(if excluded.is_empty() {
            QueryError::Empty
        } else {
            QueryError::OnlyExclusions
        });
    }

    let mut out = String::new();
    let wrap = !excluded.is_empty() && groups.len() > 1;
    if wrap {
        out.push('(');
    }
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            out.push_str(" AND ");
        }
        if group.len() > 1 {
            out.push('(');
            push_any_of(&mut out, group);
            out.push(')');
        } else {
            push_any_of(&mut out, group);
        }
    }
    if wrap {
        out.push(')');
    }
    if !excluded.is_empty() {
        out.push_str(" NOT (");
        push_any_of(&mut out, &excluded);
        out.push(')');
    }
    Ok(out)
}

/// One term of a match expression that is a plain conjunction of terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainTerm<'a> {
    /// The text between the quotes: one token as [`build_match_query`] split it (unicode61 may
    /// still split it further or drop it, which the caller checks with the real tokenizer).
    pub text: &'a str,
    /// Written `"text" *`: matches every token starting with `text`.
    pub prefix: bool,
}

/// The terms of `match_expr` when it is exactly what [`build_match_query`] writes for words
/// and prefixes that must all match (`"a" AND "b" * AND ...`), so it can be answered without
/// FTS5; `None` for every other shape (OR, exclusions, phrases of several tokens).
pub fn plain_terms(match_expr: &str) -> Option<Vec<PlainTerm<'_>>> {
    let mut terms = Vec::new();
    let mut rest = match_expr;
    loop {
        let (text, after) = rest.strip_prefix('"')?.split_once('"')?;
        // A space separates the tokens of a phrase; a doubled quote would escape one.
        if text.is_empty() || text.contains(' ') {
            return None;
        }
        let (prefix, after) = match after.strip_prefix(" *") {
            Some(after) => (true, after),
            None => (false, after),
        };
        terms.push(PlainTerm { text, prefix });
        if after.is_empty() {
            return Some(terms);
        }
        rest = after.strip_prefix(" AND ")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    const MAX: usize = 200;

    /// Notes in an in-memory index; each is known by a label that is not
    /// itself indexed, so a label can never be what a query matched.
    struct Notes {
        conn: Connection,
        labels: Vec<&'static str>,
    }

    fn index(docs: &[(&'static str, &str)]) -> Notes {
        index_titled(docs.iter().map(|&(label, body)| (label, "", body)))
    }

    fn index_titled<'a>(docs: impl IntoIterator<Item = (&'static str, &'a str, &'a str)>) -> Notes {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5(title, body, \
             tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')",
        )
        .unwrap();
        let mut labels = Vec::new();
        for (label, title, body) in docs {
            conn.execute(
                "INSERT INTO t (rowid, title, body) VALUES (?1, ?2, ?3)",
                (
                    i64::try_from(labels.len() + 1).unwrap(),
                    segment_cjk(title).as_ref(),
                    segment_cjk(body).as_ref(),
                ),
            )
            .unwrap();
            labels.push(label);
        }
        Notes { conn, labels }
    }

    impl Notes {
        fn run(&self, fts_query: &str) -> rusqlite::Result<Vec<&'static str>> {
            let mut stmt = self
                .conn
                .prepare("SELECT rowid FROM t WHERE t MATCH ?1 ORDER BY rowid")?;
            let rowids = stmt
                .query_map([fts_query], |row| row.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            Ok(rowids
                .into_iter()
                .map(|id| self.labels[usize::try_from(id - 1).unwrap()])
                .collect())
        }

        /// Labels of the notes found for what a user typed.
        fn search(&self, user_query: &str) -> Vec<&'static str> {
            let fts_query = build_match_query(user_query, MAX)
                .unwrap_or_else(|e| panic!("{user_query:?} was rejected: {e}"));
            self.run(&fts_query)
                .unwrap_or_else(|e| panic!("{user_query:?} -> {fts_query:?} failed: {e}"))
        }

        fn snippet(&self, user_query: &str) -> String {
            let fts_query = build_match_query(user_query, MAX).unwrap();
            self.conn
                .query_row(
                    "SELECT snippet(t, -1, '<mark>', '</mark>', '…', 10) FROM t WHERE t MATCH ?1",
                    [fts_query],
                    |row| row.get(0),
                )
                .unwrap()
        }

        /// A query either is rejected with a QueryError or runs in SQLite.
        fn assert_runs_or_is_rejected(&self, input: &str) {
            if let Ok(fts_query) = build_match_query(input, MAX) {
                if let Err(e) = self.run(&fts_query) {
                    panic!("{input:?} -> {fts_query:?} failed: {e}");
                }
            }
        }
    }

    const NONE: [&str; 0] = [];

    #[test]
    fn text_without_adjacent_cjk_is_borrowed() {
        for text in [
            "",
            "plain ASCII text, with punctuation!",
            "Müller wohnt in der Straße",
            "Привет, мир",
            "한국어는 띄어쓰기를 합니다",
            "東",
            "a 東 b",
            "東、京。",
        ] {
            assert!(
                matches!(segment_cjk(text), Cow::Borrowed(_)),
                "{text:?} was copied"
            );
        }
    }

    #[test]
    fn adjacent_cjk_characters_are_separated_by_one_space() {
        assert_eq!(
            segment_cjk("東京都に住んでいます"),
            "東 京 都 に 住 ん で い ま す"
        );
        assert_eq!(segment_cjk("コーヒー"), "コ ー ヒ ー");
        assert_eq!(segment_cjk("ｺｰﾋｰ"), "ｺ ｰ ﾋ ｰ");
        assert_eq!(segment_cjk("我喜欢学习中文"), "我 喜 欢 学 习 中 文");
        assert_eq!(segment_cjk("人々"), "人 々");
        assert_eq!(segment_cjk("𠮷野家"), "𠮷 野 家");
        assert_eq!(segment_cjk("東京、大阪"), "東 京、大 阪");
    }

    #[test]
    fn cjk_is_separated_from_adjacent_letters_and_digits() {
        assert_eq!(segment_cjk("Rust言語で書く"), "Rust\u{200B}言 語 で 書 く");
        assert_eq!(segment_cjk("2024年"), "2024\u{200B}年");
        assert_eq!(segment_cjk("漢字를"), "漢 字\u{200B}를");
        assert_eq!(segment_cjk("(Rust)言語"), "(Rust)言 語");
        assert_eq!(segment_cjk("Rust と Go"), "Rust と Go");
    }

    #[test]
    fn combining_marks_stay_with_their_base_character() {
        assert_eq!(segment_cjk("か\u{3099}き"), "か\u{3099} き");
        assert_eq!(segment_cjk("ｶﾞｷ"), "ｶﾞ ｷ");
        assert_eq!(segment_cjk("葛\u{E0100}飾"), "葛\u{E0100} 飾");
        assert_eq!(segment_cjk("e\u{301}東"), "e\u{301}\u{200B}東");
    }

    #[test]
    fn unsegment_restores_segmented_text() {
        for text in [
            "東京都に住んでいます",
            "Rust言語で書かれたツール",
            "我喜欢学习中文。你呢？",
            "ｶﾞｷ、か\u{3099}き、葛\u{E0100}飾",
            "使用 Rust 编写，Rust と Go",
            "2024年の計画: Rust and Go",
            "plain words stay apart",
        ] {
            assert_eq!(unsegment_cjk(&segment_cjk(text)), text);
        }
    }

    #[test]
    fn unsegment_looks_through_markers_and_keeps_them() {
        assert_eq!(
            unsegment_cjk("東 京 都 に <mark>住 ん で</mark> い ま す…"),
            "東京都に<mark>住んで</mark>います…"
        );
        assert_eq!(
            unsegment_cjk("<mark>Rust</mark>\u{200B}言 語 and <mark>Go</mark> code"),
            "<mark>Rust</mark>言語 and <mark>Go</mark> code"
        );
        assert_eq!(unsegment_cjk("東  京"), "東  京");
        assert_eq!(
            unsegment_cjk("言 語 <mark>and</mark>"),
            "言語 <mark>and</mark>"
        );
        assert_eq!(unsegment_cjk("東 <mark></mark>"), "東 <mark></mark>");
        assert_eq!(unsegment_cjk("한국 어"), "한국 어");
    }

    #[test]
    fn a_space_typed_between_cjk_characters_is_not_preserved() {
        assert_eq!(unsegment_cjk(&segment_cjk("東京 大阪")), "東京大阪");
    }

    #[test]
    fn fts5_snippet_of_japanese_note_is_unsegmented() {
        let notes = index(&[("メモ", "東京都に住んでいます。Rust and Go は好きです")]);
        let raw = notes.snippet("住んで");
        assert_eq!(raw, "東 京 都 に <mark>住 ん で</mark> い ま す…");
        assert_eq!(unsegment_cjk(&raw), "東京都に<mark>住んで</mark>います…");

        let raw = notes.snippet("Rust");
        let shown = unsegment_cjk(&raw);
        assert!(shown.contains("<mark>Rust</mark> and Go は好き"), "{shown}");
        let plain = shown.replace("<mark>", "").replace("</mark>", "");
        let plain = plain.trim_matches('…');
        assert!(
            "東京都に住んでいます。Rust and Go は好きです".contains(plain),
            "{shown}"
        );
    }

    #[test]
    fn fts5_snippet_of_latin_glued_to_cjk_is_unsegmented() {
        let notes = index(&[("メモ", "Rust言語で書いた")]);
        let raw = notes.snippet("言語");
        assert_eq!(raw, "Rust\u{200B}<mark>言 語</mark> で 書 い た");
        assert_eq!(unsegment_cjk(&raw), "Rust<mark>言語</mark>で書いた");
    }

    #[test]
    fn words_in_the_title_are_found() {
        let notes = index_titled([
            ("titled", "東京メモ", "nothing else"),
            ("untitled", "", "メ"),
        ]);
        assert_eq!(notes.search("メモ"), ["titled"]);
        assert_eq!(notes.search("東京 nothing"), ["titled"]);
    }

    #[test]
    fn german_matches_without_diacritics_and_case() {
        let notes = index(&[
            ("muller", "Herr Muller kommt"),
            ("upper", "HERR MÜLLER KOMMT"),
            ("strasse", "Die Straße ist lang"),
            ("other", "Herr Meier kommt"),
        ]);
        assert_eq!(notes.search("Müller"), ["muller", "upper"]);
        assert_eq!(notes.search("muller"), ["muller", "upper"]);
        assert_eq!(notes.search("straße"), ["strasse"]);
        assert_eq!(notes.search("STRAßE"), ["strasse"]);
    }

    #[test]
    fn russian_matches_case_insensitively_and_by_prefix() {
        let notes = index(&[
            ("hello", "Привет, мир"),
            ("greeting", "Приветствие гостей"),
            ("other", "Пока"),
        ]);
        assert_eq!(notes.search("привет"), ["hello"]);
        assert_eq!(notes.search("ПРИВЕТ"), ["hello"]);
        assert_eq!(notes.search("прив*"), ["hello", "greeting"]);
        assert_eq!(notes.search("мир"), ["hello"]);
    }

    #[test]
    fn japanese_terms_match_as_substrings_with_adjacency() {
        let notes = index(&[
            ("tokyo-to", "東京都に住んでいます"),
            ("kana", "とうきょうにすんでいます"),
            ("tokyo", "東京に行きます"),
            ("kyoto", "京都に行きます"),
        ]);
        assert_eq!(notes.search("東京"), ["tokyo-to", "tokyo"]);
        assert_eq!(notes.search("住んで"), ["tokyo-to"]);
        assert_eq!(notes.search("すんで"), ["kana"]);
        assert_eq!(notes.search("京都"), ["tokyo-to", "kyoto"]);
        assert_eq!(notes.search("京都に"), ["tokyo-to", "kyoto"]);
        assert_eq!(notes.search("東京に"), ["tokyo"]);
        assert!(notes.search("都京").is_empty());
    }

    #[test]
    fn chinese_terms_match_as_substrings() {
        let notes = index(&[("study", "我喜欢学习中文"), ("work", "我在北京工作")]);
        assert_eq!(notes.search("学习"), ["study"]);
        assert_eq!(notes.search("中文"), ["study"]);
        assert_eq!(notes.search("北京"), ["work"]);
        assert_eq!(notes.search("我"), ["study", "work"]);
        assert!(notes.search("文学").is_empty());
    }

    #[test]
    fn mixed_latin_and_cjk_match_either_part() {
        let notes = index(&[("rust", "Rust言語で書かれたツール"), ("go", "Go言語")]);
        assert_eq!(notes.search("Rust言語"), ["rust"]);
        assert_eq!(notes.search("rust"), ["rust"]);
        assert_eq!(notes.search("言語"), ["rust", "go"]);
        assert_eq!(notes.search("ツール"), ["rust"]);
        assert_eq!(notes.search("Ru*"), ["rust"]);
    }

    #[test]
    fn quoted_phrase_requires_adjacent_words_in_order() {
        let notes = index(&[
            ("fox", "the quick brown fox"),
            ("reversed", "brown and quick"),
        ]);
        assert_eq!(notes.search("\"quick brown\""), ["fox"]);
        assert_eq!(notes.search("quick brown"), ["fox", "reversed"]);
        assert_eq!(notes.search("\"brown quick\""), NONE);
    }

    #[test]
    fn trailing_star_searches_by_prefix() {
        let notes = index(&[
            ("prog", "programming in Rust"),
            ("proj", "project plan"),
            ("other", "a problem"),
        ]);
        assert_eq!(notes.search("prog*"), ["prog"]);
        assert_eq!(notes.search("pr*"), ["prog", "proj", "other"]);
        assert_eq!(notes.search("\"programming in R\"*"), ["prog"]);
        assert!(notes.search("prog").is_empty());
    }

    #[test]
    fn dash_excludes_words_and_phrases() {
        let notes = index(&[
            ("lazy", "the quick fox and the lazy dog"),
            ("sleepy", "the quick fox and a sleepy dog"),
            ("alone", "a quick fox"),
        ]);
        assert_eq!(notes.search("fox -lazy"), ["sleepy", "alone"]);
        assert_eq!(notes.search("fox -\"lazy dog\""), ["sleepy", "alone"]);
        assert_eq!(notes.search("fox -lazy -sleepy"), ["alone"]);
        assert_eq!(notes.search("quick fox -dog"), ["alone"]);
    }

    #[test]
    fn or_binds_tighter_than_the_implicit_and() {
        let notes = index(&[
            ("ab", "apple banana"),
            ("ac", "apple cherry"),
            ("bc", "banana cherry"),
            ("a", "apple"),
        ]);
        assert_eq!(notes.search("apple banana OR cherry"), ["ab", "ac"]);
        assert_eq!(
            notes.search("banana OR cherry OR apple"),
            ["ab", "ac", "bc", "a"]
        );
        assert_eq!(notes.search("banana OR cherry -apple"), ["bc"]);
        assert_eq!(notes.search("apple or cherry"), NONE);
    }

    #[test]
    fn or_without_items_on_both_sides_is_a_word() {
        let notes = index(&[("state", "Portland OR"), ("other", "Portland ME")]);
        assert_eq!(notes.search("OR"), ["state"]);
        assert_eq!(notes.search("Portland OR"), ["state"]);
        assert_eq!(build_match_query("OR a", MAX).unwrap(), r#""OR" AND "a""#);
        assert_eq!(
            build_match_query("a OR -b", MAX).unwrap(),
            r#"("a" AND "OR") NOT ("b")"#
        );
    }

    #[test]
    fn queries_are_built_from_fts5_strings_only() {
        let cases = [
            ("hello", r#""hello""#),
            ("a b OR c", r#""a" AND ("b" OR "c")"#),
            ("a OR OR b", r#"("a" OR "b")"#),
            ("e-mail", r#""e mail""#),
            ("東京*", r#""東 京" *"#),
            ("Rust言語", r#""Rust 言 語""#),
            (
                "fox -lazy -\"lazy dog\"",
                r#""fox" NOT ("lazy" OR "lazy dog")"#,
            ),
            ("title:x", r#""title x""#),
            ("NEAR(a b)", r#""NEAR a" AND "b""#),
            ("a AND", r#""a" AND "AND""#),
            ("^x", r#""x""#),
            ("\"open phrase", r#""open phrase""#),
            ("foo\"bar baz\"", r#""foo" AND "bar baz""#),
            ("foo-*", r#""foo" *"#),
        ];
        for (input, expected) in cases {
            assert_eq!(
                build_match_query(input, MAX).as_deref(),
                Ok(expected),
                "{input:?}"
            );
        }
    }

    #[test]
    fn plain_conjunctions_are_recognised_and_nothing_else() {
        let plain = |input: &str| {
            let expr = build_match_query(input, MAX).unwrap();
            plain_terms(&expr).map(|terms| {
                terms
                    .into_iter()
                    .map(|t| format!("{}{}", t.text, if t.prefix { "*" } else { "" }))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(plain("hello").unwrap(), ["hello"]);
        assert_eq!(plain("Rust prog* 東").unwrap(), ["Rust", "prog*", "東"]);
        assert_eq!(plain("\"quoted\" OR").unwrap(), ["quoted", "OR"]);
        assert_eq!(plain("a a").unwrap(), ["a", "a"]);
        for input in [
            "a OR b",
            "a -b",
            "e-mail",
            "東京",
            "\"two words\"",
            "\"a b\"*",
        ] {
            assert_eq!(plain(input), None, "{input:?}");
        }
        for expr in [
            "",
            "\"a\" AND",
            "\"a\" OR \"b\"",
            "\"a\"\"\"",
            "\"\"",
            "(\"a\")",
        ] {
            assert_eq!(plain_terms(expr), None, "{expr:?}");
        }
    }

    #[test]
    fn operator_words_and_column_names_are_searched_literally() {
        let notes = index(&[
            ("secret", "nothing here"),
            ("literal", "the title: secret NEAR a b"),
        ]);
        assert_eq!(notes.search("title:secret"), ["literal"]);
        assert_eq!(notes.search("NEAR(a b)"), ["literal"]);
        assert_eq!(notes.search("secret NOT"), NONE);
    }

    #[test]
    fn queries_without_searchable_terms_are_rejected() {
        for input in [
            "",
            "   ",
            "!!! ???",
            "-",
            "*",
            "\"",
            "\"\"",
            "- * ^ ( )",
            "-\"\"",
        ] {
            assert_eq!(
                build_match_query(input, MAX),
                Err(QueryError::Empty),
                "{input:?}"
            );
        }
        for input in ["-foo", "-foo -\"bar baz\"", "-OR"] {
            assert_eq!(
                build_match_query(input, MAX),
                Err(QueryError::OnlyExclusions),
                "{input:?}"
            );
        }
    }

    #[test]
    fn length_limit_counts_characters() {
        assert_eq!(
            build_match_query("abcdef", 5),
            Err(QueryError::TooLong { max: 5 })
        );
        assert!(build_match_query("abcde", 5).is_ok());
        assert!(build_match_query("東京東京東", 5).is_ok());
        assert_eq!(
            build_match_query("東京東京東京", 5),
            Err(QueryError::TooLong { max: 5 })
        );
    }

    #[test]
    fn errors_explain_what_to_change() {
        assert!(QueryError::Empty.to_string().contains("letters or digits"));
        assert!(QueryError::OnlyExclusions
            .to_string()
            .contains("add at least one word"));
        assert!(QueryError::TooLong { max: 50 }
            .to_string()
            .contains("50 characters"));
    }

    #[test]
    fn hostile_input_never_causes_an_sqlite_error() {
        let notes = index(&[("doc", "a b x title near and not")]);
        for input in [
            "title:x",
            "body : x",
            "{title body}: x",
            "NEAR(a b)",
            "NEAR(a b, 2)",
            "a NEAR/3 b",
            "a AND",
            "AND",
            "NOT a",
            "a NOT",
            "OR",
            "a OR",
            "OR OR OR",
            "\"",
            "\"\"\"",
            "\"a",
            "a\"",
            "a \"b",
            "-\"a",
            "*",
            "a*b*",
            "\"a\"*",
            "^x",
            "x^",
            ")",
            "(",
            "(a",
            "-",
            "--a b",
            "+a",
            "a:b:c",
            "'a'",
            "\\",
            "%_",
            "\0",
            "a\0b",
            "\u{301}",
            "\u{345}",
            "Ⓐ",
            "🦀 rust",
            "\u{E000}",
            "東\u{3099}",
        ] {
            notes.assert_runs_or_is_rejected(input);
        }
    }

    #[test]
    fn every_short_combination_of_syntax_characters_is_safe() {
        let notes = index(&[("doc", "a or 東 京")]);
        let alphabet = [
            'a', '"', '-', '*', '(', ')', ':', '^', '{', '}', ' ', '+', 'O', 'R', '東',
        ];
        let mut input = String::new();
        for &c1 in &alphabet {
            for &c2 in &alphabet {
                for &c3 in &alphabet {
                    for &c4 in &alphabet {
                        input.clear();
                        input.extend([c1, c2, c3, c4]);
                        notes.assert_runs_or_is_rejected(&input);
                    }
                }
            }
        }
    }
}
