//! Who a worker runs as: uid, gid and supplementary groups, of the harness itself or of another user (`--user`).

use std::ffi::CString;

/// Who the worker runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) groups: Vec<u32>,
}

impl Identity {
    /// Becomes this user in a child about to exec: supplementary groups first, then the group, then the user
    /// (after which nothing can change). Only system calls, on a list built before the fork.
    pub(crate) fn become_it(&self) -> std::io::Result<()> {
        // SAFETY: plain system calls on a list that lives for the call.
        let failed = unsafe {
            libc::setgroups(self.groups.len(), self.groups.as_ptr()) != 0
                || libc::setgid(self.gid) != 0
                || libc::setuid(self.uid) != 0
        };
        if failed {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// The harness's own identity (the worker's when no `--user` is given).
    pub(crate) fn current() -> Identity {
        let groups = nix::unistd::getgroups().unwrap_or_default().into_iter().map(|g| g.as_raw()).collect();
        Identity { uid: nix::unistd::geteuid().as_raw(), gid: nix::unistd::getegid().as_raw(), groups }
    }

    /// A user of the system by name or uid, with its primary and supplementary groups.
    pub(crate) fn of_user(name: &str) -> Option<Identity> {
        let user = match name.parse::<u32>() {
            Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??,
            Err(_) => nix::unistd::User::from_name(name).ok()??,
        };
        let cname = CString::new(user.name.as_bytes()).ok()?;
        let groups = nix::unistd::getgrouplist(&cname, user.gid).unwrap_or_else(|_| vec![user.gid]);
        Some(Identity {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            groups: groups.into_iter().map(|g| g.as_raw()).collect(),
        })
    }
}
