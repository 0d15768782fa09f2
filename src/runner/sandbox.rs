//! The sandbox: a private 0700 directory per run with `home/` and `data/`, the profile's database copied in
//! (from a copy made once per invocation), so a run never touches the user's real files.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rusqlite::Connection;

use super::supervisor::TempDirs;
use crate::error::UsageError;
use crate::identity::Identity;
use crate::profile::{Profile, Vars};

/// The profile's database as every run starts with it, made once per invocation: a consistent copy of the
/// user's (SQLite backup API), or seeded from `seed_sql` (`seed`). Each run gets a plain copy of this file.
pub(crate) struct DatabaseTemplate {
    /// Removed by the template's drop (see `removal`), not by TempDir's.
    dir: PathBuf,
    registry: Arc<TempDirs>,
    /// None when there is neither a database nor seed SQL: the worker starts without one.
    file: Option<PathBuf>,
}

impl DatabaseTemplate {
    pub(crate) fn prepare(
        profile: &Profile,
        session: u64,
        registry: &Arc<TempDirs>,
    ) -> anyhow::Result<Option<DatabaseTemplate>> {
        let Some(db) = &profile.database else { return Ok(None) };
        let dir = private_dir("db", registry)?.keep();
        // Forgotten by the template's drop, whatever happens below.
        let mut template = DatabaseTemplate { file: None, dir, registry: registry.clone() };
        let dir = &template.dir;
        let real = profile.real_vars(session);
        let inside = profile.sandbox_vars(session, dir, dir, 0);
        let source = PathBuf::from(real.expand(&db.path));
        confined(&db.path, &inside.expand(&db.path), dir)?;
        let target = dir.join("database");
        let file = if exists(&source)? {
            if !crate::observers::database::is_sqlite(&source) {
                return Err(UsageError(format!("database {}: not a SQLite database", source.display())).into());
            }
            let conn = Connection::open_with_flags(&source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| UsageError(format!("database {}: {e}", source.display())))?;
            conn.busy_timeout(std::time::Duration::from_millis(500))?;
            conn.backup(rusqlite::MAIN_DB, &target, None::<fn(rusqlite::backup::Progress)>)
                .map_err(|e| UsageError(format!("database {}: cannot copy it: {e}", source.display())))?;
            check_query(&target, &db.session_query, session)
                .map_err(|e| UsageError(format!("database {}: database.session_query fails: {e}", source.display())))?;
            Some(target)
        } else if let Some(seed) = &db.seed_sql {
            super::seed::seed(&profile.dir.join(inside.expand(seed)), session, &target)?;
            Some(target)
        } else {
            None
        };
        template.file = file;
        Ok(Some(template))
    }
}

/// The database a run works on must lie in its sandbox: a path that names no `{data_dir}` or `{home}` (or leaves
/// them with `..`) would have the worker, and the seeding, write to real data.
fn confined(written: &str, expanded: &str, sandbox: &Path) -> anyhow::Result<()> {
    let path = Path::new(expanded);
    let climbs = path.components().any(|c| matches!(c, std::path::Component::ParentDir));
    if climbs || !path.starts_with(sandbox) {
        return Err(UsageError(format!(
            "database.path {written}: outside the run's sandbox; name it under {{data_dir}} or {{home}} \
             (sockdiag works on a copy, never on real data)"
        ))
        .into());
    }
    Ok(())
}

/// Whether the user's database is there. Only a missing file means "no database": a permission error is the
/// input's fault, not a session that is missing (H8).
fn exists(source: &Path) -> anyhow::Result<bool> {
    match std::fs::metadata(source) {
        Ok(meta) if meta.is_file() => Ok(true),
        Ok(_) => Err(UsageError(format!("database {}: not a regular file", source.display())).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(UsageError(format!("database {}: {e}", source.display())).into()),
    }
}

/// A private (0700) directory of this invocation in the temp dir, removed on interrupt and found as a leftover
/// if sockdiag is killed.
fn private_dir(tag: &str, registry: &TempDirs) -> anyhow::Result<tempfile::TempDir> {
    registry.create(|| {
        tempfile::Builder::new()
            .prefix(&format!("{}{}-{tag}-", super::leftovers::SANDBOX_PREFIX, registry.token))
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .map_err(|e| {
                // Where temporary directories go is the user's setting (TMPDIR): a mistake in the input.
                UsageError(format!("cannot create the sandbox in {} (TMPDIR): {e}", std::env::temp_dir().display()))
                    .into()
            })
    })
}

pub(crate) struct Sandbox {
    dir: Option<tempfile::TempDir>,
    registry: Arc<TempDirs>,
    pub(crate) root: PathBuf,
    pub(crate) home: PathBuf,
    pub(crate) data: PathBuf,
}

impl Sandbox {
    pub(crate) fn create(run_id: usize, registry: &Arc<TempDirs>) -> anyhow::Result<Sandbox> {
        let dir = private_dir(&format!("run{run_id}"), registry)?;
        let root = dir.path().to_path_buf();
        let mk = |name: &str| -> anyhow::Result<PathBuf> {
            let p = root.join(name);
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&p)
                .with_context(|| format!("cannot create {}", p.display()))?;
            Ok(p)
        };
        let (home, data) = (mk("home")?, mk("data")?);
        Ok(Sandbox { dir: Some(dir), registry: registry.clone(), root, home, data })
    }

    /// Puts the invocation's copy of the profile's database where the profile says, inside the sandbox.
    pub(crate) fn install_database(
        &self,
        template: Option<&DatabaseTemplate>,
        profile: &Profile,
        inside: &Vars,
    ) -> anyhow::Result<Option<PathBuf>> {
        let (Some(template), Some(db)) = (template, &profile.database) else { return Ok(None) };
        let target = PathBuf::from(inside.expand(&db.path));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if let Some(file) = &template.file {
            std::fs::copy(file, &target)
                .with_context(|| format!("cannot copy the database to {}", target.display()))?;
            // The copy may hold what the user's database holds: the worker's alone.
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(Some(target))
    }

    /// Prepares the sandbox for a worker that runs as another user: its home and data (everything in them) become
    /// that user's, and the root lets it pass through (0711) without letting it list or write there.
    pub(crate) fn give_to(&self, who: &Identity) -> anyhow::Result<()> {
        std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o711))
            .with_context(|| format!("cannot open {} to uid {}", self.root.display(), who.uid))?;
        for top in [&self.home, &self.data] {
            chown_tree(top, who).with_context(|| format!("cannot give {} to uid {}", top.display(), who.uid))?;
        }
        Ok(())
    }

    /// Keeps the directory after the run and returns where it is.
    pub(crate) fn keep(&mut self) -> &Path {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        &self.root
    }
}

/// Changes the owner of `dir` and everything under it, never following a symlink.
fn chown_tree(dir: &Path, who: &Identity) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(who.uid), Some(who.gid))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            chown_tree(&entry.path(), who)?;
        } else {
            std::os::unix::fs::lchown(entry.path(), Some(who.uid), Some(who.gid))?;
        }
    }
    Ok(())
}

/// The profile's session query must at least run against the user's database (a missing row is a diagnosis; a
/// missing table or a broken query is a mistake in the input).
fn check_query(db: &Path, query: &str, session: u64) -> rusqlite::Result<()> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    match conn.query_row(query, [session as i64], |_| Ok(())) {
        Ok(()) | Err(rusqlite::Error::QueryReturnedNoRows) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Drop for DatabaseTemplate {
    fn drop(&mut self) {
        let _ = super::removal::remove_tree(&self.dir);
        self.registry.forget(&self.dir);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Removed unless kept, never through a symlink nor into a mount (TempDir's own removal would descend
        // into one); either way, no longer ours to clean.
        if let Some(dir) = self.dir.take() {
            let _ = super::removal::remove_tree(&dir.keep());
        }
        self.registry.forget(&self.root);
    }
}
