//! Editing part of a note in place: [`Vault::edit`] applies a list of edits (exact
//! find/replace with an expected count, append, prepend, section operations under a heading,
//! frontmatter keys) to the note in memory, all or nothing, and stores the result through
//! [`Vault::write`], so an edit is checked and recorded exactly as a whole write is.
//!
//! Edits work on the body as `read_note` returns it (lines count from the first line after
//! the frontmatter) and on the frontmatter as a map. Text an edit brings in takes the note's
//! line ending, so a note saved with CRLF by an editor keeps CRLF.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::diff::{self, Diff};
use super::frontmatter::render;
use super::history::Operation;
use super::{paths, split, Vault, WriteRequest};
use crate::error::{EditError, EditFailure, VaultError};
use crate::note::NotePath;

/// Longest diff an edit returns; past it the diff is cut at a hunk and says so.
pub const MAX_DIFF_BYTES: usize = 16 * 1024;
/// Occurrences (or headings) whose lines an error lists at most.
const LINES_SHOWN: usize = 10;
/// Headings a `heading_not_found` error lists at most.
const HEADINGS_SHOWN: usize = 30;
/// Frontmatter keys the server manages on every write.
const MANAGED_KEYS: [&str; 2] = ["created", "updated"];

/// One change to a note. Section operations name a heading by its text (`Tasks`), with its
/// level (`## Tasks`) or with headings above it (`Project > Tasks`) when the text alone is
/// ambiguous; a section runs from its heading to the next heading of the same or a higher
/// level.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Edit {
    /// Replace exact text in the body. The edit fails, changing nothing, unless `find`
    /// occurs exactly `expected_count` times (default 1); the error says how many times and
    /// on which lines it was found.
    Replace {
        /// Text to find, exactly (line endings aside).
        find: String,
        /// Text to put in its place (may be empty, to delete).
        replace: String,
        /// How many times `find` must occur; every occurrence is replaced.
        #[schemars(range(min = 1))]
        expected_count: Option<usize>,
    },
    /// Add text at the end of the body, on its own line(s).
    Append { text: String },
    /// Add text at the start of the body, after the frontmatter, on its own line(s).
    Prepend { text: String },
    /// Replace what is under a heading (up to the next heading of the same or a higher
    /// level) with `text`; the heading line stays.
    ReplaceSection { heading: String, text: String },
    /// Insert `text` just before a heading's line.
    InsertBeforeSection { heading: String, text: String },
    /// Insert `text` at the end of a heading's section, before the next heading of the same
    /// or a higher level.
    InsertAfterSection { heading: String, text: String },
    /// Set a frontmatter key to any JSON value (string, number, list, object...); other keys
    /// keep their order, a new key goes last. `created` and `updated` are the server's.
    SetFrontmatter {
        key: String,
        #[schemars(with = "Value")]
        value: Value,
    },
    /// Remove a frontmatter key (nothing happens when it is not there).
    UnsetFrontmatter { key: String },
}

impl Edit {
    fn name(&self) -> &'static str {
        match self {
            Edit::Replace { .. } => "replace",
            Edit::Append { .. } => "append",
            Edit::Prepend { .. } => "prepend",
            Edit::ReplaceSection { .. } => "replace_section",
            Edit::InsertBeforeSection { .. } => "insert_before_section",
            Edit::InsertAfterSection { .. } => "insert_after_section",
            Edit::SetFrontmatter { .. } => "set_frontmatter",
            Edit::UnsetFrontmatter { .. } => "unset_frontmatter",
        }
    }
}

/// What a client asks `edit_note` to do.
#[derive(Debug, Clone, Default)]
pub struct EditRequest {
    pub path: String,
    pub edits: Vec<Edit>,
    pub if_version: Option<u64>,
    pub dry_run: bool,
}

/// The outcome of an edit.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Edited {
    pub path: String,
    /// The note's version now: the new one after a write, the unchanged one after a dry run
    /// or an edit that changed nothing.
    pub version: u64,
    /// True when nothing was written because `dry_run` was asked for.
    pub dry_run: bool,
    /// False when the edits left the note as it was (then nothing is written).
    pub changed: bool,
    /// How many edits were applied (all of them: edits are all or nothing).
    pub edits_applied: usize,
    /// Size of the note file after the edit (or that it would have).
    pub size: u64,
    /// Unified diff of the note file, before and after (`updated` changes on every write).
    pub diff: String,
    /// True when the diff was cut to stay within its size bound.
    pub diff_truncated: bool,
}

impl Vault {
    /// Apply `req.edits` in order to the note at `req.path` and write the result (unless
    /// `dry_run`) through [`Vault::write`]. If any edit fails, nothing is written and the error
    /// names the edit.
    pub fn edit(&mut self, req: EditRequest) -> Result<Edited, VaultError> {
        let path = NotePath::parse(&req.path)?;
        if req.edits.is_empty() {
            return Err(VaultError::InvalidArguments(
                "edits is empty: give at least one edit".into(),
            ));
        }
        // Re-indexes a note changed outside the server, so the version is the file's.
        let current = self.read(path.as_str())?.version;
        if let Some(expected) = req.if_version {
            if expected != current {
                return Err(VaultError::Conflict {
                    path: path.to_string(),
                    expected,
                    current,
                });
            }
        }
        let file = paths::resolve(&self.root, &path)?;
        let old_text = std::fs::read_to_string(&file)?;
        let (frontmatter, body) =
            split(&old_text).map_err(|e| VaultError::InvalidFrontmatter(format!("{path}: {e}")))?;
        let mut note = Draft {
            eol: line_ending(body, &old_text),
            frontmatter: frontmatter.clone(),
            body: body.to_string(),
        };
        for (index, edit) in req.edits.iter().enumerate() {
            note.apply(edit).map_err(|failure| EditError {
                index,
                op: edit.name(),
                failure,
            })?;
        }
        let unchanged = note.body == body && note.frontmatter == frontmatter;
        let edits_applied = req.edits.len();
        if unchanged {
            return Ok(Edited {
                path: path.to_string(),
                version: current,
                dry_run: req.dry_run,
                changed: false,
                edits_applied,
                size: old_text.len() as u64,
                diff: String::new(),
                diff_truncated: false,
            });
        }
        if req.dry_run {
            let new_text = note.predicted_file();
            let Diff { text, truncated } =
                diff::unified(path.as_str(), &old_text, &new_text, MAX_DIFF_BYTES);
            return Ok(Edited {
                path: path.to_string(),
                version: current,
                dry_run: true,
                changed: true,
                edits_applied,
                size: new_text.len() as u64,
                diff: text,
                diff_truncated: truncated,
            });
        }
        let written = self.write_as(
            WriteRequest {
                path: path.to_string(),
                // A body that itself starts like a frontmatter block is shielded by an empty one,
                // which the write takes off again.
                body: render(&Map::new(), &note.body),
                title: None,
                metadata: Some(Value::Object(note.frontmatter)),
                if_version: Some(current),
            },
            Operation::Edit,
        )?;
        let new_text = std::fs::read_to_string(&file)?;
        let Diff { text, truncated } =
            diff::unified(path.as_str(), &old_text, &new_text, MAX_DIFF_BYTES);
        Ok(Edited {
            path: written.path,
            version: written.version,
            dry_run: false,
            changed: true,
            edits_applied,
            size: written.size,
            diff: text,
            diff_truncated: truncated,
        })
    }
}

/// The note being edited, in memory.
struct Draft {
    /// `"\r\n"` for a note written with CRLF line endings, else `"\n"`.
    eol: &'static str,
    frontmatter: Map<String, Value>,
    body: String,
}

impl Draft {
    fn apply(&mut self, edit: &Edit) -> Result<(), EditFailure> {
        match edit {
            Edit::Replace {
                find,
                replace,
                expected_count,
            } => self.replace(find, replace, expected_count.unwrap_or(1)),
            Edit::Append { text } => {
                let text = self.block(text, "append")?;
                if !self.body.is_empty() && !self.body.ends_with('\n') {
                    self.body.push_str(self.eol);
                }
                self.body.push_str(&text);
                Ok(())
            }
            Edit::Prepend { text } => {
                let text = self.block(text, "prepend")?;
                self.body.insert_str(0, &text);
                Ok(())
            }
            Edit::ReplaceSection { heading, text } => {
                let s = self.section(heading)?;
                let text = self.normalize(text);
                let text = text.trim_matches(['\r', '\n']);
                let eol = self.eol;
                let mut content = String::new();
                if !self.body[..s.content].ends_with('\n') {
                    content.push_str(eol);
                }
                if !text.is_empty() {
                    content.push_str(eol);
                    content.push_str(text);
                    content.push_str(eol);
                }
                if s.end < self.body.len() {
                    content.push_str(eol);
                }
                self.body.replace_range(s.content..s.end, &content);
                Ok(())
            }
            Edit::InsertBeforeSection { heading, text } => {
                let s = self.section(heading)?;
                let text = self.block(text, "insert_before_section")?;
                let at = s.start;
                let joined = format!("{}{text}{}", self.gap_after(at), self.eol);
                self.body.insert_str(at, &joined);
                Ok(())
            }
            Edit::InsertAfterSection { heading, text } => {
                let s = self.section(heading)?;
                let text = self.block(text, "insert_after_section")?;
                let at = s.end;
                let tail = if at < self.body.len() { self.eol } else { "" };
                let joined = format!("{}{text}{tail}", self.gap_after(at));
                self.body.insert_str(at, &joined);
                Ok(())
            }
            Edit::SetFrontmatter { key, value } => {
                check_key(key)?;
                // In place when the key exists (the map keeps insertion order), else last.
                self.frontmatter.insert(key.clone(), value.clone());
                Ok(())
            }
            Edit::UnsetFrontmatter { key } => {
                check_key(key)?;
                self.frontmatter.shift_remove(key);
                Ok(())
            }
        }
    }

    fn replace(&mut self, find: &str, replace: &str, expected: usize) -> Result<(), EditFailure> {
        if find.is_empty() {
            return Err(EditFailure::Invalid("find is empty".into()));
        }
        if expected == 0 {
            return Err(EditFailure::Invalid(
                "expected_count must be at least 1".into(),
            ));
        }
        let (find, replace) = (self.normalize(find), self.normalize(replace));
        let found: Vec<usize> = self
            .body
            .match_indices(find.as_str())
            .map(|(at, _)| at)
            .collect();
        if found.len() != expected {
            return Err(EditFailure::OccurrenceMismatch {
                expected,
                found: found.len(),
                lines: found
                    .iter()
                    .take(LINES_SHOWN)
                    .map(|&at| line_of(&self.body, at))
                    .collect(),
            });
        }
        self.body = self.body.replace(find.as_str(), &replace);
        Ok(())
    }

    /// `text` in the note's line endings, ending with a line break.
    fn block(&self, text: &str, op: &str) -> Result<String, EditFailure> {
        if text.is_empty() {
            return Err(EditFailure::Invalid(format!("{op}: text is empty")));
        }
        let mut text = self.normalize(text);
        if !text.ends_with('\n') {
            text.push_str(self.eol);
        }
        Ok(text)
    }

    /// Line breaks to put before a block inserted at byte `at`, so that it stands apart from
    /// the text before it by one blank line (none at the start of the body).
    fn gap_after(&self, at: usize) -> String {
        let before = &self.body[..at];
        let eol = self.eol;
        if before.is_empty() || before.ends_with("\n\n") || before.ends_with("\n\r\n") {
            String::new()
        } else if before.ends_with('\n') {
            eol.to_string()
        } else {
            format!("{eol}{eol}")
        }
    }

    /// `text` with its line breaks made the note's.
    fn normalize(&self, text: &str) -> String {
        let lf = text.replace("\r\n", "\n");
        if self.eol == "\r\n" {
            lf.replace('\n', "\r\n")
        } else {
            lf
        }
    }

    /// The section under the one heading `wanted` names.
    fn section(&self, wanted: &str) -> Result<Section, EditFailure> {
        let headings = headings(&self.body);
        let index = find_heading(&headings, wanted)?;
        let h = &headings[index];
        let end = headings[index + 1..]
            .iter()
            .find(|next| next.level <= h.level)
            .map_or(self.body.len(), |next| next.start);
        Ok(Section {
            start: h.start,
            content: h.next,
            end,
        })
    }

    /// The file a write of this draft would store, `updated` being now: what a dry run
    /// shows. The write itself composes the frontmatter the same way (`created` kept, else
    /// set; `updated` set).
    fn predicted_file(&self) -> String {
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let mut fm = self.frontmatter.clone();
        fm.entry("created")
            .or_insert_with(|| Value::String(now.clone()));
        fm.insert("updated".into(), Value::String(now));
        render(&fm, &render(&Map::new(), &self.body))
    }
}

fn check_key(key: &str) -> Result<(), EditFailure> {
    if key.trim().is_empty() {
        return Err(EditFailure::Invalid("key is empty".into()));
    }
    if MANAGED_KEYS.contains(&key) {
        return Err(EditFailure::Invalid(format!(
            "`{key}` is kept by the server on every write and cannot be edited"
        )));
    }
    Ok(())
}

/// Byte offsets of a section in the body.
struct Section {
    /// Start of the heading line.
    start: usize,
    /// Just past the heading line (its line break included).
    content: usize,
    /// Start of the next heading of the same or a higher level, or the end of the body.
    end: usize,
}

/// An ATX heading (`## Text`) of the body.
#[derive(Debug, Clone)]
struct Heading {
    level: usize,
    text: String,
    /// Body line, from 1.
    line: usize,
    start: usize,
    next: usize,
}

impl Heading {
    fn shown(&self) -> String {
        format!("{} {}", "#".repeat(self.level), self.text)
    }
}

/// The ATX headings of `body`, outside fenced code blocks and HTML comments.
fn headings(body: &str) -> Vec<Heading> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let mut in_comment = false;
    let mut start = 0;
    let mut line_no = 0;
    while start < body.len() {
        line_no += 1;
        let next = body[start..]
            .find('\n')
            .map_or(body.len(), |i| start + i + 1);
        let line = body[start..next].trim_end_matches(['\n', '\r']);
        let at = start;
        start = next;
        if in_comment {
            in_comment = !line.contains("-->");
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        let trimmed = &line[indent.min(line.len())..];
        if let Some((c, n)) = fence {
            let run = trimmed.chars().take_while(|&x| x == c).count();
            if indent < 4 && run >= n && trimmed[run * c.len_utf8()..].trim().is_empty() {
                fence = None;
            }
            continue;
        }
        if indent >= 4 {
            continue;
        }
        if let Some(c) = trimmed.chars().next().filter(|c| *c == '`' || *c == '~') {
            let run = trimmed.chars().take_while(|&x| x == c).count();
            if run >= 3 && !(c == '`' && trimmed[run..].contains('`')) {
                fence = Some((c, run));
                continue;
            }
        }
        if let Some(comment) = trimmed.strip_prefix("<!--") {
            in_comment = !comment.contains("-->");
            continue;
        }
        if let Some((level, text)) = atx(trimmed) {
            out.push(Heading {
                level,
                text,
                line: line_no,
                start: at,
                next,
            });
        }
    }
    out
}

/// `(level, text)` of an ATX heading line (leading indentation already removed).
fn atx(line: &str) -> Option<(usize, String)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let mut text = rest.trim();
    // A closing run of `#` preceded by a space is not part of the text.
    let stripped = text.trim_end_matches('#');
    if stripped.is_empty() || stripped.ends_with([' ', '\t']) {
        text = stripped.trim_end();
    }
    Some((level, text.to_string()))
}

/// One part of a heading reference: its text and, if given, its level.
struct Wanted<'a> {
    level: Option<usize>,
    text: &'a str,
}

fn parse_wanted(part: &str) -> Wanted<'_> {
    let part = part.trim();
    match atx(part) {
        Some(_) => {
            let level = part.chars().take_while(|&c| c == '#').count();
            Wanted {
                level: Some(level),
                text: part[level..].trim(),
            }
        }
        None => Wanted {
            level: None,
            text: part,
        },
    }
}

/// The index of the one heading `wanted` names: exact text first, then ignoring case.
fn find_heading(headings: &[Heading], wanted: &str) -> Result<usize, EditFailure> {
    let parts: Vec<Wanted<'_>> = wanted.split(" > ").map(parse_wanted).collect();
    if parts.iter().any(|p| p.text.is_empty()) {
        return Err(EditFailure::Invalid(format!(
            "heading {wanted:?} names no heading text"
        )));
    }
    for exact in [true, false] {
        let same = |h: &Heading, w: &Wanted<'_>| {
            w.level.is_none_or(|l| l == h.level)
                && if exact {
                    h.text == w.text
                } else {
                    h.text.to_lowercase() == w.text.to_lowercase()
                }
        };
        let found: Vec<usize> = (0..headings.len())
            .filter(|&i| matches_path(headings, i, &parts, &same))
            .collect();
        match found.len() {
            0 => continue,
            1 => return Ok(found[0]),
            _ => {
                return Err(EditFailure::AmbiguousHeading {
                    heading: wanted.to_string(),
                    lines: found
                        .iter()
                        .take(LINES_SHOWN)
                        .map(|&i| headings[i].line)
                        .collect(),
                })
            }
        }
    }
    Err(EditFailure::HeadingNotFound {
        heading: wanted.to_string(),
        available: headings
            .iter()
            .take(HEADINGS_SHOWN)
            .map(Heading::shown)
            .collect(),
    })
}

/// Does heading `i` match the last part, and its enclosing headings the others, in order
/// (each part an ancestor of the next, not necessarily the direct parent)?
fn matches_path(
    headings: &[Heading],
    i: usize,
    parts: &[Wanted<'_>],
    same: &dyn Fn(&Heading, &Wanted<'_>) -> bool,
) -> bool {
    let Some((last, above)) = parts.split_last() else {
        return false;
    };
    if !same(&headings[i], last) {
        return false;
    }
    let mut pending = above.iter().rev().peekable();
    let mut level = headings[i].level;
    for h in headings[..i].iter().rev() {
        let Some(part) = pending.peek() else {
            break;
        };
        if h.level < level {
            level = h.level;
            if same(h, part) {
                pending.next();
            }
        }
    }
    pending.peek().is_none()
}

/// The body line (from 1) holding byte `at`.
fn line_of(body: &str, at: usize) -> usize {
    body[..at].bytes().filter(|&b| b == b'\n').count() + 1
}

/// The note's line ending: that of the body's first line, else of the file's.
fn line_ending(body: &str, file: &str) -> &'static str {
    let first_break = |text: &str| {
        text.find('\n').map(|i| {
            if text[..i].ends_with('\r') {
                "\r\n"
            } else {
                "\n"
            }
        })
    };
    first_break(body)
        .or_else(|| first_break(file))
        .unwrap_or("\n")
}

#[cfg(test)]
mod tests;
