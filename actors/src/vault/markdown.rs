//! Parsing and rendering of a single note file.
//!
//! A note is markdown in the Obsidian dialect: optional YAML frontmatter
//! between `---` lines, then a body that may contain `[[wikilinks]]`,
//! `![[embeds]]`, `#tags` and headings. Everything here is pure text
//! processing with no I/O, so storage (reading and writing notes) and indexing
//! (links, tags, titles) agree on what a note says.
//!
//! Links, tags and headings must not be picked up from code. Which parts of a
//! body are code (fenced blocks and inline code spans) is decided in one place,
//! [`Prose`], which yields the prose pieces of the body; the extractors only
//! ever look at those pieces.

use std::fmt;

use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

const BOM: char = '\u{feff}';
/// Characters YAML 1.1 reads as line breaks besides `\n` and `\r`.
const YAML_LINE_BREAKS: [char; 3] = ['\u{2028}', '\u{2029}', '\u{85}'];

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
}

/// Why a note's frontmatter could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontmatterError {
    /// The frontmatter is not valid YAML; the message names the line when the parser knows it.
    Yaml(String),
    /// The frontmatter is valid YAML, but a list or a scalar instead of key/value pairs.
    NotAMapping,
    /// The file opens with a `---` line but no closing `---` or `...` line follows.
    Unterminated,
}

impl fmt::Display for FrontmatterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Yaml(message) => write!(f, "invalid YAML in frontmatter: {message}"),
            Self::NotAMapping => f.write_str("frontmatter must be a mapping of keys to values"),
            Self::Unterminated => {
                f.write_str("frontmatter opened with '---' is never closed by '---' or '...'")
            }
        }
    }
}

impl std::error::Error for FrontmatterError {}

/// Splits a note file into its frontmatter YAML (if any) and its body.
///
/// Frontmatter exists only when the text starts with a line that is exactly
/// `---` and a later line is exactly `---` or `...` (either may end in `\r`).
/// A leading UTF-8 byte order mark is ignored. The body is everything after
/// the closing line and its line ending.
///
/// # Errors
///
/// [`FrontmatterError::Unterminated`] if the opening line has no closing line.
pub fn split_frontmatter(text: &str) -> Result<(Option<&str>, &str), FrontmatterError> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let Some(yaml_start) = opening_delimiter_end(text) else {
        return Ok((None, text));
    };
    let mut pos = yaml_start;
    while pos < text.len() {
        let line = Line::at(text, pos);
        let content = &text[line.start..line.end];
        if content == "---" || content == "..." {
            return Ok((Some(&text[yaml_start..pos]), &text[line.next..]));
        }
        pos = line.next;
    }
    Err(FrontmatterError::Unterminated)
}

/// Parses frontmatter YAML into a JSON object.
///
/// Empty, whitespace-only and comment-only YAML give an empty map. Keys that
/// are not strings (numbers, booleans, null) become their YAML spelling;
/// dates stay strings, YAML tags (`!foo`) are dropped and only their value is
/// kept, and floats JSON cannot hold (`.nan`, `.inf`) become strings.
///
/// # Errors
///
/// [`FrontmatterError::Yaml`] for invalid YAML (including duplicate keys and
/// aliases that expand far beyond the text, see `check_alias_growth`) and
/// [`FrontmatterError::NotAMapping`] for a list or scalar document.
pub fn parse_frontmatter(yaml: &str) -> Result<Map<String, Value>, FrontmatterError> {
    if yaml.trim().is_empty() {
        return Ok(Map::new());
    }
    // Only an alias (`*name`) can make the document bigger than its text.
    if yaml.contains('*') {
        check_alias_growth(yaml).map_err(FrontmatterError::Yaml)?;
    }
    let document: Yaml =
        serde_yaml_ng::from_str(yaml).map_err(|e| FrontmatterError::Yaml(e.to_string()))?;
    match untagged(document) {
        Yaml::Mapping(mapping) => Ok(mapping_to_json(mapping)),
        // A block holding only comments parses as null; it still has no keys.
        Yaml::Null => Ok(Map::new()),
        _ => Err(FrontmatterError::NotAMapping),
    }
}

/// Renders a note file from its frontmatter and body.
///
/// An empty map gives the body alone, unless the body itself begins like a
/// frontmatter block (a `---` line or a byte order mark): then an empty
/// `---`/`---` block is written first so that reading the file back returns
/// the same body. Otherwise the result is `---\n`, the map as YAML, `---\n`
/// and the body, and [`split_frontmatter`] plus [`parse_frontmatter`] give
/// back an equal map and the identical body.
pub fn render(frontmatter: &Map<String, Value>, body: &str) -> String {
    if frontmatter.is_empty() {
        if body.starts_with(BOM) || opening_delimiter_end(body).is_some() {
            return format!("---\n---\n{body}");
        }
        return body.to_owned();
    }
    let yaml = match serde_yaml_ng::to_string(frontmatter) {
        // The emitter writes U+2028 and U+2029 raw into block scalars, where the
        // reader takes them for line breaks: `"a\n\u{2028}"` came back with one
        // more newline. Those notes take the JSON form below instead.
        Ok(yaml) if !yaml.contains(YAML_LINE_BREAKS) => yaml,
        // JSON is valid YAML flow syntax, so even if the emitter ever refused a
        // value the note would still be written in a form that reads back.
        _ => json_flow(frontmatter),
    };
    let newline = if yaml.ends_with('\n') { "" } else { "\n" };
    let mut out = String::with_capacity(yaml.len() + body.len() + 9);
    out.push_str("---\n");
    out.push_str(&yaml);
    out.push_str(newline);
    out.push_str("---\n");
    out.push_str(body);
    out
}

/// Returns the wikilinks in a note body, in order of appearance.
///
/// Recognises `[[target]]`, `[[target|alias]]`, `[[target#heading]]`,
/// `[[target#heading|alias]]` and the embed forms `![[...]]`. Links to a
/// heading of the same note (`[[#heading]]`) and empty links are skipped.
/// Links in inline code or fenced code blocks, escaped links (`\[[`) and
/// links broken across lines are not links. In `[[a [[b]]` and `[[[b]]` the
/// link is `b`. Inside tables the pipe is written `\|`, so a backslash
/// directly before the `|` is not part of the target.
pub fn extract_links(body: &str) -> Vec<WikiLink> {
    let mut links = Vec::new();
    for segment in Prose::new(body) {
        collect_links(segment.text, &mut links);
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
/// code are not tags.
pub fn extract_inline_tags(body: &str) -> Vec<String> {
    let mut tags = Vec::new();
    for segment in Prose::new(body) {
        collect_tags(segment, &mut tags);
    }
    tags
}

/// Returns the tags listed in frontmatter under `tags` and then `tag`.
///
/// Each key may hold a list of strings or one string; every string is split
/// on commas and whitespace, a leading `#` is dropped, and the tags are
/// lower-cased and de-duplicated in order. Entries that are not strings are
/// ignored.
pub fn frontmatter_tags(frontmatter: &Map<String, Value>) -> Vec<String> {
    let mut tags = Vec::new();
    for key in ["tags", "tag"] {
        match frontmatter.get(key) {
            Some(Value::String(list)) => push_tag_list(list, &mut tags),
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::String(list) = item {
                        push_tag_list(list, &mut tags);
                    }
                }
            }
            _ => {}
        }
    }
    tags
}

/// Returns the text of the first level-one ATX heading (`# Title`) outside
/// code: trimmed, with a closing run of `#` removed. Headings with no text,
/// headings inside block quotes and setext headings are not considered.
pub fn first_heading(body: &str) -> Option<String> {
    Prose::new(body)
        .filter(|segment| segment.starts_line)
        .find_map(|segment| level_one_heading(segment.line))
        .map(str::to_owned)
}

/// The frontmatter as JSON, which is YAML flow syntax once the characters YAML
/// does not take raw in a quoted scalar (its extra line breaks, which it would
/// fold, and the non-printable ones, which it refuses) are written as escapes.
/// JSON text holds such characters only inside strings, where `\uXXXX` is read
/// alike by both.
fn json_flow(frontmatter: &Map<String, Value>) -> String {
    let json = Value::Object(frontmatter.clone()).to_string();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        let printable =
            matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{a0}'..='\u{fffd}') || c > '\u{ffff}';
        if printable && !YAML_LINE_BREAKS.contains(&c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        }
    }
    out
}

/// If `text` begins with a `---` line, the offset just past that line.
fn opening_delimiter_end(text: &str) -> Option<usize> {
    let rest = text.strip_prefix("---")?;
    match rest.as_bytes() {
        [] | [b'\r'] => Some(text.len()),
        [b'\n', ..] => Some(4),
        [b'\r', b'\n', ..] => Some(5),
        _ => None,
    }
}

/// Refuse YAML whose aliases would expand it far past its own size, before it is built.
///
/// The parser's own guard counts alias jumps against the number of events, which stops the
/// classic nested "billion laughs" but not a flat one: a 1 MiB note repeating `*a` a few
/// hundred thousand times, `a` being a long string or a list of a thousand items, would
/// allocate gigabytes. This walks the document without building it, charging one unit per
/// node and one per string byte, against twice the text's length: a document without aliases
/// never uses that much (no scalar is longer than its spelling, escapes included, by more
/// than half), so only expansion runs out.
fn check_alias_growth(yaml: &str) -> Result<(), String> {
    let budget = std::cell::Cell::new(yaml.len().saturating_mul(2).saturating_add(1024));
    serde::de::DeserializeSeed::deserialize(
        AliasBudget(&budget),
        serde_yaml_ng::Deserializer::from_str(yaml),
    )
    .map_err(|e| e.to_string())
}

/// The units left to [`check_alias_growth`]'s walk; a visitor that keeps nothing.
#[derive(Clone, Copy)]
struct AliasBudget<'a>(&'a std::cell::Cell<usize>);

impl AliasBudget<'_> {
    fn charge<E: serde::de::Error>(self, bytes: usize) -> Result<(), E> {
        match self.0.get().checked_sub(bytes.saturating_add(1)) {
            Some(left) => {
                self.0.set(left);
                Ok(())
            }
            None => Err(E::custom(
                "its aliases (*name) expand to far more than the text itself",
            )),
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for AliasBudget<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for AliasBudget<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.charge(0)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.charge(0)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.charge(0)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.charge(0)
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        self.charge(s.len())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.charge(0)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.charge(0)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.charge(0)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.charge(0)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        // A `!tag value`: the tag's name, then the value.
        let ((), value) = data.variant_seed(self)?;
        value.newtype_variant_seed(self)
    }
}

fn untagged(value: Yaml) -> Yaml {
    match value {
        Yaml::Tagged(tagged) => untagged(tagged.value),
        other => other,
    }
}

fn mapping_to_json(mapping: serde_yaml_ng::Mapping) -> Map<String, Value> {
    mapping
        .into_iter()
        .map(|(key, value)| (key_to_string(key), yaml_to_json(value)))
        .collect()
}

fn yaml_to_json(value: Yaml) -> Value {
    match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => number_to_json(&n),
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Yaml::Mapping(mapping) => Value::Object(mapping_to_json(mapping)),
        Yaml::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

fn number_to_json(n: &serde_yaml_ng::Number) -> Value {
    if let Some(i) = n.as_i64() {
        return Value::from(i);
    }
    if let Some(u) = n.as_u64() {
        return Value::from(u);
    }
    match n.as_f64().and_then(serde_json::Number::from_f64) {
        Some(number) => Value::Number(number),
        None => Value::String(n.to_string()),
    }
}

fn key_to_string(key: Yaml) -> String {
    match key {
        Yaml::String(s) => s,
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Null => "null".to_owned(),
        Yaml::Tagged(tagged) => key_to_string(tagged.value),
        complex => yaml_to_json(complex).to_string(),
    }
}

/// Byte offsets of one line: `start..end` is its text without the line
/// ending (`\n` or `\r\n`), `next` is where the following line starts.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    next: usize,
}

impl Line {
    fn at(text: &str, start: usize) -> Line {
        let (mut end, next) = match text[start..].find('\n') {
            Some(offset) => (start + offset, start + offset + 1),
            None => (text.len(), text.len()),
        };
        if end > start && text.as_bytes()[end - 1] == b'\r' {
            end -= 1;
        }
        Line { start, end, next }
    }
}

/// A run of prose within one line: text outside fenced code blocks and
/// outside inline code spans.
#[derive(Debug, Clone, Copy)]
struct Segment<'a> {
    text: &'a str,
    /// The whole line the segment is on, without its line ending.
    line: &'a str,
    /// Whether `text` starts at the start of `line`. If not, it directly
    /// follows the closing backtick of a code span.
    starts_line: bool,
}

/// Iterator over the prose [`Segment`]s of a markdown body, in order.
///
/// Fenced code blocks (3 or more backticks or tildes; closed by a fence of
/// the same character at least as long; unclosed ones run to the end) are
/// skipped whole. Inline code spans follow CommonMark: a run of N backticks
/// opens a span only if a later run of exactly N backticks closes it, and a
/// span may continue onto the next line of the same paragraph. Paragraphs are
/// approximated by a few block rules (see [`classify`]) rather than a full
/// markdown parse; indented code blocks are not recognised.
struct Prose<'a> {
    body: &'a str,
    pos: usize,
    /// The line being scanned; meaningful only while `in_paragraph`.
    line: Line,
    /// End of the last line of the current paragraph; code spans never reach past it.
    paragraph_end: usize,
    in_paragraph: bool,
    /// Backtick run lengths known to have no closing run before `paragraph_end`.
    /// Remembering them keeps the scan linear when a paragraph is full of
    /// unmatched backticks.
    unclosed: Vec<usize>,
}

impl<'a> Prose<'a> {
    fn new(body: &'a str) -> Self {
        Prose {
            body,
            pos: 0,
            line: Line {
                start: 0,
                end: 0,
                next: 0,
            },
            paragraph_end: 0,
            in_paragraph: false,
            unclosed: Vec::new(),
        }
    }

    fn start_paragraph(&mut self, first: Line, kind: LineKind) {
        let mut end = first.end;
        if kind != LineKind::Single {
            let mut next = first.next;
            while next < self.body.len() {
                let line = Line::at(self.body, next);
                if classify(&self.body[line.start..line.end]) != LineKind::Text {
                    break;
                }
                end = line.end;
                next = line.next;
            }
        }
        self.paragraph_end = end;
        self.in_paragraph = true;
        self.line = first;
        self.pos = first.start;
        self.unclosed.clear();
    }

    /// Finds the first code span that opens in `from..` on the current line.
    /// Returns where it opens and where it ends (just past the closing run,
    /// possibly on a later line of the paragraph).
    fn next_code_span(&mut self, from: usize) -> Option<(usize, usize)> {
        let bytes = self.body.as_bytes();
        let line_end = self.line.end;
        let mut i = from;
        while let Some(offset) = self.body[i..line_end].find('`') {
            let run_start = i + offset;
            let run_end = backtick_run_end(bytes, run_start, line_end);
            i = run_end;
            // A backslash escapes only the first backtick of a run; the rest of
            // the run can still open a span.
            let open = if is_escaped(&bytes[from..], run_start - from) {
                run_start + 1
            } else {
                run_start
            };
            let len = run_end - open;
            if len == 0 || self.unclosed.contains(&len) {
                continue;
            }
            match find_backtick_run(bytes, run_end, self.paragraph_end, len) {
                Some(close) => return Some((open, close + len)),
                None => self.unclosed.push(len),
            }
        }
        None
    }
}

impl<'a> Iterator for Prose<'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        let body = self.body;
        loop {
            if !self.in_paragraph {
                if self.pos >= body.len() {
                    return None;
                }
                let line = Line::at(body, self.pos);
                match classify(&body[line.start..line.end]) {
                    LineKind::Blank => self.pos = line.next,
                    LineKind::Fence { marker, len } => {
                        self.pos = skip_fenced_block(body, line.next, marker, len);
                    }
                    kind => self.start_paragraph(line, kind),
                }
                continue;
            }
            if self.pos >= self.line.end {
                if self.line.end >= self.paragraph_end {
                    self.in_paragraph = false;
                    self.pos = self.line.next;
                } else {
                    self.line = Line::at(body, self.line.next);
                    self.pos = self.line.start;
                }
                continue;
            }
            let start = self.pos;
            let end = match self.next_code_span(start) {
                Some((open, resume)) => {
                    self.pos = resume;
                    open
                }
                None => {
                    self.pos = self.line.end;
                    self.line.end
                }
            };
            let segment = Segment {
                text: &body[start..end],
                line: &body[self.line.start..self.line.end],
                starts_line: start == self.line.start,
            };
            if self.pos > self.line.end {
                // The span closed on a later line; continue scanning from there.
                let line_start = body[..self.pos].rfind('\n').map_or(0, |nl| nl + 1);
                self.line = Line::at(body, line_start);
            }
            if end > start {
                return Some(segment);
            }
        }
    }
}

/// What a line means for code detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// Empty apart from spaces, tabs and block quote markers; ends a paragraph.
    Blank,
    /// Opens a fenced code block.
    Fence { marker: u8, len: usize },
    /// A block of its own (ATX heading, thematic break, setext underline):
    /// a code span cannot continue into or out of it.
    Single,
    /// Starts a list item, and so a new paragraph.
    ListItem,
    /// Continues the current paragraph, or starts one.
    Text,
}

/// Classifies a line (without its line ending). Block quote markers and
/// indentation are looked through so that fences inside callouts and list
/// items are recognised.
fn classify(line: &str) -> LineKind {
    let rest = strip_container(line);
    let bytes = rest.as_bytes();
    let Some(&first) = bytes.first() else {
        return LineKind::Blank;
    };
    match first {
        b'`' | b'~' => {
            let len = bytes.iter().take_while(|&&b| b == first).count();
            // A backtick in the info string means the line is inline code, as
            // in "```code```", not a fence.
            if len >= 3 && (first == b'~' || !rest[len..].contains('`')) {
                return LineKind::Fence { marker: first, len };
            }
        }
        b'#' => {
            let level = bytes.iter().take_while(|&&b| b == b'#').count();
            if level <= 6 && matches!(bytes.get(level), None | Some(b' ' | b'\t')) {
                return LineKind::Single;
            }
        }
        _ => {}
    }
    if is_break_line(rest) {
        return LineKind::Single;
    }
    if is_list_marker(bytes) {
        return LineKind::ListItem;
    }
    LineKind::Text
}

fn strip_container(line: &str) -> &str {
    line.trim_start_matches([' ', '\t', '>'])
}

/// A thematic break (`---`, `* * *`, `___`) or setext underline (`===`).
fn is_break_line(rest: &str) -> bool {
    let mut marker = None;
    let mut count = 0;
    for b in rest.bytes() {
        match b {
            b' ' | b'\t' => {}
            b'-' | b'*' | b'_' | b'=' if marker.is_none_or(|m| m == b) => {
                marker = Some(b);
                count += 1;
            }
            _ => return false,
        }
    }
    match marker {
        Some(b'=') => true,
        Some(_) => count >= 3,
        None => false,
    }
}

fn is_list_marker(bytes: &[u8]) -> bool {
    let after = match bytes.first() {
        Some(b'-' | b'+' | b'*') => 1,
        Some(b'0'..=b'9') => {
            let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 9 || !matches!(bytes.get(digits), Some(b'.' | b')')) {
                return false;
            }
            digits + 1
        }
        _ => return false,
    };
    matches!(bytes.get(after), None | Some(b' ' | b'\t'))
}

/// Returns the offset just past the fenced block whose content starts at `from`.
fn skip_fenced_block(body: &str, from: usize, marker: u8, len: usize) -> usize {
    let mut pos = from;
    while pos < body.len() {
        let line = Line::at(body, pos);
        let rest = strip_container(&body[line.start..line.end]);
        let run = rest.bytes().take_while(|&b| b == marker).count();
        if run >= len && rest[run..].trim_matches([' ', '\t']).is_empty() {
            return line.next;
        }
        pos = line.next;
    }
    body.len()
}

fn backtick_run_end(bytes: &[u8], start: usize, limit: usize) -> usize {
    bytes[start..limit]
        .iter()
        .position(|&b| b != b'`')
        .map_or(limit, |offset| start + offset)
}

/// Start of the first run of exactly `len` backticks in `from..limit`.
fn find_backtick_run(bytes: &[u8], from: usize, limit: usize, len: usize) -> Option<usize> {
    let mut i = from;
    while i < limit {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let end = backtick_run_end(bytes, i, limit);
        if end - i == len {
            return Some(i);
        }
        i = end;
    }
    None
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

fn collect_links(text: &str, links: &mut Vec<WikiLink>) {
    let bytes = text.as_bytes();
    let mut from = 0;
    // Working from each `]]` back to the nearest `[[` before it visits every
    // byte at most twice, however the brackets are nested or unbalanced.
    while let Some(offset) = text[from..].find("]]") {
        let close = from + offset;
        if let Some(open_offset) = text[from..close].rfind("[[") {
            let open = from + open_offset;
            if !is_escaped(bytes, open) {
                let embed = open > 0 && bytes[open - 1] == b'!' && !is_escaped(bytes, open - 1);
                if let Some(link) = parse_link(&text[open + 2..close], embed) {
                    links.push(link);
                }
            }
        }
        from = close + 2;
    }
}

fn parse_link(content: &str, embed: bool) -> Option<WikiLink> {
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
    })
}

fn non_empty(part: Option<&str>) -> Option<String> {
    part.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn collect_tags(segment: Segment<'_>, tags: &mut Vec<String>) {
    let text = segment.text;
    let bytes = text.as_bytes();
    // A segment that does not start its line follows a code span's closing
    // backtick, which cannot precede a tag.
    let mut boundary = segment.starts_line;
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
                boundary = c.is_whitespace() || matches!(c, '(' | '[' | '{' | ',' | ';');
                i += c.len_utf8();
            }
        }
    }
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

fn push_tag_list(list: &str, tags: &mut Vec<String>) {
    for word in list.split(|c: char| c == ',' || c.is_whitespace()) {
        let tag = word.trim_start_matches('#');
        if !tag.is_empty() {
            push_unique(tags, tag.to_lowercase());
        }
    }
}

fn push_unique(tags: &mut Vec<String>, tag: String) {
    if !tags.contains(&tag) {
        tags.push(tag);
    }
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
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn link(target: &str, heading: Option<&str>, alias: Option<&str>, embed: bool) -> WikiLink {
        WikiLink {
            target: target.to_owned(),
            heading: heading.map(str::to_owned),
            alias: alias.map(str::to_owned),
            embed,
        }
    }

    fn targets(body: &str) -> Vec<String> {
        extract_links(body).into_iter().map(|l| l.target).collect()
    }

    fn read_back(text: &str) -> (Map<String, Value>, &str) {
        let (yaml, body) = split_frontmatter(text).unwrap();
        (parse_frontmatter(yaml.unwrap_or("")).unwrap(), body)
    }

    fn assert_round_trip(map: &Map<String, Value>, body: &str) {
        let text = render(map, body);
        let (parsed, parsed_body) = read_back(&text);
        assert_eq!(&parsed, map, "metadata changed; rendered:\n{text}");
        assert_eq!(parsed_body, body, "body changed; rendered:\n{text}");
    }

    // --- split_frontmatter ---

    #[test]
    fn text_without_frontmatter_is_all_body() {
        assert_eq!(split_frontmatter("# Hi\n"), Ok((None, "# Hi\n")));
        assert_eq!(split_frontmatter(""), Ok((None, "")));
    }

    #[test]
    fn frontmatter_is_split_from_body() {
        let text = "---\ntitle: x\n---\nBody\n";
        assert_eq!(split_frontmatter(text), Ok((Some("title: x\n"), "Body\n")));
    }

    #[test]
    fn dots_close_frontmatter() {
        let text = "---\na: 1\n...\nBody";
        assert_eq!(split_frontmatter(text), Ok((Some("a: 1\n"), "Body")));
    }

    #[test]
    fn frontmatter_split_handles_crlf() {
        let text = "---\r\na: 1\r\n---\r\nBody\r\n";
        assert_eq!(split_frontmatter(text), Ok((Some("a: 1\r\n"), "Body\r\n")));
        assert_eq!(
            parse_frontmatter("a: 1\r\nb: x\r\n").unwrap(),
            object(json!({"a": 1, "b": "x"}))
        );
    }

    #[test]
    fn leading_bom_is_ignored() {
        let text = "\u{feff}---\na: 1\n---\nBody";
        assert_eq!(split_frontmatter(text), Ok((Some("a: 1\n"), "Body")));
        assert_eq!(split_frontmatter("\u{feff}Body"), Ok((None, "Body")));
    }

    #[test]
    fn opening_line_must_be_exactly_three_dashes() {
        for text in [
            "--- \na: 1\n---\n",
            "----\na: 1\n---\n",
            " ---\na: 1\n---\n",
            "---a\n---\n",
        ] {
            assert_eq!(split_frontmatter(text), Ok((None, text)), "{text:?}");
        }
    }

    #[test]
    fn closing_line_must_be_exact() {
        assert_eq!(
            split_frontmatter("---\na: 1\n--- \n----\n....\nx"),
            Err(FrontmatterError::Unterminated)
        );
    }

    #[test]
    fn unclosed_frontmatter_is_unterminated() {
        for text in ["---\na: 1\n", "---", "---\n", "---\r\n"] {
            assert_eq!(
                split_frontmatter(text),
                Err(FrontmatterError::Unterminated),
                "{text:?}"
            );
        }
    }

    #[test]
    fn closing_line_at_end_of_text_leaves_empty_body() {
        assert_eq!(
            split_frontmatter("---\na: 1\n---"),
            Ok((Some("a: 1\n"), ""))
        );
        assert_eq!(
            split_frontmatter("---\na: 1\n---\r"),
            Ok((Some("a: 1\n"), ""))
        );
    }

    #[test]
    fn empty_frontmatter_block_is_empty_yaml() {
        assert_eq!(split_frontmatter("---\n---\nBody"), Ok((Some(""), "Body")));
    }

    #[test]
    fn only_first_closing_line_ends_frontmatter() {
        let text = "---\na: 1\n---\nx\n---\ny: 2\n---\n";
        assert_eq!(
            split_frontmatter(text),
            Ok((Some("a: 1\n"), "x\n---\ny: 2\n---\n"))
        );
    }

    // --- parse_frontmatter ---

    #[test]
    fn blank_or_comment_only_frontmatter_is_empty_map() {
        for yaml in ["", "  \n\t\n", "# just a comment\n"] {
            assert_eq!(parse_frontmatter(yaml), Ok(Map::new()), "{yaml:?}");
        }
    }

    #[test]
    fn yaml_values_map_to_json() {
        let yaml = "title: Hello\ncount: 3\nneg: -4\nratio: 0.5\ndone: true\nnothing: ~\n\
                    date: 2024-01-31\nlist: [a, 1]\nnested:\n  deep:\n    - x: y\nquoted: '42'\n";
        let expected = json!({
            "title": "Hello", "count": 3, "neg": -4, "ratio": 0.5, "done": true,
            "nothing": null, "date": "2024-01-31", "list": ["a", 1],
            "nested": {"deep": [{"x": "y"}]}, "quoted": "42"
        });
        assert_eq!(parse_frontmatter(yaml), Ok(object(expected)));
    }

    #[test]
    fn non_string_keys_become_strings() {
        let yaml = "1: one\n2.5: half\ntrue: yes\n~: nothing\n[a, b]: pair\n";
        let expected = json!({"1": "one", "2.5": "half", "true": "yes", "null": "nothing", "[\"a\",\"b\"]": "pair"});
        assert_eq!(parse_frontmatter(yaml), Ok(object(expected)));
    }

    #[test]
    fn yaml_tags_are_dropped_keeping_values() {
        assert_eq!(
            parse_frontmatter("a: !custom 5\nb: !!str x\n"),
            Ok(object(json!({"a": 5, "b": "x"})))
        );
    }

    #[test]
    fn modest_aliases_are_expanded() {
        let yaml =
            "base: &b {k: v, tags: [x]}\ncopy: *b\nnote: \"**bold** !x *y\"\nt: !t {c: *b}\n";
        assert_eq!(
            parse_frontmatter(yaml),
            Ok(object(json!({
                "base": {"k": "v", "tags": ["x"]},
                "copy": {"k": "v", "tags": ["x"]},
                "note": "**bold** !x *y",
                "t": {"c": {"k": "v", "tags": ["x"]}},
            })))
        );
    }

    #[test]
    fn aliases_that_repeat_a_big_anchor_are_refused_before_they_expand() {
        let flat = format!(
            "a: &a \"{}\"\nb: [{}*a]\n",
            "x".repeat(10_000),
            "*a,".repeat(1000)
        );
        let err = parse_frontmatter(&flat).unwrap_err();
        assert!(err.to_string().contains("aliases"), "{err}");
        let wide = format!(
            "a: &a [{}1]\nb: [{}*a]\n",
            "1,".repeat(500),
            "*a,".repeat(500)
        );
        assert!(matches!(
            parse_frontmatter(&wide),
            Err(FrontmatterError::Yaml(_))
        ));
    }

    #[test]
    fn non_finite_floats_become_strings() {
        let parsed = parse_frontmatter("a: .nan\nb: -.inf\n").unwrap();
        assert_eq!(parsed["a"], json!(".nan"));
        assert_eq!(parsed["b"], json!("-.inf"));
    }

    #[test]
    fn frontmatter_list_is_not_a_mapping() {
        assert_eq!(
            parse_frontmatter("- a\n- b\n"),
            Err(FrontmatterError::NotAMapping)
        );
    }

    #[test]
    fn frontmatter_scalar_is_not_a_mapping() {
        assert_eq!(
            parse_frontmatter("just text\n"),
            Err(FrontmatterError::NotAMapping)
        );
        assert_eq!(parse_frontmatter("42"), Err(FrontmatterError::NotAMapping));
    }

    #[test]
    fn invalid_yaml_error_names_the_line() {
        let Err(FrontmatterError::Yaml(message)) = parse_frontmatter("a: 1\nb: [unclosed\n") else {
            panic!("expected a YAML error");
        };
        assert!(message.contains("line"), "{message}");
        let shown = FrontmatterError::Yaml(message).to_string();
        assert!(shown.starts_with("invalid YAML"), "{shown}");
    }

    #[test]
    fn duplicate_keys_are_invalid_yaml() {
        assert!(matches!(
            parse_frontmatter("a: 1\na: 2\n"),
            Err(FrontmatterError::Yaml(_))
        ));
    }

    // --- render ---

    #[test]
    fn render_without_metadata_is_body_only() {
        assert_eq!(render(&Map::new(), "# Note\n"), "# Note\n");
        assert_eq!(render(&Map::new(), ""), "");
    }

    #[test]
    fn render_without_metadata_protects_body_that_looks_like_frontmatter() {
        for body in ["---\na: 1\n---\nx", "---", "---\r\nx", "\u{feff}x"] {
            assert_round_trip(&Map::new(), body);
        }
    }

    #[test]
    fn render_writes_yaml_between_delimiters() {
        let text = render(&object(json!({"title": "Hi"})), "Body\n");
        assert_eq!(text, "---\ntitle: Hi\n---\nBody\n");
    }

    #[test]
    fn render_round_trips_nested_metadata() {
        let map = object(json!({
            "title": "Trip", "n": 3, "big": u64::MAX, "small": i64::MIN, "f": 1.0, "g": 2.5e-8,
            "h": 1e300, "ok": false, "none": null, "tags": ["a", "b/c"], "empty_list": [],
            "empty_map": {}, "nested": {"list": [[1, [2]], {"x": {"y": null}}], "s": "v"}
        }));
        assert_round_trip(&map, "# Trip\n\nText with [[link]].\n");
    }

    #[test]
    fn render_round_trips_strings_that_look_like_other_yaml() {
        let tricky = [
            "",
            " ",
            "true",
            "false",
            "yes",
            "no",
            "on",
            "null",
            "~",
            "1",
            "-1",
            "1.5",
            "1e3",
            "0x1F",
            "0o17",
            ".inf",
            ".nan",
            "2024-01-01",
            "---",
            "...",
            "- item",
            "# comment",
            "a: b",
            "[x]",
            "{x}",
            "'quoted'",
            "\"double\"",
            "line\nbreak",
            "---\n...\n---",
            " lead",
            "trail ",
            "\t",
            "\r\n",
            "\u{1}",
            "\u{85}",
            "\u{2028}",
            "\u{feff}x",
            "*alias",
            "&anchor",
            "!tag",
            "%percent",
            "@at",
            "`tick",
            "|",
            ">",
            "<<",
            "日本語",
            "emoji 🦀",
            "back\\slash",
        ];
        let mut map = Map::new();
        for (i, s) in tricky.iter().enumerate() {
            map.insert(format!("k{i}"), json!(s));
            map.insert((*s).to_owned(), json!(i));
        }
        assert_round_trip(&map, "body");
    }

    #[test]
    fn render_round_trips_body_starting_with_delimiters() {
        let map = object(json!({"a": 1}));
        for body in [
            "---\nb: 2\n---\nx",
            "---",
            "...\n",
            "\u{feff}x",
            "\r\n\r\n",
            "",
        ] {
            assert_round_trip(&map, body);
        }
    }

    #[test]
    fn render_round_trips_generated_documents() {
        struct Rng(u64);
        impl Rng {
            fn below(&mut self, n: u64) -> u64 {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0 % n
            }
            fn string(&mut self) -> String {
                const PIECES: [&str; 24] = [
                    "a", "Z", "0", " ", "\n", "\r", "\t", ":", "#", "-", "---", "...", "'", "\"",
                    "\\", "[", "]", "{", "|", ">", "ü", "語", "\u{85}", "\u{0}",
                ];
                let len = self.below(8);
                (0..len)
                    .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
                    .collect()
            }
            fn value(&mut self, depth: u32) -> Value {
                match self.below(if depth > 2 { 5 } else { 7 }) {
                    0 => Value::Null,
                    1 => json!(self.below(2) == 0),
                    2 => json!(self.below(1 << 40) as i64 - (1 << 39)),
                    3 => json!((self.below(1 << 30) as f64) / 1024.0 - 1000.5),
                    4 => json!(self.string()),
                    5 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
                    _ => Value::Object(self.map(depth + 1)),
                }
            }
            fn map(&mut self, depth: u32) -> Map<String, Value> {
                (0..self.below(5))
                    .map(|_| (self.string(), self.value(depth)))
                    .collect()
            }
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..300 {
            let map = rng.map(0);
            let body = rng.string();
            assert_round_trip(&map, &body);
        }
    }

    #[test]
    fn json_fallback_rendering_is_readable_yaml() {
        let map = object(json!({"a": [1, "x: y"], "b": {"c": null}, "d": "---"}));
        let yaml = Value::Object(map.clone()).to_string();
        assert_eq!(parse_frontmatter(&yaml), Ok(map));
    }

    // --- extract_links ---

    #[test]
    fn plain_link_is_found() {
        assert_eq!(
            extract_links("See [[Note]]."),
            vec![link("Note", None, None, false)]
        );
    }

    #[test]
    fn link_alias_follows_pipe() {
        assert_eq!(
            extract_links("[[a|b]]"),
            vec![link("a", None, Some("b"), false)]
        );
    }

    #[test]
    fn link_heading_follows_hash() {
        assert_eq!(
            extract_links("[[a#Part 2]]"),
            vec![link("a", Some("Part 2"), None, false)]
        );
        assert_eq!(
            extract_links("[[a#Part 2|see part]]"),
            vec![link("a", Some("Part 2"), Some("see part"), false)]
        );
    }

    #[test]
    fn embed_with_heading_and_alias() {
        assert_eq!(
            extract_links("![[x#h|y]]"),
            vec![link("x", Some("h"), Some("y"), true)]
        );
        assert_eq!(
            extract_links("![[image.png]]"),
            vec![link("image.png", None, None, true)]
        );
    }

    #[test]
    fn same_note_heading_link_is_skipped() {
        assert!(extract_links("[[#Heading]] and [[ #x|y]]").is_empty());
    }

    #[test]
    fn empty_link_is_skipped() {
        assert!(extract_links("[[]] [[ ]] [[|alias]]").is_empty());
    }

    #[test]
    fn link_parts_are_trimmed_and_md_extension_kept() {
        assert_eq!(
            extract_links("[[  folder/Note.md # Sec | Alias ]]"),
            vec![link("folder/Note.md", Some("Sec"), Some("Alias"), false)]
        );
        assert_eq!(extract_links("[[a#|]]"), vec![link("a", None, None, false)]);
    }

    #[test]
    fn links_are_returned_in_order_with_duplicates() {
        assert_eq!(targets("[[b]] then [[a]] then [[b]]"), ["b", "a", "b"]);
    }

    #[test]
    fn escaped_link_is_not_a_link() {
        assert!(extract_links(r"\[[not a link]]").is_empty());
        assert_eq!(targets(r"\\[[real]]"), ["real"]);
    }

    #[test]
    fn escaped_bang_makes_plain_link() {
        assert_eq!(
            extract_links(r"\![[x]]"),
            vec![link("x", None, None, false)]
        );
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
            extract_links(r"| [[Note\|shown]] | x |"),
            vec![link("Note", None, Some("shown"), false)]
        );
    }

    #[test]
    fn link_cannot_span_lines() {
        assert!(extract_links("[[broken\nlink]]").is_empty());
        assert!(extract_links("[[broken\r\nlink]]").is_empty());
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
        assert!(extract_links("[[a `b` c]]").is_empty());
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

    // --- frontmatter_tags ---

    #[test]
    fn frontmatter_tag_list_is_read() {
        let map = object(json!({"tags": ["Alpha", "#beta", "alpha", 3, null, "gamma/delta"]}));
        assert_eq!(frontmatter_tags(&map), ["alpha", "beta", "gamma/delta"]);
    }

    #[test]
    fn frontmatter_tag_string_splits_on_commas_and_whitespace() {
        let map = object(json!({"tags": "one, #Two three,,four\tfive"}));
        assert_eq!(
            frontmatter_tags(&map),
            ["one", "two", "three", "four", "five"]
        );
    }

    #[test]
    fn frontmatter_singular_tag_key_is_read_after_tags() {
        let map = object(json!({"tag": "x", "tags": ["y", "x"]}));
        assert_eq!(frontmatter_tags(&map), ["y", "x"]);
        assert_eq!(frontmatter_tags(&object(json!({"tag": "solo"}))), ["solo"]);
    }

    #[test]
    fn frontmatter_without_usable_tags_gives_none() {
        assert!(frontmatter_tags(&Map::new()).is_empty());
        assert!(frontmatter_tags(&object(json!({"tags": null}))).is_empty());
        assert!(frontmatter_tags(&object(json!({"tags": 5}))).is_empty());
        assert!(frontmatter_tags(&object(json!({"tags": ["#", ""]}))).is_empty());
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
