//! Throwaway databases for tests, one per test (shared by the unit tests, through
//! `src/store/mod.rs`, and the end-to-end tests in `tests/cli`): a temporary SQLite file, or a
//! fresh database on the PostgreSQL server that `CURATOR_TEST_POSTGRES` names, dropped (with
//! any connection still open to it) when the value is dropped, even after a failed assertion.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

/// The variable that names the PostgreSQL server for tests.
pub const POSTGRES_VAR: &str = "CURATOR_TEST_POSTGRES";

/// A database that lives as long as the value.
pub struct TestDatabase {
    /// The URL to give curator.
    pub url: String,
    place: Place,
}

enum Place {
    /// The folder is removed when the value is dropped.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin: String,
        name: String,
    },
}

impl TestDatabase {
    /// A new SQLite file in a temporary folder.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("curator.db").display());
        TestDatabase { url, place: Place::Sqlite { _dir: dir } }
    }

    /// A new, empty database on the server `CURATOR_TEST_POSTGRES` names. A variable that is
    /// not set, or a server that cannot be reached, fails the test: it never passes unrun.
    pub async fn postgres() -> TestDatabase {
        let admin =
            std::env::var(POSTGRES_VAR).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
                panic!("{POSTGRES_VAR} is not set: give it a PostgreSQL URL to run this test")
            });
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "curator_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("cannot reach the PostgreSQL server that {POSTGRES_VAR} names: {e}")
        });
        let create = format!("CREATE DATABASE {name}");
        sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut conn).await.unwrap();
        conn.close().await.ok();
        TestDatabase { url: with_database(&admin, &name), place: Place::Postgres { admin, name } }
    }

    /// Runs one statement directly, as someone editing the database behind curator's back.
    pub async fn execute(&self, statement: &str) {
        let statement = sqlx::AssertSqlSafe(statement.to_string());
        match self.place {
            Place::Sqlite { .. } => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(statement).execute(&mut conn).await.unwrap();
            }
            Place::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(statement).execute(&mut conn).await.unwrap();
            }
        };
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Place::Postgres { admin, name } = &self.place else { return };
        let (admin, name) = (admin.clone(), name.clone());
        // Drop may run inside a runtime, which cannot be blocked on: a thread gets its own.
        let dropped = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("cannot drop the test database: {e}");
        }
    }
}

/// The URL with another database name in its path.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_test_database_url_keeps_the_server_and_options() {
        let cases = [
            ("postgres://postgres@127.0.0.1/test", "postgres://postgres@127.0.0.1/t1"),
            (
                "postgres://u:p@db:5433/x?sslmode=disable",
                "postgres://u:p@db:5433/t1?sslmode=disable",
            ),
            ("postgresql://db", "postgresql://db/t1"),
        ];
        for (url, expected) in cases {
            assert_eq!(super::with_database(url, "t1"), expected);
        }
    }
}
