//! Worker view: what the worker itself sees — its executable, cwd, uid and the environment variables that matter.

use std::collections::BTreeMap;

use procfs::process::Process;
use sockdiag_probes::EventKind;

/// Reads `/proc/<pid>/{exe,cwd,environ,status}`; keeps only the variables named in `keys`.
pub(crate) fn view(pid: i32, keys: &[String]) -> Option<EventKind> {
    let p = Process::new(pid).ok()?;
    // A zombie's environ reads empty: no view is better than a false "variable unset".
    if p.stat().ok()?.state == 'Z' {
        return None;
    }
    let exe = p.exe().map(|e| e.display().to_string()).unwrap_or_else(|e| format!("unreadable: {e}"));
    let cwd = p.cwd().map(|c| c.display().to_string()).unwrap_or_else(|e| format!("unreadable: {e}"));
    let uid = p.uid().ok()?;
    let environ = p.environ().ok().filter(|e| !e.is_empty())?;
    let env: BTreeMap<String, String> = keys
        .iter()
        .filter_map(|k| environ.get(std::ffi::OsStr::new(k)).map(|v| (k.clone(), v.to_string_lossy().into_owned())))
        .collect();
    Some(EventKind::WorkerView { pid, exe, cwd, uid, env })
}
