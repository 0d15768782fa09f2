//! Worker view: what the worker itself sees — its executable, cwd, uid and the environment variables that matter.

use std::collections::BTreeMap;

use procfs::process::Process;
use sockdiag_probes::EventKind;

/// Reads `/proc/<pid>/{exe,cwd,environ,status}`; keeps only the variables named in `keys`. `inherited` is a
/// variable every process of the run inherits: until the environment shows it, the kernel is still setting up the
/// process after exec (the launcher learns of the exec before that) and what reads there is not its environment.
/// A live look (inspect) has no such variable: the processes it finds have long been running.
pub(crate) fn view(pid: i32, keys: &[String], inherited: Option<(&str, &str)>) -> Option<EventKind> {
    let p = Process::new(pid).ok()?;
    // A zombie's environ reads empty: no view is better than a false "variable unset".
    if p.stat().ok()?.state == 'Z' {
        return None;
    }
    let environ = p.environ().ok()?;
    if let Some((name, value)) = inherited {
        if environ.get(std::ffi::OsStr::new(name)).is_none_or(|v| v != value) {
            return None;
        }
    }
    // Read after the environment is trusted, so that they belong to the executed program too.
    let exe = p.exe().map(|e| e.display().to_string()).unwrap_or_else(|e| format!("unreadable: {e}"));
    let cwd = p.cwd().map(|c| c.display().to_string()).unwrap_or_else(|e| format!("unreadable: {e}"));
    let uid = p.uid().ok()?;
    let env: BTreeMap<String, String> = keys
        .iter()
        .filter_map(|k| environ.get(std::ffi::OsStr::new(k)).map(|v| (k.clone(), v.to_string_lossy().into_owned())))
        .collect();
    Some(EventKind::WorkerView { pid, exe, cwd, uid, env })
}
