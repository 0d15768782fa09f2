//! H8: the session row the worker needs is not in the database it opens.

use crate::{per_run, EventKind, Evidence, Finding, Probe, RowLookup, RunRecord, Status};

pub struct SessionRow;

impl Probe for SessionRow {
    fn id(&self) -> &'static str {
        "H8"
    }
    fn causal_rank(&self) -> u8 {
        10
    }
    fn title(&self) -> &'static str {
        "session row missing from the database"
    }
    fn checks(&self) -> &'static str {
        "Looks the session up (the profile's session_query) in every database file the worker was seen holding \
         open, and in the profile's database. Confirmed when the row, the table or the file is missing; ruled out \
         when the row exists in the file the worker opened."
    }
    fn fix(&self) -> &'static str {
        "Create the session row before spawning the worker (and commit it), and make the worker and its launcher \
         open the same database file."
    }
    fn live_look(&self) -> bool {
        true
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        if runs.iter().all(|r| r.expected.database.is_none() && !opened_any(r)) {
            return Finding::new(Status::NotApplicable, "the profile names no database", vec![]);
        }
        per_run(runs, judge)
    }
}

fn opened_any(run: &RunRecord) -> bool {
    run.events.iter().any(|e| matches!(e.kind, EventKind::DatabaseOpened { .. }))
}

fn judge(run: &RunRecord) -> Finding {
    let id = run.id;
    let opened: Vec<(u64, i32, &str)> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::DatabaseOpened { pid, path } => Some((e.t_us, *pid, path.as_str())),
            _ => None,
        })
        .collect();
    let lookup = |db: &str| {
        run.events.first(|k| match k {
            EventKind::SessionRow { database, row } if database == db => Some(row.clone()),
            _ => None,
        })
    };
    let session = run.expected.session;
    for (t, pid, db) in &opened {
        let Some((e, row)) = lookup(db) else { continue };
        let seen = Evidence::at(id, *t, format!("pid {pid} has database {db} open"));
        let looked = Evidence::at(id, e.t_us, e.kind.describe());
        return match row {
            RowLookup::Found => Finding::new(
                Status::RuledOut,
                format!("session {session} exists in the database the worker opened"),
                vec![seen, looked],
            ),
            RowLookup::Missing => Finding::new(
                Status::Confirmed,
                format!("no row for session {session} in {db}, the database the worker opened"),
                vec![seen, looked],
            ),
            RowLookup::Error(err) => Finding::new(
                Status::Confirmed,
                format!("the database the worker opened cannot answer the session query: {err}"),
                vec![seen, looked],
            ),
        };
    }
    let Some(db) = run.expected.database.as_deref() else {
        return Finding::new(Status::Inconclusive, "the worker opened a database that could not be queried", vec![]);
    };
    let unseen = Evidence::run(id, "the worker was not seen holding a database open; checked the profile's database, which its environment points to");
    match lookup(db) {
        Some((e, RowLookup::Found)) => Finding::new(
            Status::RuledOut,
            format!("session {session} exists in the profile's database"),
            vec![Evidence::at(id, e.t_us, e.kind.describe()), unseen],
        ),
        Some((e, RowLookup::Missing)) => Finding::new(
            Status::Confirmed,
            format!("no row for session {session} in the profile's database {db}"),
            vec![Evidence::at(id, e.t_us, e.kind.describe()), unseen],
        ),
        Some((e, RowLookup::Error(err))) => Finding::new(
            Status::Confirmed,
            format!("the profile's database cannot answer the session query: {err}"),
            vec![Evidence::at(id, e.t_us, e.kind.describe()), unseen],
        ),
        None => Finding::new(
            Status::Inconclusive,
            "the session row was not looked up",
            vec![Evidence::run(id, "missing: a session lookup")],
        ),
    }
}
