//! Markdown to safe HTML: the one renderer behind the note page and the editor's live preview,
//! plus the escaping helpers every page uses for text that is not markup.
//!
//! A note is untrusted input (a model or another device may have written it), so the output is
//! built in two layers. First the markdown events are rewritten: raw HTML in a note is shown as
//! text, never passed through; `[[wikilinks]]` become links to the note they resolve to (or to a
//! "create it" page when broken); `#tags` in prose become links to a tag search. Then the whole
//! result goes through `ammonia` with an allow-list, so even a bug in the first layer cannot let
//! a script, an event handler or a `javascript:` URL through.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

/// How `[[wikilinks]]` are turned into links.
pub enum Wikilinks<'a> {
    /// Each link target as written (`Plan` in `[[Plan#Goals|the plan]]`) mapped to the path it
    /// resolves to, or to `None` when it is broken — what `get_links` reports for the note.
    Resolved(&'a HashMap<String, Option<String>>),
    /// The editor's preview: the text being edited is not stored yet, so there is nothing to
    /// resolve against; links are shown as such but lead nowhere.
    Unresolved,
}

/// The sanitizer, built once: the tags pulldown-cmark produces for markdown and the few
/// classes this renderer adds, nothing else.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        // Task lists render as disabled checkboxes; nothing else may produce an input, as raw
        // HTML never reaches the sanitizer as markup.
        .add_tags(["input"])
        .add_tag_attributes("input", ["checked", "disabled"])
        .set_tag_attribute_value("input", "type", "checkbox")
        .add_allowed_classes("a", ["wikilink", "broken", "embed", "tag"])
        .add_allowed_classes("span", ["wikilink", "embed"])
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer"));
    builder
});

/// Render a note's markdown body to sanitized HTML.
pub fn render_markdown(body: &str, links: &Wikilinks<'_>) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_MATH
        | Options::ENABLE_WIKILINKS
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let parser = pulldown_cmark::TextMergeStream::new(Parser::new_ext(body, options));
    let mut rewriter = Rewriter {
        links,
        closers: Vec::new(),
        in_code_block: false,
        in_metadata: false,
        tag_may_start: true,
    };
    let mut events = Vec::new();
    for event in parser {
        rewriter.push(event, &mut events);
    }
    let mut html = String::with_capacity(body.len() + body.len() / 4);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    SANITIZER.clean(&html).to_string()
}

/// Rewrites the parser's events into ones that are safe to hand to the HTML writer.
struct Rewriter<'l, 'm> {
    links: &'l Wikilinks<'m>,
    /// For every open link or image, the markup that closes it: the writer's own (`None`) for
    /// ordinary links, or the element this renderer opened for a wikilink. Its length is also
    /// how deep inside link text the current event is (tags are not linked inside links).
    closers: Vec<Option<&'static str>>,
    in_code_block: bool,
    /// Inside a YAML frontmatter block (the preview may show one); nothing of it is shown.
    in_metadata: bool,
    /// Whether a `#` at the start of the next text follows whitespace or the start of a block,
    /// which is where a tag may begin (the same rule the indexer uses).
    tag_may_start: bool,
}

impl<'a> Rewriter<'_, '_> {
    fn push(&mut self, event: Event<'a>, out: &mut Vec<Event<'a>>) {
        if self.in_metadata {
            if matches!(event, Event::End(TagEnd::MetadataBlock(_))) {
                self.in_metadata = false;
            }
            return;
        }
        match event {
            Event::Start(Tag::MetadataBlock(_)) => self.in_metadata = true,
            // Raw HTML is the note's text, not markup: a block is shown as source code, an
            // inline tag as the characters it is made of.
            Event::Start(Tag::HtmlBlock) => {
                self.in_code_block = true;
                out.push(Event::Start(Tag::CodeBlock(CodeBlockKind::Indented)));
            }
            Event::End(TagEnd::HtmlBlock) => {
                self.in_code_block = false;
                out.push(Event::End(TagEnd::CodeBlock));
            }
            Event::Html(raw) | Event::InlineHtml(raw) => {
                self.tag_may_start = false;
                out.push(Event::Text(raw));
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                self.in_code_block = true;
                out.push(Event::Start(Tag::CodeBlock(kind)));
            }
            Event::End(TagEnd::CodeBlock) => {
                self.in_code_block = false;
                out.push(Event::End(TagEnd::CodeBlock));
            }
            Event::Start(Tag::Link {
                link_type: LinkType::WikiLink { .. },
                dest_url,
                ..
            }) => {
                let (open, close) = self.wikilink(&dest_url, false);
                self.closers.push(Some(close));
                out.push(Event::Html(open.into()));
            }
            // `![[embed]]`: shown as a link to the embedded note rather than inlined.
            Event::Start(Tag::Image {
                link_type: LinkType::WikiLink { .. },
                dest_url,
                ..
            }) => {
                let (open, close) = self.wikilink(&dest_url, true);
                self.closers.push(Some(close));
                out.push(Event::Html(open.into()));
            }
            Event::Start(tag @ (Tag::Link { .. } | Tag::Image { .. })) => {
                self.closers.push(None);
                out.push(Event::Start(tag));
            }
            Event::End(end @ (TagEnd::Link | TagEnd::Image)) => {
                self.tag_may_start = false;
                match self.closers.pop().flatten() {
                    Some(close) => out.push(Event::Html(close.into())),
                    None => out.push(Event::End(end)),
                }
            }
            Event::Text(text) if !self.in_code_block && self.closers.is_empty() => {
                let starts = self.tag_may_start;
                self.tag_may_start = text.ends_with(char::is_whitespace);
                link_tags(text, starts, out);
            }
            Event::Text(text) => {
                self.tag_may_start = false;
                out.push(Event::Text(text));
            }
            Event::SoftBreak | Event::HardBreak => {
                self.tag_may_start = true;
                out.push(event);
            }
            Event::Start(tag) => {
                self.tag_may_start = true;
                out.push(Event::Start(tag));
            }
            other => {
                self.tag_may_start = false;
                out.push(other);
            }
        }
    }

    /// The opening markup of a wikilink to `dest` (`target#heading` as written) and its closer.
    fn wikilink(&self, dest: &str, embed: bool) -> (String, &'static str) {
        let target = dest.split_once('#').map_or(dest, |(t, _)| t).trim();
        let class = if embed { "wikilink embed" } else { "wikilink" };
        let resolved = match self.links {
            Wikilinks::Resolved(map) if !target.is_empty() => {
                Some(map.get(target).cloned().flatten())
            }
            _ => None,
        };
        match resolved {
            Some(Some(path)) => (
                format!(
                    "<a class=\"{class}\" href=\"/note/{}\">",
                    escape_html(&encode_path(&path))
                ),
                "</a>",
            ),
            Some(None) => {
                let new_path = if target.ends_with(".md") {
                    target.to_string()
                } else {
                    format!("{target}.md")
                };
                (
                    format!(
                        "<a class=\"{class} broken\" href=\"/new?path={}\" title=\"Not written yet: create it\">",
                        escape_html(&encode_query(&new_path))
                    ),
                    "</a>",
                )
            }
            // Nothing to resolve against (preview), or a link to a heading of this note.
            None => (format!("<span class=\"{class}\">"), "</span>"),
        }
    }
}

/// Split prose text at `#tags`, turning each tag into a link to a tag search. `starts` says
/// whether the text begins where a tag may begin.
fn link_tags<'a>(text: CowStr<'a>, starts: bool, out: &mut Vec<Event<'a>>) {
    let spans = find_tags(&text, starts);
    if spans.is_empty() {
        out.push(Event::Text(text));
        return;
    }
    let mut copied = 0;
    for (start, end) in spans {
        if start > copied {
            out.push(Event::Text(text[copied..start].to_string().into()));
        }
        let name = &text[start + 1..end];
        out.push(Event::Html(
            format!(
                "<a class=\"tag\" href=\"/search?tag={}\">#{}</a>",
                escape_html(&encode_query(&name.to_lowercase())),
                escape_html(name)
            )
            .into(),
        ));
        copied = end;
    }
    if copied < text.len() {
        out.push(Event::Text(text[copied..].to_string().into()));
    }
}

/// Byte ranges (`#` included) of the tags in `text`: a `#` at a word boundary followed by tag
/// characters (letters, digits, `_`, `-`, `/`), not all digits (`#1` is an issue number), with
/// trailing `/` and `-` not part of the tag. The same rule as the indexer's, so a linked tag is
/// one the tag search knows.
pub fn find_tags(text: &str, starts: bool) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut boundary = starts;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '#' && boundary {
            let name_start = i + 1;
            let mut name_end = name_start;
            while let Some(&(j, next)) = chars.peek() {
                if next.is_alphanumeric() || matches!(next, '_' | '-' | '/') || is_mark(next) {
                    name_end = j + next.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let name = text[name_start..name_end].trim_end_matches(['/', '-']);
            if name.chars().any(|c| !c.is_numeric()) {
                spans.push((i, name_start + name.len()));
            }
            boundary = false;
        } else {
            boundary = c.is_whitespace() || matches!(c, '(' | '[' | '{' | ',' | ';');
        }
    }
    spans
}

/// Combining marks that continue a word (accents written apart, viramas, joiners), so a tag in
/// such a script is not cut short. A subset of the indexer's list covering the common scripts.
fn is_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{0900}'..='\u{0963}'
        | '\u{0971}'..='\u{0DF3}'
        | '\u{0E31}'..='\u{0E3A}'
        | '\u{0E47}'..='\u{0E4E}'
        | '\u{200C}'..='\u{200D}'
        | '\u{3099}'..='\u{309A}'
        | '\u{FE00}'..='\u{FE0F}')
}

/// A search snippet as HTML: the search marks matches with `<mark>` but copies the note's text
/// around them as it is (raw HTML in a note included), so everything is escaped and only
/// balanced `<mark>`/`</mark>` pairs are put back.
pub fn sanitize_snippet(snippet: &str) -> String {
    const OPEN: &str = "<mark>";
    const CLOSE: &str = "</mark>";
    let mut out = String::with_capacity(snippet.len() + 16);
    let mut open = false;
    let mut rest = snippet;
    while !rest.is_empty() {
        let next_open = rest.find(OPEN);
        let next_close = rest.find(CLOSE);
        let (at, is_open) = match (next_open, next_close) {
            (Some(o), Some(c)) if o < c => (o, true),
            (_, Some(c)) => (c, false),
            (Some(o), None) => (o, true),
            (None, None) => {
                out.push_str(&escape_html(rest));
                break;
            }
        };
        out.push_str(&escape_html(&rest[..at]));
        if is_open {
            if !open {
                out.push_str(OPEN);
                open = true;
            }
            rest = &rest[at + OPEN.len()..];
        } else {
            if open {
                out.push_str(CLOSE);
                open = false;
            }
            rest = &rest[at + CLOSE.len()..];
        }
    }
    if open {
        out.push_str(CLOSE);
    }
    out
}

/// `text` with the five HTML-significant characters escaped (for markup built by hand).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A note or folder path as a URL path: every byte but unreserved characters and `/` is
/// percent-encoded, so `?`, `#`, `%` and spaces in a name cannot change the URL's meaning.
pub fn encode_path(path: &str) -> String {
    percent_encode(path, b"/")
}

/// A value for a query string (`?tag=...`).
pub fn encode_query(value: &str) -> String {
    percent_encode(value, b"/")
}

fn percent_encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || keep.contains(&b)
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(body: &str) -> String {
        let links = HashMap::from([
            ("Plan".to_string(), Some("projects/plan.md".to_string())),
            ("Missing".to_string(), None),
        ]);
        // Every link gets the same `rel`; left out so the assertions read as the links do.
        render_markdown(body, &Wikilinks::Resolved(&links)).replace(REL, "")
    }

    const REL: &str = " rel=\"noopener noreferrer\"";

    #[test]
    fn script_in_note_is_not_rendered() {
        let html = render("Hello <script>alert(1)</script>\n\n<script>\nalert(2)\n</script>\n");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "shown as text: {html}");
    }

    #[test]
    fn event_handler_attributes_are_not_rendered() {
        let html = render("<img src=x onerror=alert(1)>\n\ntext <b onmouseover=\"x()\">b</b>");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b "), "{html}");
        // The characters are there as text, which runs nothing.
        assert!(html.contains("&lt;img"), "{html}");
    }

    #[test]
    fn javascript_links_lose_their_target() {
        for body in [
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "<javascript:alert(1)>",
            "[x][r]\n\n[r]: javascript:alert(1)",
            "![img](javascript:alert(1))",
        ] {
            let html = render(body);
            assert!(
                !html.to_lowercase().contains("=\"javascript:"),
                "{body}: {html}"
            );
        }
    }

    #[test]
    fn iframes_and_raw_html_are_shown_as_text() {
        let html = render(
            "<iframe src=\"https://evil.example\"></iframe>\n\nInline <span style=\"x\">s</span>",
        );
        assert!(!html.contains("<iframe"), "{html}");
        assert!(!html.contains("<span style"), "{html}");
        assert!(html.contains("&lt;iframe"), "{html}");
    }

    #[test]
    fn ordinary_markdown_renders() {
        let html = render(concat!(
            "# Title\n\n*em* **strong** `code`\n\n- [x] done\n\n",
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n[site](https://example.com)"
        ));
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<em>em</em>") && html.contains("<strong>strong</strong>"));
        assert!(html.contains("<code>code</code>"));
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("type=\"checkbox\""), "{html}");
        assert!(
            render_markdown("[site](https://example.com)", &Wikilinks::Unresolved)
                .contains(&format!("href=\"https://example.com\"{REL}")),
            "{html}"
        );
    }

    #[test]
    fn wikilinks_resolve_to_the_note_page() {
        let html = render("See [[Plan]] and [[Plan#Goals|the goals]].");
        assert!(
            html.contains("<a class=\"wikilink\" href=\"/note/projects/plan.md\">Plan</a>"),
            "{html}"
        );
        assert!(
            html.contains("href=\"/note/projects/plan.md\">the goals</a>"),
            "{html}"
        );
    }

    #[test]
    fn broken_wikilinks_offer_to_create_the_note() {
        let html = render("A [[Missing]] link and an [[Unknown thing]].");
        assert!(
            html.contains("class=\"wikilink broken\" href=\"/new?path=Missing.md\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/new?path=Unknown%20thing.md\""),
            "{html}"
        );
    }

    #[test]
    fn embeds_are_links_to_the_embedded_note() {
        let html = render("![[Plan]]");
        assert!(
            html.contains("<a class=\"wikilink embed\" href=\"/note/projects/plan.md\">Plan</a>"),
            "{html}"
        );
        assert!(!html.contains("<img"), "{html}");
    }

    #[test]
    fn code_never_produces_links() {
        let html = render("`[[Plan]] #tag`\n\n```\n[[Plan]] #tag\n```\n\n    [[Plan]] #tag\n");
        assert!(!html.contains("<a "), "{html}");
        assert!(html.contains("[[Plan]] #tag"), "{html}");
    }

    #[test]
    fn math_never_produces_links_or_tags() {
        // The index does not see these as links or tags either (pulldown-cmark math, both sides).
        let html = render("Inline $[[a]] \\#x$ and\n\n$$\n[[b]] #y\n$$\n");
        assert!(!html.contains("href"), "{html}");
        assert!(html.contains("[[a]]") && html.contains("[[b]]"), "{html}");
    }

    #[test]
    fn tags_become_links_to_a_tag_search() {
        let html = render("Filed under #Projects/Alpha and #idea, not issue #12 or a#b.");
        assert!(
            html.contains(
                "<a class=\"tag\" href=\"/search?tag=projects/alpha\">#Projects/Alpha</a>"
            ),
            "{html}"
        );
        assert!(
            html.contains("href=\"/search?tag=idea\">#idea</a>"),
            "{html}"
        );
        assert!(!html.contains("tag=12"), "{html}");
        assert!(!html.contains("tag=b"), "{html}");
    }

    #[test]
    fn headings_are_not_tags() {
        let html = render("# Heading\n\n## Sub");
        assert!(!html.contains("class=\"tag\""), "{html}");
    }

    #[test]
    fn text_in_links_is_not_tagged() {
        let html = render("[see #later](https://example.com)");
        assert!(!html.contains("class=\"tag\""), "{html}");
    }

    #[test]
    fn preview_shows_wikilinks_without_targets() {
        let html = render_markdown("[[Plan]]", &Wikilinks::Unresolved);
        assert!(
            html.contains("<span class=\"wikilink\">Plan</span>"),
            "{html}"
        );
    }

    #[test]
    fn frontmatter_in_the_preview_is_not_shown() {
        let html = render_markdown("---\ntitle: X\n---\nBody", &Wikilinks::Unresolved);
        assert!(!html.contains("title"), "{html}");
        assert!(html.contains("Body"), "{html}");
    }

    #[test]
    fn snippet_keeps_only_marks() {
        assert_eq!(
            sanitize_snippet("a <mark>fox</mark> <script>x</script> <b>b</b>"),
            "a <mark>fox</mark> &lt;script&gt;x&lt;/script&gt; &lt;b&gt;b&lt;/b&gt;"
        );
        assert_eq!(
            sanitize_snippet("<img src=x onerror=alert(1)><mark>hit"),
            "&lt;img src=x onerror=alert(1)&gt;<mark>hit</mark>"
        );
        // Unbalanced or nested marks are balanced, never left open.
        assert_eq!(
            sanitize_snippet("</mark>x<mark><mark>y</mark>"),
            "x<mark>y</mark>"
        );
        assert_eq!(sanitize_snippet("<MARK>a & b"), "&lt;MARK&gt;a &amp; b");
    }

    #[test]
    fn paths_are_percent_encoded() {
        assert_eq!(encode_path("a b/c?#%.md"), "a%20b/c%3F%23%25.md");
        assert_eq!(encode_query("x&y=z"), "x%26y%3Dz");
        assert_eq!(encode_path("日記.md"), "%E6%97%A5%E8%A8%98.md");
    }
}
