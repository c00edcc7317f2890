//! The `edit` mode: one line changed in a large note, sent as `edit_note` (a one-line
//! replace) or as `write_note` (the whole note), in bytes on the wire and in req/s.
//!
//! Every session owns one note, so the two tools do the same change under the same load: the
//! note holds a line `revision: <session>-<n>`, and each request moves it to the next `n`.
//! `write_note` sends the whole note with the new line; `edit_note` sends
//! `replace {find: old line, replace: new line}` (expected once, so a lost update would fail).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;
use tokio::task::JoinSet;

use crate::client::{CallError, Session};
use crate::workload::{new_histogram, Tally, Target};

/// Which tool carries the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    WriteNote,
    EditNote,
}

impl Carrier {
    pub fn label(self) -> &'static str {
        match self {
            Carrier::WriteNote => "write_note (whole note)",
            Carrier::EditNote => "edit_note (1-line replace)",
        }
    }
}

/// The note a session edits: the text before and after its revision line.
pub struct BigNote {
    head: String,
    tail: String,
}

impl BigNote {
    /// About `bytes` of markdown (headings, paragraphs, a list), the revision line midway.
    pub fn new(bytes: usize) -> Self {
        let mut text = String::new();
        let mut section = 0;
        while text.len() < bytes {
            section += 1;
            text.push_str(&format!("## Section {section}\n\n"));
            for sentence in 0..6 {
                text.push_str(&format!(
                    "Paragraph {section}.{sentence} says what the plan needs next and links \
                     [[note-{section}]] with #tag{}. ",
                    section % 7
                ));
            }
            text.push_str("\n\n- first point\n- second point\n\n");
        }
        let mid = text.len() / 2;
        let cut = text[mid..].find("\n\n").map_or(mid, |i| mid + i + 2);
        BigNote {
            head: text[..cut].to_string(),
            tail: text[cut..].to_string(),
        }
    }

    fn line(session: usize, n: u64) -> String {
        format!("revision: {session}-{n}\n")
    }

    fn body(&self, session: usize, n: u64) -> String {
        format!("{}{}{}", self.head, Self::line(session, n), self.tail)
    }

    pub fn size(&self) -> usize {
        self.head.len() + self.tail.len() + Self::line(0, 0).len()
    }
}

/// What one carrier's run produced.
pub struct EditOutcome {
    pub ok: u64,
    pub hist: Histogram<u64>,
    pub measured: Duration,
    /// Request and answer bytes (HTTP bodies) of the measured successful calls.
    pub sent: u64,
    pub received: u64,
    pub errors: Tally,
}

impl EditOutcome {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.measured.as_secs_f64()
    }

    pub fn per_request(&self, bytes: u64) -> Option<f64> {
        (self.ok > 0).then(|| bytes as f64 / self.ok as f64)
    }
}

fn path_of(session: usize) -> String {
    format!("edit-bench/session-{session:03}.md")
}

/// `concurrency` sessions, each writing its note first (not measured), then changing its
/// revision line with `carrier` for the warm-up and the measured window.
pub async fn drive(
    target: &Target,
    note: Arc<BigNote>,
    carrier: Carrier,
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
) -> EditOutcome {
    let mut tasks = JoinSet::new();
    // Sessions open and write their notes before anyone starts the clock.
    let start_line = Arc::new(tokio::sync::Barrier::new(concurrency));
    for i in 0..concurrency {
        let t = target.clone();
        let note = note.clone();
        let start_line = start_line.clone();
        tasks.spawn(async move {
            let mut errors = Tally::default();
            let setup = async {
                let token = &t.tokens[i % t.tokens.len()];
                let mut s = Session::open(&t.http, &t.url, token).await?;
                s.call_tool(
                    "write_note",
                    json!({"path": path_of(i), "body": note.body(i, 0)}),
                )
                .await?;
                Ok::<_, CallError>(s)
            };
            let session = setup.await;
            start_line.wait().await;
            let mut session = match session {
                Ok(s) => s,
                Err(e) => {
                    errors.add(&e);
                    return (new_histogram(), 0, 0, 0, errors);
                }
            };
            let began = Instant::now();
            let (measure_from, end) = (began + warmup, began + warmup + measure);
            let (mut hist, mut ok, mut sent_total, mut recv_total) = (new_histogram(), 0, 0, 0);
            let mut current = 0u64;
            loop {
                let sent_at = Instant::now();
                if sent_at >= end {
                    break;
                }
                let next = current + 1;
                let args = match carrier {
                    Carrier::WriteNote => json!({"path": path_of(i), "body": note.body(i, next)}),
                    Carrier::EditNote => json!({"path": path_of(i), "edits": [{
                        "op": "replace",
                        "find": BigNote::line(i, current),
                        "replace": BigNote::line(i, next),
                    }]}),
                };
                let tool = match carrier {
                    Carrier::WriteNote => "write_note",
                    Carrier::EditNote => "edit_note",
                };
                match session.call_tool_counted(tool, args).await {
                    Ok((sent, received)) => {
                        current = next;
                        if sent_at >= measure_from {
                            hist.saturating_record(sent_at.elapsed().as_micros() as u64);
                            ok += 1;
                            sent_total += sent as u64;
                            recv_total += received as u64;
                        }
                    }
                    Err(e) => errors.add(&e),
                }
            }
            if let Err(e) = session.close().await {
                errors.add(&e);
            }
            (hist, ok, sent_total, recv_total, errors)
        });
    }
    let mut out = EditOutcome {
        ok: 0,
        hist: new_histogram(),
        measured: measure,
        sent: 0,
        received: 0,
        errors: Tally::default(),
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((hist, ok, sent, received, errs)) => {
                // Same bounds on both sides, so adding cannot fail.
                let _ = out.hist.add(&hist);
                out.ok += ok;
                out.sent += sent;
                out.received += received;
                out.errors.merge(errs);
            }
            Err(e) => out.errors.add(&CallError::Transport(format!("task: {e}"))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_is_about_the_size_asked_with_one_revision_line() {
        let note = BigNote::new(20 * 1024);
        let body = note.body(3, 7);
        assert!(
            (20 * 1024..22 * 1024).contains(&body.len()),
            "{}",
            body.len()
        );
        assert_eq!(body.matches("revision: 3-7\n").count(), 1);
        assert_eq!(body.matches("revision:").count(), 1);
        assert_eq!(note.size(), note.body(0, 0).len());
        assert!(body.find("revision").unwrap() > 9 * 1024, "midway");
    }
}
