//! Rewriting `[[links]]` when notes move: where each link's target sits in a body, which note
//! a target resolves to before and after the move (the index's own rule, [`choose`], over the
//! notes in memory), and the new target text, in the shortest form the writer used that still
//! resolves to the moved note.
//!
//! Only the target text changes: `!`, `#heading`, `|alias` and everything around the link
//! stay byte for byte.

use std::collections::HashMap;
use std::ops::Range;

use crate::index::{choose, link_key, Candidate};
use crate::note::WikiLink;

/// A link of a body with the byte range of its target text.
#[derive(Debug, Clone)]
pub struct Located {
    pub link: WikiLink,
    /// Where the (trimmed) target is written in the body.
    pub target: Range<usize>,
}

/// The links of `body` (exactly those the scanner finds, so nothing in code), with where
/// their targets are written.
pub fn located_links(body: &str) -> Vec<Located> {
    super::body::extract_links(body)
        .into_iter()
        .filter_map(|link| {
            let open = link.span.start + usize::from(link.embed) + 2;
            let inner = body.get(open..link.span.end.checked_sub(2)?)?;
            let start = open + (inner.len() - inner.trim_start().len());
            let target = start..start + link.target.len();
            (body.get(target.clone())? == link.target).then_some(Located { link, target })
        })
        .collect()
}

/// Replace target ranges (sorted, not overlapping) with new text.
pub fn rewrite(body: &str, edits: &[(Range<usize>, String)]) -> String {
    let mut out = String::with_capacity(body.len() + 64);
    let mut at = 0;
    for (range, text) in edits {
        out.push_str(&body[at..range.start]);
        out.push_str(text);
        at = range.end;
    }
    out.push_str(&body[at..]);
    out
}

/// The notes of a vault as link resolution sees them (path and title), with the lookups
/// [`choose`] needs.
#[derive(Default)]
pub struct World {
    notes: Vec<(String, Candidate)>,
    by_path: HashMap<String, Vec<usize>>,
    by_stem: HashMap<String, Vec<usize>>,
    by_title: HashMap<String, Vec<usize>>,
}

impl World {
    /// A world of `(path, title)` notes.
    pub fn new<'a>(notes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut world = World::default();
        for (path, title) in notes {
            world.add(path, title);
        }
        world
    }

    fn add(&mut self, path: &str, title: &str) {
        let (path_key, stem) = link_key(path);
        let folder = path.rsplit_once('/').map_or("", |(f, _)| f).to_string();
        let i = self.notes.len();
        self.by_path.entry(path_key.clone()).or_default().push(i);
        self.by_stem.entry(stem).or_default().push(i);
        let title_key = title.to_lowercase();
        self.by_title.entry(title_key.clone()).or_default().push(i);
        self.notes.push((
            path.to_string(),
            Candidate {
                id: i as i64,
                path_key,
                folder,
                title_key,
            },
        ));
    }

    /// The path of the note `target`, written in a note in `src_folder`, resolves to.
    pub fn resolve(&self, target: &str, src_folder: &str) -> Option<&str> {
        let (key, last) = link_key(target);
        let relative = format!("{}/{}", src_folder.to_lowercase(), key);
        let empty = Vec::new();
        let pools = [
            self.by_path.get(&key).unwrap_or(&empty),
            self.by_path.get(&relative).unwrap_or(&empty),
            self.by_stem.get(&last).unwrap_or(&empty),
            self.by_title.get(&key).unwrap_or(&empty),
        ];
        let cands = pools.into_iter().flatten().map(|&i| &self.notes[i].1);
        let id = choose(cands, src_folder, &key)?;
        Some(self.notes[id as usize].0.as_str())
    }
}

/// The target to write so that a link from `src_folder` resolves to `dest` in `world`,
/// shaped like `old` (the target as the writer had it): a bare name stays as short as it can
/// (name, then as many folders as it takes), a full path stays a full path, a partial path
/// keeps at least its number of segments; a trailing `.md` and a leading `/` are kept.
pub fn new_target(
    old: &str,
    old_dest: &str,
    dest: &str,
    src_folder: &str,
    world: &World,
) -> String {
    let lead = if old.starts_with('/') { "/" } else { "" };
    let bare_old = old.trim_start_matches('/');
    let with_md = bare_old.len() >= 3
        && bare_old.is_char_boundary(bare_old.len() - 3)
        && bare_old[bare_old.len() - 3..].eq_ignore_ascii_case(".md");
    let dest_no_ext = dest.strip_suffix(".md").unwrap_or(dest);
    let segments: Vec<&str> = dest_no_ext.split('/').collect();
    let full = segments.len();
    let old_segments = bare_old.split('/').count();
    let was_full_path = link_key(old).0 == link_key(old_dest).0 && old_segments > 1;
    let first = if was_full_path {
        full
    } else {
        old_segments.min(full)
    };
    let form = |k: usize| {
        let mut s = format!("{lead}{}", segments[full - k..].join("/"));
        if with_md {
            s.push_str(".md");
        }
        s
    };
    for k in first..=full {
        let candidate = form(k);
        if world.resolve(&candidate, src_folder) == Some(dest) {
            return candidate;
        }
    }
    form(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_located_outside_code_with_heading_alias_and_embed() {
        let body = "See [[a/Plan#Goals|the plan]] and ![[img]].\n\n```\n[[code]]\n```\n\
                    `[[inline]]` and [[ spaced ]] and [[x\\|y]]";
        let links = located_links(body);
        let targets: Vec<&str> = links.iter().map(|l| &body[l.target.clone()]).collect();
        assert_eq!(targets, ["a/Plan", "img", "spaced", "x"]);
        assert!(links[1].link.embed);
        let edits: Vec<(Range<usize>, String)> = vec![(links[0].target.clone(), "b/Plan".into())];
        assert!(rewrite(body, &edits).starts_with("See [[b/Plan#Goals|the plan]]"));
    }

    #[test]
    fn a_code_link_equal_to_a_real_one_is_not_taken_for_it() {
        let body = "```\n[[same]]\n```\nreal [[same]]\n";
        let links = located_links(body);
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].target.start, body.rfind("same").unwrap());
    }

    #[test]
    fn new_targets_keep_the_shortest_form_that_still_resolves() {
        let world = World::new([
            ("archive/plan.md", "Plan"),
            ("other/plan.md", "Other"),
            ("notes/idea.md", "Idea"),
        ]);
        // `plan` alone is ambiguous-by-tie and picks archive/ from elsewhere; from other/ it
        // would pick other/plan.md, so a folder is added.
        assert_eq!(
            new_target("plan", "projects/plan.md", "archive/plan.md", "", &world),
            "plan"
        );
        assert_eq!(
            new_target(
                "plan",
                "projects/plan.md",
                "archive/plan.md",
                "other",
                &world
            ),
            "archive/plan"
        );
        assert_eq!(
            new_target("Idea.md", "x/Idea.md", "notes/idea.md", "", &world),
            "idea.md"
        );
        assert_eq!(
            new_target("x/idea", "x/idea.md", "notes/idea.md", "", &world),
            "notes/idea"
        );
    }
}
