//! The files the `[observe] logs` patterns match, found within bounds: a pattern is matched by walking the
//! directories under its literal prefix (not by the `glob` crate, which follows symlinked directories into loops
//! and has no limit), never through a symlink, at most `ENTRIES_MAX` entries and `TIME_MAX` per look, so that
//! `logs/**/*.log` over a symlink loop or `/**/*` costs one short, bounded look.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use glob::{MatchOptions, Pattern};

/// Directory entries looked at per look, over every pattern: a log directory holds a few files; `/**/*` would hold
/// millions, and each look would otherwise walk them all.
pub(crate) const ENTRIES_MAX: usize = 4096;
/// Time a look may take: the run's loop looks many times within its window.
pub(crate) const TIME_MAX: Duration = Duration::from_millis(50);
/// Directories below a pattern's prefix walked into at most (for `**`): deeper than any log layout.
const DEPTH_MAX: usize = 16;

/// `*` stops at `/`, as in a shell (and in `glob::glob`).
const OPTIONS: MatchOptions =
    MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };

/// What one look found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) files: BTreeSet<PathBuf>,
    /// True when a bound stopped the look before it had seen everything under the patterns.
    pub(crate) cut: bool,
}

/// The regular files (or symlinks to them, which the reader opens without leaving the sandbox) that `patterns`
/// match, within the bounds.
pub(crate) fn matching(patterns: &[Pattern]) -> Found {
    let mut walk = Walk { found: Found::default(), entries: 0, deadline: Instant::now() + TIME_MAX, stopped: false };
    for pattern in patterns {
        let (prefix, depth) = literal_prefix(pattern.as_str());
        walk.dir(pattern, &prefix, depth);
    }
    walk.found
}

/// The directory a walk starts at (the components before the first wildcard) and how deep below it a match can
/// lie: the components after it, or `DEPTH_MAX` with `**`.
fn literal_prefix(pattern: &str) -> (PathBuf, usize) {
    let path = Path::new(pattern);
    let wild = |c: &Component| c.as_os_str().to_string_lossy().contains(['*', '?', '[']);
    let parts: Vec<Component> = path.components().collect();
    let first_wild = parts.iter().position(wild).unwrap_or(parts.len().saturating_sub(1));
    let prefix: PathBuf = parts[..first_wild].iter().collect();
    let depth = match pattern.contains("**") {
        true => DEPTH_MAX,
        false => parts.len() - first_wild - 1,
    };
    (prefix, depth)
}

struct Walk {
    found: Found,
    entries: usize,
    deadline: Instant,
    /// A bound was reached: nothing more is looked at in this look.
    stopped: bool,
}

impl Walk {
    /// Looks in `dir` and, `depth` levels down, in its subdirectories (never in a symlinked one).
    fn dir(&mut self, pattern: &Pattern, dir: &Path, depth: usize) {
        // A relative pattern is matched against relative paths, as the working directory's entries.
        let listed = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        let Ok(entries) = std::fs::read_dir(listed) else { return };
        for entry in entries.flatten() {
            if self.spent() {
                return;
            }
            let path = dir.join(entry.file_name());
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                if depth > 0 {
                    self.dir(pattern, &path, depth - 1);
                } else if pattern.as_str().contains("**") {
                    self.found.cut = true;
                }
            } else if pattern.matches_path_with(&path, OPTIONS) && (kind.is_file() || path.is_file()) {
                self.found.files.insert(path);
            }
        }
    }

    /// Counts one entry; true once a bound is reached (and the look is then marked cut).
    fn spent(&mut self) -> bool {
        self.entries += 1;
        if !self.stopped && (self.entries > ENTRIES_MAX || Instant::now() >= self.deadline) {
            self.stopped = true;
            self.found.cut = true;
        }
        self.stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(patterns: &[String]) -> Found {
        let patterns: Vec<Pattern> = patterns.iter().map(|p| Pattern::new(p).unwrap()).collect();
        matching(&patterns)
    }

    #[test]
    fn finds_what_the_patterns_match_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(logs.join("deep/er")).unwrap();
        for f in ["a.log", "b.txt", "deep/c.log", "deep/er/d.log"] {
            std::fs::write(logs.join(f), "x\n").unwrap();
        }
        let flat = found(&[format!("{}/*.log", logs.display())]);
        assert_eq!(flat.files, BTreeSet::from([logs.join("a.log")]));
        let deep = found(&[format!("{}/**/*.log", logs.display())]);
        let expected = ["a.log", "deep/c.log", "deep/er/d.log"].map(|f| logs.join(f));
        assert_eq!(deep.files, BTreeSet::from(expected));
        let literal = found(&[logs.join("b.txt").display().to_string()]);
        assert_eq!(literal.files, BTreeSet::from([logs.join("b.txt")]));
        assert!(!flat.cut && !deep.cut && !literal.cut);
    }

    #[test]
    fn a_symlink_loop_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(logs.join("sub")).unwrap();
        std::fs::write(logs.join("sub/w.log"), "x\n").unwrap();
        std::os::unix::fs::symlink(&logs, logs.join("sub/loop")).unwrap();
        std::os::unix::fs::symlink("..", logs.join("sub/up")).unwrap();
        let f = found(&[format!("{}/**/*.log", logs.display())]);
        assert_eq!(f.files, BTreeSet::from([logs.join("sub/w.log")]));
        assert!(!f.cut, "the loop is not walked, so nothing is cut");
    }

    #[test]
    fn a_pattern_over_the_whole_filesystem_stops_at_the_bound() {
        let started = Instant::now();
        let f = found(&["/**/*".to_string()]);
        assert!(f.cut, "the look was cut");
        assert!(f.files.len() <= ENTRIES_MAX);
        // Generous: a look is bounded to TIME_MAX; the bound matters, not the machine's speed.
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn prefixes_stop_at_the_first_wildcard() {
        assert_eq!(literal_prefix("/s/data/logs/*.log"), (PathBuf::from("/s/data/logs"), 0));
        assert_eq!(literal_prefix("/s/*/w.log"), (PathBuf::from("/s"), 1));
        assert_eq!(literal_prefix("/s/logs/**/*.log"), (PathBuf::from("/s/logs"), DEPTH_MAX));
        assert_eq!(literal_prefix("/s/logs/w.log"), (PathBuf::from("/s/logs"), 0));
    }
}
