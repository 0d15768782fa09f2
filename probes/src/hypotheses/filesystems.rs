//! What the kernel's filesystem magic numbers (statfs f_type) say about hosting a Unix socket file.

/// Whether a filesystem can hold a socket file that clients connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosting {
    /// A local filesystem: bind and connect work.
    Yes,
    /// Network or userspace filesystems: bind may fail, or the file may be visible without being connectable.
    Unreliable,
    /// bind(2) fails there (no mknod for sockets).
    No,
    /// A magic number this table does not know.
    Unknown,
}

/// (magic, name, hosting)
const TABLE: &[(u64, &str, Hosting)] = &[
    (0xEF53, "ext2/3/4", Hosting::Yes),
    (0x0102_1994, "tmpfs", Hosting::Yes),
    (0x9123_683E, "btrfs", Hosting::Yes),
    (0x5846_5342, "xfs", Hosting::Yes),
    (0x794C_7630, "overlayfs", Hosting::Yes),
    (0x8584_58F6, "ramfs", Hosting::Yes),
    (0x2FC1_2FC1, "zfs", Hosting::Yes),
    (0xF2F5_2010, "f2fs", Hosting::Yes),
    (0x6969, "nfs", Hosting::Unreliable),
    (0x0102_1997, "9p", Hosting::Unreliable),
    (0x6573_5546, "fuse", Hosting::Unreliable),
    (0x786F_4256, "vboxsf", Hosting::No),
    (0xFF53_4D42, "cifs", Hosting::No),
    (0xFE53_4D42, "smb2", Hosting::No),
    (0x5346_4846, "wslfs (drvfs)", Hosting::No),
    (0x4D44, "vfat/msdos", Hosting::No),
    (0x2011_BAB0, "exfat", Hosting::No),
    (0x5346_544E, "ntfs", Hosting::No),
    (0x1980_0202, "mqueue", Hosting::No),
    (0x9FA0, "proc", Hosting::No),
    (0x6265_6572, "sysfs", Hosting::No),
    (0xCAFE_4A11, "bpf", Hosting::No),
    (0x6367_7270, "cgroup2", Hosting::No),
];

/// A readable name for a statfs magic number.
pub fn name(magic: u64) -> String {
    TABLE.iter().find(|(m, _, _)| *m == magic).map_or(format!("filesystem 0x{magic:x}"), |(_, n, _)| n.to_string())
}

/// Whether that filesystem can host a socket file.
pub fn hosting(magic: u64) -> Hosting {
    TABLE.iter().find(|(m, _, _)| *m == magic).map_or(Hosting::Unknown, |(_, _, h)| *h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hosting() {
        assert_eq!(name(0x1980_0202), "mqueue");
        assert_eq!(hosting(0x0102_1994), Hosting::Yes);
        assert_eq!(hosting(0x1980_0202), Hosting::No);
        assert_eq!(hosting(1), Hosting::Unknown);
        assert_eq!(name(0x1), "filesystem 0x1");
    }
}
