//! More than one runner: `--shard i/n` takes every n-th run of the expanded matrix (nextest's
//! `--partition count:i/n`), and a report records the matrix it belongs to, so that `sockdiag merge` can check that
//! shards fit together and say which are missing.
//!
//! The split is by position: the run with id k (1-based, in matrix order, repeats included) belongs to shard
//! `(k - 1) % n + 1`. It depends on nothing but the expanded matrix, so every machine that expands the same
//! matrix splits it the same way; shards differ in size by one run at most, and a configuration's repeats are
//! spread over the shards (each shard sees every configuration once when `--repeat` is n).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sockdiag_probes::RunConfig;

/// One shard of `count`: `--shard index/count`, `1 <= index <= count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: u32,
    pub(crate) count: u32,
}

impl Shard {
    /// True when the run with this id (1-based) is one of this shard's.
    pub(crate) fn holds(&self, run_id: usize) -> bool {
        run_id >= 1 && shard_of(run_id, self.count) == self.index
    }
}

/// The shard (1-based) of `count` that the run with this id belongs to.
pub(crate) fn shard_of(run_id: usize, count: u32) -> u32 {
    ((run_id - 1) % count as usize) as u32 + 1
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `i/n`; the message says what is wrong with it (clap prefixes the flag and the value).
    fn from_str(s: &str) -> Result<Shard, String> {
        let form = "expected i/n with 1 <= i <= n, e.g. 1/4";
        let (i, n) = s.split_once('/').ok_or_else(|| form.to_string())?;
        let (Ok(index), Ok(count)) = (i.trim().parse::<u32>(), n.trim().parse::<u32>()) else {
            return Err(form.to_string());
        };
        match (index, count) {
            (_, 0) => Err("there is no shard of 0; n counts the shards, from 1".to_string()),
            (0, _) => Err(format!("shards count from 1: 1/{count} … {count}/{count}")),
            (i, n) if i > n => Err(format!("there are only {n} shards: 1/{n} … {n}/{n}")),
            _ => Ok(Shard { index, count }),
        }
    }
}

/// The matrix a report's runs come from, as the JSON report records it: its configurations in order, how often
/// each ran, and, for a shard or a merge of shards, which shards these runs are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Matrix {
    /// Every configuration of the matrix, in matrix order, each run `repeat` times in a row.
    pub(crate) configurations: Vec<RunConfig>,
    pub(crate) repeat: usize,
    /// How many runs the whole matrix has (configurations × repeat); run ids go from 1 to this.
    pub(crate) runs: usize,
    /// Absent when the whole matrix ran in one invocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shards: Option<Shards>,
}

/// Which shards of how many a report holds: one for `run --shard`, several for a merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Shards {
    pub(crate) count: u32,
    /// In increasing order.
    pub(crate) ran: Vec<u32>,
}

impl Matrix {
    pub(crate) fn new(configurations: Vec<RunConfig>, repeat: usize) -> Matrix {
        let repeat = repeat.max(1);
        Matrix { runs: configurations.len() * repeat, configurations, repeat, shards: None }
    }

    /// Every run of the matrix, `(id, configuration)`, ids from 1 in matrix order.
    pub(crate) fn all_runs(&self) -> impl Iterator<Item = (usize, RunConfig)> + '_ {
        let repeat = self.repeat;
        self.configurations
            .iter()
            .flat_map(move |c| std::iter::repeat_n(*c, repeat))
            .enumerate()
            .map(|(i, c)| (i + 1, c))
    }

    /// The runs a shard of this matrix makes (all of them without a shard), and the matrix as that shard's report
    /// records it.
    pub(crate) fn split(self, shard: Option<Shard>) -> (Matrix, Vec<(usize, RunConfig)>) {
        let runs = self.all_runs().filter(|(id, _)| shard.is_none_or(|s| s.holds(*id))).collect();
        let shards = shard.map(|s| Shards { count: s.count, ran: vec![s.index] });
        (Matrix { shards, ..self }, runs)
    }

    /// The shards of `count` that are not among `ran`.
    pub(crate) fn missing(&self) -> Vec<Shard> {
        let Some(Shards { count, ran }) = &self.shards else { return vec![] };
        (1..=*count).filter(|i| !ran.contains(i)).map(|index| Shard { index, count: *count }).collect()
    }

    /// The run ids of the matrix that the given shards do not hold.
    pub(crate) fn missing_runs(&self) -> Vec<usize> {
        let missing = self.missing();
        (1..=self.runs).filter(|id| missing.iter().any(|s| s.holds(*id))).collect()
    }

    /// `shard 2/4` or `shards 1, 3/4`: for a head line; None for the whole matrix.
    pub(crate) fn shards_label(&self) -> Option<String> {
        let Shards { count, ran } = self.shards.as_ref()?;
        if ran.len() == *count as usize {
            return None;
        }
        let list: Vec<String> = ran.iter().map(u32::to_string).collect();
        let word = if ran.len() == 1 { "shard" } else { "shards" };
        Some(format!("{word} {}/{count} of {} runs", list.join(", "), self.runs))
    }
}

#[cfg(test)]
mod tests {
    use sockdiag_probes::{Runtime, SpawnMode};

    use super::*;

    fn matrix(configs: usize, repeat: usize) -> Matrix {
        let base = RunConfig::PRODUCTION;
        let configurations = (0..configs)
            .map(|i| RunConfig {
                launches: i as u8 + 1,
                spawn: SpawnMode::Detached,
                runtime: Runtime::AsWritten,
                ..base
            })
            .collect();
        Matrix::new(configurations, repeat)
    }

    #[test]
    fn parses_i_of_n_and_names_what_is_wrong() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for (bad, says) in [
            ("0/2", "count from 1"),
            ("3/2", "only 2 shards"),
            ("1/0", "no shard of 0"),
            ("x", "expected i/n"),
            ("1/", "expected i/n"),
            ("-1/2", "expected i/n"),
            ("1/2/3", "expected i/n"),
        ] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn every_run_is_in_exactly_one_shard_and_sizes_differ_by_one_at_most() {
        for (configs, repeat) in [(7, 1), (32, 3), (14, 10), (3, 1)] {
            let m = matrix(configs, repeat);
            let all: Vec<(usize, RunConfig)> = m.all_runs().collect();
            for n in 1..=9 {
                let shards: Vec<Vec<(usize, RunConfig)>> =
                    (1..=n).map(|index| m.clone().split(Some(Shard { index, count: n })).1).collect();
                let mut union: Vec<(usize, RunConfig)> = shards.iter().flatten().copied().collect();
                union.sort_by_key(|(id, _)| *id);
                assert_eq!(union, all, "{configs}×{repeat} in {n}");
                let sizes: Vec<usize> = shards.iter().map(Vec::len).collect();
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(max - min <= 1, "{sizes:?}");
            }
        }
    }

    /// The split is pinned: the same matrix gives the same shards on any machine and in any later version, or
    /// shards made by two versions of sockdiag would not merge.
    #[test]
    fn the_split_is_round_robin_over_matrix_order() {
        let m = matrix(7, 1);
        let ids =
            |index| m.clone().split(Some(Shard { index, count: 3 })).1.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        assert_eq!(ids(1), [1, 4, 7]);
        assert_eq!(ids(2), [2, 5]);
        assert_eq!(ids(3), [3, 6]);
        let (recorded, runs) = matrix(2, 3).split(Some(Shard { index: 2, count: 2 }));
        let launches: Vec<(usize, u8)> = runs.iter().map(|(id, c)| (*id, c.launches)).collect();
        assert_eq!(launches, [(2, 1), (4, 2), (6, 2)]);
        assert_eq!(recorded.shards, Some(Shards { count: 2, ran: vec![2] }));
        assert_eq!(recorded.runs, 6);
        assert_eq!(recorded.missing(), [Shard { index: 1, count: 2 }]);
        assert_eq!(recorded.missing_runs(), [1, 3, 5]);
        assert_eq!(recorded.shards_label().as_deref(), Some("shard 2/2 of 6 runs"));
    }

    #[test]
    fn without_a_shard_the_whole_matrix_runs() {
        let (recorded, runs) = matrix(7, 2).split(None);
        assert_eq!(runs.len(), 14);
        assert_eq!(recorded.shards, None);
        assert!(recorded.missing().is_empty() && recorded.shards_label().is_none());
    }
}
