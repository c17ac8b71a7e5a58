//! The SQLite database's lifecycle outside a server: a consistent copy while it runs
//! (`VACUUM INTO`), a restore that checks and upgrades the copy before it replaces anything,
//! and the inspection both use to tell a curator database from any other file. PostgreSQL has
//! its own tools for this (`pg_dump`, `pg_restore`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, Row as _, SqliteConnection};

/// What a backup wrote.
#[derive(Debug)]
pub struct Backup {
    pub file: PathBuf,
    pub bytes: u64,
}

/// What a restore did.
#[derive(Debug)]
pub struct Restore {
    /// The database that was replaced, and where its last state was kept; `None` when there
    /// was no database yet.
    pub previous: Option<PathBuf>,
    /// Why the replaced database could not be copied cleanly, when it could not (it was
    /// damaged): its files were then kept byte for byte.
    pub unreadable: Option<String>,
    /// Schema versions of the restored file before and after its upgrade.
    pub from_version: i64,
    pub to_version: i64,
}

/// A database file's schema, as far as this curator knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// The newest migration applied to the file.
    pub version: i64,
    /// Migrations this curator would apply on open.
    pub pending: usize,
}

/// The path of an SQLite URL's file; `None` for other databases and in-memory ones.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn file_of(url: &str, command: &str, tool: &str) -> anyhow::Result<PathBuf> {
    match sqlite_path(url) {
        Some(path) => Ok(path),
        None if url.starts_with("postgres") => bail!(
            "`curator db {command}` works on SQLite databases; for PostgreSQL use `{tool}` \
             (see the README's section on backups)"
        ),
        None => bail!("the database `{url}` is not a file that can be copied"),
    }
}

/// Writes a consistent copy of the database at `url` to `file`, which must not exist. The
/// server may keep running: the copy is one read transaction's view. The copy is written
/// beside `file` under another name and renamed when complete, so `file` is never partial.
pub async fn backup(url: &str, file: &Path) -> anyhow::Result<Backup> {
    let db = file_of(url, "backup", "pg_dump")?;
    if !db.is_file() {
        bail!("the database `{}` does not exist: there is nothing to back up", db.display());
    }
    if file.exists() {
        bail!(
            "`{}` already exists: a backup never overwrites a file; remove it or choose another \
             name",
            file.display()
        );
    }
    let partial = sibling(file, "partial");
    let result = vacuum_into(&db, &partial).await;
    let result = match result {
        Ok(()) => std::fs::rename(&partial, file)
            .with_context(|| format!("cannot move the backup to `{}`", file.display())),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or_default();
    Ok(Backup { file: file.to_path_buf(), bytes })
}

/// Copies `db` into `target` with `VACUUM INTO`, then checks the copy.
async fn vacuum_into(db: &Path, target: &Path) -> anyhow::Result<()> {
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder `{}`", parent.display()))?;
    }
    let mut conn = connect(db, true).await?;
    sqlx::query("VACUUM INTO ?")
        .bind(target.display().to_string())
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot copy `{}` to `{}`", db.display(), target.display()))?;
    conn.close().await.ok();
    let mut copy = connect(target, true).await?;
    let check: String = sqlx::query_scalar("PRAGMA quick_check").fetch_one(&mut copy).await?;
    copy.close().await.ok();
    if check != "ok" {
        bail!("the copy at `{}` failed its integrity check: {check}", target.display());
    }
    Ok(())
}

/// Replaces the database at `url` with the backup `file`: checks that `file` is a curator
/// database this release can read, upgrades a copy of it to the current schema, keeps the
/// database it replaces as `<db>.before-restore-<time>`, and only then swaps the copy in. The
/// caller holds the server lock, so no server is using the database meanwhile.
pub async fn restore(url: &str, file: &Path) -> anyhow::Result<Restore> {
    let db = file_of(url, "restore", "pg_restore")?;
    if !file.is_file() {
        bail!("the backup `{}` does not exist", file.display());
    }
    let schema = inspect(file).await.map_err(|e| anyhow::anyhow!(e))?;

    let staged = sibling(&db, "restore");
    if let Some(parent) = staged.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder `{}`", parent.display()))?;
    }
    let staging = async {
        std::fs::copy(file, &staged)
            .with_context(|| format!("cannot copy `{}` beside the database", file.display()))?;
        let store = super::Store::open(&format!("sqlite://{}", staged.display())).await?;
        store.close().await;
        // The staged copy was opened in WAL mode: fold its log in before it is renamed.
        let mut conn = connect(&staged, false).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await?;
        sqlx::query("PRAGMA journal_mode = DELETE").execute(&mut conn).await?;
        conn.close().await.ok();
        anyhow::Ok(())
    };
    if let Err(e) = staging.await {
        remove_with_logs(&staged);
        return Err(e.context(format!("cannot upgrade `{}`", file.display())));
    }

    let mut unreadable = None;
    let previous = if db.is_file() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let kept = PathBuf::from(format!("{}.before-restore-{stamp}", db.display()));
        if let Err(e) = vacuum_into(&db, &kept).await {
            // A damaged database cannot be read for a clean copy, and it is what a restore is
            // most often for: keep its files byte for byte instead.
            remove_with_logs(&kept);
            if let Err(copy) = copy_with_logs(&db, &kept) {
                remove_with_logs(&kept);
                remove_with_logs(&staged);
                return Err(copy.context(format!(
                    "cannot keep a copy of the current database (a clean copy failed too: {}); \
                     nothing changed",
                    crate::cli::described(&e)
                )));
            }
            unreadable = Some(crate::cli::described(&e));
        }
        Some(kept)
    } else {
        None
    };
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::rename(&staged, &db)
        .with_context(|| format!("cannot move the restored database to `{}`", db.display()))?;
    let to_version = migrator().migrations.iter().map(|m| m.version).max().unwrap_or_default();
    Ok(Restore { previous, unreadable, from_version: schema.version, to_version })
}

/// Checks that `file` is an intact curator database whose schema this release knows, and says
/// how far behind the current schema it is. The error is one sentence naming the file.
pub async fn inspect(file: &Path) -> Result<Schema, String> {
    let name = file.display();
    let mut header = [0u8; 16];
    match std::fs::File::open(file).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
    {
        Ok(()) if &header == b"SQLite format 3\0" => {}
        Err(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => {
            return Err(format!("cannot read `{name}`: {e}"));
        }
        _ => return Err(format!("`{name}` is not an SQLite database")),
    }
    let mut conn = connect(file, true).await.map_err(|e| format!("{e:#}"))?;
    let check: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("cannot read `{name}`: {e}"))?;
    if check != "ok" {
        return Err(format!("`{name}` is damaged: {check}"));
    }
    let applied = sqlx::query("SELECT version, checksum FROM _sqlx_migrations WHERE success")
        .fetch_all(&mut conn)
        .await
        .map_err(|_| format!("`{name}` is an SQLite database, but not curator's"))?;
    conn.close().await.ok();
    let migrator = migrator();
    let mut version = 0;
    for row in &applied {
        let (v, checksum): (i64, Vec<u8>) = (row.get(0), row.get(1));
        match migrator.migrations.iter().find(|m| m.version == v) {
            Some(m) if *m.checksum == *checksum => version = version.max(v),
            Some(_) => {
                return Err(format!(
                    "`{name}` has schema version {v} in a form this curator did not write"
                ));
            }
            None => {
                let known = migrator.migrations.iter().map(|m| m.version).max().unwrap_or(0);
                return Err(format!(
                    "`{name}` was written by a newer curator (schema version {v}; this one \
                     knows up to {known}): upgrade curator first"
                ));
            }
        }
    }
    let first = migrator.migrations.first().map(|m| m.version);
    if applied.is_empty() || !applied.iter().any(|r| Some(r.get::<i64, _>(0)) == first) {
        return Err(format!("`{name}` is an SQLite database, but not curator's"));
    }
    let pending = migrator.migrations.iter().filter(|m| m.version > version).count();
    Ok(Schema { version, pending })
}

/// Checks that the PostgreSQL server at `url` answers and that its schema, if any, is one
/// this release knows; a database curator has not used yet is fine (it is set up on start).
pub async fn inspect_postgres(url: &str) -> Result<Schema, String> {
    use sqlx::postgres::{PgConnectOptions, PgConnection};
    let shown = super::redact_url(url);
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| format!("`{shown}` is not a PostgreSQL URL: {e}"))?;
    let connect = PgConnection::connect_with(&options);
    let mut conn = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(format!("cannot connect to `{shown}`: {e}")),
        Err(_) => return Err(format!("cannot connect to `{shown}`: no answer within 10 s")),
    };
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let applied: Vec<i64> = if exists {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut conn)
            .await
            .map_err(|e| format!("cannot read `{shown}`: {e}"))?
    } else {
        Vec::new()
    };
    conn.close().await.ok();
    let migrator = sqlx::migrate!("migrations/postgres");
    let known = migrator.migrations.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newer) =
        applied.iter().find(|v| !migrator.migrations.iter().any(|m| m.version == **v))
    {
        return Err(format!(
            "`{shown}` was written by a newer curator (schema version {newer}; this one knows \
             up to {known}): upgrade curator first"
        ));
    }
    let version = applied.iter().copied().max().unwrap_or(0);
    let pending = migrator.migrations.iter().filter(|m| m.version > version).count();
    Ok(Schema { version, pending })
}

fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("migrations/sqlite")
}

async fn connect(path: &Path, read_only: bool) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .read_only(read_only)
        .busy_timeout(Duration::from_secs(10));
    options.connect().await.with_context(|| format!("cannot open `{}`", path.display()))
}

/// A hidden name beside `path` for work in progress, unique to this process.
fn sibling(path: &Path, what: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{what}-{}", std::process::id()))
}

/// Copies an SQLite file and its write-ahead log and shared-memory index, where they exist.
fn copy_with_logs(from: &Path, to: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let (source, target) =
            (format!("{}{suffix}", from.display()), format!("{}{suffix}", to.display()));
        if suffix.is_empty() || Path::new(&source).is_file() {
            std::fs::copy(&source, &target)
                .with_context(|| format!("cannot copy `{source}` to `{target}`"))?;
        }
    }
    Ok(())
}

fn remove_with_logs(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
