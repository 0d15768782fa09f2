//! Removing a sandbox whatever its worker left in it: never following a symlink, never descending into another
//! filesystem (a worker running as root may have mounted something inside its sandbox: a bind mount of a real
//! directory must not lose its contents), and opening up directories the worker made unreadable (chmod 000).

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Removes `root` and everything below it on its filesystem. Mounts below it are detached first (they are the
/// worker's, made in our mount namespace); one that cannot be detached is left in place, with what holds it,
/// and the error says so.
pub(crate) fn remove_tree(root: &Path) -> io::Result<()> {
    for mount in mounts_below(root) {
        let _ = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH);
    }
    let mount = mount_id(root)?;
    let mut kept = Vec::new();
    remove_inside(root, mount, &mut kept)?;
    if !kept.is_empty() {
        let kept: Vec<String> = kept.iter().map(|p| p.display().to_string()).collect();
        return Err(io::Error::other(format!("left in place, mounted: {}", kept.join(", "))));
    }
    std::fs::remove_dir(root)
}

fn remove_inside(dir: &Path, mount: u64, kept: &mut Vec<PathBuf>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            // A directory its owner made unreadable: the owner (us, or root) may open it again.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            std::fs::read_dir(dir)?
        }
        other => other?,
    };
    for entry in entries {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if !meta.is_dir() {
            std::fs::remove_file(&path)?;
        } else if mount_id(&path)? != mount {
            kept.push(path);
        } else {
            if meta.permissions().mode() & 0o700 != 0o700 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
            }
            let before = kept.len();
            remove_inside(&path, mount, kept)?;
            if kept.len() == before {
                std::fs::remove_dir(&path)?;
            }
        }
    }
    Ok(())
}

/// The mount a path is on (statx's mount id: a bind mount of a directory of the same filesystem has the same
/// device number but its own mount id); the device number on kernels older than 5.8.
fn mount_id(path: &Path) -> io::Result<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: statx(2) into a zeroed buffer of the right type, with a NUL-terminated path.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), libc::AT_SYMLINK_NOFOLLOW, libc::STATX_MNT_ID, &mut buf) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if buf.stx_mask & libc::STATX_MNT_ID != 0 {
        return Ok(buf.stx_mnt_id);
    }
    Ok(std::fs::symlink_metadata(path)?.dev() | 1 << 63)
}

/// The mount points at or below `root` in our mount namespace, deepest first.
fn mounts_below(root: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(root) && p != root)
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// mountinfo writes space, tab, newline and backslash as octal escapes (`\040`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_mount_inside_keeps_its_contents_and_the_rest_goes() {
        let sandbox = tempfile::tempdir().unwrap();
        let precious = tempfile::tempdir().unwrap();
        std::fs::write(precious.path().join("file"), "precious").unwrap();
        let inside = sandbox.path().join("data/mnt");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(sandbox.path().join("data/own"), "x").unwrap();
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: only root can bind-mount");
            return;
        }
        let bind = nix::mount::MsFlags::MS_BIND;
        nix::mount::mount(Some(precious.path()), &inside, None::<&str>, bind, None::<&str>).expect("bind mount");
        remove_tree(sandbox.path()).unwrap();
        assert!(!sandbox.path().exists());
        assert_eq!(std::fs::read_to_string(precious.path().join("file")).unwrap(), "precious");
        assert!(mounts_below(sandbox.path()).is_empty(), "the mount was detached");
    }

    #[test]
    fn a_mount_that_stays_is_left_alone() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: only root can bind-mount");
            return;
        }
        let sandbox = tempfile::tempdir().unwrap();
        let precious = tempfile::tempdir().unwrap();
        std::fs::write(precious.path().join("file"), "precious").unwrap();
        let inside = sandbox.path().join("mnt");
        std::fs::create_dir(&inside).unwrap();
        let bind = nix::mount::MsFlags::MS_BIND;
        nix::mount::mount(Some(precious.path()), &inside, None::<&str>, bind, None::<&str>).expect("bind mount");
        // What a mount that cannot be detached meets: the walk itself, without the detaching.
        let mut kept = Vec::new();
        remove_inside(sandbox.path(), mount_id(sandbox.path()).unwrap(), &mut kept).unwrap();
        assert_eq!(kept, vec![inside.clone()]);
        assert_eq!(std::fs::read_to_string(precious.path().join("file")).unwrap(), "precious");
        nix::mount::umount2(&inside, nix::mount::MntFlags::MNT_DETACH).unwrap();
    }

    #[test]
    fn unreadable_directories_and_symlinks() {
        let sandbox = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("file"), "precious").unwrap();
        let locked = sandbox.path().join("locked");
        std::fs::create_dir_all(locked.join("deeper")).unwrap();
        std::fs::write(locked.join("deeper/f"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), sandbox.path().join("link")).unwrap();
        std::fs::set_permissions(locked.join("deeper"), std::fs::Permissions::from_mode(0o000)).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(sandbox.path()).unwrap();
        assert!(!sandbox.path().exists());
        assert_eq!(std::fs::read_to_string(outside.path().join("file")).unwrap(), "precious");
    }

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape(r"/tmp/a\040b\134c"), r"/tmp/a b\c");
        assert_eq!(unescape(r"/tmp/plain"), "/tmp/plain");
    }
}
