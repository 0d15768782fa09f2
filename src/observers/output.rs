//! Output observer: the worker's stdout and stderr, line by line, tagged with the profile's markers, in bounded
//! memory whatever the worker prints.

use std::io::{BufRead, BufReader, Read};

use regex::Regex;
use sockdiag_probes::{EventKind, Marker, Stream};

use super::{Msg, Sink};

/// Longest line kept; the rest of a longer line is counted as dropped.
const MAX_LINE: usize = 4096;
/// Bytes kept per stream per run; beyond that lines are counted, not kept.
const MAX_KEPT: u64 = 1 << 20;

/// The compiled marker regexes of a profile.
#[derive(Clone, Default)]
pub(crate) struct Markers {
    pub(crate) entry: Option<Regex>,
    pub(crate) listening: Option<Regex>,
}

impl Markers {
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

/// Turns bytes into bounded line events. Shared by the pipe readers and the file tailer.
pub(crate) struct LineSplitter {
    stream: Stream,
    markers: Markers,
    partial: Vec<u8>,
    kept: u64,
    dropped: u64,
}

impl LineSplitter {
    pub(crate) fn new(stream: Stream, markers: Markers) -> Self {
        LineSplitter { stream, markers, partial: Vec::new(), kept: 0, dropped: 0 }
    }

    /// Feeds bytes; returns the complete lines' events.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<EventKind> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.partial);
                out.extend(self.line(&line));
            } else if self.partial.len() < MAX_LINE {
                self.partial.push(b);
            } else {
                self.dropped += 1;
            }
        }
        out
    }

    /// Flushes a last unterminated line and reports what was dropped.
    pub(crate) fn finish(&mut self) -> Vec<EventKind> {
        let line = std::mem::take(&mut self.partial);
        let mut out: Vec<EventKind> = if line.is_empty() { vec![] } else { self.line(&line).into_iter().collect() };
        if self.dropped > 0 {
            out.push(EventKind::OutputDropped { stream: self.stream, bytes: self.dropped });
            self.dropped = 0;
        }
        out
    }

    fn line(&mut self, bytes: &[u8]) -> Option<EventKind> {
        if self.kept + bytes.len() as u64 > MAX_KEPT {
            self.dropped += bytes.len() as u64 + 1;
            return None;
        }
        self.kept += bytes.len() as u64 + 1;
        let text = String::from_utf8_lossy(bytes).trim_end_matches('\r').to_string();
        let markers = self.markers.tag(&text);
        Some(EventKind::Line { stream: self.stream, text, markers })
    }
}

/// Reads a pipe to its end on a thread of its own, reporting each line as it arrives.
pub(crate) fn drain(pipe: impl Read + Send + 'static, stream: Stream, markers: Markers, sink: Sink) {
    std::thread::spawn(move || {
        let mut splitter = LineSplitter::new(stream, markers);
        let mut reader = BufReader::with_capacity(64 * 1024, pipe);
        loop {
            let n = match reader.fill_buf() {
                Ok([]) | Err(_) => break,
                Ok(buf) => {
                    for kind in splitter.feed(buf) {
                        sink.emit(kind);
                    }
                    buf.len()
                }
            };
            reader.consume(n);
        }
        for kind in splitter.finish() {
            sink.emit(kind);
        }
        sink.send(Msg::Closed);
    });
}
