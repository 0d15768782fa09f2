//! One cited fact: which run, when, what.

use serde::Serialize;

/// A fact a verdict rests on: the run it comes from, the time of the event on that run's clock, and what it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t_us: Option<u64>,
    pub text: String,
}

impl Evidence {
    /// A fact tied to an event of a run.
    pub fn at(run: usize, t_us: u64, text: impl Into<String>) -> Self {
        Evidence { run: Some(run), t_us: Some(t_us), text: text.into() }
    }

    /// A fact about a run as a whole (its configuration, the absence of an event...).
    pub fn run(run: usize, text: impl Into<String>) -> Self {
        Evidence { run: Some(run), t_us: None, text: text.into() }
    }
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(run) = self.run {
            write!(f, "run {run} ")?;
        }
        match self.t_us {
            Some(t) => write!(f, "{:>10}  {}", fmt_ms(t), self.text),
            None => write!(f, "{:>10}  {}", "", self.text),
        }
    }
}

/// `+12.345 ms`: microseconds since the spawn, as people read them.
pub fn fmt_ms(t_us: u64) -> String {
    format!("+{}.{:03} ms", t_us / 1000, t_us % 1000)
}
