//! Address holder observer: who listens on the expected TCP address when it is not the worker — the socket inode
//! from `/proc/net/tcp` (or `tcp6`), mapped to a process through every `/proc/<pid>/fd`: its pid, exe, command
//! line and how long it has been running.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use procfs::process::Process;
use procfs::Current;
use sockdiag_probes::{AddressHolder, EventKind};

/// True when a listener bound to `bound` takes connections for `host:port` (same address, or a wildcard).
pub(crate) fn covers(bound: &SocketAddr, host: &str, port: u16) -> bool {
    if bound.port() != port {
        return false;
    }
    let wanted: Vec<IpAddr> = match host {
        "localhost" => vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)],
        h => h.parse().into_iter().collect(),
    };
    let ip = bound.ip();
    ip.is_unspecified() && (ip.is_ipv6() || wanted.iter().any(IpAddr::is_ipv4)) || wanted.contains(&ip)
}

/// The listeners on `host:port` in `table` that `skip` does not exclude, each with its holder when found.
pub(crate) fn holders(
    table: &HashMap<u64, SocketAddr>,
    host: &str,
    port: u16,
    skip: &dyn Fn(u64) -> bool,
) -> Vec<(u64, Option<AddressHolder>)> {
    table
        .iter()
        .filter(|(inode, addr)| covers(addr, host, port) && !skip(**inode))
        .map(|(inode, _)| (*inode, find_holder(*inode)))
        .collect()
}

/// The event for a listener held by someone else.
pub(crate) fn event(target: &str, inode: u64, holder: Option<AddressHolder>) -> EventKind {
    EventKind::AddressHeld { address: target.to_string(), inode, holder }
}

/// The first process (by pid) with a descriptor on the socket `inode`.
fn find_holder(inode: u64) -> Option<AddressHolder> {
    let all = procfs::process::all_processes().ok()?;
    let p = all.flatten().find(|p| super::kernel_sockets::holds_socket(p, inode))?;
    Some(describe(&p))
}

fn describe(p: &Process) -> AddressHolder {
    let exe = p.exe().map(|e| e.display().to_string()).unwrap_or_else(|e| format!("unreadable: {e}"));
    let cmdline = p.cmdline().map(|c| c.join(" ")).unwrap_or_default();
    AddressHolder { pid: p.pid(), exe, cmdline, age_ms: age_ms(p).unwrap_or(0), started_unix_s: started(p) }
}

/// Seconds since the epoch at which the process started.
fn started(p: &Process) -> Option<u64> {
    let ticks = p.stat().ok()?.starttime;
    Some(procfs::boot_time_secs().ok()? + ticks / procfs::ticks_per_second())
}

/// Milliseconds since the process started: the system's uptime minus its start time (clock ticks since boot).
fn age_ms(p: &Process) -> Option<u64> {
    let start = p.stat().ok()?.starttime as f64 / procfs::ticks_per_second() as f64;
    let uptime = procfs::Uptime::current().ok()?.uptime;
    Some(((uptime - start).max(0.0) * 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_families() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(covers(&a("127.0.0.1:80"), "127.0.0.1", 80));
        assert!(!covers(&a("127.0.0.1:81"), "127.0.0.1", 80));
        assert!(covers(&a("0.0.0.0:80"), "127.0.0.1", 80));
        assert!(covers(&a("[::]:80"), "127.0.0.1", 80));
        assert!(!covers(&a("[::1]:80"), "127.0.0.1", 80));
        assert!(!covers(&a("0.0.0.0:80"), "::1", 80));
        assert!(covers(&a("[::1]:80"), "localhost", 80));
    }

    #[test]
    fn finds_our_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let table = super::super::tcp_sockets::listening(std::process::id() as i32);
        let found = holders(&table, "127.0.0.1", port, &|_| false);
        assert_eq!(found.len(), 1, "{found:?}");
        let holder = found[0].1.clone().expect("holder found");
        assert_eq!(holder.pid, std::process::id() as i32);
        assert!(!holder.cmdline.is_empty());
    }
}
