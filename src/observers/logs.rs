//! Log file observer: the files the profile's `[observe] logs` globs match, read as they grow (the fs watcher
//! forwards their changes; a look at the globs catches files whose events came before their directory was
//! watched). Only new bytes are read; lines are bounded like stdout's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sockdiag_probes::{EventKind, Stream};

use super::output::{Markers, Tail};

/// Files followed at most, so that a glob matching thousands of files cannot exhaust memory.
const MAX_FILES: usize = 16;

/// A line event with the moment it was read.
type Stamped = (Instant, EventKind);

/// The log files of one run.
pub(crate) struct LogFiles {
    patterns: Vec<glob::Pattern>,
    /// Raised by the fs watcher when a change notification is on its way, lowered here when reading.
    pending: Arc<AtomicBool>,
    markers: Markers,
    files: BTreeMap<PathBuf, Tail>,
    /// The sandbox the files lie in (a run's), opened beneath it.
    beneath: Option<PathBuf>,
}

impl LogFiles {
    /// `globs` are already expanded for the run; an invalid one is reported by the caller's profile check.
    pub(crate) fn new(globs: &[String], markers: Markers, beneath: Option<PathBuf>) -> Self {
        let patterns = globs.iter().filter_map(|g| glob::Pattern::new(g).ok()).collect();
        LogFiles { patterns, pending: Arc::new(AtomicBool::new(false)), markers, files: BTreeMap::new(), beneath }
    }

    /// What the fs watcher needs: the patterns, and the flag that coalesces a flood of notifications.
    pub(crate) fn interest(&self) -> (Vec<glob::Pattern>, Arc<AtomicBool>) {
        (self.patterns.clone(), self.pending.clone())
    }

    /// New lines of every matching file, including files that appeared since the last call.
    pub(crate) fn poll(&mut self) -> Vec<Stamped> {
        if self.patterns.is_empty() {
            return vec![];
        }
        let found: Vec<PathBuf> = self
            .patterns
            .iter()
            .filter_map(|p| glob::glob(p.as_str()).ok())
            .flat_map(|paths| paths.flatten())
            .filter(|p| p.is_file())
            .collect();
        found.iter().flat_map(|p| self.read(p)).collect()
    }

    /// New lines of one file, if it matches a pattern.
    pub(crate) fn read(&mut self, path: &Path) -> Vec<Stamped> {
        if !self.patterns.iter().any(|p| p.matches_path(path)) {
            return vec![];
        }
        self.pending.store(false, Ordering::Release);
        if !self.files.contains_key(path) {
            if self.files.len() >= MAX_FILES {
                return vec![];
            }
            let (beneath, pending) = (self.beneath.clone(), self.pending.clone());
            let tail = Tail::new(path.to_path_buf(), beneath, pending, Stream::Stdout, self.markers.clone());
            self.files.insert(path.to_path_buf(), tail);
        }
        let Some(tail) = self.files.get_mut(path) else { return vec![] };
        let file = path.display().to_string();
        tail.read_new().into_iter().map(|k| as_log(k, &file)).collect()
    }

    /// Reads every file to its end and flushes unterminated last lines.
    pub(crate) fn finish(&mut self) -> Vec<Stamped> {
        let mut out = self.poll();
        for (path, tail) in &mut self.files {
            let file = path.display().to_string();
            out.extend(tail.read_to_end().into_iter().map(|k| as_log(k, &file)));
        }
        out
    }
}

/// The splitter speaks of streams; a log line is tagged with its file instead.
fn as_log((at, kind): Stamped, file: &str) -> Stamped {
    let kind = match kind {
        EventKind::Line { text, markers, .. } => EventKind::LogLine { file: file.to_string(), text, markers },
        EventKind::OutputDropped { bytes, .. } => EventKind::Note { text: format!("{file}: {bytes} bytes not kept") },
        other => other,
    };
    (at, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_what_is_new_in_matching_files() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let glob = format!("{}/*.log", logs.display());
        let mut files = LogFiles::new(&[glob], Markers::default(), Some(dir.path().to_path_buf()));
        std::fs::write(logs.join("w.log"), "one\ntw").unwrap();
        std::fs::write(logs.join("other.txt"), "ignored\n").unwrap();
        let texts = |v: Vec<Stamped>| -> Vec<String> {
            v.into_iter()
                .filter_map(|(_, k)| match k {
                    EventKind::LogLine { text, .. } => Some(text),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(texts(files.poll()), ["one"]);
        let mut f = std::fs::OpenOptions::new().append(true).open(logs.join("w.log")).unwrap();
        std::io::Write::write_all(&mut f, b"o\nthree").unwrap();
        assert_eq!(texts(files.read(&logs.join("w.log"))), ["two"]);
        assert_eq!(texts(files.finish()), ["three"]);
    }
}
