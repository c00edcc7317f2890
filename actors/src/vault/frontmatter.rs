//! The YAML frontmatter of a note file: splitting it from the body, parsing it into a JSON
//! object, rendering a note file back from frontmatter and body, and the tags it lists.
//!
//! Pure text processing with no I/O, so storage and indexing agree on what a note says.

use std::fmt;

use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

use super::text::{push_unique, Line};

const BOM: char = '\u{feff}';
/// Characters YAML 1.1 reads as line breaks besides `\n` and `\r`.
const YAML_LINE_BREAKS: [char; 3] = ['\u{2028}', '\u{2029}', '\u{85}'];
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
fn push_tag_list(list: &str, tags: &mut Vec<String>) {
    for word in list.split(|c: char| c == ',' || c.is_whitespace()) {
        let tag = word.trim_start_matches('#');
        if !tag.is_empty() {
            push_unique(tags, tag.to_lowercase());
        }
    }
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
}
