//! The runner: for each configuration, a sandbox, a launch and the observers, producing a RunRecord.
//! Runs go in parallel (`--jobs`), each isolated in its own sandbox; results keep the matrix order.

pub(crate) mod cgroup;
mod escalation;
pub(crate) mod interrupt;
pub(crate) mod keeper;
mod launcher;
pub(crate) mod leftovers;
pub(crate) mod marker;
mod owner;
mod port;
mod reaper;
mod removal;
mod run;
pub(crate) mod runtime;
mod sandbox;
mod seed;
mod supervisor;
mod tcp_watch;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sockdiag_probes::{RunConfig, RunRecord, RuntimeInstall};

use crate::profile::Profile;
pub(crate) use run::expected_endpoint;
pub(crate) use sandbox::DatabaseTemplate;
pub(crate) use supervisor::Supervisor;

/// What every run of one invocation shares.
pub(crate) struct Plan<'a> {
    pub(crate) profile: &'a Profile,
    pub(crate) supervisor: &'a Supervisor,
    pub(crate) session: u64,
    pub(crate) keep_sandbox: bool,
    /// How long a launcher that exits waits after spawning.
    pub(crate) launcher_exit: std::time::Duration,
    /// The profile's runtimes and where each was found.
    pub(crate) runtimes: Vec<RuntimeInstall>,
    /// The database every run starts with.
    pub(crate) database: Option<DatabaseTemplate>,
}

/// The kernel's limit of inotify instances per user (`fs.inotify.max_user_instances`), if it can be read.
pub(crate) fn inotify_instances() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances").ok()?.trim().parse().ok()
}

/// Each run holds an inotify instance, and the user's other programs hold some: at most half the per-user limit
/// run at once, with a line saying so, rather than runs failing to start.
pub(crate) fn within_inotify_limit(jobs: usize, limit: Option<usize>) -> usize {
    let Some(most) = limit.map(|l| (l / 2).max(1)) else { return jobs };
    if jobs <= most {
        return jobs;
    }
    eprintln!(
        "sockdiag: --jobs {jobs} capped to {most}: each run holds an inotify instance and the kernel allows {} per \
         user (fs.inotify.max_user_instances)",
        limit.unwrap_or_default()
    );
    most
}

/// Runs every `(run id, configuration)`, `jobs` at a time, and returns the records in the order given; `on_done`
/// is called as each run finishes (for progress). The ids are the runs' places in the whole matrix (a shard runs
/// only some of them).
/// A fixed TCP port is one address for every run: runs side by side would hold it against each other and look
/// like H18, so they go one at a time.
pub(crate) fn run_all(
    plan: &Plan,
    configs: &[(usize, RunConfig)],
    jobs: usize,
    on_done: &(dyn Fn(&RunRecord) + Sync),
) -> anyhow::Result<Vec<RunRecord>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<anyhow::Result<RunRecord>>>> = Mutex::new((0..configs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        let jobs = if plan.profile.fixed_tcp_port() { 1 } else { jobs };
        for _ in 0..jobs.clamp(1, configs.len().max(1)) {
            // Fewer runs at a time when the process limit allows fewer threads; none at all is an error below.
            let _ = std::thread::Builder::new().spawn_scoped(scope, || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(id, config)) = configs.get(i) else { break };
                let record = run::run_one(plan, id, config);
                if let Ok(r) = &record {
                    on_done(r);
                }
                results.lock().expect("results lock")[i] = Some(record);
            });
        }
    });
    // Each run stopped its own processes; one look over the whole system makes sure none outlives us.
    plan.supervisor.finish();
    let no_thread = || anyhow::anyhow!("cannot start a thread for the runs (is the process limit reached?)");
    results.into_inner().expect("results lock").into_iter().map(|r| r.ok_or_else(no_thread)?).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_at_a_time_stay_within_half_the_inotify_limit() {
        assert_eq!(within_inotify_limit(200, Some(128)), 64);
        assert_eq!(within_inotify_limit(8, Some(128)), 8);
        assert_eq!(within_inotify_limit(200, None), 200);
        assert_eq!(within_inotify_limit(4, Some(1)), 1);
    }
}
