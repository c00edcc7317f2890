//! The note corpus: generated deterministically from a seed, or loaded from a folder of markdown.
//!
//! Generated notes look like an Obsidian vault: YAML frontmatter (title, 1–4 tags), a `#` title,
//! `##` sections, 2–4 KB of prose whose words follow a Zipf-like distribution over a built-in
//! vocabulary, and `[[wikilinks]]` to other notes of the same corpus, in nested folders such as
//! `area-3/topic-12/note-00042.md`. The generator owns its PRNG so the bytes never change with a
//! dependency upgrade.

use std::collections::HashMap;
use std::io;
use std::path::Path;

/// Smallest and largest body a generated note may have, in bytes.
pub const MIN_BODY: usize = 2048;
pub const MAX_BODY: usize = 4096;

/// SplitMix64: tiny, fast, and stable forever, which is all a corpus generator needs.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n` must be > 0. The modulo bias is irrelevant at these sizes.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Words ordered from most to least frequent: rank drives the Zipf weight, so the head of the
/// list behaves like English function words and the tail like rare terms that search can find.
const VOCABULARY: &str = "
the of and to a in is that for it as with was on be by this are from or at an have not
which but all were can more one has their they we will about there when been its also other
into only some time than these then them would two may first like over such new after most
use used between where each many through well those should because during very work system
data project note notes team plan design review meeting idea ideas question answer problem
result results change changes process model models value values number report research paper
draft version release feature features issue issues test tests build service server client
user users vault index search query document documents section summary detail details context
example examples method methods approach decision decisions goal goals task tasks list lists
memory storage network latency throughput cache schema table field record records entry entries
history archive backup restore migration deploy deployment config configuration option options
library framework language compiler runtime thread threads actor actors message messages queue
protocol request response session sessions token tokens secret header payload stream streams
garden kitchen recipe travel journey river mountain forest ocean island harbor village city
weather morning evening winter summer autumn spring coffee breakfast dinner friend family
book books chapter author reading writing story stories poem music album concert painting
history science physics chemistry biology geology astronomy mathematics statistics economics
budget invoice expense revenue market customer contract partner vendor supplier estimate
health exercise running cycling swimming sleep habit habits routine focus energy stress
learning course lecture lesson exercise homework exam grade teacher student school campus
garden seedling tomato basil compost harvest orchard lantern compass anchor bridge tunnel
algorithm heuristic invariant theorem lemma proof conjecture benchmark profile flamegraph
allocator fragmentation checksum journal snapshot replica quorum consensus partition shard
gradient tensor embedding transformer attention tokenizer vocabulary corpus dataset sample
typescript javascript python rust golang haskell kotlin swift erlang elixir clojure scala
kubernetes container docker terraform ansible postgres sqlite redis kafka nginx envoy haproxy
observability tracing metrics logging alerting dashboard incident postmortem runbook oncall
retrospective roadmap milestone quarter objective backlog sprint standup estimate velocity
whiteboard sketch diagram prototype wireframe mockup palette typography layout component
hypothesis experiment observation measurement calibration instrument sensor telemetry signal
philosophy ethics logic epistemology metaphysics aesthetics rhetoric dialectic paradox
saffron cardamom cinnamon turmeric paprika oregano thyme rosemary lavender vanilla ginger
glacier canyon meadow prairie tundra volcano archipelago peninsula estuary delta lagoon
nebula quasar pulsar comet asteroid meteor eclipse equinox solstice aurora zenith horizon
";

const TAGS: &[&str] = &[
    "project",
    "meeting",
    "idea",
    "todo",
    "reading",
    "research",
    "journal",
    "reference",
    "draft",
    "review",
    "travel",
    "recipe",
    "health",
    "finance",
    "learning",
    "writing",
    "design",
    "ops",
    "rust",
    "search",
    "archive",
    "personal",
    "work",
    "someday",
];

/// One note of the corpus: where it goes, the parts `write_note` takes, and the file bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Vault-relative path, `/`-separated, ending in `.md`.
    pub path: String,
    pub title: String,
    pub tags: Vec<String>,
    /// Markdown after the frontmatter.
    pub body: String,
    /// The whole file as written to disk (frontmatter + body).
    pub raw: String,
}

/// The notes plus the words that search queries are drawn from.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub notes: Vec<Note>,
    /// Frequent words of the corpus itself (≥ 4 letters, most frequent first), so queries hit.
    pub query_words: Vec<String>,
}

impl Corpus {
    pub fn from_notes(notes: Vec<Note>) -> Self {
        let query_words = query_vocabulary(&notes, 400);
        Corpus { notes, query_words }
    }

    pub fn total_bytes(&self) -> usize {
        self.notes.iter().map(|n| n.raw.len()).sum()
    }

    /// Top-level folders, the targets of `list_notes {folder}`.
    pub fn top_folders(&self) -> Vec<String> {
        let mut folders: Vec<String> = self
            .notes
            .iter()
            .filter_map(|n| n.path.split_once('/').map(|(top, _)| top.to_string()))
            .collect();
        folders.sort();
        folders.dedup();
        folders
    }

    /// Moves the first `count` notes directly into `folder` (keeping their file names), as an
    /// inbox where notes pile up before they are filed: the generator alone never puts more
    /// than a few hundred notes in one folder. Links name notes by stem, so they still resolve.
    pub fn gather_into(&mut self, folder: &str, count: usize) {
        for note in self.notes.iter_mut().take(count) {
            let name = note.path.rsplit('/').next().unwrap_or(&note.path);
            note.path = format!("{folder}/{name}");
        }
    }

    /// Writes every note under `dir` as a file, creating folders as needed.
    pub fn write_to(&self, dir: &Path) -> io::Result<()> {
        for note in &self.notes {
            let file = dir.join(&note.path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&file, &note.raw)?;
        }
        Ok(())
    }
}

/// Samples vocabulary ranks with weight 1/rank^s: a cumulative table and a binary search.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|rank| {
                acc += 1.0 / (rank as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

struct Generator<'a> {
    words: Vec<&'a str>,
    zipf: Zipf,
    /// Link targets: the stems of every note in the corpus.
    stems: &'a [String],
}

impl Generator<'_> {
    fn word(&self, rng: &mut Rng) -> &str {
        self.words[self.zipf.sample(rng)]
    }

    /// Uniform rather than Zipf so titles and headings are distinctive, as real ones are.
    fn title_words(&self, rng: &mut Rng, lo: usize, hi: usize) -> String {
        (0..rng.range(lo, hi))
            .map(|_| capitalize(self.words[rng.below(self.words.len())]))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn link(&self, rng: &mut Rng, own: usize) -> String {
        let mut target = rng.below(self.stems.len());
        if target == own && self.stems.len() > 1 {
            target = (target + 1) % self.stems.len();
        }
        if rng.below(10) < 3 {
            format!(
                "[[{}|{} {}]]",
                self.stems[target],
                self.word(rng),
                self.word(rng)
            )
        } else {
            format!("[[{}]]", self.stems[target])
        }
    }

    fn sentence(&self, rng: &mut Rng, own: usize) -> String {
        let len = rng.range(6, 16);
        let link_at = (rng.below(100) < 12).then(|| rng.below(len));
        let mut out = String::new();
        for i in 0..len {
            if i > 0 {
                out.push(' ');
            }
            if Some(i) == link_at {
                out.push_str(&self.link(rng, own));
            } else if i == 0 {
                out.push_str(&capitalize(self.word(rng)));
            } else {
                out.push_str(self.word(rng));
            }
        }
        out.push('.');
        out
    }

    /// A body of `MIN_BODY..=MAX_BODY` bytes: sentences are added until a random target size
    /// is reached, and never past `MAX_BODY`.
    fn body(&self, rng: &mut Rng, title: &str, own: usize) -> String {
        let target = rng.range(MIN_BODY + 150, MAX_BODY - 300);
        let mut body = format!("# {title}\n\n");
        let (mut in_para, mut para_len) = (0, rng.range(2, 6));
        let (mut in_section, mut section_len) = (0, rng.range(1, 3));
        let mut heading_due = false;
        while body.len() < target {
            let mut chunk = String::new();
            if heading_due {
                chunk.push_str(&format!("## {}\n\n", self.title_words(rng, 1, 4)));
            } else if in_para > 0 {
                chunk.push(' ');
            }
            chunk.push_str(&self.sentence(rng, own));
            // The +2 keeps room for the paragraph break and final newline added below.
            if body.len() + chunk.len() + 2 > MAX_BODY {
                break;
            }
            body.push_str(&chunk);
            heading_due = false;
            in_para += 1;
            if in_para == para_len {
                body.push_str("\n\n");
                (in_para, para_len) = (0, rng.range(2, 6));
                in_section += 1;
                if in_section == section_len {
                    (in_section, section_len) = (0, rng.range(1, 3));
                    heading_due = true;
                }
            }
        }
        body.truncate(body.trim_end().len());
        body.push('\n');
        body
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn note_path(rng: &mut Rng, index: usize) -> String {
    let area = rng.below(8);
    // One note in eight sits one level up, so folder depth is not uniform.
    if rng.below(8) == 0 {
        format!("area-{area}/note-{index:05}.md")
    } else {
        format!("area-{area}/topic-{}/note-{index:05}.md", rng.below(16))
    }
}

/// A per-note stream, so note `i` has the same path, title and size whatever `n` is.
fn note_rng(seed: u64, index: usize) -> Rng {
    Rng::new(seed ^ (index as u64 + 1).wrapping_mul(0xD134_2543_DE82_EF95))
}

/// Generates `n` notes; the same `(n, seed)` always gives the same bytes.
pub fn generate(n: usize, seed: u64) -> Corpus {
    let stems: Vec<String> = (0..n).map(|i| format!("note-{i:05}")).collect();
    let mut words: Vec<&str> = Vec::new();
    for word in VOCABULARY.split_whitespace() {
        // The list repeats a few words; a repeat would only skew their rank.
        if !words.contains(&word) {
            words.push(word);
        }
    }
    // With a vocabulary this small, s = 0.9 keeps the top word near English's share (~7-10%).
    let zipf = Zipf::new(words.len(), 0.9);
    let generator = Generator {
        words,
        zipf,
        stems: &stems,
    };
    let notes = (0..n)
        .map(|i| {
            let mut rng = note_rng(seed, i);
            let path = note_path(&mut rng, i);
            let title = generator.title_words(&mut rng, 2, 5);
            let mut tags: Vec<String> = Vec::new();
            let want = rng.range(1, 4);
            while tags.len() < want {
                let tag = TAGS[rng.below(TAGS.len())].to_string();
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            let body = generator.body(&mut rng, &title, i);
            let raw = format!(
                "---\ntitle: {title}\ntags: [{}]\n---\n\n{body}",
                tags.join(", ")
            );
            Note {
                path,
                title,
                tags,
                body,
                raw,
            }
        })
        .collect();
    Corpus::from_notes(notes)
}

/// Loads every `*.md` under `dir` (hidden folders such as `.obsidian` skipped), sorted by path.
pub fn load_dir(dir: &Path) -> io::Result<Corpus> {
    let mut files = Vec::new();
    collect_md(dir, dir, &mut files)?;
    files.sort();
    let mut notes = Vec::with_capacity(files.len());
    for rel in files {
        let raw = std::fs::read_to_string(dir.join(&rel))?;
        let (title, body) = split_frontmatter(&raw);
        let stem = rel
            .rsplit('/')
            .next()
            .unwrap_or(&rel)
            .trim_end_matches(".md");
        notes.push(Note {
            title: title.unwrap_or_else(|| stem.to_string()),
            tags: Vec::new(),
            body,
            path: rel,
            raw,
        });
    }
    if notes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no .md files under {}", dir.display()),
        ));
    }
    Ok(Corpus::from_notes(notes))
}

fn collect_md(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            collect_md(root, &path, out)?;
        } else if kind.is_file() && name.ends_with(".md") {
            let rel = path.strip_prefix(root).map_err(io::Error::other)?;
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

/// Splits off a `---` frontmatter block; returns its `title:` (if any) and the body after it.
fn split_frontmatter(raw: &str) -> (Option<String>, String) {
    let Some(rest) = raw.strip_prefix("---\n") else {
        return (None, raw.to_string());
    };
    let Some(end) = rest.find("\n---") else {
        return (None, raw.to_string());
    };
    let title = rest[..end]
        .lines()
        .find_map(|l| l.strip_prefix("title:"))
        .map(|t| t.trim().trim_matches(['"', '\'']).to_string())
        .filter(|t| !t.is_empty());
    let after = &rest[end + 4..];
    let body = after.split_once('\n').map_or("", |(_, b)| b);
    (title, body.trim_start_matches('\n').to_string())
}

/// Up to `limit` frequent words of ≥ 4 letters, most frequent first (ties alphabetical),
/// after the stopword-like head.
fn query_vocabulary(notes: &[Note], limit: usize) -> Vec<String> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for note in notes {
        for word in note.body.split(|c: char| !c.is_alphabetic()) {
            if word.chars().count() >= 4 {
                *counts.entry(word.to_lowercase()).or_default() += 1;
            }
        }
    }
    let mut words: Vec<(String, u64)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    // The very top is stopword-like ("that", "with") and would match every note; people
    // search for content words.
    let skip = (words.len() / 10).min(30);
    words
        .into_iter()
        .skip(skip)
        .take(limit)
        .map(|(w, _)| w)
        .collect()
}

/// A search query: mostly one word, some two-word, some a 3-letter prefix (`wor*`).
pub fn query(rng: &mut Rng, words: &[String]) -> String {
    if words.is_empty() {
        return "note".to_string();
    }
    let shape = rng.below(100);
    let mut pick = || words[rng.below(words.len())].as_str();
    match shape {
        0..70 => pick().to_string(),
        70..90 => format!("{} {}", pick(), pick()),
        _ => format!("{}*", pick().chars().take(3).collect::<String>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn same_seed_same_bytes() {
        let a = generate(60, 7);
        let b = generate(60, 7);
        assert_eq!(a.notes, b.notes);
        let c = generate(60, 8);
        assert_ne!(a.notes[0].raw, c.notes[0].raw);
    }

    #[test]
    fn note_is_stable_when_corpus_grows() {
        let small = generate(10, 3);
        let big = generate(20, 3);
        assert_eq!(small.notes[4].path, big.notes[4].path);
        assert_eq!(small.notes[4].title, big.notes[4].title);
    }

    #[test]
    fn sizes_tags_and_paths_in_range() {
        let corpus = generate(300, 42);
        let mut paths = HashSet::new();
        for note in &corpus.notes {
            assert!(
                (MIN_BODY..=MAX_BODY).contains(&note.body.len()),
                "{} has {} bytes",
                note.path,
                note.body.len()
            );
            assert!((1..=4).contains(&note.tags.len()));
            assert!(note.raw.starts_with("---\ntitle: "));
            assert!(note.raw.ends_with(&note.body));
            assert!(note.body.starts_with(&format!("# {}\n", note.title)));
            assert!(note.path.starts_with("area-") && note.path.ends_with(".md"));
            assert!(paths.insert(note.path.clone()), "duplicate {}", note.path);
        }
        assert!(corpus.notes.iter().any(|n| n.path.contains("/topic-")));
        assert!(corpus.notes.iter().any(|n| n.body.contains("\n## ")));
        let mb = corpus.total_bytes() as f64 / 300.0;
        assert!((2200.0..4400.0).contains(&mb), "mean size {mb}");
    }

    #[test]
    fn links_point_to_existing_notes() {
        let corpus = generate(200, 9);
        let stems: HashSet<String> = corpus
            .notes
            .iter()
            .map(|n| {
                n.path
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .trim_end_matches(".md")
                    .to_string()
            })
            .collect();
        let mut links = 0;
        for note in &corpus.notes {
            let mut rest = note.body.as_str();
            while let Some(start) = rest.find("[[") {
                let end = rest[start..].find("]]").expect("unclosed link") + start;
                let target = rest[start + 2..end].split(['|', '#']).next().unwrap();
                assert!(stems.contains(target), "broken link {target}");
                links += 1;
                rest = &rest[end + 2..];
            }
        }
        assert!(links > 200, "only {links} links");
    }

    #[test]
    fn word_frequencies_are_zipf_like() {
        let corpus = generate(100, 1);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let mut total = 0;
        for note in &corpus.notes {
            for w in note
                .body
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| !w.is_empty())
            {
                *counts.entry(w).or_default() += 1;
                total += 1;
            }
        }
        let mut freq: Vec<usize> = counts.into_values().collect();
        freq.sort_unstable_by(|a, b| b.cmp(a));
        let share = |n: usize| freq[..n].iter().sum::<usize>() as f64 / total as f64;
        assert!(freq.len() > 300, "{} distinct words", freq.len());
        assert!((0.04..0.15).contains(&share(1)), "top word {}", share(1));
        assert!(share(10) > 0.2 && share(10) < 0.5, "top ten {}", share(10));
        // Query words skip the stopword-like head but still occur often.
        let q = &corpus.query_words;
        assert!(q.len() >= 100 && !q.contains(&"that".to_string()));
    }

    #[test]
    fn queries_have_expected_shapes() {
        let words = vec!["alpha".to_string(), "bravo".to_string()];
        let mut rng = Rng::new(5);
        let queries: Vec<String> = (0..200).map(|_| query(&mut rng, &words)).collect();
        assert!(queries.iter().any(|q| q.ends_with('*') && q.len() == 4));
        assert!(queries.iter().any(|q| q.contains(' ')));
        assert!(queries.iter().filter(|q| words.contains(q)).count() > 100);
    }

    #[test]
    fn gathering_moves_the_first_notes_into_one_folder() {
        let mut corpus = generate(50, 6);
        let before = corpus.notes.clone();
        corpus.gather_into("inbox", 30);
        let paths: HashSet<&str> = corpus.notes.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(paths.len(), 50, "paths stay unique");
        for (i, (now, was)) in corpus.notes.iter().zip(&before).enumerate() {
            if i < 30 {
                assert_eq!(now.path, format!("inbox/note-{i:05}.md"));
            } else {
                assert_eq!(now.path, was.path);
            }
            assert_eq!(now.raw, was.raw);
        }
        assert!(corpus.top_folders().contains(&"inbox".to_string()));
    }

    #[test]
    fn loads_a_folder_with_frontmatter() {
        let dir = tempfile::tempdir().unwrap();
        generate(5, 2).write_to(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join(".obsidian")).unwrap();
        std::fs::write(dir.path().join(".obsidian/x.md"), "hidden").unwrap();
        std::fs::write(dir.path().join("plain.md"), "just text\n").unwrap();
        let loaded = load_dir(dir.path()).unwrap();
        assert_eq!(loaded.notes.len(), 6);
        let generated = generate(5, 2);
        for note in &generated.notes {
            let got = loaded.notes.iter().find(|n| n.path == note.path).unwrap();
            assert_eq!(got.title, note.title);
            assert_eq!(got.body, note.body);
            assert_eq!(got.raw, note.raw);
        }
        let plain = loaded.notes.iter().find(|n| n.path == "plain.md").unwrap();
        assert_eq!(plain.title, "plain");
        assert_eq!(plain.body, "just text\n");
    }
}
