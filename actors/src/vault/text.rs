//! Small text helpers shared by the frontmatter and body scanners: line offsets and tag
//! de-duplication.

/// Byte offsets of one line: `start..end` is its text without the line
/// ending (`\n` or `\r\n`), `next` is where the following line starts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Line {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) next: usize,
}

impl Line {
    pub(super) fn at(text: &str, start: usize) -> Line {
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

/// Add `tag` to `tags` unless it is already there, keeping first-seen order.
pub(super) fn push_unique(tags: &mut Vec<String>, tag: String) {
    if !tags.contains(&tag) {
        tags.push(tag);
    }
}
