//! Log file observer: the files the profile's `[observe] logs` globs match, read as they grow (the fs watcher
//! forwards their changes; a look at the globs catches files whose events came before their directory was
//! watched). Only new bytes are read, up to a bound per look (a file that jumps by gigabytes is read from near its
//! end); lines are bounded like stdout's; each look at the globs is bounded too (`log_glob`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sockdiag_probes::{EventKind, Stream};

use super::log_glob;
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
    /// A look at the globs was cut by its bounds (said once in the timeline).
    cut: bool,
}

impl LogFiles {
    /// `globs` are already expanded for the run; an invalid one is reported by the caller's profile check.
    pub(crate) fn new(globs: &[String], markers: Markers, beneath: Option<PathBuf>) -> Self {
        let patterns = globs.iter().filter_map(|g| glob::Pattern::new(g).ok()).collect();
        let pending = Arc::new(AtomicBool::new(false));
        LogFiles { patterns, pending, markers, files: BTreeMap::new(), beneath, cut: false }
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
        let found = log_glob::matching(&self.patterns);
        let mut out: Vec<Stamped> = found.files.iter().flat_map(|p| self.read(p)).collect();
        if found.cut && !self.cut {
            self.cut = true;
            let text = format!(
                "observe.logs: a look at the log globs stopped at its bound ({} entries or {} ms); files beyond it are not read",
                log_glob::ENTRIES_MAX,
                log_glob::TIME_MAX.as_millis()
            );
            out.push((Instant::now(), EventKind::Note { text }));
        }
        out
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

    fn texts(v: &[Stamped]) -> Vec<&str> {
        v.iter()
            .filter_map(|(_, k)| match k {
                EventKind::LogLine { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    fn notes(v: &[Stamped]) -> Vec<&str> {
        v.iter()
            .filter_map(|(_, k)| match k {
                EventKind::Note { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_log_that_jumps_by_gigabytes_is_read_from_near_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.log");
        std::fs::write(&path, "first\n").unwrap();
        let mut files = LogFiles::new(&[path.display().to_string()], Markers::default(), Some(dir.path().into()));
        assert_eq!(texts(&files.poll()), ["first"]);
        // 20 GiB of holes (sparse on ext4 and tmpfs), then a last line.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let size: u64 = 20 << 30;
        f.set_len(size).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"\nlast\n", size).unwrap();
        let polled = files.poll();
        assert!(texts(&polled).iter().map(|t| t.len()).sum::<usize>() <= 8192, "one cut line of holes at most");
        let finished = files.finish();
        assert_eq!(texts(&finished).last(), Some(&"last"));
        assert!(notes(&finished).iter().any(|n| n.ends_with("bytes not kept")), "{:?}", notes(&finished));
        let read: u64 = files.files.values().map(Tail::bytes_read).sum();
        assert!(read <= 4 << 20, "read {read} bytes of a {size}-byte file");
    }

    #[test]
    fn a_symlink_loop_under_the_logs_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(logs.join("a")).unwrap();
        std::fs::write(logs.join("a/w.log"), "said\n").unwrap();
        std::os::unix::fs::symlink(&logs, logs.join("a/loop")).unwrap();
        let glob = format!("{}/**/*.log", logs.display());
        let mut files = LogFiles::new(&[glob], Markers::default(), Some(dir.path().into()));
        let polled = files.finish();
        assert_eq!(texts(&polled), ["said"]);
        assert_eq!(files.files.len(), 1);
        assert_eq!(notes(&polled), Vec::<&str>::new());
    }

    #[test]
    fn a_glob_over_the_whole_filesystem_stops_at_its_bound_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = LogFiles::new(&["/**/*".to_string()], Markers::default(), Some(dir.path().into()));
        let first = files.poll();
        assert!(files.files.len() <= MAX_FILES);
        assert_eq!(notes(&first).iter().filter(|n| n.contains("stopped at its bound")).count(), 1);
        assert!(!notes(&files.poll()).iter().any(|n| n.contains("stopped at its bound")), "said once");
    }
}
