//! The one place errors become exit codes (DESIGN §5).

/// A mistake in what the user gave us (flag, profile, session...): exit 2, one line naming the input.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

/// Shorthand for returning a usage error.
pub(crate) fn usage<T>(msg: impl Into<String>) -> anyhow::Result<T> {
    Err(UsageError(msg.into()).into())
}

pub(crate) const EXIT_HEALTHY: i32 = 0;
pub(crate) const EXIT_REPRODUCED: i32 = 1;
/// `check`: some verdict differs from the baseline.
pub(crate) const EXIT_DIFFERS: i32 = 1;
pub(crate) const EXIT_USAGE: i32 = 2;
pub(crate) const EXIT_INTERNAL: i32 = 3;

/// Maps an error to its exit code: usage errors 2, everything else 3.
pub(crate) fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<UsageError>().is_some() {
        EXIT_USAGE
    } else {
        EXIT_INTERNAL
    }
}
