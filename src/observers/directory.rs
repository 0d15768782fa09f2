//! Directory observer: the socket's directory as the worker's user meets it — what is there, mode, owner,
//! filesystem, when it was born — and the harness's own test bind there (see `test_bind`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sockdiag_probes::{BindTest, EventKind, FileType};

use super::test_bind::test_bind;
use crate::identity::Identity;

/// Looks at `dir` and, given the sandbox it lies in, test-binds a socket there as `who` (the harness writes
/// nowhere else).
pub(crate) fn check(dir: &Path, who: &Identity, sandbox: Option<&Path>) -> EventKind {
    let meta = std::fs::metadata(dir).ok();
    let file_type = match &meta {
        Some(m) if m.is_dir() => FileType::Dir,
        Some(m) if m.is_file() => FileType::File,
        Some(_) => FileType::Other,
        None => FileType::Gone,
    };
    let missing_from = (file_type != FileType::Dir).then(|| first_not_dir(dir)).flatten();
    let fs_magic = nix::sys::statfs::statfs(dir).map_or(0, |s| s.filesystem_type().0 as u64);
    let test_bind = if file_type != FileType::Dir {
        BindTest::NotTried { why: "the directory does not exist".into() }
    } else if let Some(sandbox) = sandbox {
        test_bind(dir, sandbox, who)
    } else {
        BindTest::NotTried { why: "the harness writes nothing outside its sandbox".into() }
    };
    EventKind::DirChecked {
        dir: dir.display().to_string(),
        file_type,
        missing_from: missing_from.map(|p| p.display().to_string()),
        mode: meta.as_ref().map_or(0, |m| m.mode() & 0o7777),
        owner: meta.as_ref().map_or(0, |m| m.uid()),
        group: meta.as_ref().map_or(0, |m| m.gid()),
        fs_magic,
        as_uid: who.uid,
        as_gids: who.groups.clone(),
        test_bind,
    }
}

/// When `dir` was created (its birth time) after `pid` started: how long after. None when it is older, or when
/// the filesystem keeps no birth time.
pub(crate) fn newer_than_process(dir: &Path, pid: i32) -> Option<EventKind> {
    let born = std::fs::metadata(dir).ok()?.created().ok()?;
    let born_ms = born.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64;
    let started_ms = start_time_ms(pid)?;
    // The start time has the clock tick's resolution and file times lag by up to a tick: two ticks of margin.
    let margin_ms = 2 * 1000 / procfs::ticks_per_second();
    (born_ms > started_ms + margin_ms).then(|| EventKind::DirNewerThanProcess {
        dir: dir.display().to_string(),
        pid,
        after_ms: born_ms - started_ms,
    })
}

/// When `pid` started, in milliseconds since the epoch: its start in ticks since boot, placed on the wall clock
/// through CLOCK_BOOTTIME (/proc/stat's boot time only has whole seconds).
fn start_time_ms(pid: i32) -> Option<u64> {
    use nix::time::{clock_gettime, ClockId};
    let ticks = procfs::process::Process::new(pid).ok()?.stat().ok()?.starttime;
    let since_boot_ms = ticks * 1000 / procfs::ticks_per_second();
    let ms = |t: nix::sys::time::TimeSpec| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000;
    let boot_now = ms(clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?);
    let wall_now = ms(clock_gettime(ClockId::CLOCK_REALTIME).ok()?);
    wall_now.checked_sub(boot_now.checked_sub(since_boot_ms)?)
}

/// The shortest prefix of `dir` that is missing or not a directory.
fn first_not_dir(dir: &Path) -> Option<PathBuf> {
    let mut ancestors: Vec<&Path> = dir.ancestors().collect();
    ancestors.reverse();
    ancestors.into_iter().find(|p| !p.is_dir()).map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_directory_takes_a_test_bind_and_is_left_clean() {
        let dir = tempfile::tempdir().unwrap();
        let EventKind::DirChecked { file_type, test_bind, .. } =
            check(dir.path(), &Identity::current(), Some(dir.path()))
        else {
            panic!("a DirChecked")
        };
        assert_eq!((file_type, test_bind), (FileType::Dir, BindTest::Bound));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_directory_names_the_first_missing_component() {
        let dir = tempfile::tempdir().unwrap();
        let EventKind::DirChecked { missing_from, test_bind, .. } =
            check(&dir.path().join("a/b"), &Identity::current(), Some(dir.path()))
        else {
            panic!("a DirChecked")
        };
        assert_eq!(missing_from, Some(dir.path().join("a").display().to_string()));
        assert!(matches!(test_bind, BindTest::NotTried { .. }));
    }

    #[test]
    fn another_user_is_refused_a_private_directory() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: switching user needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let nobody = Identity::of_user("nobody").expect("user nobody");
        let EventKind::DirChecked { test_bind, .. } = check(dir.path(), &nobody, Some(dir.path())) else {
            panic!("a DirChecked")
        };
        assert_eq!(test_bind, BindTest::Failed { errno: "EACCES".into() });
    }
}
