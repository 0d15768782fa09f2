//! Output observer: the worker's stdout and stderr, line by line (from the launcher's reports, or tailed from the
//! stdio files), tagged with the profile's markers, in bounded memory whatever the worker prints.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use regex::Regex;
use sockdiag_probes::{EventKind, Marker, Stream};

/// Longest line kept; the rest of a longer line is counted as dropped.
const MAX_LINE: usize = 4096;
/// Bytes of the first lines kept per stream per run, and of the last lines: the start says how it began, the end
/// says how it died. What falls between is counted, not kept.
const HEAD_BYTES: u64 = 512 << 10;
pub(crate) const TAIL_BYTES: u64 = 512 << 10;
/// Bytes read from a file per look: a file that jumped by gigabytes (sparse, or truncated and rewritten) costs one
/// bounded read, then a skip to its tail, never a read of the whole.
const READ_MAX: u64 = 1 << 20;
/// Reads of a file at the end of a run: enough for a head, the skip and a tail ((HEAD + TAIL) / READ_MAX + 2),
/// not a chase after a file that something outside the run keeps writing.
const FINAL_READS: usize = 4;
/// The compiled marker regexes of a profile.
#[derive(Clone, Default)]
pub(crate) struct Markers {
    pub(crate) entry: Option<Regex>,
    pub(crate) listening: Option<Regex>,
}

impl Markers {
    /// The markers this profile defines.
    pub(crate) fn defined(&self) -> Vec<Marker> {
        let mut out = Vec::new();
        if self.entry.is_some() {
            out.push(Marker::Entry);
        }
        if self.listening.is_some() {
            out.push(Marker::Listening);
        }
        out
    }

    pub(crate) fn tag(&self, line: &str) -> Vec<Marker> {
        let mut found = Vec::new();
        if self.entry.as_ref().is_some_and(|r| r.is_match(line)) {
            found.push(Marker::Entry);
        }
        if self.listening.as_ref().is_some_and(|r| r.is_match(line)) {
            found.push(Marker::Listening);
        }
        found
    }
}

/// Turns bytes into bounded line events: the head is reported as it comes, the tail is held back (with the time
/// each line arrived) until the end, and what falls between is counted. Shared by the pipe readers and the
/// file tailer.
pub(crate) struct LineSplitter {
    stream: Stream,
    markers: Markers,
    partial: Vec<u8>,
    head_kept: u64,
    /// Raw lines after the head, with their arrival time: turned into events (and matched) only if they survive.
    tail: VecDeque<(Instant, Vec<u8>)>,
    tail_kept: u64,
    dropped: u64,
}

impl LineSplitter {
    pub(crate) fn new(stream: Stream, markers: Markers) -> Self {
        LineSplitter {
            stream,
            markers,
            partial: Vec::new(),
            head_kept: 0,
            tail: VecDeque::new(),
            tail_kept: 0,
            dropped: 0,
        }
    }

    /// Feeds bytes that arrived at `at`; returns the head lines to report now.
    pub(crate) fn feed(&mut self, bytes: &[u8], at: Instant) -> Vec<(Instant, EventKind)> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.push_partial(&rest[..nl]);
            let line = std::mem::take(&mut self.partial);
            out.extend(self.line(&line, at));
            rest = &rest[nl + 1..];
        }
        self.push_partial(rest);
        out
    }

    /// Flushes a last unterminated line, the held-back tail, and what was dropped.
    pub(crate) fn finish(&mut self, at: Instant) -> Vec<(Instant, EventKind)> {
        let line = std::mem::take(&mut self.partial);
        let mut out: Vec<(Instant, EventKind)> =
            if line.is_empty() { vec![] } else { self.line(&line, at).into_iter().collect() };
        let tail: Vec<(Instant, Vec<u8>)> = self.tail.drain(..).collect();
        out.extend(tail.into_iter().map(|(t, bytes)| (t, self.event(&bytes))));
        self.tail_kept = 0;
        if self.dropped > 0 {
            out.push((at, EventKind::OutputDropped { stream: self.stream, bytes: self.dropped }));
            self.dropped = 0;
        }
        out
    }

    fn push_partial(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.partial.len()).min(bytes.len());
        self.partial.extend_from_slice(&bytes[..room]);
        self.dropped += (bytes.len() - room) as u64;
    }

    /// True once no more head lines can be reported (the budget is spent, or a line went to the tail or was cut):
    /// what comes next can only join the tail.
    pub(crate) fn head_closed(&self) -> bool {
        self.head_kept >= HEAD_BYTES - MAX_LINE as u64 || !self.tail.is_empty() || self.dropped > 0
    }

    /// Counts bytes that were never read (a file's middle) as dropped; the tail before them is dropped too.
    pub(crate) fn skip(&mut self, bytes: u64) {
        self.dropped += bytes + self.tail_kept + self.partial.len() as u64;
        self.tail.clear();
        self.tail_kept = 0;
        self.partial.clear();
    }

    fn event(&self, bytes: &[u8]) -> EventKind {
        let text = String::from_utf8_lossy(bytes).trim_end_matches('\r').to_string();
        let markers = self.markers.tag(&text);
        EventKind::Line { stream: self.stream, text, markers }
    }

    fn line(&mut self, bytes: &[u8], at: Instant) -> Option<(Instant, EventKind)> {
        let size = bytes.len() as u64 + 1;
        // Once a line has gone to the tail, the head is closed: the order of lines is kept.
        if self.tail.is_empty() && self.dropped == 0 && self.head_kept + size <= HEAD_BYTES {
            self.head_kept += size;
            return Some((at, self.event(bytes)));
        }
        self.tail.push_back((at, bytes.to_vec()));
        self.tail_kept += size;
        while self.tail_kept > TAIL_BYTES {
            let Some((_, old)) = self.tail.pop_front() else { break };
            self.tail_kept -= old.len() as u64 + 1;
            self.dropped += old.len() as u64 + 1;
        }
        None
    }
}

/// A file read as it grows: a stdio file (file mode) or a log file. Once the head budget is spent, only the last bytes can still be kept,
/// so the middle of a flood is skipped on disk instead of being read.
pub(crate) struct Tail {
    pub(crate) path: PathBuf,
    /// The sandbox the file lies in, if it does: opened beneath it (see `confine`).
    beneath: Option<PathBuf>,
    pending: Arc<AtomicBool>,
    offset: u64,
    /// Bytes read from the file so far (what was skipped is not read).
    read: u64,
    splitter: LineSplitter,
}

impl Tail {
    pub(crate) fn new(
        path: PathBuf,
        beneath: Option<PathBuf>,
        pending: Arc<AtomicBool>,
        stream: Stream,
        markers: Markers,
    ) -> Self {
        Tail { path, beneath, pending, offset: 0, read: 0, splitter: LineSplitter::new(stream, markers) }
    }

    /// The complete lines written since the last read, with the time they were read.
    pub(crate) fn read_new(&mut self) -> Vec<(Instant, EventKind)> {
        self.pending.store(false, Ordering::Release);
        let Ok(mut f) = crate::confine::open_file(&self.path, self.beneath.as_deref()) else { return vec![] };
        let len = f.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            // Truncated (a log rotated in place): read it again from the start.
            self.offset = 0;
        }
        let keep_from = len.saturating_sub(TAIL_BYTES);
        if self.splitter.head_closed() && keep_from > self.offset {
            self.splitter.skip(keep_from - self.offset);
            self.offset = keep_from;
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return vec![];
        }
        let mut buf = Vec::new();
        // Bounded per read; the rest comes with the next notification or the final read.
        let n = f.by_ref().take(READ_MAX).read_to_end(&mut buf).unwrap_or(0);
        self.offset += n as u64;
        self.read += n as u64;
        self.splitter.feed(&buf[..n], Instant::now())
    }

    /// Everything left, the last unterminated line and the held-back tail included.
    pub(crate) fn read_to_end(&mut self) -> Vec<(Instant, EventKind)> {
        let mut all = Vec::new();
        for _ in 0..FINAL_READS {
            let before = self.offset;
            all.extend(self.read_new());
            if self.offset == before {
                break;
            }
        }
        all.extend(self.splitter.finish(Instant::now()));
        all
    }
}

impl Tail {
    /// Bytes read from the file so far.
    #[cfg(test)]
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read
    }
}

/// A line with the "listening" marker: the worker says it serves, so the expected path is looked at at once.
pub(crate) fn is_listening_line(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Line { markers, .. } if markers.contains(&Marker::Listening))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kept_bytes(events: &[(Instant, EventKind)]) -> (u64, u64) {
        let mut kept = 0;
        let mut dropped = 0;
        for (_, e) in events {
            match e {
                EventKind::Line { text, .. } => {
                    assert!(!text.contains('\n'));
                    kept += text.len() as u64 + 1;
                }
                EventKind::OutputDropped { bytes, .. } => dropped += bytes,
                _ => {}
            }
        }
        (kept, dropped)
    }

    proptest! {
        #[test]
        fn memory_stays_bounded_and_nothing_is_lost_silently(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20_000), 0..200)) {
            let mut s = LineSplitter::new(Stream::Stdout, Markers::default());
            let now = Instant::now();
            let mut events = Vec::new();
            for c in &chunks {
                events.extend(s.feed(c, now));
            }
            events.extend(s.finish(now));
            let (kept, dropped) = kept_bytes(&events);
            // A byte of invalid UTF-8 becomes U+FFFD (3 bytes): the bound holds within that factor.
            prop_assert!(kept <= 3 * (HEAD_BYTES + TAIL_BYTES + MAX_LINE as u64));
            let total: u64 = chunks.iter().map(|c| c.len() as u64).sum();
            // Lossy UTF-8 may grow a kept line; everything else is kept or counted.
            if chunks.iter().all(|c| std::str::from_utf8(c).is_ok()) && total > 0 {
                prop_assert!(kept + dropped + 1 >= total, "kept {} + dropped {} < {}", kept, dropped, total);
            }
        }

        #[test]
        fn markers_tag_exactly_the_matching_lines(lines in proptest::collection::vec("[a-z ]{0,30}", 0..50)) {
            let markers = Markers { entry: None, listening: Some(Regex::new("listening").unwrap()) };
            let mut s = LineSplitter::new(Stream::Stderr, markers);
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let events = s.feed(text.as_bytes(), Instant::now());
            prop_assert_eq!(events.len(), lines.len());
            for ((_, e), l) in events.iter().zip(&lines) {
                let EventKind::Line { text, markers, .. } = e else { panic!("a line") };
                prop_assert_eq!(text, l);
                prop_assert_eq!(markers.contains(&Marker::Listening), l.contains("listening"));
            }
        }
    }
}
