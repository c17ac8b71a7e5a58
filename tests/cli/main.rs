//! End-to-end tests: the real `curator` binary run in a temporary copy of the repository's
//! `curator.yaml`, `jobs.d/` and `examples/`, with its own SQLite database. Each test reads as
//! given / when / then; the serve tests start the real server on port 0. This file holds the
//! harness; each module holds the tests of one command family.

mod browser;
mod catalog;
mod operator;
mod providers;
mod reconcile;
mod refresh;
mod replicas;
mod runs;
mod schedule;
mod serve;
mod validate;
mod watch;
mod web;

#[allow(dead_code)]
#[path = "../support/testdb.rs"]
mod testdb;

#[path = "../support/examples.rs"]
mod examples;
pub use examples::copy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A temporary copy of the repository's runnable files.
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// `CURATOR_DATABASE_URL` for every command, when the database is not the config's.
    database_url: Option<String>,
}

impl Sandbox {
    /// Given the repository's own config, jobs and examples.
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("a temp dir");
        examples::copy_examples(Path::new(REPO), dir.path());
        Sandbox { dir, database_url: None }
    }

    /// The same sandbox, with every command pointed at another database through
    /// `CURATOR_DATABASE_URL`, as an operator would.
    fn with_database_url(self, url: &str) -> Sandbox {
        Sandbox { database_url: Some(url.to_string()), ..self }
    }

    /// Given an empty folder.
    fn empty() -> Sandbox {
        Sandbox { dir: tempfile::tempdir().expect("a temp dir"), database_url: None }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_curator"));
        cmd.args(args).current_dir(self.dir.path());
        for var in [
            "CURATOR_CONFIG",
            "CURATOR_DATABASE_URL",
            "CURATOR_JOBS_DIR",
            "CURATOR_LISTEN",
            "CURATOR_TIMEZONE",
            "CURATOR_LOG",
            "CURATOR_LOG_FORMAT",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        if let Some(url) = &self.database_url {
            cmd.env("CURATOR_DATABASE_URL", url);
        }
        cmd
    }

    /// Runs curator to the end; the caller checks the exit code.
    #[must_use]
    fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().expect("curator runs");
        Run { output, args: args.join(" ") }
    }

    /// Imports the example catalog and loads jobs.d/, as a new user would first.
    fn prepared(self) -> Sandbox {
        self.run(&["catalog", "import", "examples/catalog.yaml"]).success();
        self.run(&["reconcile"]).success();
        self
    }

    /// Runs SQL on the sandbox's database directly, as someone editing it behind curator's back
    /// would; returns the rows of a query as JSON objects.
    fn sql(&self, statement: &str) -> Vec<Value> {
        self.sql_at("data/curator.db", statement)
    }

    /// Runs SQL on the SQLite file at `rel`, creating it when missing.
    fn sql_at(&self, rel: &str, statement: &str) -> Vec<Value> {
        use sqlx::{Column, Row};
        let url = format!("sqlite://{}?mode=rwc", self.path(rel).display());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut conn =
                <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
            let statement = sqlx::AssertSqlSafe(statement.to_string());
            let rows = sqlx::query(statement).fetch_all(&mut conn).await.unwrap();
            rows.iter()
                .map(|row| {
                    let mut object = serde_json::Map::new();
                    for (i, column) in row.columns().iter().enumerate() {
                        let value = match row.try_get::<Option<i64>, _>(i) {
                            Ok(n) => n.map_or(Value::Null, Value::from),
                            Err(_) => {
                                row.get::<Option<String>, _>(i).map_or(Value::Null, Value::from)
                            }
                        };
                        object.insert(column.name().to_string(), value);
                    }
                    Value::Object(object)
                })
                .collect()
        })
    }

    /// Runs git in the sandbox, which becomes a work tree with `git init`.
    fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .arg("-C")
            .arg(self.dir.path())
            .args(["-c", "user.name=curator", "-c", "user.email=curator@example.org"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Adds lines to the sandbox's `curator.yaml`.
    fn append_config(&self, text: &str) {
        let config = std::fs::read_to_string(self.path("curator.yaml")).unwrap();
        self.write("curator.yaml", &format!("{config}{text}"));
    }

    fn json(&self, args: &[&str]) -> Value {
        let run = self.run(args).success();
        serde_json::from_str(&run.stdout())
            .unwrap_or_else(|e| panic!("`{}` printed no JSON: {e}\n{}", run.args, run.stdout()))
    }

    /// The exported catalog entry of a series, by library and ID.
    fn series(&self, library: &str, id: &str) -> Value {
        let catalog = self.json(&["catalog", "export", "--format", "json"]);
        let lib =
            catalog["libraries"].as_array().unwrap().iter().find(|l| l["id"] == library).unwrap();
        lib["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no series {id}"))
    }
}

pub struct Run {
    output: Output,
    args: String,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code(),
            code,
            "`curator {}` exit code\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout(),
            self.stderr()
        );
        self
    }

    fn success(self) -> Run {
        self.expect_code(0)
    }
}

/// The echo plugin example, built by `cargo test` beside this test binary.
pub fn echo_plugin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let plugin = exe.parent().unwrap().parent().unwrap().join("examples").join("echo-plugin");
    assert!(plugin.is_file(), "expected the echo plugin at {}", plugin.display());
    plugin
}

pub const JOB: &str = "apiVersion: curator/v1
kind: LibraryJob
library: manga
schedule:
  cron: \"0 4 * * *\"
type: metadata_refresh
provider: curated
scope: series_only
fieldGroups: [ratings]
";
