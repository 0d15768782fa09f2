//! The evidence model of sockdiag: what a run recorded (a timeline of events), what a probe concludes from it
//! (a verdict), and one probe per hypothesis. Probes are pure: they read recorded runs, they never spawn or
//! look at the live system.

mod evidence;
pub mod hypotheses;
mod probe;
mod run;
mod shown;
#[cfg(test)]
mod testkit;
mod timeline;
mod verdict;

pub use evidence::{fmt_ms, Evidence};
pub use hypotheses::all_probes;
pub use probe::{per_run, Finding, Probe, Rate, Spread};
pub use run::{
    Dimension, Endpoint, Expected, HealthCheck, Lifecycle, Outcome, RunAs, RunConfig, RunRecord, Runtime,
    RuntimeInstall, Shebang, SpawnMode, StdioMode,
};
pub use shown::{errno_label, quotable, signal_label, QUOTE_MAX};
pub use timeline::{
    AddressHolder, BindTest, ConnectResult, Event, EventKind, ExitStatus, FileType, Holder, IpFamily, Marker,
    PidFileState, RowLookup, Stream, Timeline,
};
pub use verdict::{Status, Verdict};
