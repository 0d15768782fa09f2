//! Stopping processes, the one way sockdiag does it: at the end of a run, on an interrupt, and for the leftovers
//! of a killed invocation. Each signal of an escalation goes to whatever is left, then the processes get one grace
//! period to go before the next, stronger signal.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use super::cgroup::Cgroup;

/// How long processes get after each signal (and after a profile's stop message) before the next step.
pub(crate) const GRACE: Duration = Duration::from_millis(500);
/// SIGKILL is sent again this many times at most to processes that appeared since the last look (a tree that
/// forks while it is being stopped).
const KILL_ROUNDS: usize = 3;

/// How a stop goes from asking to forcing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Escalation {
    /// SIGTERM, then SIGKILL to what is left after the grace period.
    Polite,
    /// SIGKILL at once (orphans of a killed invocation, a run's last sweep).
    Kill,
}

impl Escalation {
    fn signals(self) -> &'static [Signal] {
        match self {
            Escalation::Polite => &[Signal::SIGTERM, Signal::SIGKILL],
            Escalation::Kill => &[Signal::SIGKILL],
        }
    }
}

/// What a stop acts on.
pub(crate) trait Stoppable {
    /// The processes still there, looked for again before each signal.
    fn left(&mut self) -> Vec<i32>;
    fn signal(&mut self, pids: &[i32], signal: Signal);
    /// Waits until `pids` are gone or `grace` has passed.
    fn wait_gone(&mut self, pids: &[i32], grace: Duration);
}

/// The processes of a run or of the whole invocation: those the marker finds (`marked`), and those in the cgroup,
/// which a process cannot leave. SIGKILL goes to the cgroup as a whole too.
pub(crate) struct Members<'a> {
    pub(crate) marked: &'a dyn Fn() -> Vec<i32>,
    pub(crate) cgroup: Option<&'a Cgroup>,
    /// Ends every wait at once when readable (a second interrupt).
    pub(crate) hurry: Option<BorrowedFd<'a>>,
}

impl Members<'_> {
    /// Every member now, each once.
    pub(crate) fn find(&self) -> Vec<i32> {
        let mut pids = (self.marked)();
        pids.extend(self.cgroup.map(Cgroup::procs).unwrap_or_default());
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

impl Stoppable for Members<'_> {
    fn left(&mut self) -> Vec<i32> {
        self.find()
    }

    fn signal(&mut self, pids: &[i32], signal: Signal) {
        for &pid in pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
        if let (Signal::SIGKILL, Some(cgroup)) = (signal, self.cgroup) {
            cgroup.kill();
        }
    }

    fn wait_gone(&mut self, pids: &[i32], grace: Duration) {
        wait_gone(pids, grace, self.hurry);
    }
}

/// Sends each signal of the escalation in turn to whatever is left, with a grace period after each; SIGKILL is
/// repeated for processes that appeared meanwhile. Returns what is still there at the end.
pub(crate) fn stop(target: &mut impl Stoppable, how: Escalation) -> Vec<i32> {
    let signals = how.signals().iter().chain(std::iter::repeat_n(&Signal::SIGKILL, KILL_ROUNDS - 1));
    for &signal in signals {
        let left = target.left();
        if left.is_empty() {
            return left;
        }
        target.signal(&left, signal);
        target.wait_gone(&left, GRACE);
    }
    target.left()
}

/// Waits, on pidfds, until every pid has exited or the grace period ends; a readable `hurry` fd ends it at once.
pub(crate) fn wait_gone(pids: &[i32], grace: Duration, hurry: Option<BorrowedFd>) {
    let deadline = Instant::now() + grace;
    let mut fds: Vec<OwnedFd> = pids.iter().filter_map(|&p| pidfd_open(p)).collect();
    while !fds.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let mut polled: Vec<PollFd> = fds.iter().map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN)).collect();
        polled.extend(hurry.map(|h| PollFd::new(h, PollFlags::POLLIN)));
        let timeout = PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::ZERO);
        if poll(&mut polled, timeout).unwrap_or(0) == 0 {
            return;
        }
        let ready: Vec<bool> = polled.iter().map(|p| p.revents().is_some_and(|r| !r.is_empty())).collect();
        if hurry.is_some() && ready[fds.len()] {
            return;
        }
        let mut i = 0;
        fds.retain(|_| {
            i += 1;
            !ready[i - 1]
        });
    }
}

/// A pidfd becomes readable when the process exits: an event to wait on instead of polling /proc.
pub(crate) fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) with no flags; a non-negative return is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target that records what it was sent; its processes go after `dies_after` signals.
    struct Fake {
        pids: Vec<i32>,
        sent: Vec<Signal>,
        dies_after: usize,
        forks_once: bool,
    }

    impl Stoppable for Fake {
        fn left(&mut self) -> Vec<i32> {
            self.pids.clone()
        }
        fn signal(&mut self, _: &[i32], signal: Signal) {
            self.sent.push(signal);
            if self.forks_once {
                self.forks_once = false;
                self.pids.push(99);
                return;
            }
            if self.sent.len() >= self.dies_after {
                self.pids.clear();
            }
        }
        fn wait_gone(&mut self, _: &[i32], _: Duration) {}
    }

    #[test]
    fn polite_stops_at_sigterm_when_that_is_enough() {
        let mut t = Fake { pids: vec![1], sent: vec![], dies_after: 1, forks_once: false };
        assert!(stop(&mut t, Escalation::Polite).is_empty());
        assert_eq!(t.sent, [Signal::SIGTERM]);
    }

    #[test]
    fn polite_escalates_and_kills_what_forked_meanwhile() {
        let mut t = Fake { pids: vec![1], sent: vec![], dies_after: 3, forks_once: true };
        assert!(stop(&mut t, Escalation::Polite).is_empty());
        assert_eq!(t.sent, [Signal::SIGTERM, Signal::SIGKILL, Signal::SIGKILL]);
    }

    #[test]
    fn kill_rounds_are_bounded() {
        let mut t = Fake { pids: vec![1], sent: vec![], dies_after: usize::MAX, forks_once: false };
        assert_eq!(stop(&mut t, Escalation::Kill), [1]);
        assert_eq!(t.sent, [Signal::SIGKILL; KILL_ROUNDS]);
    }

    #[test]
    fn nothing_left_nothing_sent() {
        let mut t = Fake { pids: vec![], sent: vec![], dies_after: 1, forks_once: false };
        assert!(stop(&mut t, Escalation::Polite).is_empty());
        assert!(t.sent.is_empty());
    }

    #[test]
    fn hurry_ends_the_wait() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let (read, write) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&write, b"!").unwrap();
        let started = Instant::now();
        wait_gone(&[child.id() as i32], Duration::from_secs(20), Some(read.as_fd()));
        assert!(started.elapsed() < Duration::from_secs(10));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
