//! Unified diffs of two versions of a note, line by line, as `edit_note` shows them.
//!
//! The edit script is Myers' O((N+M)D) algorithm on the lines left once the common head and
//! tail are set aside, so the usual edit (a few lines changed in a long note) costs a pass
//! over the note. Past [`MAX_EDIT_DISTANCE`] differing lines the middle is shown as one
//! removal and one insertion instead: still a correct diff, only a longer one.

/// Lines of unchanged context around each change.
const CONTEXT: usize = 3;
/// Differing lines beyond which the search for a shortest edit script gives up.
const MAX_EDIT_DISTANCE: usize = 1000;

/// One step of an edit script, by line index in the old (`a`) or new (`b`) text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Keep(usize, usize),
    Remove(usize),
    Add(usize),
}

/// A unified diff, cut at a line boundary once it passes `max_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// `--- a/<path>` / `+++ b/<path>` headers and `@@` hunks; empty when the texts are equal.
    pub text: String,
    /// True when hunks were left out to keep within the size bound.
    pub truncated: bool,
}

/// The unified diff from `old` to `new`, both named `path`, at most about `max_bytes` long.
pub fn unified(path: &str, old: &str, new: &str, max_bytes: usize) -> Diff {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let steps = script(&a, &b);
    let mut text = String::new();
    if steps.iter().all(|s| matches!(s, Step::Keep(..))) {
        return Diff {
            text,
            truncated: false,
        };
    }
    text.push_str(&format!("--- a/{path}\n+++ b/{path}\n"));
    let mut truncated = false;
    for hunk in hunks(&steps) {
        let prior = &steps[..hunk.0];
        let before = (
            prior.iter().filter(|s| !matches!(s, Step::Add(_))).count(),
            prior
                .iter()
                .filter(|s| !matches!(s, Step::Remove(_)))
                .count(),
        );
        let rendered = render_hunk(&steps[hunk.0..hunk.1], &a, &b, before);
        if text.len() + rendered.len() > max_bytes {
            truncated = true;
            break;
        }
        text.push_str(&rendered);
    }
    Diff { text, truncated }
}

/// The edit script from `a` to `b`: common head, Myers on the middle, common tail.
fn script(a: &[&str], b: &[&str]) -> Vec<Step> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (mid_a, mid_b) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let mut steps: Vec<Step> = (0..head).map(|i| Step::Keep(i, i)).collect();
    let middle = myers(mid_a, mid_b).unwrap_or_else(|| {
        let removed = (0..mid_a.len()).map(Step::Remove);
        removed.chain((0..mid_b.len()).map(Step::Add)).collect()
    });
    steps.extend(middle.into_iter().map(|s| match s {
        Step::Keep(x, y) => Step::Keep(x + head, y + head),
        Step::Remove(x) => Step::Remove(x + head),
        Step::Add(y) => Step::Add(y + head),
    }));
    let (ta, tb) = (a.len() - tail, b.len() - tail);
    steps.extend((0..tail).map(|i| Step::Keep(ta + i, tb + i)));
    steps
}

/// A shortest edit script from `a` to `b`, or `None` when it needs more than
/// [`MAX_EDIT_DISTANCE`] steps. `trace[d][k + d]` is the furthest `x` reached on diagonal
/// `k = x - y` with `d` differences, so memory grows with D², not with the texts.
fn myers(a: &[&str], b: &[&str]) -> Option<Vec<Step>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let max_d = (n + m).min(MAX_EDIT_DISTANCE as isize);
    for d in 0..=max_d {
        let mut v = vec![0isize; (2 * d + 1) as usize];
        let mut k = -d;
        while k <= d {
            let mut x = if d == 0 {
                0
            } else {
                let prev = &trace[(d - 1) as usize];
                let at = |k: isize| prev[(k + d - 1) as usize];
                if k == -d || (k != d && at(k - 1) < at(k + 1)) {
                    at(k + 1)
                } else {
                    at(k - 1) + 1
                }
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[(k + d) as usize] = x;
            if x >= n && y >= m {
                trace.push(v);
                return Some(backtrack(&trace, n, m));
            }
            k += 2;
        }
        trace.push(v);
    }
    None
}

/// Walk the trace back from the end to the start, collecting the steps in order.
fn backtrack(trace: &[Vec<isize>], n: isize, m: isize) -> Vec<Step> {
    let (mut x, mut y) = (n, m);
    let mut steps = Vec::new();
    for d in (1..trace.len() as isize).rev() {
        let prev = &trace[(d - 1) as usize];
        let at = |k: isize| prev[(k + d - 1) as usize];
        let k = x - y;
        let prev_k = if k == -d || (k != d && at(k - 1) < at(k + 1)) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = at(prev_k);
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
            steps.push(Step::Keep(x as usize, y as usize));
        }
        if x == prev_x {
            y -= 1;
            steps.push(Step::Add(y as usize));
        } else {
            x -= 1;
            steps.push(Step::Remove(x as usize));
        }
    }
    while x > 0 && y > 0 {
        x -= 1;
        y -= 1;
        steps.push(Step::Keep(x as usize, y as usize));
    }
    steps.reverse();
    steps
}

/// The ranges of `steps` that form hunks: each change with up to [`CONTEXT`] kept lines on
/// either side, changes closer than twice that sharing one hunk.
fn hunks(steps: &[Step]) -> Vec<(usize, usize)> {
    let changes: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| !matches!(s, Step::Keep(..)))
        .map(|(i, _)| i)
        .collect();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &i in &changes {
        let start = i.saturating_sub(CONTEXT);
        let end = (i + 1 + CONTEXT).min(steps.len());
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => out.push((start, end)),
        }
    }
    out
}

/// One `@@ -l,s +l,s @@` hunk with its lines; `before` is how many old and new lines come
/// before it (an empty side starts "after" the line before it, as diff(1) writes it).
fn render_hunk(steps: &[Step], a: &[&str], b: &[&str], before: (usize, usize)) -> String {
    let old_len = steps.iter().filter(|s| !matches!(s, Step::Add(_))).count();
    let new_len = steps
        .iter()
        .filter(|s| !matches!(s, Step::Remove(_)))
        .count();
    let start = |before: usize, len: usize| if len > 0 { before + 1 } else { before };
    let mut out = format!(
        "@@ -{},{old_len} +{},{new_len} @@\n",
        start(before.0, old_len),
        start(before.1, new_len),
    );
    for s in steps {
        let (mark, line) = match *s {
            Step::Keep(x, _) => (' ', a[x]),
            Step::Remove(x) => ('-', a[x]),
            Step::Add(y) => ('+', b[y]),
        };
        out.push(mark);
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apply a unified diff's hunks to `old`, as `patch` would, to check the diff is exact.
    fn apply(old: &str, diff: &str) -> String {
        let a: Vec<&str> = old.split_inclusive('\n').collect();
        let mut out = String::new();
        let mut next = 0usize;
        // Split on `\n` only: a CRLF note's lines keep their `\r`.
        let mut lines = diff.split_terminator('\n').skip(2).peekable();
        while let Some(header) = lines.next() {
            let old_start: usize = header[4..].split(',').next().unwrap().parse().unwrap();
            let old_len: usize = header
                .split(',')
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let first = if old_len == 0 {
                old_start
            } else {
                old_start - 1
            };
            out.extend(a[next..first].iter().copied());
            next = first;
            while let Some(l) = lines.peek().copied() {
                if l.starts_with("@@") {
                    break;
                }
                lines.next();
                let no_newline = lines.peek() == Some(&"\\ No newline at end of file");
                if no_newline {
                    lines.next();
                }
                let text = format!("{}{}", &l[1..], if no_newline { "" } else { "\n" });
                match &l[..1] {
                    " " => {
                        out.push_str(&text);
                        next += 1;
                    }
                    "-" => next += 1,
                    _ => out.push_str(&text),
                }
            }
        }
        out.extend(a[next..].iter().copied());
        out
    }

    #[test]
    fn a_one_line_change_is_one_hunk_with_context() {
        let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = old.replace("line 10\n", "line ten\n");
        let d = unified("n.md", &old, &new, 10_000);
        assert_eq!(
            d.text,
            "--- a/n.md\n+++ b/n.md\n@@ -7,7 +7,7 @@\n line 7\n line 8\n line 9\n-line 10\n\
             +line ten\n line 11\n line 12\n line 13\n"
        );
        assert!(!d.truncated);
        assert_eq!(apply(&old, &d.text), new);
    }

    #[test]
    fn equal_texts_have_an_empty_diff() {
        assert_eq!(unified("a.md", "x\ny\n", "x\ny\n", 100).text, "");
    }

    #[test]
    fn insertions_at_the_ends_and_a_missing_final_newline() {
        let cases = [
            ("", "a\n"),
            ("a\n", ""),
            ("a\nb", "a\nb\nc\n"),
            ("b\n", "a\nb\n"),
            ("a\nb\n", "a\nb"),
            ("x\r\ny\r\n", "x\r\nz\r\ny\r\n"),
        ];
        for (old, new) in cases {
            let d = unified("p.md", old, new, 10_000);
            assert_eq!(apply(old, &d.text), new, "{old:?} -> {new:?}\n{}", d.text);
        }
        let d = unified("p.md", "", "a\n", 100);
        assert!(d.text.contains("@@ -0,0 +1,1 @@"), "{}", d.text);
    }

    #[test]
    fn generated_edits_round_trip_through_the_diff() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..300 {
            let old: Vec<String> = (0..next(30)).map(|_| format!("w{}\n", next(6))).collect();
            let mut new = old.clone();
            for _ in 0..next(6) {
                match next(3) {
                    0 if !new.is_empty() => {
                        new.remove(next(new.len() as u64) as usize);
                    }
                    1 => new.insert(
                        next(new.len() as u64 + 1) as usize,
                        format!("n{}\n", next(6)),
                    ),
                    _ if !new.is_empty() => {
                        let i = next(new.len() as u64) as usize;
                        new[i] = format!("c{}\n", next(6));
                    }
                    _ => {}
                }
            }
            let (old, new) = (old.concat(), new.concat());
            let d = unified("g.md", &old, &new, usize::MAX);
            assert_eq!(apply(&old, &d.text), new, "{old:?} -> {new:?}\n{}", d.text);
        }
    }

    #[test]
    fn a_long_diff_is_cut_at_a_hunk_and_says_so() {
        let old: String = (0..400).map(|i| format!("line {i}\n")).collect();
        let new: String = (0..400)
            .map(|i| {
                if i % 10 == 0 {
                    format!("changed {i}\n")
                } else {
                    format!("line {i}\n")
                }
            })
            .collect();
        let d = unified("big.md", &old, &new, 500);
        assert!(d.truncated);
        assert!(d.text.len() <= 500, "{}", d.text.len());
        assert!(d.text.contains("@@"));
    }

    #[test]
    fn very_different_texts_fall_back_to_remove_then_add() {
        let old: String = (0..1500).map(|i| format!("a{i}\n")).collect();
        let new: String = (0..1500).map(|i| format!("b{i}\n")).collect();
        let d = unified("x.md", &old, &new, usize::MAX);
        assert_eq!(apply(&old, &d.text), new);
    }
}
