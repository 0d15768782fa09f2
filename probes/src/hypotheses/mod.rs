//! One module per hypothesis, named after its id. Each reads recorded runs and nothing else.
//!
//! This file is the registry: a hypothesis is its module line, its line in [`all_probes`] and its place in
//! [`CAUSAL_ORDER`]. The tests below fail when a hypothesis file is not registered, or when the causal order
//! misses a registered id or names one that is not.

pub mod h01_exit_after_listen;
pub mod h02_attached_spawn;
pub mod h03_stdio_piping;
pub mod h04_path_mismatch;
pub mod h05_permissions;
pub mod h06_listening_before_file;
pub mod h07_entry_never_reached;
pub mod h08_session_row;
pub mod h09_created_then_deleted;
pub mod h10_runtime;
pub mod h11_not_serving;
pub mod h12_lost_errors;
pub mod h13_path_too_long;
pub mod h14_stale_socket;
pub mod h15_missing_dir;
pub mod h16_namespace;
pub mod h17_filesystem;
pub mod h18_address_held;
pub mod h19_stale_pid_file;

pub mod filesystems;

mod compare;
mod facts;
#[cfg(test)]
mod testing;

use crate::Probe;

/// Every probe, in hypothesis order.
pub fn all_probes() -> Vec<Box<dyn Probe>> {
    vec![
        Box::new(h01_exit_after_listen::ExitAfterListen),
        Box::new(h02_attached_spawn::AttachedSpawn),
        Box::new(h03_stdio_piping::StdioPiping),
        Box::new(h04_path_mismatch::PathMismatch),
        Box::new(h05_permissions::Permissions),
        Box::new(h06_listening_before_file::ListeningBeforeFile),
        Box::new(h07_entry_never_reached::EntryNeverReached),
        Box::new(h08_session_row::SessionRow),
        Box::new(h09_created_then_deleted::CreatedThenDeleted),
        Box::new(h10_runtime::RuntimeDiffers),
        Box::new(h11_not_serving::NotServing),
        Box::new(h12_lost_errors::LostErrors),
        Box::new(h13_path_too_long::PathTooLong),
        Box::new(h14_stale_socket::StaleSocket),
        Box::new(h15_missing_dir::MissingDir),
        Box::new(h16_namespace::OtherNamespace),
        Box::new(h17_filesystem::Filesystem),
        Box::new(h18_address_held::AddressHeld),
        Box::new(h19_stale_pid_file::StalePidFile),
    ]
}

/// The order in which confirmed hypotheses explain each other in the root cause: causes before consequences.
/// Every registered id appears exactly once (tested).
pub const CAUSAL_ORDER: &[&str] = &[
    "H8", "H7", "H5", "H15", "H13", "H16", "H17", "H4", "H18", "H10", "H2", "H3", "H9", "H1", "H6", "H11", "H14",
    "H19", "H12",
];

#[cfg(test)]
mod tests {
    use super::{all_probes, CAUSAL_ORDER};

    fn registered() -> Vec<&'static str> {
        all_probes().iter().map(|p| p.id()).collect()
    }

    #[test]
    fn ids_are_unique_and_in_hypothesis_order() {
        let numbers: Vec<u32> = registered()
            .iter()
            .map(|id| id.strip_prefix('H').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("id {id:?}")))
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "all_probes() is not in strictly rising id order: {numbers:?}"
        );
    }

    #[test]
    fn the_causal_order_names_every_registered_probe_once() {
        let ids = registered();
        let missing: Vec<&&str> = ids.iter().filter(|id| !CAUSAL_ORDER.contains(id)).collect();
        assert!(missing.is_empty(), "registered in all_probes() but missing from CAUSAL_ORDER: {missing:?}");
        let unknown: Vec<&&str> = CAUSAL_ORDER.iter().filter(|id| !ids.contains(id)).collect();
        assert!(unknown.is_empty(), "in CAUSAL_ORDER but not registered in all_probes(): {unknown:?}");
        let mut sorted = CAUSAL_ORDER.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), CAUSAL_ORDER.len(), "an id appears twice in CAUSAL_ORDER");
    }

    /// A file `hNN_*.rs` without its `mod` line is never compiled, and one without its `all_probes()` line is never
    /// run: either way its id is not registered.
    #[test]
    fn every_hypothesis_file_is_registered() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/hypotheses");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with('h') && name.ends_with(".rs"))
            .filter_map(|name| {
                let digits: String = name[1..].chars().take_while(char::is_ascii_digit).collect();
                (!digits.is_empty()).then(|| format!("H{}", digits.parse::<u32>().unwrap()))
            })
            .collect();
        files.sort_by_key(|id| id[1..].parse::<u32>().unwrap());
        assert_eq!(
            registered(),
            files,
            "the probes registered in all_probes() against the files {}/h*.rs",
            dir.display()
        );
    }
}
