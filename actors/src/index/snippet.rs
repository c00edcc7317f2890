//! Snippets for the hits the in-memory ranker found, without FTS5's `snippet()`.
//!
//! The same kind of text FTS5 would show: a window of about [`WINDOW`] tokens of the note
//! around the query terms, each matched token wrapped in `<mark>`…`</mark>`, `…` where the
//! window cuts the text. The window is the one covering the most distinct query terms (the
//! earliest wins a tie), centred on the matches it holds. The text is the stored (segmented)
//! column text, tokenized with FTS5's own tokenizer so a match here is a match for FTS5.

use std::ops::ControlFlow;

use super::ranker::QueryTerm;
use super::tokenizer::Tokenizer;

/// Tokens shown; the FTS5 path asks `snippet()` for as many.
pub const WINDOW: usize = 24;
const OPEN: &str = "<mark>";
const CLOSE: &str = "</mark>";
const ELLIPSIS: &str = "…";

/// A token matching query terms: its index in the column and the terms (bit i = `terms[i]`).
#[derive(Clone, Copy)]
struct Hit {
    token: usize,
    terms: u128,
}

/// The tokens of one column, as far as they were needed.
struct Column<'t> {
    text: &'t str,
    /// Byte range of every token (u32: texts are under 2 GiB, FTS5 takes a C int).
    tokens: Vec<(u32, u32)>,
    /// Whether `tokens` holds every token of the text (tokenizing stops early once the best
    /// possible window is known).
    complete: bool,
    /// The tokens matching a term, in order.
    hits: Vec<Hit>,
}

/// The snippet of a note for `terms` (at most 128 of them), from its stored title and body:
/// from the body unless the title covers more of the terms.
pub fn snippet(
    tokenizer: &mut Tokenizer,
    terms: &[QueryTerm],
    title: &str,
    body: &str,
) -> rusqlite::Result<String> {
    let body = scan(tokenizer, terms, body)?;
    let (body_start, body_covered) = best_window(&body);
    if body_covered < distinct(terms).count_ones() {
        let title = scan(tokenizer, terms, title)?;
        let (title_start, title_covered) = best_window(&title);
        if title_covered > body_covered {
            return Ok(render(&title, title_start));
        }
    }
    Ok(render(&body, body_start))
}

/// The bits of the first occurrence of each term: a repeated term counts once.
fn distinct(terms: &[QueryTerm]) -> u128 {
    let mut bits = 0u128;
    for (i, term) in terms.iter().enumerate().take(128) {
        if !terms[..i].contains(term) {
            bits |= 1 << i;
        }
    }
    bits
}

/// Tokenize `text`, stopping once a window covering every term has been seen in full.
fn scan<'t>(
    tokenizer: &mut Tokenizer,
    terms: &[QueryTerm],
    text: &'t str,
) -> rusqlite::Result<Column<'t>> {
    let wanted = distinct(terms);
    let mut column = Column {
        text,
        tokens: Vec::new(),
        complete: true,
        hits: Vec::new(),
    };
    // The token index up to which to read once the best window is known.
    let mut stop_after: Option<usize> = None;
    tokenizer.tokenize(text, |token, range| {
        let index = column.tokens.len();
        if stop_after.is_some_and(|last| index > last) {
            column.complete = false;
            return ControlFlow::Break(());
        }
        column.tokens.push((range.start as u32, range.end as u32));
        let mut matched = 0u128;
        for (i, term) in terms.iter().enumerate().take(128) {
            if wanted & (1 << i) != 0 && term.matches(token) {
                matched |= 1 << i;
            }
        }
        if matched == 0 {
            return ControlFlow::Continue(());
        }
        column.hits.push(Hit {
            token: index,
            terms: matched,
        });
        if stop_after.is_none() {
            // The hits within one window ending here: if they cover everything, the window
            // starting at the first of them is the earliest that does.
            let mut covered = 0u128;
            let mut first = index;
            for hit in column.hits.iter().rev() {
                if hit.token + WINDOW <= index {
                    break;
                }
                covered |= hit.terms;
                first = hit.token;
            }
            if covered == wanted {
                // One token past the window tells whether the text goes on.
                stop_after = Some(first + WINDOW);
            }
        }
        ControlFlow::Continue(())
    })?;
    Ok(column)
}

/// The first token of the window to show and how many distinct terms it covers.
fn best_window(column: &Column<'_>) -> (usize, u32) {
    let mut best: Option<(usize, usize, u32)> = None;
    for (k, start) in column.hits.iter().enumerate() {
        let mut covered = 0u128;
        let mut last = start.token;
        for hit in column.hits[k..]
            .iter()
            .take_while(|h| h.token < start.token + WINDOW)
        {
            covered |= hit.terms;
            last = hit.token;
        }
        let count = covered.count_ones();
        if best.is_none_or(|(_, _, c)| count > c) {
            best = Some((start.token, last, count));
        }
    }
    let Some((first, last, count)) = best else {
        return (0, 0);
    };
    // Centre the matches in the window, as FTS5 does, without running past either end.
    let span = last + 1 - first;
    let mut start = first.saturating_sub((WINDOW - span.min(WINDOW)) / 2);
    if column.complete && start + WINDOW > column.tokens.len() {
        start = column.tokens.len().saturating_sub(WINDOW);
    }
    (start, count)
}

/// The window of `column` starting at token `start`, with marks and ellipses.
fn render(column: &Column<'_>, start: usize) -> String {
    let text = column.text;
    let tokens = &column.tokens;
    let end = (start + WINDOW).min(tokens.len());
    let byte = |offset: u32| offset as usize;
    let mut out = String::with_capacity(WINDOW * 12);
    let mut copied = match tokens.get(start) {
        Some(&(from, _)) if start > 0 => {
            out.push_str(ELLIPSIS);
            byte(from)
        }
        _ => 0,
    };
    let first_hit = column.hits.partition_point(|h| h.token < start);
    for hit in column.hits[first_hit..]
        .iter()
        .take_while(|h| h.token < end)
    {
        let (from, to) = tokens[hit.token];
        out.push_str(&text[copied..byte(from)]);
        out.push_str(OPEN);
        out.push_str(&text[byte(from)..byte(to)]);
        out.push_str(CLOSE);
        copied = byte(to);
    }
    if column.complete && end == tokens.len() {
        out.push_str(&text[copied..]);
    } else if let Some(&(_, to)) = end.checked_sub(1).and_then(|i| tokens.get(i)) {
        out.push_str(&text[copied..byte(to).max(copied)]);
        out.push_str(ELLIPSIS);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::fts_query::{segment_cjk, unsegment_cjk};
    use rusqlite::Connection;

    fn term(token: &str, prefix: bool) -> QueryTerm {
        QueryTerm {
            token: token.as_bytes().to_vec(),
            prefix,
        }
    }

    fn words(terms: &[&str]) -> Vec<QueryTerm> {
        terms
            .iter()
            .map(|t| match t.strip_suffix('*') {
                Some(prefix) => term(prefix, true),
                None => term(t, false),
            })
            .collect()
    }

    fn show(terms: &[&str], title: &str, body: &str) -> String {
        let conn = Connection::open_in_memory().unwrap();
        let mut tokenizer = Tokenizer::unicode61(&conn).unwrap();
        let raw = snippet(
            &mut tokenizer,
            &words(terms),
            &segment_cjk(title),
            &segment_cjk(body),
        )
        .unwrap();
        unsegment_cjk(&raw)
    }

    /// "w0 w1 … w{n-1}." with some words replaced.
    fn numbered(n: usize, replace: &[(usize, &str)]) -> String {
        let mut words: Vec<String> = (0..n).map(|i| format!("w{i}")).collect();
        for &(i, word) in replace {
            words[i] = word.to_string();
        }
        words.join(" ") + "."
    }

    #[test]
    fn matched_words_are_marked_as_written() {
        assert_eq!(
            show(&["fox", "muller"], "", "The quick brown fox met Herr MÜLLER, twice: Müller!"),
            "The quick brown <mark>fox</mark> met Herr <mark>MÜLLER</mark>, twice: <mark>Müller</mark>!"
        );
        assert_eq!(
            show(&["prog*"], "", "Programming is progress, not a program-me."),
            "<mark>Programming</mark> is <mark>progress</mark>, not a <mark>program</mark>-me."
        );
    }

    #[test]
    fn a_long_text_shows_a_window_with_ellipses() {
        let body = numbered(100, &[(50, "needle")]);
        let shown = show(&["needle"], "", &body);
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        let inner = shown.trim_matches('…');
        assert_eq!(inner.split(' ').count(), WINDOW, "{shown}");
        assert!(inner.contains("<mark>needle</mark>"));
        // The match sits in the middle of the window.
        let before = inner.split("<mark>").next().unwrap().split(' ').count();
        assert!((10..=14).contains(&before), "{shown}");
    }

    #[test]
    fn the_window_touches_the_ends_without_ellipses() {
        let body = format!("# Heading\n\n{}", numbered(100, &[(1, "early")]));
        let shown = show(&["early"], "", &body);
        assert!(
            shown.starts_with("# Heading\n\nw0 <mark>early</mark> w2"),
            "{shown}"
        );
        assert!(shown.ends_with('…'));
        let body = numbered(100, &[(98, "late")]);
        let shown = show(&["late"], "", &body);
        assert!(shown.starts_with('…'));
        assert!(shown.ends_with("<mark>late</mark> w99."), "{shown}");
    }

    #[test]
    fn the_window_covering_most_terms_wins_and_the_first_breaks_ties() {
        let body = numbered(
            200,
            &[(10, "alpha"), (100, "alpha"), (104, "beta"), (150, "beta")],
        );
        let shown = show(&["alpha", "beta"], "", &body);
        assert!(
            shown.contains("<mark>alpha</mark> w101 w102 w103 <mark>beta</mark>"),
            "{shown}"
        );
        let body = numbered(200, &[(30, "gamma"), (120, "gamma")]);
        let shown = show(&["gamma"], "", &body);
        assert!(shown.contains("w29 <mark>gamma</mark> w31"), "{shown}");
        // Repeating a term does not make it count twice.
        let body = numbered(
            200,
            &[(30, "gamma"), (31, "gamma"), (120, "gamma"), (121, "delta")],
        );
        let shown = show(&["gamma", "gamma", "delta"], "", &body);
        assert!(
            shown.contains("<mark>gamma</mark> <mark>delta</mark>"),
            "{shown}"
        );
    }

    #[test]
    fn the_title_is_shown_when_only_it_matches() {
        assert_eq!(
            show(&["kaffee"], "Kaffee", "A note about drinks."),
            "<mark>Kaffee</mark>"
        );
        assert_eq!(
            show(&["kaffee"], "Kaffee", "We had kaffee once."),
            "We had <mark>kaffee</mark> once."
        );
    }

    #[test]
    fn cjk_text_is_marked_per_character_and_unsegmented() {
        assert_eq!(
            show(&["東"], "", "東京都に住んでいます。Rust言語"),
            "<mark>東</mark>京都に住んでいます。Rust言語"
        );
        assert_eq!(
            show(&["rust"], "", "東京都に住んでいます。Rust言語"),
            "東京都に住んでいます。<mark>Rust</mark>言語"
        );
    }
}
