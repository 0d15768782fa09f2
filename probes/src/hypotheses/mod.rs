//! One module per hypothesis, named after its id. Each reads recorded runs and nothing else.
//!
//! This file is the registry: a hypothesis is its module line and its line in [`all_probes`]. The tests below fail
//! when a hypothesis file is not registered, or when two probes share a causal rank or causes do not rank before
//! their consequences.

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

#[cfg(test)]
mod tests {
    use super::all_probes;

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

    fn rank(id: &str) -> u8 {
        all_probes().iter().find(|p| p.id() == id).unwrap_or_else(|| panic!("no probe {id}")).causal_rank()
    }

    #[test]
    fn causal_ranks_are_unique() {
        let mut ranks: Vec<(u8, &str)> = all_probes().iter().map(|p| (p.causal_rank(), p.id())).collect();
        ranks.sort_unstable();
        for w in ranks.windows(2) {
            assert_ne!(w[0].0, w[1].0, "{} and {} share causal rank {}", w[0].1, w[1].1, w[0].0);
        }
    }

    /// Each pair: the first explains the second when both are confirmed in one diagnosis.
    #[test]
    fn causes_rank_before_their_consequences() {
        let pairs = [
            ("H8", "H1"),   // no session row: the worker gives up and exits
            ("H7", "H4"),   // main never ran: nothing was bound anywhere
            ("H5", "H9"),   // the bind was refused before any file could be removed
            ("H15", "H13"), // no directory comes before a path that is merely long
            ("H4", "H11"),  // bound elsewhere: the expected endpoint does not serve
            ("H18", "H1"),  // the address was held: the worker exits with EADDRINUSE
            ("H10", "H1"),  // the runtime makes the difference that shows as the exit
            ("H3", "H1"),   // SIGPIPE on a closed pipe is why the worker ended
            ("H9", "H1"),   // the error handler removes the socket as the worker exits
            ("H1", "H11"),  // an exited worker serves nothing
            ("H1", "H12"),  // the lost error lines are a consequence of how it ended
            ("H14", "H19"), // a stale socket is the first thing a stale pid file points to
        ];
        for (cause, effect) in pairs {
            assert!(rank(cause) < rank(effect), "{cause} must rank before {effect}");
        }
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
