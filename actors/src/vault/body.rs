//! Scanning a note body for what the index keeps: `[[wikilinks]]` and `![[embeds]]`, inline
//! `#tags`, and the first level-one heading (the title when the frontmatter has none).
//!
//! Links, tags and headings must not be picked up from code. Which parts of a body are prose is
//! decided in one place, [`Prose`], by a CommonMark parser (`pulldown-cmark`): the inline text
//! of paragraphs, headings, list items and table cells, less code spans, inline HTML (comments
//! included) and math; fenced and indented code blocks and HTML blocks hold none. Links and
//! tags are then recognised on the source text of the prose rather than on the parser's text
//! events, so that escapes (`\[[`, a table's `\|`) are seen as written and every link knows its
//! exact byte range in the body. The parser's own wikilink option is not used: it accepts links
//! broken across lines, keeps a table's escaping backslash in the target and turns the alias
//! into markup. Pure text processing with no I/O, linear in the body's length.

use std::borrow::Cow;
use std::ops::Range;

use pulldown_cmark::{
    DefaultBrokenLinkCallback, Event, HeadingLevel, OffsetIter, Options, Parser, Tag, TagEnd,
};

use super::text::push_unique;
use crate::note::WikiLink;

/// What the index keeps from a note body, as [`scan`] finds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyScan {
    /// As [`extract_links`] returns them.
    pub links: Vec<WikiLink>,
    /// As [`extract_inline_tags`] returns them.
    pub tags: Vec<String>,
    /// As [`first_heading`] returns it.
    pub heading: Option<String>,
}

/// Scans a note body once for its links, tags and first heading: one parse where the three
/// functions below take one each.
pub fn scan(body: &str) -> BodyScan {
    let source = parser_text(body);
    let mut prose = Prose::new(body, &source);
    let mut scanned = BodyScan::default();
    for segment in prose.by_ref() {
        collect_links(body, segment, &mut scanned.links);
        collect_tags(body, segment, &mut scanned.tags);
    }
    scanned.heading = prose.heading.map(str::to_owned);
    scanned
}

/// Returns the wikilinks in a note body, in order of appearance, each with the byte range it
/// takes in `body`.
///
/// Recognises `[[target]]`, `[[target|alias]]`, `[[target#heading]]`,
/// `[[target#heading|alias]]` and the embed forms `![[...]]`. Links to a
/// heading of the same note (`[[#heading]]`) and empty links are skipped.
/// Links in code, HTML or math (see [`Prose`]), escaped links (`\[[`) and
/// links broken across lines are not links. In `[[a [[b]]` and `[[[b]]` the
/// link is `b`. Inside tables the pipe is written `\|`, so a backslash
/// directly before the `|` is not part of the target.
pub fn extract_links(body: &str) -> Vec<WikiLink> {
    let source = parser_text(body);
    let mut links = Vec::new();
    for segment in Prose::new(body, &source) {
        collect_links(body, segment, &mut links);
    }
    links
}

/// Returns the inline `#tags` of a note body: lower-cased, without the `#`,
/// de-duplicated, in order of first appearance.
///
/// A tag's `#` is at the start of a line or follows whitespace or one of
/// `([{,;`; its characters are Unicode letters and digits (with the combining
/// marks some scripts need), `_`, `-` and `/`; it must contain a character
/// that is not a digit, and a trailing `/` or `-` is dropped. Heading markers,
/// URL fragments (`page#section`, `[text](#section)`), wikilink headings
/// (`[[note#section]]`), character references (`&#123;`) and anything inside
/// code, HTML or math are not tags, nor is a `#` directly after code, HTML or math.
pub fn extract_inline_tags(body: &str) -> Vec<String> {
    let source = parser_text(body);
    let mut tags = Vec::new();
    for segment in Prose::new(body, &source) {
        collect_tags(body, segment, &mut tags);
    }
    tags
}

/// Returns the text of the first level-one ATX heading (`# Title`) outside
/// code: trimmed, with a closing run of `#` removed. Headings with no text,
/// headings inside block quotes or after a list marker and setext headings are
/// not considered.
pub fn first_heading(body: &str) -> Option<String> {
    parse(&parser_text(body))
        .into_offset_iter()
        .find_map(|(event, range)| heading_text(body, &event, range.start))
        .map(str::to_owned)
}

/// The title text if `event`, starting at `start`, opens a level-one ATX heading with text.
fn heading_text<'a>(body: &'a str, event: &Event<'_>, start: usize) -> Option<&'a str> {
    match event {
        Event::Start(Tag::Heading {
            level: HeadingLevel::H1,
            ..
        }) => level_one_heading(line_around(body, start)),
        _ => None,
    }
}

/// The parser, with the extensions that decide what is prose: tables (a cell's code span ends
/// with the cell, as it renders) and math (`$...$` and `$$...$$` are not prose). The frontmatter
/// is split off before, so metadata blocks stay off: a `---` block in the body is markdown.
fn parse(body: &str) -> Parser<'_> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_MATH;
    Parser::new_ext(body, options)
}

/// The text the parser reads: `body` with each lone `\r` made a `\n`. Both end a line, and
/// the bytes keep their offsets; but pulldown-cmark 0.13 drops the paragraph after an indented
/// code block and a blank line ended by a lone `\r`, text that would then be neither prose nor
/// code.
fn parser_text(body: &str) -> Cow<'_, str> {
    let bytes = body.as_bytes();
    let lone = |i: usize| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n');
    if !(0..bytes.len()).any(lone) {
        return Cow::Borrowed(body);
    }
    let mut chars = body.chars().peekable();
    let mut text = String::with_capacity(body.len());
    while let Some(c) = chars.next() {
        text.push(if c == '\r' && chars.peek() != Some(&'\n') {
            '\n'
        } else {
            c
        });
    }
    Cow::Owned(text)
}

/// The whole line (without its line ending) that holds the byte at `pos`.
fn line_around(body: &str, pos: usize) -> &str {
    let start = body[..pos].rfind(LINE_ENDS).map_or(0, |at| at + 1);
    let end = body[pos..]
        .find(LINE_ENDS)
        .map_or(body.len(), |at| pos + at);
    &body[start..end]
}

/// What ends a line in CommonMark: `\n`, `\r\n`, and a lone `\r` too.
const LINE_ENDS: [char; 2] = ['\n', '\r'];

/// A run of prose within one line of the body.
#[derive(Debug, Clone, Copy)]
struct Segment<'a> {
    text: &'a str,
    /// Where `text` starts in the body.
    start: usize,
}

/// Iterator over the prose [`Segment`]s of a markdown body, in order.
///
/// Prose is what the parser reports as inline text (in paragraphs, headings, list items, block
/// quotes and table cells), from the first such event to the last of a run, so that markup,
/// escapes and link destinations between them are kept as written; a run ends at a block
/// boundary and at a code span, inline HTML (comments too) or math, which are not prose. Code
/// blocks (fenced, closed by a fence of the same character at least as long or running to the
/// end, and indented by four columns, in list items and block quotes too), HTML blocks
/// (multi-line comments among them) and link reference definitions hold none. Runs are cut at
/// line ends; the extractors only ever look at these pieces.
struct Prose<'a, 'p> {
    body: &'a str,
    /// The parser's events over [`parser_text`] of `body`, whose offsets are `body`'s.
    events: OffsetIter<'p, DefaultBrokenLinkCallback>,
    /// Where the next segment starts.
    pos: usize,
    /// End of the run of prose being cut into segments.
    end: usize,
    /// The run of prose the parser is in, gathered from its inline events.
    run: Option<Range<usize>>,
    /// Whether the parser is inside a code or HTML block, whose text is not prose.
    in_code: bool,
    /// The first level-one heading's text, once the parser has passed it.
    heading: Option<&'a str>,
}

impl<'a, 'p> Prose<'a, 'p> {
    /// `source` is [`parser_text`] of `body`.
    fn new(body: &'a str, source: &'p str) -> Self {
        Prose {
            body,
            events: parse(source).into_offset_iter(),
            pos: 0,
            end: 0,
            run: None,
            in_code: false,
            heading: None,
        }
    }

    /// Finds the next run of prose and sets `pos..end` to it; `false` when there is none.
    fn next_run(&mut self) -> bool {
        while let Some((event, range)) = self.events.next() {
            if self.heading.is_none() {
                self.heading = heading_text(self.body, &event, range.start);
            }
            match event {
                Event::Start(Tag::CodeBlock(_) | Tag::HtmlBlock) => self.in_code = true,
                Event::End(TagEnd::CodeBlock | TagEnd::HtmlBlock) => self.in_code = false,
                _ if self.in_code => {}
                ref inline if is_inline_text(inline) => {
                    self.extend_run(inline, range);
                    continue;
                }
                _ => {}
            }
            // Anything else (a block boundary, code, HTML or math) ends the run.
            if self.take_run() {
                return true;
            }
        }
        self.take_run()
    }

    /// Adds an inline event to the run. The events of an element (emphasis, a link) cover
    /// the whole element, code spans inside it included: its start counts only as where it
    /// opens, and its end only lengthens a run already started after the last code span.
    fn extend_run(&mut self, event: &Event<'_>, range: Range<usize>) {
        let range = match event {
            Event::Start(_) => range.start..range.start,
            Event::End(_) => match &self.run {
                Some(run) => run.start..range.end,
                None => return,
            },
            _ => range,
        };
        self.run = Some(match self.run.take() {
            Some(run) => run.start..run.end.max(range.end),
            None => range,
        });
    }

    fn take_run(&mut self) -> bool {
        match self.run.take() {
            Some(run) => {
                self.pos = run.start.max(self.pos);
                self.end = run.end.max(self.pos);
                true
            }
            None => false,
        }
    }
}

/// Whether the event is inline text or markup around it, as opposed to code, HTML and math
/// (never prose) and blocks.
fn is_inline_text(event: &Event<'_>) -> bool {
    match event {
        Event::Text(_)
        | Event::SoftBreak
        | Event::HardBreak
        | Event::TaskListMarker(_)
        | Event::FootnoteReference(_) => true,
        Event::Start(tag) => matches!(
            tag,
            Tag::Emphasis
                | Tag::Strong
                | Tag::Strikethrough
                | Tag::Superscript
                | Tag::Subscript
                | Tag::Link { .. }
                | Tag::Image { .. }
        ),
        Event::End(tag) => matches!(
            tag,
            TagEnd::Emphasis
                | TagEnd::Strong
                | TagEnd::Strikethrough
                | TagEnd::Superscript
                | TagEnd::Subscript
                | TagEnd::Link
                | TagEnd::Image
        ),
        _ => false,
    }
}

impl<'a> Iterator for Prose<'a, '_> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        loop {
            if self.pos >= self.end {
                if !self.next_run() {
                    return None;
                }
                continue;
            }
            let start = self.pos;
            // Search only up to `end`, so that many code spans on one long line keep the scan
            // linear. The `\n` of a `\r\n` then makes an empty segment, which is skipped.
            let text_end = match self.body[start..self.end].find(LINE_ENDS) {
                Some(offset) => {
                    self.pos = start + offset + 1;
                    start + offset
                }
                None => {
                    self.pos = self.end;
                    self.end
                }
            };
            if text_end > start {
                return Some(Segment {
                    text: &self.body[start..text_end],
                    start,
                });
            }
        }
    }
}

/// Whether the character at `pos` is preceded by an odd number of backslashes.
fn is_escaped(bytes: &[u8], pos: usize) -> bool {
    bytes[..pos]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count()
        % 2
        == 1
}

fn collect_links(body: &str, segment: Segment<'_>, links: &mut Vec<WikiLink>) {
    let text = segment.text;
    // Escapes are looked up in the whole body: the backslash may be just before the segment.
    let bytes = body.as_bytes();
    let mut from = 0;
    // Working from each `]]` back to the nearest `[[` before it visits every
    // byte at most twice, however the brackets are nested or unbalanced.
    while let Some(offset) = text[from..].find("]]") {
        let close = from + offset;
        if let Some(open_offset) = text[from..close].rfind("[[") {
            let open = from + open_offset;
            let at = segment.start + open;
            if !is_escaped(bytes, at) {
                let embed = at > 0 && bytes[at - 1] == b'!' && !is_escaped(bytes, at - 1);
                let span = at - usize::from(embed)..segment.start + close + 2;
                if let Some(link) = parse_link(&text[open + 2..close], embed, span) {
                    links.push(link);
                }
            }
        }
        from = close + 2;
    }
}

fn parse_link(content: &str, embed: bool, span: Range<usize>) -> Option<WikiLink> {
    let (destination, alias) = match content.split_once('|') {
        Some((destination, alias)) => (
            destination.strip_suffix('\\').unwrap_or(destination),
            Some(alias),
        ),
        None => (content, None),
    };
    let (target, heading) = match destination.split_once('#') {
        Some((target, heading)) => (target, Some(heading)),
        None => (destination, None),
    };
    let target = target.trim();
    if target.is_empty() {
        return None;
    }
    Some(WikiLink {
        target: target.to_owned(),
        heading: non_empty(heading),
        alias: non_empty(alias),
        embed,
        span,
    })
}

fn non_empty(part: Option<&str>) -> Option<String> {
    part.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn collect_tags(body: &str, segment: Segment<'_>, tags: &mut Vec<String>) {
    let text = segment.text;
    let bytes = text.as_bytes();
    // What precedes the segment decides, as within it: the start of the body or a
    // line, a space, an opening bracket; not the end of code, HTML or math, nor a
    // backslash escaping the `#`.
    let mut boundary = body[..segment.start]
        .chars()
        .next_back()
        .is_none_or(opens_tag);
    // Once a search for a closing `]]` or `)` fails, later ones on this
    // segment would too; remembering that keeps the scan linear.
    let mut wikilinks_closed = true;
    let mut destinations_closed = true;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' if boundary => {
                let name_start = i + 1;
                let name_end = name_start + tag_len(&text[name_start..]);
                let name = text[name_start..name_end].trim_end_matches(['/', '-']);
                if name.chars().any(|c| !c.is_numeric()) {
                    push_unique(tags, name.to_lowercase());
                }
                i = name_end;
                boundary = false;
            }
            // `[[note#section]]` and `[[#section]]` point at headings, not tags.
            b'[' if wikilinks_closed && bytes.get(i + 1) == Some(&b'[') => {
                match text[i + 2..].find("]]") {
                    Some(offset) => {
                        i += offset + 4;
                        boundary = false;
                    }
                    None => wikilinks_closed = false,
                }
            }
            // The destination of `[text](#section)` is a URL; its fragment is not a tag.
            b']' if destinations_closed && bytes.get(i + 1) == Some(&b'(') => {
                match text[i + 2..].find(')') {
                    Some(offset) => {
                        i += offset + 3;
                        boundary = false;
                    }
                    None => destinations_closed = false,
                }
            }
            _ => {
                let c = text[i..].chars().next().unwrap_or(' ');
                boundary = opens_tag(c);
                i += c.len_utf8();
            }
        }
    }
}

/// Whether a `#` right after `c` may start a tag.
fn opens_tag(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | '[' | '{' | ',' | ';')
}

/// Byte length of the run of tag characters at the start of `s`.
fn tag_len(s: &str) -> usize {
    s.char_indices()
        .find(|&(_, c)| !is_tag_char(c))
        .map_or(s.len(), |(i, _)| i)
}

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '/') || is_word_mark(c)
}

/// Combining marks and joiners that are part of words but are neither
/// alphabetic nor numeric in Unicode (viramas, nuktas, Thai tone marks, kana
/// voicing marks, accents written as separate code points). The standard
/// library has no general-category lookup, so the ranges are listed; without
/// them `#हिन्दी` would be cut short at its virama.
fn is_word_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{0483}'..='\u{0489}'
            | '\u{0610}'..='\u{061A}'
            | '\u{064B}'..='\u{065F}'
            | '\u{0670}'
            | '\u{06D6}'..='\u{06ED}'
            | '\u{0900}'..='\u{0963}'
            | '\u{0971}'..='\u{0DF3}'
            | '\u{0E31}'..='\u{0E3A}'
            | '\u{0E47}'..='\u{0E4E}'
            | '\u{0EB1}'..='\u{0EBC}'
            | '\u{0EC8}'..='\u{0ECE}'
            | '\u{0F71}'..='\u{0F84}'
            | '\u{0F8D}'..='\u{0FBC}'
            | '\u{102B}'..='\u{103E}'
            | '\u{1056}'..='\u{109D}'
            | '\u{17B4}'..='\u{17D3}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{200C}'..='\u{200D}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{3099}'..='\u{309A}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}
/// The text of `line` if it is a level-one ATX heading with some text.
fn level_one_heading(line: &str) -> Option<&str> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = line[indent..].strip_prefix('#')?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let text = rest.trim();
    // A closing run of '#' needs a space before it: "# C#" is about C#.
    let unclosed = text.trim_end_matches('#');
    let text = if unclosed.is_empty() || unclosed.ends_with([' ', '\t']) {
        unclosed.trim_end()
    } else {
        text
    };
    (!text.is_empty()).then_some(text)
}
#[cfg(test)]
mod tests {
    use super::*;

    /// A link as the tests expect it; spans are checked by their own tests.
    fn link(target: &str, heading: Option<&str>, alias: Option<&str>, embed: bool) -> WikiLink {
        WikiLink {
            target: target.to_owned(),
            heading: heading.map(str::to_owned),
            alias: alias.map(str::to_owned),
            embed,
            span: 0..0,
        }
    }

    /// The links of `body` with their spans cleared.
    fn links_of(body: &str) -> Vec<WikiLink> {
        extract_links(body)
            .into_iter()
            .map(|l| WikiLink { span: 0..0, ..l })
            .collect()
    }

    fn targets(body: &str) -> Vec<String> {
        extract_links(body).into_iter().map(|l| l.target).collect()
    }

    // --- extract_links ---

    #[test]
    fn plain_link_is_found() {
        assert_eq!(
            links_of("See [[Note]]."),
            vec![link("Note", None, None, false)]
        );
    }

    #[test]
    fn link_alias_follows_pipe() {
        assert_eq!(links_of("[[a|b]]"), vec![link("a", None, Some("b"), false)]);
    }

    #[test]
    fn link_heading_follows_hash() {
        assert_eq!(
            links_of("[[a#Part 2]]"),
            vec![link("a", Some("Part 2"), None, false)]
        );
        assert_eq!(
            links_of("[[a#Part 2|see part]]"),
            vec![link("a", Some("Part 2"), Some("see part"), false)]
        );
    }

    #[test]
    fn embed_with_heading_and_alias() {
        assert_eq!(
            links_of("![[x#h|y]]"),
            vec![link("x", Some("h"), Some("y"), true)]
        );
        assert_eq!(
            links_of("![[image.png]]"),
            vec![link("image.png", None, None, true)]
        );
    }

    #[test]
    fn same_note_heading_link_is_skipped() {
        assert!(links_of("[[#Heading]] and [[ #x|y]]").is_empty());
    }

    #[test]
    fn empty_link_is_skipped() {
        assert!(links_of("[[]] [[ ]] [[|alias]]").is_empty());
    }

    #[test]
    fn link_parts_are_trimmed_and_md_extension_kept() {
        assert_eq!(
            links_of("[[  folder/Note.md # Sec | Alias ]]"),
            vec![link("folder/Note.md", Some("Sec"), Some("Alias"), false)]
        );
        assert_eq!(links_of("[[a#|]]"), vec![link("a", None, None, false)]);
    }

    #[test]
    fn links_are_returned_in_order_with_duplicates() {
        assert_eq!(targets("[[b]] then [[a]] then [[b]]"), ["b", "a", "b"]);
    }

    #[test]
    fn escaped_link_is_not_a_link() {
        assert!(links_of(r"\[[not a link]]").is_empty());
        assert_eq!(targets(r"\\[[real]]"), ["real"]);
    }

    #[test]
    fn escaped_bang_makes_plain_link() {
        assert_eq!(links_of(r"\![[x]]"), vec![link("x", None, None, false)]);
    }

    #[test]
    fn innermost_opening_brackets_start_the_link() {
        assert_eq!(targets("[[a [[b]]"), ["b"]);
        assert_eq!(targets("[[[b]]"), ["b"]);
        assert_eq!(targets(r"\[[[b]]"), ["b"]);
    }

    #[test]
    fn table_escaped_pipe_separates_alias() {
        assert_eq!(
            links_of(r"| [[Note\|shown]] | x |"),
            vec![link("Note", None, Some("shown"), false)]
        );
    }

    #[test]
    fn link_cannot_span_lines() {
        assert!(links_of("[[broken\nlink]]").is_empty());
        assert!(links_of("[[broken\r\nlink]]").is_empty());
    }

    #[test]
    fn a_lone_carriage_return_ends_a_line() {
        assert!(extract_links("[[broken\rlink]]").is_empty());
        assert_eq!(targets("`a\r> [[quoted]]`"), ["quoted"]);
        assert_eq!(first_heading("x\r# Title\rtext"), Some("Title".to_owned()));
    }

    #[test]
    fn links_are_found_with_crlf_line_endings() {
        assert_eq!(
            targets("[[a]]\r\n```\r\n[[hidden]]\r\n```\r\n[[b]]\r\n"),
            ["a", "b"]
        );
    }

    #[test]
    fn link_inside_inline_code_is_ignored() {
        assert_eq!(targets("`[[code]]` [[real]]"), ["real"]);
    }

    #[test]
    fn double_backtick_span_may_contain_a_single_backtick() {
        assert_eq!(targets("``a ` [[hidden]]`` [[real]]"), ["real"]);
    }

    #[test]
    fn code_span_closes_only_on_equal_length_run() {
        assert_eq!(targets("`` [[a]] ` [[b]] ``` [[c]] `` [[d]]"), ["d"]);
        assert_eq!(targets("`` [[visible]] `"), ["visible"]);
    }

    #[test]
    fn escaped_backtick_does_not_open_code_span() {
        assert_eq!(targets(r"\`[[a]]`"), ["a"]);
        assert_eq!(targets(r"\``[[a]]`"), Vec::<String>::new());
    }

    #[test]
    fn link_cannot_cross_a_code_span() {
        assert!(links_of("[[a `b` c]]").is_empty());
    }

    #[test]
    fn code_span_continues_across_lines_of_a_paragraph() {
        assert_eq!(targets("start `code\n[[hidden]] end` [[after]]"), ["after"]);
    }

    #[test]
    fn blank_line_ends_an_unclosed_code_span() {
        assert_eq!(targets("a ` b\n\n[[x]] ` c"), ["x"]);
    }

    #[test]
    fn heading_and_list_item_end_an_unclosed_code_span() {
        assert_eq!(targets("a ` b\n# [[x]] `"), ["x"]);
        assert_eq!(targets("- a ` b\n- [[x]] `"), ["x"]);
    }

    #[test]
    fn link_inside_backtick_fence_is_ignored() {
        assert_eq!(
            targets("[[a]]\n```rust\n[[hidden]]\n```\n[[b]]"),
            ["a", "b"]
        );
    }

    #[test]
    fn link_inside_tilde_fence_is_ignored() {
        assert_eq!(targets("~~~\n[[hidden]]\n~~~\n[[b]]"), ["b"]);
    }

    #[test]
    fn fence_closes_only_with_same_char_and_enough_length() {
        let body = "````\n```\n~~~~\n[[hidden]]\n````\n[[b]]";
        assert_eq!(targets(body), ["b"]);
        assert_eq!(targets("~~~\n```\n[[hidden]]\n~~~~~ \n[[b]]"), ["b"]);
    }

    #[test]
    fn closing_fence_cannot_have_text_after_it() {
        assert_eq!(
            targets("```\n``` not a close\n[[hidden]]\n```\n[[b]]"),
            ["b"]
        );
    }

    #[test]
    fn unclosed_fence_runs_to_end_of_document() {
        assert_eq!(targets("[[a]]\n```\n[[hidden]]\n\n[[also hidden]]"), ["a"]);
    }

    #[test]
    fn backticks_in_info_string_make_inline_code_not_a_fence() {
        assert_eq!(targets("```[[hidden]]```\n[[b]]"), ["b"]);
    }

    #[test]
    fn fence_interrupts_a_paragraph() {
        assert_eq!(targets("text\n```\n[[hidden]]\n```\n[[b]]"), ["b"]);
    }

    #[test]
    fn fences_inside_callouts_and_lists_are_code() {
        assert_eq!(
            targets("> [!note]\n> ```\n> [[hidden]]\n> ```\n> [[b]]"),
            ["b"]
        );
        assert_eq!(
            targets("- item\n    ```\n    [[hidden]]\n    ```\n- [[b]]"),
            ["b"]
        );
    }

    // --- scan ---

    #[test]
    fn scan_gives_what_the_three_functions_give() {
        let body =
            "intro #t1\n# Title [[a]]\n\n```\n[[x]] #x\n# No\n```\n- ![[b|c]] #T1 #t2\n# Later";
        let scanned = scan(body);
        assert_eq!(scanned.links, extract_links(body));
        assert_eq!(scanned.tags, ["t1", "t2"]);
        assert_eq!(scanned.heading.as_deref(), Some("Title [[a]]"));
        assert_eq!(scanned.tags, extract_inline_tags(body));
        assert_eq!(scanned.heading, first_heading(body));
        assert_eq!(scan("    # code\n\n> # quoted").heading, None);
    }

    // --- spans ---

    #[test]
    fn each_link_reports_its_exact_source_range() {
        let body = "intro [[a]] and ![[b#h|c]]\r\n- [[d|e]]";
        let found: Vec<&str> = extract_links(body)
            .iter()
            .map(|l| &body[l.span.clone()])
            .collect();
        assert_eq!(found, ["[[a]]", "![[b#h|c]]", "[[d|e]]"]);
        assert_eq!(extract_links(body)[0].span, 6..11);
    }

    #[test]
    fn span_of_an_unusual_link_covers_it_as_written() {
        let body = "> | [[  Note \\| shown ]] |\n\n`x` \\![[plain]] [[a [[b]] é[[c]]";
        let found: Vec<&str> = extract_links(body)
            .iter()
            .map(|l| &body[l.span.clone()])
            .collect();
        assert_eq!(
            found,
            ["[[  Note \\| shown ]]", "[[plain]]", "[[b]]", "[[c]]"]
        );
    }

    #[test]
    fn spans_follow_code_html_and_math_skipped_before_them() {
        let body = "```\n[[x]]\n```\n<!-- [[y]] -->\n\n$[[z]]$ `[[w]]` [[real]]";
        let links = extract_links(body);
        assert_eq!(links.len(), 1);
        assert_eq!(&body[links[0].span.clone()], "[[real]]");
        assert_eq!(links[0].span.end, body.len());
    }

    // --- code, HTML and math forms ---

    #[test]
    fn fence_with_info_string_hides_links_and_tags() {
        let body = "```rust title=\"x\"\n[[a]] #a\n```\n~~~ {.python}\n[[b]] #b\n~~~\n[[c]] #c";
        assert_eq!(targets(body), ["c"]);
        assert_eq!(extract_inline_tags(body), ["c"]);
    }

    #[test]
    fn unclosed_tilde_fence_hides_the_rest() {
        assert_eq!(targets("[[a]]\n~~~\n[[b]]\n\n#tag"), ["a"]);
        assert!(extract_inline_tags("~~~~ x\n#tag\n~~~").is_empty());
    }

    #[test]
    fn indented_code_block_hides_links_and_tags() {
        let body =
            "text\n\n    [[four]] #four\n\n\t[[tab]] #tab\n\n  \t[[mixed]]\n[[shown]] #shown";
        assert_eq!(targets(body), ["shown"]);
        assert_eq!(extract_inline_tags(body), ["shown"]);
    }

    #[test]
    fn indented_code_block_runs_over_blank_lines() {
        assert_eq!(targets("    [[a]]\n\n    [[b]]\n[[c]]"), ["c"]);
    }

    #[test]
    fn indented_line_continuing_a_paragraph_is_prose() {
        // An indented code block cannot interrupt a paragraph.
        assert_eq!(targets("text\n    [[lazy]]"), ["lazy"]);
    }

    #[test]
    fn indented_code_inside_list_items_is_code() {
        let body = "- item\n\n      [[code]] #code\n\n- [[shown]]\n\n1. one\n\n\t\t[[code2]]\n";
        assert_eq!(targets(body), ["shown"]);
        assert!(extract_inline_tags(body).is_empty());
        // Indented by the item's own width only, it is the item's paragraph.
        assert_eq!(targets("- item\n\n  [[para]]"), ["para"]);
    }

    #[test]
    fn indented_code_inside_a_block_quote_is_code() {
        assert_eq!(targets(">     [[code]]\n> [[shown]]"), ["shown"]);
    }

    #[test]
    fn multi_backtick_code_spans_hide_links_and_tags() {
        let body = "a ```[[x]] `` #x``` b ``[[y]]`` #tag ` [[z]] #z `";
        assert!(targets(body).is_empty());
        assert_eq!(extract_inline_tags(body), ["tag"]);
    }

    #[test]
    fn inline_html_comment_hides_links_and_tags() {
        let body = "a <!-- [[x]] #x --> [[y]] #y";
        assert_eq!(targets(body), ["y"]);
        assert_eq!(extract_inline_tags(body), ["y"]);
    }

    #[test]
    fn multi_line_comment_hides_links_and_tags() {
        let inline = "text <!-- start\n[[x]] #x\n    [[y]]\nend --> [[shown]]";
        assert_eq!(targets(inline), ["shown"]);
        assert!(extract_inline_tags(inline).is_empty());
        let block = "<!--\n[[x]]\n\n#x\n\n-->\n[[shown]] #shown";
        assert_eq!(targets(block), ["shown"]);
        assert_eq!(extract_inline_tags(block), ["shown"]);
        assert_eq!(
            first_heading("<!--\n# Draft\n-->\n# Real"),
            Some("Real".to_owned())
        );
    }

    #[test]
    fn comment_cut_by_a_new_block_is_not_a_comment() {
        // As in CommonMark: a block quote ends the paragraph, so the `<!--` opens nothing.
        assert_eq!(targets("text <!-- start\n> [[y]] -->"), ["y"]);
    }

    #[test]
    fn unclosed_comment_hides_the_rest_of_the_body() {
        assert_eq!(targets("[[a]]\n\n<!--\n[[b]]\n\n[[c]]"), ["a"]);
    }

    #[test]
    fn html_block_hides_links_and_tags_until_a_blank_line() {
        let body = "<div class=\"x\">\n[[x]] #x\n</div>\n\n[[shown]] #shown";
        assert_eq!(targets(body), ["shown"]);
        assert_eq!(extract_inline_tags(body), ["shown"]);
        assert_eq!(targets("<pre>\n[[x]]\n\n[[y]]\n</pre>\n[[z]]"), ["z"]);
    }

    #[test]
    fn text_between_inline_html_tags_is_prose() {
        let body = "<span title=\"[[x]] #x\">[[shown]] #shown</span>";
        assert_eq!(targets(body), ["shown"]);
        assert_eq!(extract_inline_tags(body), ["shown"]);
        // Directly after a tag, `#` is not at a word start.
        assert!(extract_inline_tags("<b>#no</b>").is_empty());
    }

    #[test]
    fn inline_and_display_math_hide_links_and_tags() {
        let body = "$[[x]] #x$ and $$\n[[y]]\n#y\n$$ then [[shown]] #shown";
        assert_eq!(targets(body), ["shown"]);
        assert_eq!(extract_inline_tags(body), ["shown"]);
        assert!(targets("$$[[x]]$$").is_empty());
    }

    #[test]
    fn dollar_amounts_are_not_math() {
        let body = "costs $5 and $10 for [[shop]] #money";
        assert_eq!(targets(body), ["shop"]);
        assert_eq!(extract_inline_tags(body), ["money"]);
    }

    #[test]
    fn links_in_headings_lists_quotes_and_tables_are_found() {
        let body = "# Title [[h]]\n\n- [[l1]]\n  - [[l2]]\n1. [[l3]]\n- [ ] [[task]]\n\n\
                    > [[q1]]\n> > [[q2]]\n> [!note] [[callout]]\n\n\
                    | a | b |\n|---|---|\n| [[t1]] | [[t2\\|x]] |\n\n*[[em]]* **[[strong]]** ~~[[del]]~~";
        assert_eq!(
            targets(body),
            [
                "h", "l1", "l2", "l3", "task", "q1", "q2", "callout", "t1", "t2", "em", "strong",
                "del"
            ]
        );
    }

    #[test]
    fn code_span_inside_emphasis_or_link_text_hides_its_link() {
        let body = "~~a `[[x]] #x` [[y]]~~ *`[[z]]`* [`[[w]]` #v](http://u) #t";
        assert_eq!(targets(body), ["y"]);
        // A tag in a link's text is a tag.
        assert_eq!(extract_inline_tags(body), ["v", "t"]);
    }

    #[test]
    fn code_span_in_a_table_cell_hides_its_link() {
        assert_eq!(targets("| a | b |\n|---|---|\n| `[[x]]` | [[y]] |"), ["y"]);
    }

    #[test]
    fn links_in_markdown_link_text_and_reference_links_are_found() {
        assert_eq!(
            targets("[see [[a]]](http://x) [[b]]\n\n[b]: http://y"),
            ["a", "b"]
        );
    }

    #[test]
    fn link_reference_definition_holds_no_links_or_tags() {
        let body = "[ref]: http://x/#frag \"[[a]] #t\"\n\n[[b]] #u";
        assert_eq!(targets(body), ["b"]);
        assert_eq!(extract_inline_tags(body), ["u"]);
    }

    #[test]
    fn escaped_brackets_and_hash_are_not_links_or_tags() {
        assert!(targets(r"\[[a]] \[\[b]] [\[c]]").is_empty());
        assert!(extract_inline_tags(r"\#a (\#b)").is_empty());
    }

    #[test]
    fn tags_heading_markers_and_url_fragments_are_told_apart() {
        let body =
            "# Heading #inhead\n## Sub\n#notheading\nsee http://x/#frag and <http://y/#auto>\n\
                    [t](http://z/page#anchor) #real";
        assert_eq!(extract_inline_tags(body), ["inhead", "notheading", "real"]);
    }

    #[test]
    fn crlf_body_with_every_form() {
        let body = "# Title\r\n\r\n```\r\n[[f]] #f\r\n```\r\n\r\n    [[i]] #i\r\n\r\n<!--\r\n[[c]]\r\n-->\r\n\
                    $$\r\n[[m]]\r\n$$\r\n[[a]] #a\r\n> [[b]]\r\n";
        assert_eq!(targets(body), ["a", "b"]);
        assert_eq!(extract_inline_tags(body), ["a"]);
        assert_eq!(first_heading(body), Some("Title".to_owned()));
        let spans: Vec<&str> = extract_links(body)
            .iter()
            .map(|l| &body[l.span.clone()])
            .collect();
        assert_eq!(spans, ["[[a]]", "[[b]]"]);
    }

    #[test]
    fn heading_inside_indented_code_or_list_is_not_the_title() {
        assert_eq!(
            first_heading("para\n\n    # Code\n- # Item\n# Real"),
            Some("Real".to_owned())
        );
    }

    // --- extract_inline_tags ---

    #[test]
    fn inline_tags_are_found() {
        assert_eq!(
            extract_inline_tags("#start middle #mid end"),
            ["start", "mid"]
        );
    }

    #[test]
    fn tags_follow_listed_punctuation() {
        assert_eq!(
            extract_inline_tags("(#a) [#b] {#c} x,#d x;#e"),
            ["a", "b", "c", "d", "e"]
        );
    }

    #[test]
    fn heading_is_not_a_tag() {
        assert!(extract_inline_tags("# Title\n## Sub\n###### Deep\n##notatag").is_empty());
    }

    #[test]
    fn tag_in_heading_text_is_a_tag() {
        assert_eq!(extract_inline_tags("# Title #topic"), ["topic"]);
    }

    #[test]
    fn url_fragment_is_not_a_tag() {
        assert!(extract_inline_tags("page#section https://x.org/#/route see C# x").is_empty());
        assert!(extract_inline_tags("[jump](#section) [[note#part]] [[#part]]").is_empty());
    }

    #[test]
    fn character_reference_is_not_a_tag() {
        assert!(extract_inline_tags("&#123; &#x1F600;").is_empty());
    }

    #[test]
    fn escaped_hash_is_not_a_tag() {
        assert!(extract_inline_tags(r"\#nope").is_empty());
    }

    #[test]
    fn numeric_tag_is_not_a_tag() {
        assert_eq!(
            extract_inline_tags("issue #123 and #12/ #12- but #y2024 #2024/notes #1-2"),
            ["y2024", "2024/notes", "1-2"]
        );
    }

    #[test]
    fn nested_tags_keep_slashes_and_drop_trailing_ones() {
        assert_eq!(
            extract_inline_tags("#a/b/c #d/ #e- #f-/"),
            ["a/b/c", "d", "e", "f"]
        );
    }

    #[test]
    fn tag_ends_at_first_non_tag_char() {
        assert_eq!(
            extract_inline_tags("#one. #two's #three#four #snake_case-x!"),
            ["one", "two", "three", "snake_case-x"]
        );
    }

    #[test]
    fn unicode_tags_are_found() {
        assert_eq!(
            extract_inline_tags("#über #日本語 #тег #Ünïcode"),
            ["über", "日本語", "тег", "ünïcode"]
        );
    }

    #[test]
    fn tags_keep_combining_marks() {
        assert_eq!(
            extract_inline_tags("#हिन्दी #ไม้ #e\u{301}te"),
            ["हिन्दी", "ไม้", "e\u{301}te"]
        );
    }

    #[test]
    fn tags_are_lowercased_deduplicated_in_first_seen_order() {
        assert_eq!(extract_inline_tags("#B #a #b #A #c"), ["b", "a", "c"]);
    }

    #[test]
    fn tag_inside_inline_code_is_ignored() {
        assert_eq!(
            extract_inline_tags("`#code` #real ``#x ` #y`` #z"),
            ["real", "z"]
        );
    }

    #[test]
    fn tag_right_after_code_span_is_ignored() {
        assert!(extract_inline_tags("`x`#notatag").is_empty());
        assert_eq!(extract_inline_tags("`x` #tag"), ["tag"]);
    }

    #[test]
    fn tag_inside_fenced_block_is_ignored() {
        assert_eq!(
            extract_inline_tags("```\n#hidden\n```\n~~~~\n#hidden\n~~~~\n#shown"),
            ["shown"]
        );
    }

    #[test]
    fn tags_are_found_with_crlf_line_endings() {
        assert_eq!(extract_inline_tags("#a\r\n#b\r\n"), ["a", "b"]);
    }

    // --- first_heading ---

    #[test]
    fn first_level_one_heading_is_found() {
        assert_eq!(
            first_heading("intro\n## Sub\n# Title\n# Second"),
            Some("Title".to_owned())
        );
    }

    #[test]
    fn heading_closing_hashes_are_removed() {
        assert_eq!(first_heading("#   Title  ##  "), Some("Title".to_owned()));
        assert_eq!(first_heading("# C#"), Some("C#".to_owned()));
    }

    #[test]
    fn heading_keeps_inline_code_text() {
        assert_eq!(
            first_heading("# Using `foo` here"),
            Some("Using `foo` here".to_owned())
        );
    }

    #[test]
    fn heading_inside_fence_is_ignored() {
        assert_eq!(
            first_heading("```\n# Not\n```\n# Yes"),
            Some("Yes".to_owned())
        );
        assert_eq!(first_heading("~~~\n# Not"), None);
    }

    #[test]
    fn tag_line_is_not_a_heading() {
        assert_eq!(first_heading("#tag\n# Real"), Some("Real".to_owned()));
    }

    #[test]
    fn heading_may_be_indented_up_to_three_spaces() {
        assert_eq!(first_heading("   # Three"), Some("Three".to_owned()));
        assert_eq!(first_heading("    # Four\n> # Quoted"), None);
    }

    #[test]
    fn empty_heading_is_skipped() {
        assert_eq!(first_heading("#\n# ##\n# Real"), Some("Real".to_owned()));
    }

    #[test]
    fn setext_heading_is_not_an_atx_heading() {
        assert_eq!(first_heading("Title\n=====\n"), None);
    }

    #[test]
    fn heading_is_found_with_crlf_and_tab() {
        assert_eq!(
            first_heading("text\r\n#\tTitle\r\n"),
            Some("Title".to_owned())
        );
    }

    #[test]
    fn no_heading_gives_none() {
        assert_eq!(first_heading(""), None);
        assert_eq!(first_heading("just text"), None);
    }
}
