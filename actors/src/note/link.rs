//! A link from one note to another, as written in a note body.

use std::ops::Range;

/// A `[[wikilink]]` or `![[embed]]` found in a note body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WikiLink {
    /// The note linked to, trimmed and exactly as written (a trailing `.md` is kept).
    pub target: String,
    /// The heading or block reference after `#`, if any.
    pub heading: Option<String>,
    /// The display text after `|`, if any.
    pub alias: Option<String>,
    /// `true` for `![[...]]`, which shows the target inline instead of linking to it.
    pub embed: bool,
    /// Where the link is written: the byte range of the whole `[[...]]` (with the `!` of an
    /// embed) in the text that was scanned, so that the link can be rewritten in place.
    pub span: Range<usize>,
}
