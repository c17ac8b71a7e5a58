//! The operator's commands and files: `init`, `config check|show`, `--version`, completions and
//! man pages, JSON logs, `healthcheck`, `db backup|restore`, and the deployment files under
//! `deploy/`, each tried for real where this machine allows.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve::{Server, eventually};
use crate::*;

/// A `curator serve` started with JSON logs, stopped on drop.
struct JsonServer {
    child: Child,
    port: u16,
    log: mpsc::Receiver<String>,
    /// Every line read so far, parsed.
    lines: Vec<Value>,
}

impl JsonServer {
    fn start(mut command: Command) -> JsonServer {
        command.env("CURATOR_LISTEN", "127.0.0.1:0").stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("serve starts");
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = JsonServer { child, port: 0, log, lines: Vec::new() };
        let listening = server.wait_for("listening", Duration::from_secs(30));
        let addr = listening["fields"]["listen"].as_str().unwrap().to_string();
        server.port = addr.rsplit(':').next().unwrap().parse().unwrap();
        server.wait_for("reconciled", Duration::from_secs(30));
        server
    }

    /// The first line whose message is `message`; every line must be JSON.
    fn wait_for(&mut self, message: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.lines.iter().find(|l| l["fields"]["message"] == message) {
                return line.clone();
            }
            let Ok(text) =
                self.log.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                panic!("no `{message}` log line within {within:?}: {:#?}", self.lines);
            };
            let line: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {text}"));
            self.lines.push(line);
        }
    }
}

impl Drop for JsonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A fields of a span the log line was written in, from its `spans` list.
fn span_field<'a>(line: &'a Value, field: &str) -> Option<&'a Value> {
    line["spans"].as_array()?.iter().find_map(|span| span.get(field))
}

// ----- init -----

#[test]
fn init_in_an_empty_folder_gives_a_setup_that_validates_reconciles_serves_and_runs() {
    let sandbox = Sandbox::empty();
    let init = sandbox.run(&["init", "site"]).success();
    for file in [
        "curator.yaml",
        "jobs.d/example.yaml",
        "schemas/library-job.schema.json",
        ".gitignore",
        ".github/workflows/curator.yml",
    ] {
        assert!(sandbox.path("site").join(file).is_file(), "init wrote {file}");
        assert!(init.stdout().contains(&format!("created site/{file}")), "{}", init.stdout());
    }
    let site = |args: &[&str]| {
        let mut all = vec!["--config", "site/curator.yaml"];
        all.extend_from_slice(args);
        sandbox.run(&all)
    };

    // The job points its editor at the schema, which is the one curator checks with.
    let job = std::fs::read_to_string(sandbox.path("site/jobs.d/example.yaml")).unwrap();
    assert!(job.starts_with("# yaml-language-server: $schema=../schemas/library-job.schema.json"));
    let schema = std::fs::read_to_string(sandbox.path("site/schemas/library-job.schema.json"));
    assert_eq!(schema.unwrap(), sandbox.run(&["schema"]).success().stdout());
    let ignore = std::fs::read_to_string(sandbox.path("site/.gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "/data/"), "the database stays out of Git: {ignore}");
    let workflow = std::fs::read_to_string(sandbox.path("site/.github/workflows/curator.yml"));
    let workflow = curator::spec::yaml::parse(&workflow.unwrap()).unwrap().remove(0).value;
    let steps = workflow["jobs"]["validate"]["steps"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s["run"] == "curator validate --output github"),
        "the workflow validates with annotations: {workflow}"
    );

    site(&["config", "check"]).success();
    let validated = site(&["validate"]).success();
    assert!(validated.stdout().contains("1 valid job(s), 0 error(s)"), "{}", validated.stdout());
    let plan = site(&["reconcile", "--dry-run"]).expect_code(3);
    assert!(plan.stdout().contains("+ create example"), "{}", plan.stdout());
    let applied = site(&["reconcile"]).success();
    assert!(applied.stdout().contains("1 created"), "{}", applied.stdout());

    // Served from inside the folder, as the README says: a queued run completes.
    let mut serve = sandbox.command(&["serve"]);
    serve.current_dir(sandbox.path("site")).arg("--log-format").arg("json");
    let server = JsonServer::start(serve);
    assert!(http_get(server.port, "/healthz").starts_with("HTTP/1.1 200"));
    site(&["run", "example"]).success();
    eventually(Duration::from_secs(15), "the queued run succeeding", || {
        let run = site(&["runs", "show", "1", "--output", "json"]);
        run.code() == 0
            && serde_json::from_str::<Value>(&run.stdout()).unwrap()["run"]["status"] == "succeeded"
    });
    drop(server);

    // The run wrote the offline metadata; a second run, here, finds nothing new.
    let catalog = site(&["catalog", "export", "--format", "json"]).success();
    let catalog: Value = serde_json::from_str(&catalog.stdout()).unwrap();
    let frieren = &catalog["libraries"][0]["series"][0];
    assert_eq!(frieren["metadata"]["status"], "ongoing", "{frieren}");
    assert_eq!(frieren["metadata"]["totalVolumeCount"], 13);
    let rerun = site(&["run", "example", "--wait"]).success();
    assert!(rerun.stdout().contains("succeeded"), "{}", rerun.stdout());
}

#[test]
fn init_names_every_file_in_the_way_and_writes_nothing() {
    let sandbox = Sandbox::empty();
    sandbox.write("curator.yaml", "listen: 127.0.0.1:9999\n");
    sandbox.write("jobs.d/example.yaml", "# mine\n");
    let refused = sandbox.run(&["init"]).expect_code(1);
    assert!(
        refused.stderr().contains("error: `./curator.yaml` already exists"),
        "{}",
        refused.stderr()
    );
    assert!(refused.stderr().contains("`./jobs.d/example.yaml` already exists"));
    assert!(refused.stderr().contains("nothing was written"));
    assert!(!sandbox.path("schemas").exists(), "no file was written");
    assert!(!sandbox.path(".gitignore").exists());
    assert_eq!(
        std::fs::read_to_string(sandbox.path("curator.yaml")).unwrap(),
        "listen: 127.0.0.1:9999\n"
    );
}

// ----- config -----

#[test]
fn config_check_passes_the_repository_config() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["config", "check"]).success();
    assert!(run.stdout().starts_with("curator.yaml: ok ("), "{}", run.stdout());
    assert_eq!(run.stderr(), "", "no warning about the repository's own setup");
}

#[test]
fn config_check_names_an_unknown_key_at_its_line() {
    let sandbox = Sandbox::empty();
    sandbox.write("curator.yaml", "listen: 127.0.0.1:8080\nprovders: []\n");
    let run = sandbox.run(&["config", "check"]).expect_code(2);
    assert_eq!(
        run.stderr(),
        "curator.yaml:2:1: error: unknown key `provders`; did you mean `providers`?\n"
    );
    assert_eq!(run.stdout(), "curator.yaml: 1 error(s), 0 warning(s)\n");
}

#[test]
fn config_check_reports_providers_that_cannot_start_and_databases_that_cannot_open() {
    let sandbox = Sandbox::empty();
    sandbox.write("not-a-plugin", "#!/bin/sh\n");
    sandbox.write("blocker", "a file where a folder should be\n");
    sandbox.write("jobs.d/.keep", "");
    sandbox.write(
        "curator.yaml",
        "database: sqlite://blocker/curator.db
providers:
  - name: missing
    kind: plugin
    command: curator-no-such-plugin
  - name: stale
    kind: plugin
    command: ./not-a-plugin
  - name: gone
    kind: directory
    path: no-such-folder
  - name: off
    kind: plugin
    command: also-missing
    enabled: false
  - name: hub
    kind: anilist
    credentials:
      token: { env: CURATOR_TEST_NO_SUCH_VARIABLE }
",
    );
    let run = sandbox.run(&["config", "check"]).expect_code(1);
    let err = run.stderr();
    let expected = [
        "curator.yaml:1:11: error: cannot create the database `blocker/curator.db`: `blocker` is not a directory",
        "curator.yaml:5:14: error: provider `missing` cannot start: the command `curator-no-such-plugin` is not found on PATH",
        "curator.yaml:8:14: error: provider `stale` cannot start: the command `./not-a-plugin` is not an executable file",
        "error: provider `gone` cannot start: the folder `",
        "curator.yaml:19:14: error: provider `hub` cannot start: credential `token`: the variable `CURATOR_TEST_NO_SUCH_VARIABLE` is not set",
    ];
    for line in expected {
        assert!(err.contains(line), "expected `{line}` in:\n{err}");
    }
    assert!(err.contains("curator.yaml:11:11:"), "the folder is named at its line:\n{err}");
    assert!(!err.contains("`off`"), "a disabled provider is not started:\n{err}");
    assert!(run.stdout().contains("5 error(s), 0 warning(s)"), "{}", run.stdout());

    // A database that is not curator's, named by the variable that set it.
    sandbox.write("curator.yaml", "providers: []\n");
    sandbox.write("junk.db", "not a database at all, just text that is long enough");
    let run = sandbox
        .command(&["config", "check"])
        .env("CURATOR_DATABASE_URL", "sqlite://junk.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`CURATOR_DATABASE_URL`: error: `junk.db` is not an SQLite database"),
        "{err}"
    );
}

#[test]
fn config_check_refuses_a_database_from_a_newer_curator() {
    let sandbox = Sandbox::new().prepared();
    sandbox.sql(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'future', 1, x'00', 0)",
    );
    let run = sandbox.run(&["config", "check"]).expect_code(1);
    assert!(
        run.stderr().contains("was written by a newer curator (schema version 9999"),
        "{}",
        run.stderr()
    );
}

#[test]
fn config_show_prints_effective_settings_with_their_origin_and_secrets_masked() {
    let sandbox = Sandbox::empty();
    sandbox.write(
        "curator.yaml",
        "listen: 127.0.0.1:9000
apiToken: file-token-hunter2
providers:
  - name: remote
    kind: plugin
    command: sh
    settings: { apiKey: settings-key-hunter2, pageSize: 50 }
webhooks:
  - url: https://hooks.example.org/services/T0/B0/hook-hunter2
",
    );
    let show = |output: &str| {
        let out = sandbox
            .command(&["config", "show", "--output", output])
            .env("CURATOR_LISTEN", "0.0.0.0:8181")
            .env("CURATOR_DATABASE_URL", "sqlite://other.db")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let json: Value = serde_json::from_str(&show("json")).unwrap();
    let settings = &json["settings"];
    assert_eq!(settings["listen"], "0.0.0.0:8181", "the variable wins over the file");
    assert_eq!(json["origins"]["listen"], "CURATOR_LISTEN");
    assert_eq!(json["origins"]["database"], "CURATOR_DATABASE_URL");
    assert_eq!(json["origins"]["apiToken"], "file");
    assert_eq!(json["origins"]["jobsDir"], "default");
    assert_eq!(settings["apiToken"], "<redacted>");
    assert_eq!(settings["providers"][0]["settings"]["apiKey"], "<redacted>");
    assert_eq!(settings["providers"][0]["settings"]["pageSize"], 50);
    assert_eq!(settings["webhooks"][0]["url"], "https://hooks.example.org/<redacted>");
    assert_eq!(settings["retention"]["maxRuns"], 100);

    let text = show("text");
    assert!(!text.contains("hunter2"), "no secret in the text:\n{text}");
    assert!(text.contains("listen: \"0.0.0.0:8181\"  # CURATOR_LISTEN"), "{text}");
    assert!(text.contains("apiToken: \"<redacted>\"  # file"), "{text}");
}

#[test]
fn every_config_setting_is_documented_where_init_writes_it() {
    let template = include_str!("../../src/init/curator.yaml");
    // The config's own error for an unknown key lists every key it knows.
    let sandbox = Sandbox::empty();
    let known = |yaml: &str| -> Vec<String> {
        sandbox.write("curator.yaml", yaml);
        let err = sandbox.run(&["config", "check"]).expect_code(2).stderr();
        let list = err.split("expected ").nth(1).unwrap_or_else(|| panic!("{err}"));
        let list = list.trim_start_matches("one of ").replace(" or ", ", ");
        list.split(", ").map(|k| k.trim().trim_matches('`').to_string()).collect()
    };
    let mut keys = known("zzz: 1\n");
    keys.extend(known("providers:\n  - { name: a, kind: directory, path: ., zzz: 1 }\n"));
    keys.extend(known("retention: { zzz: 1 }\n"));
    keys.extend(known("webhooks:\n  - { url: http://x, zzz: 1 }\n"));
    assert!(keys.len() > 20, "{keys:?}");
    for key in keys {
        assert!(
            template.contains(&format!("{key}:")),
            "`curator init`'s config does not explain `{key}`"
        );
    }
}

// ----- version, completions, man -----

#[test]
fn version_names_the_commit_it_was_built_from() {
    let sandbox = Sandbox::empty();
    let version = sandbox.run(&["--version"]).success().stdout();
    let head = Command::new("git").args(["-C", REPO, "rev-parse", "HEAD"]).output();
    let commit = match head {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => "unknown".to_string(),
    };
    let expected = format!("curator {} (commit {commit})\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(version, expected);
}

#[test]
fn a_build_without_git_says_its_commit_is_unknown() {
    // The build script alone, compiled and run where there is no work tree.
    let dir = tempfile::tempdir().unwrap();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let script = dir.path().join("build-script");
    let compiled = Command::new(rustc)
        .args(["--edition", "2024", "-o"])
        .arg(&script)
        .arg(Path::new(REPO).join("build.rs"))
        .output()
        .unwrap();
    assert!(compiled.status.success(), "{}", String::from_utf8_lossy(&compiled.stderr));
    let tarball = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)]| {
        let mut cmd = Command::new(&script);
        cmd.env("CARGO_MANIFEST_DIR", tarball.path()).env_remove("CURATOR_BUILD_COMMIT");
        cmd.env("GIT_CEILING_DIRECTORIES", tarball.path().parent().unwrap());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "the build never fails for want of Git");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(run(&[]).contains("cargo:rustc-env=CURATOR_COMMIT=unknown"));
    assert!(run(&[("PATH", "")]).contains("cargo:rustc-env=CURATOR_COMMIT=unknown"));
    let packaged = run(&[("CURATOR_BUILD_COMMIT", "0123abc")]);
    assert!(packaged.contains("cargo:rustc-env=CURATOR_COMMIT=0123abc"), "{packaged}");
}

#[test]
fn completions_come_from_the_command_definitions() {
    let sandbox = Sandbox::empty();
    let bash = sandbox.run(&["completions", "bash"]).success().stdout();
    for word in ["validate", "reconcile", "healthcheck", "backup", "--log-format"] {
        assert!(bash.contains(word), "bash completes `{word}`");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("curator.bash");
    std::fs::write(&file, &bash).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    // Loaded into a shell, it completes a subcommand.
    let completed = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(curator con); COMP_CWORD=1; _curator curator con curator; \
             echo \"${{COMPREPLY[@]}}\"",
            file.display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&completed.stdout).trim(), "config");

    let zsh = sandbox.run(&["completions", "zsh"]).success().stdout();
    assert!(zsh.starts_with("#compdef curator"), "{}", &zsh[..40]);
    assert!(zsh.contains("'healthcheck:"), "zsh completes subcommands");
    let fish = sandbox.run(&["completions", "fish"]).success().stdout();
    assert!(fish.contains("complete -c curator"), "fish completes curator");
    assert!(fish.contains("-a \"backup\""), "fish completes `db backup`");
    sandbox.run(&["completions", "tcsh"]).expect_code(2);
}

#[test]
fn man_pages_come_from_the_command_definitions() {
    let sandbox = Sandbox::empty();
    let help = sandbox.run(&["help", "db"]).success().stdout();
    assert!(help.contains("backup") && help.contains("restore"), "{help}");
    let page = sandbox.run(&["man"]).success().stdout();
    assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH curator 1"), "{page}");
    assert!(page.contains(".TH curator 1"));
    assert!(page.contains("healthcheck"), "the page lists the commands");

    let written = sandbox.run(&["man", "--dir", "man1"]).success().stdout();
    for name in ["curator.1", "curator-validate.1", "curator-db-backup.1", "curator-config-show.1"]
    {
        assert!(written.contains(name), "{written}");
        let text = std::fs::read_to_string(sandbox.path("man1").join(name)).unwrap();
        let title = name.trim_end_matches(".1");
        assert!(text.contains(&format!(".TH {title} 1")), "{name}: {}", &text[..200]);
    }
    // `man` itself can read a page.
    if Path::new("/usr/bin/man").exists() {
        let shown = Command::new("man")
            .arg("-l")
            .arg(sandbox.path("man1/curator-db-backup.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(text.contains("consistent copy"), "{text}");
    }
}

// ----- logs -----

#[test]
fn a_log_filter_that_does_not_parse_is_named_not_ignored_silently() {
    let sandbox = Sandbox::new();
    let output = sandbox.command(&["jobs", "list"]).env("CURATOR_LOG", "curator=lound").output();
    let output = output.unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("warning: CURATOR_LOG=`curator=lound` is not a log filter ("),
        "{stderr}"
    );
    assert!(stderr.contains("); it is ignored"), "{stderr}");
}

#[test]
fn json_logs_name_the_job_and_file_of_every_line_about_a_run_or_firing() {
    let sandbox = Sandbox::new().prepared();
    // Fires every second, so a scheduled firing is seen at once.
    sandbox.write("jobs.d/every-second.yaml", &JOB.replace("\"0 4 * * *\"", "\"* * * * * *\""));
    let mut command = sandbox.command(&["serve"]);
    command.env("CURATOR_LOG_FORMAT", "json");
    let mut server = JsonServer::start(command);
    sandbox.run(&["run", "manga/curated-status"]).success();
    let fired = server.wait_for("job fired", Duration::from_secs(10));
    assert_eq!(span_field(&fired, "job.id"), Some(&Value::from("every-second")), "{fired}");
    assert_eq!(span_field(&fired, "job.file"), Some(&Value::from("every-second.yaml")), "{fired}");
    server.wait_for("run finished", Duration::from_secs(10));
    eventually(Duration::from_secs(10), "the queued run's end in the log", || {
        while let Ok(text) = server.log.try_recv() {
            server.lines.push(serde_json::from_str(&text).unwrap());
        }
        server.lines.iter().any(|l| {
            l["fields"]["message"] == "run finished"
                && span_field(l, "job.id") == Some(&Value::from("manga/curated-status"))
        })
    });
    let about_runs: Vec<&Value> =
        server.lines.iter().filter(|l| l["target"] == "curator::run").collect();
    assert!(about_runs.len() >= 4, "{about_runs:#?}");
    for line in about_runs {
        assert!(span_field(line, "job.id").is_some(), "a run's line without its job: {line}");
        assert!(span_field(line, "job.file").is_some(), "a run's line without its file: {line}");
        assert!(span_field(line, "run.id").is_some(), "{line}");
    }
    let queued = server
        .lines
        .iter()
        .find(|l| span_field(l, "job.id") == Some(&Value::from("manga/curated-status")))
        .unwrap();
    assert_eq!(span_field(queued, "job.file"), Some(&Value::from("manga/curated-status.yaml")));
}

#[test]
fn log_format_and_level_come_from_the_config_file_and_lose_to_the_environment() {
    let sandbox = Sandbox::new();
    sandbox.append_config("logFormat: json\nlogLevel: debug\n");
    // A one-shot command logs at warn by default; the file's `debug` shows its debug lines.
    let run = sandbox.run(&["reconcile", "--dry-run"]);
    let first = run.stderr().lines().next().unwrap_or_default().to_string();
    let line: Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stderr()));
    assert_eq!(line["level"], "DEBUG", "{line}");

    let human = sandbox
        .command(&["reconcile", "--dry-run", "--log-format", "human"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&human.stderr);
    assert!(!stderr.contains("DEBUG"), "RUST_LOG wins over the file's level: {stderr}");
    assert!(!stderr.starts_with('{'), "--log-format wins over the file's format: {stderr}");

    sandbox.append_config("logLevel: \"curator=loud\"\n");
    let bad = sandbox.run(&["config", "check"]).expect_code(2);
    assert!(bad.stderr().contains("`logLevel`"), "{}", bad.stderr());
}

// ----- healthcheck -----

#[test]
fn healthcheck_asks_a_running_server_and_fails_when_none_answers() {
    let sandbox = Sandbox::new();
    let server = Server::start(&sandbox);
    let url = format!("http://127.0.0.1:{}/healthz", server.port);
    let ok = sandbox.run(&["healthcheck", "--url", &url]).success();
    assert!(ok.stdout().contains("200 OK"), "{}", ok.stdout());
    // Without --url it asks the configured address; a wildcard bind is asked on loopback.
    let by_config = sandbox
        .command(&["healthcheck"])
        .env("CURATOR_LISTEN", format!("0.0.0.0:{}", server.port))
        .output()
        .unwrap();
    assert!(by_config.status.success(), "{}", String::from_utf8_lossy(&by_config.stderr));
    drop(server);
    let down = sandbox.run(&["healthcheck", "--url", &url, "--timeout", "2s"]).expect_code(1);
    assert!(down.stderr().contains(&format!("error: `{url}` did not answer")), "{}", down.stderr());
}

#[test]
fn healthcheck_refuses_a_url_that_is_not_one_as_a_usage_error() {
    let sandbox = Sandbox::empty();
    let run = sandbox.run(&["healthcheck", "--url", "notaurl"]).expect_code(2);
    assert_eq!(
        run.stderr(),
        "error: `notaurl` is not an http:// or https:// URL (relative URL without a base); for \
         example `--url http://127.0.0.1:8080/healthz`\n"
    );
    let ftp = sandbox.run(&["healthcheck", "--url", "ftp://127.0.0.1/healthz"]).expect_code(2);
    assert!(ftp.stderr().starts_with("error: `ftp://127.0.0.1/healthz` is not an http://"));
}

// ----- exit codes and output -----

#[test]
fn a_config_that_cannot_be_read_is_a_usage_error_for_every_command() {
    let sandbox = Sandbox::empty();
    sandbox.write("curator.yaml", "workers: 0\n");
    for args in [
        &["config", "check"][..],
        &["config", "show"],
        &["jobs", "list"],
        &["runs", "list"],
        &["reconcile"],
        &["run", "example"],
    ] {
        let run = sandbox.run(args).expect_code(2);
        assert!(run.stderr().contains("curator.yaml:1:10: error: "), "{args:?}: {}", run.stderr());
    }
    let missing = sandbox.run(&["--config", "nowhere.yaml", "jobs", "list"]).expect_code(2);
    assert!(
        missing.stderr().starts_with("nowhere.yaml: error: cannot read the config"),
        "{}",
        missing.stderr()
    );
}

#[test]
fn a_reader_that_closes_the_pipe_early_ends_the_command_quietly() {
    let sandbox = Sandbox::new().prepared();
    for args in [&["man"][..], &["schema"], &["jobs", "list"], &["completions", "bash"]] {
        let mut child = sandbox
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before curator writes a byte.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

#[test]
fn every_output_flag_says_what_it_does() {
    let sandbox = Sandbox::empty();
    for command in [
        "validate",
        "reconcile",
        "run",
        "preview",
        "schedule",
        "jobs list",
        "jobs show",
        "runs list",
        "runs show",
        "config show",
    ] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push("--help");
        let help = sandbox.run(&args).success().stdout();
        let flag = &help[help.find("--output").unwrap()..];
        let described: String = flag.lines().take(2).collect();
        assert!(described.contains("How to print"), "`{command} --help`: {described}");
    }
}

// ----- database lifecycle -----

fn count(sandbox: &Sandbox, db: &str, table: &str) -> i64 {
    let rows = sandbox.sql_at(db, &format!("SELECT count(*) AS n FROM {table}"));
    rows[0]["n"].as_i64().unwrap()
}

#[test]
fn db_backup_copies_a_served_database_and_never_overwrites() {
    let sandbox = Sandbox::new().prepared();
    sandbox.run(&["run", "manga/curated-status", "--wait"]).success();
    let server = Server::start(&sandbox);
    let backup = sandbox.run(&["db", "backup", "backups/one.db"]).success();
    assert!(backup.stdout().starts_with("backed up to backups/one.db ("), "{}", backup.stdout());
    drop(server);
    for table in ["jobs", "runs", "run_entries", "series", "books"] {
        assert_eq!(
            count(&sandbox, "backups/one.db", table),
            count(&sandbox, "data/curator.db", table),
            "the backup holds every row of `{table}`"
        );
    }
    let again = sandbox.run(&["db", "backup", "backups/one.db"]).expect_code(1);
    assert!(
        again.stderr().contains("`backups/one.db` already exists: a backup never overwrites"),
        "{}",
        again.stderr()
    );
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.path("backups")).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no partial file is left behind");
}

#[test]
fn db_restore_puts_a_backup_back_and_keeps_the_database_it_replaces() {
    let sandbox = Sandbox::new().prepared();
    sandbox.run(&["run", "manga/curated-status", "--wait"]).success();
    sandbox.run(&["db", "backup", "one-run.db"]).success();
    sandbox.run(&["run", "books/curated-volumes", "--wait"]).success();
    assert_eq!(count(&sandbox, "data/curator.db", "runs"), 2);

    // Refused while a server uses the database.
    let server = Server::start(&sandbox);
    let busy = sandbox.run(&["db", "restore", "one-run.db"]).expect_code(1);
    assert!(
        busy.stderr().contains("cannot restore now; stop the server first"),
        "{}",
        busy.stderr()
    );
    assert!(busy.stderr().contains("another `curator serve` (pid"), "{}", busy.stderr());
    drop(server);

    let restored = sandbox.run(&["db", "restore", "one-run.db"]).success();
    assert!(restored.stdout().contains("restored"), "{}", restored.stdout());
    assert_eq!(count(&sandbox, "data/curator.db", "runs"), 1, "the backup's history is back");
    let kept: Vec<PathBuf> = std::fs::read_dir(sandbox.path("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("curator.db.before-restore-"))
        .collect();
    assert_eq!(kept.len(), 1, "the replaced database is kept");
    let kept = kept[0].strip_prefix(sandbox.path("")).unwrap().display().to_string();
    assert_eq!(count(&sandbox, &kept, "runs"), 2);
    sandbox.run(&["runs", "show", "1"]).success();
}

#[test]
fn a_damaged_database_is_named_with_the_way_out_and_restore_replaces_it() {
    let sandbox = Sandbox::new().prepared();
    sandbox.run(&["db", "backup", "good.db"]).success();
    // Pages after the header overwritten, as a failing disk or a bad copy leaves them; the
    // log folded in first, so that the damage is where the rows are.
    sandbox.sql("PRAGMA wal_checkpoint(TRUNCATE)");
    let path = sandbox.path("data/curator.db");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4096..].fill(0xab);
    std::fs::write(&path, &bytes).unwrap();

    let broken = sandbox.run(&["jobs", "list"]).expect_code(1).stderr();
    assert!(broken.contains("sqlite://data/curator.db"), "the file is named: {broken}");
    assert!(broken.contains("`curator db restore FILE`"), "the way out is named: {broken}");
    assert_eq!(broken.matches("malformed").count(), 1, "the cause is said once: {broken}");

    let restored = sandbox.run(&["db", "restore", "good.db"]).success().stdout();
    assert!(restored.contains("the database it replaced could not be read ("), "{restored}");
    let kept: Vec<PathBuf> = std::fs::read_dir(sandbox.path("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("curator.db.before-restore-"))
        .filter(|p| {
            !p.to_string_lossy().ends_with("-wal") && !p.to_string_lossy().ends_with("-shm")
        })
        .collect();
    assert_eq!(kept.len(), 1, "its log files, if any, are kept beside it: {kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), bytes, "the damaged file is kept byte for byte");
    assert_eq!(count(&sandbox, "data/curator.db", "jobs"), 3);
    sandbox.run(&["jobs", "list"]).success();
}

#[test]
fn a_database_that_refuses_writes_is_named_not_the_catalog() {
    let sandbox = Sandbox::new().prepared();
    // Opened read-only, as a file the user may not write is; root may write any file, so the
    // URL asks for it.
    let output = sandbox
        .command(&["reconcile"])
        .env("CURATOR_DATABASE_URL", "sqlite://data/curator.db?mode=ro")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: cannot add the catalog `examples/catalog.yaml` to the database \
             `sqlite://data/curator.db?mode=ro`: "
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "attempt to write a readonly database: the user running curator must be able to \
             write the database file and its folder"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("examples/catalog.yaml: error"),
        "the catalog is not blamed: {stderr}"
    );
}

#[test]
fn db_restore_refuses_files_that_are_not_curator_databases() {
    let sandbox = Sandbox::new().prepared();
    sandbox.write("notes.txt", "these are not the rows you are looking for\n");
    let text = sandbox.run(&["db", "restore", "notes.txt"]).expect_code(1);
    assert!(text.stderr().contains("`notes.txt` is not an SQLite database"), "{}", text.stderr());
    sandbox.sql_at("other.db", "CREATE TABLE t (x INTEGER)");
    let other = sandbox.run(&["db", "restore", "other.db"]).expect_code(1);
    assert!(
        other.stderr().contains("`other.db` is an SQLite database, but not curator's"),
        "{}",
        other.stderr()
    );
    let missing = sandbox.run(&["db", "restore", "nowhere.db"]).expect_code(1);
    assert!(missing.stderr().contains("the backup `nowhere.db` does not exist"));
    assert_eq!(count(&sandbox, "data/curator.db", "jobs"), 3, "the database is untouched");
}

/// The first release's database, as its `.dump` fixture holds it.
fn first_release_database(sandbox: &Sandbox, rel: &str) {
    let dump =
        std::fs::read_to_string(Path::new(REPO).join("tests/fixtures/first-release.sql")).unwrap();
    let path = sandbox.path(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(dump)).execute(&mut conn).await.unwrap();
    });
}

#[test]
fn a_first_release_database_upgrades_in_place_with_its_data_intact() {
    let sandbox = Sandbox::new();
    first_release_database(&sandbox, "data/curator.db");
    let migrations = std::fs::read_dir(Path::new(REPO).join("migrations/sqlite")).unwrap().count();

    let jobs = sandbox.json(&["jobs", "list", "--output", "json"]);
    let ids: Vec<&str> =
        jobs.as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["books/curated-volumes", "comics/curated-summaries", "manga/curated-status"]);
    let run = sandbox.json(&["runs", "show", "1", "--output", "json"]);
    assert_eq!(run["run"]["jobId"], "manga/curated-status");
    assert_eq!(run["run"]["status"], "succeeded");
    assert!(run["entries"].as_array().unwrap().len() > 5, "{run}");
    assert_eq!(sandbox.series("manga", "vinland-saga")["metadata"]["status"], "ended");
    let applied = sandbox.sql("SELECT count(*) AS n FROM _sqlx_migrations WHERE success = 1");
    assert_eq!(applied[0]["n"], migrations as i64, "the schema is current");
    // The upgraded database keeps working: a run and a reconcile pass.
    sandbox.run(&["run", "comics/curated-summaries", "--wait"]).success();
    sandbox.run(&["reconcile"]).success();
}

#[test]
fn db_restore_upgrades_a_first_release_backup() {
    let sandbox = Sandbox::new().prepared();
    first_release_database(&sandbox, "old/backup.db");
    sandbox.run(&["db", "restore", "old/backup.db"]).success();
    assert_eq!(count(&sandbox, "data/curator.db", "runs"), 3, "the backup's three runs");
    sandbox.run(&["config", "check"]).success();
    sandbox.run(&["runs", "show", "3"]).success();
}

// ----- deployment files -----

fn deploy(rel: &str) -> String {
    std::fs::read_to_string(Path::new(REPO).join("deploy").join(rel)).unwrap()
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = deploy("systemd/curator.service");
    for setting in [
        "DynamicUser=yes",
        "User=curator",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/curator",
        "ExecStart=/usr/local/bin/curator serve",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == setting), "the unit sets `{setting}`");
    }
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if analyze.is_err() {
        eprintln!("skipped: systemd-analyze is not installed; `apt-get install systemd` adds it");
        return;
    }
    // Verified as installed: the binary where ExecStart says it is, and its man page on the
    // manual path for `Documentation=man:curator(1)`.
    let root = tempfile::tempdir().unwrap();
    let binary = root.path().join("curator");
    std::fs::copy(env!("CARGO_BIN_EXE_curator"), &binary).unwrap();
    let unit_path = root.path().join("curator.service");
    std::fs::write(
        &unit_path,
        unit.replace("/usr/local/bin/curator", &binary.display().to_string()),
    )
    .unwrap();
    let man =
        Command::new(&binary).arg("man").arg("--dir").arg(root.path().join("man/man1")).output();
    assert!(man.unwrap().status.success());
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_path)
        .env("MANPATH", root.path().join("man"))
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stderr);
    assert!(verified.status.success(), "systemd-analyze verify:\n{said}");
    assert!(!said.contains("curator.service:"), "no remark about the unit:\n{said}");
}

#[test]
fn the_container_recipe_is_multi_stage_non_root_with_volumes_and_a_health_check() {
    let recipe = deploy("container/Containerfile");
    let lines: Vec<&str> = recipe.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
    let froms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a build stage and a slim runtime stage");
    assert!(froms[0].ends_with(" AS build"));
    let final_stage = &lines[lines.iter().position(|l| l == froms[1]).unwrap()..];
    let get = |instruction: &str| -> Vec<&str> {
        final_stage.iter().filter(|l| l.starts_with(instruction)).copied().collect()
    };
    assert_eq!(get("USER "), ["USER 10001:10001"], "the server runs as an unprivileged user");
    assert_eq!(get("VOLUME "), [r#"VOLUME ["/etc/curator/jobs.d", "/var/lib/curator"]"#]);
    assert!(recipe.contains("CURATOR_JOBS_DIR=/etc/curator/jobs.d"));
    assert!(recipe.contains("CURATOR_DATABASE_URL=sqlite:///var/lib/curator/curator.db"));
    assert!(recipe.contains(r#"CMD ["curator", "healthcheck"]"#), "the health check asks /healthz");
    assert!(recipe.contains("COPY --from=build /out/curator /usr/local/bin/curator"));
    assert!(recipe.contains("cargo build --release --locked --bin curator"));
    assert!(recipe.contains("RUN curator init /etc/curator"), "the image serves out of the box");
    let ignore = std::fs::read_to_string(Path::new(REPO).join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "target/"), "the build context leaves target/ out");

    // The image's set-up, as its RUN and ENV lines make it, serves and passes its health check.
    let sandbox = Sandbox::empty();
    sandbox.run(&["init", "etc/curator"]).success();
    let env = [
        ("CURATOR_CONFIG", sandbox.path("etc/curator/curator.yaml")),
        ("CURATOR_JOBS_DIR", sandbox.path("etc/curator/jobs.d")),
    ];
    let mut serve = sandbox.command(&["serve"]);
    serve.envs(env.clone()).env(
        "CURATOR_DATABASE_URL",
        format!("sqlite://{}", sandbox.path("var/lib/curator/curator.db").display()),
    );
    serve.env("CURATOR_LOG_FORMAT", "json");
    let server = JsonServer::start(serve);
    let health = sandbox
        .command(&["healthcheck"])
        .envs(env)
        .env("CURATOR_LISTEN", format!("0.0.0.0:{}", server.port))
        .output()
        .unwrap();
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));
}

/// Lays out a ConfigMap volume as the kubelet does: the files in a timestamped folder, `..data`
/// pointing at it, and each visible name a symlink through `..data`.
fn mount_config_map(config_map: &Value, items: Option<&Value>, at: &Path) {
    let data = config_map["data"].as_object().unwrap();
    let stamped = at.join("..2026_12_03_04_00_00.000000001");
    let mut top = std::collections::BTreeSet::new();
    for (key, text) in data {
        let path = match items {
            Some(items) => {
                let item = items.as_array().unwrap().iter().find(|i| i["key"] == *key);
                match item {
                    Some(item) => item["path"].as_str().unwrap().to_string(),
                    None => continue,
                }
            }
            None => key.clone(),
        };
        let file = stamped.join(&path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text.as_str().unwrap()).unwrap();
        top.insert(path.split('/').next().unwrap().to_string());
    }
    std::os::unix::fs::symlink(stamped.file_name().unwrap(), at.join("..data")).unwrap();
    for name in top {
        std::os::unix::fs::symlink(Path::new("..data").join(&name), at.join(&name)).unwrap();
    }
}

#[test]
fn the_kubernetes_example_mounts_jobs_that_validate_and_serves_its_probes() {
    let text = deploy("kubernetes/curator.yaml");
    let docs: Vec<Value> =
        curator::spec::yaml::parse(&text).unwrap().into_iter().map(|d| d.value).collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"]);
    let named = |kind: &str, name: &str| {
        docs.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).unwrap()
    };
    let deployment = &docs[3];
    assert_eq!(deployment["spec"]["replicas"], 1, "SQLite serves one process");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");

    // Given the pod's file system, laid out from the volumes and their mounts.
    let root = tempfile::tempdir().unwrap();
    let under = |path: &str| root.path().join(path.trim_start_matches('/'));
    for mount in container["volumeMounts"].as_array().unwrap() {
        let at = under(mount["mountPath"].as_str().unwrap());
        std::fs::create_dir_all(&at).unwrap();
        let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == mount["name"]);
        let volume = volume.unwrap();
        if let Some(cm) = volume.get("configMap") {
            let config_map = named("ConfigMap", cm["name"].as_str().unwrap());
            mount_config_map(config_map, cm.get("items"), &at);
        } else {
            let claim = volume["persistentVolumeClaim"]["claimName"].as_str().unwrap();
            named("PersistentVolumeClaim", claim);
        }
    }
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container["env"].as_array().unwrap() {
        let value = var["value"].as_str().unwrap();
        let value = match value.strip_prefix("sqlite://") {
            Some(path) => format!("sqlite://{}", under(path).display()),
            None if value.starts_with('/') => under(value).display().to_string(),
            None => value.to_string(),
        };
        env.push((var["name"].as_str().unwrap().to_string(), value));
    }
    let sandbox = Sandbox::empty();
    let run = |args: &[&str]| {
        let out = sandbox.command(args).envs(env.clone()).output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "`curator {}` in the pod:\n{said}", args.join(" "));
        said
    };

    // Then its config checks, its jobs validate, and the server answers both probes.
    run(&["config", "check"]);
    let validated = run(&["validate"]);
    assert!(validated.contains("1 valid job(s), 0 error(s)"), "{validated}");
    let mut serve = sandbox.command(&["serve"]);
    serve.envs(env.clone()).env_remove("CURATOR_LISTEN");
    let server = JsonServer::start(serve);
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        // Readiness waits for the first reconcile pass, as a kubelet's probe would retry.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let mut response = http_get(server.port, path);
        while !response.starts_with("HTTP/1.1 200") && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            response = http_get(server.port, path);
        }
        assert!(response.starts_with("HTTP/1.1 200"), "{probe} {path}: {response}");
    }
    let reconciled = server.lines.iter().find(|l| l["fields"]["message"] == "reconciled").unwrap();
    assert_eq!(reconciled["fields"]["created"], 1, "the ConfigMap's job was loaded: {reconciled}");
}

// ----- the README -----

/// The fenced block that follows `marker` in the README.
fn readme_block(readme: &str, marker: &str) -> String {
    let at = readme.find(marker).unwrap_or_else(|| panic!("the README has no `{marker}`"));
    let after = at + marker.len();
    let fence = after + readme[after..].find("```").unwrap();
    let body = fence + readme[fence..].find('\n').unwrap() + 1;
    let end = body + readme[body..].find("```").unwrap();
    readme[body..end].to_string()
}

#[test]
fn the_readme_explains_every_run_total_and_every_provider_error_kind() {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let sandbox = Sandbox::new().prepared();
    let run = sandbox.json(&["run", "manga/curated-status", "--wait", "--output", "json"]);
    let totals = run["run"]["totals"].as_object().unwrap();
    assert!(totals.len() >= 12, "{totals:?}");
    for total in totals.keys() {
        assert!(
            readme.contains(&format!("| `{total}` |")),
            "the README does not explain `{total}`"
        );
    }

    // The kinds are the words `ProviderError::kind` returns.
    let source = std::fs::read_to_string(Path::new(REPO).join("src/provider/mod.rs")).unwrap();
    let body =
        source.split("pub fn kind(&self)").nth(1).unwrap().split("\n    }\n").next().unwrap();
    let kinds: Vec<&str> =
        body.lines().filter_map(|l| l.split("=> \"").nth(1)?.split('"').next()).collect();
    assert!(kinds.len() >= 8, "{kinds:?}");
    let metrics = readme.lines().find(|l| l.contains("curator_provider_errors_total")).unwrap();
    for kind in kinds {
        assert!(metrics.contains(&format!("`{kind}`")), "the README's metrics miss `{kind}`");
    }
}

#[test]
fn the_readme_walkthrough_works_as_written() {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    // Given the quick start: a served clone with one run.
    let sandbox = Sandbox::new();
    drop(Server::start(&sandbox));
    sandbox.run(&["run", "manga/curated-status", "--wait"]).success();

    // 1. Write the job.
    let job = readme_block(&readme, "Save this as `jobs.d/manga/weekly-genres.yaml`");
    sandbox.write("jobs.d/manga/weekly-genres.yaml", &job);

    // 2. Validate: the output the README shows.
    let validated = sandbox.run(&["validate"]).success();
    let shown = readme_block(&readme, "then put it back.\n\n```sh\ncurator validate\n```");
    assert_eq!(validated.stdout(), shown);
    let typo = job.replace("fieldGroups: [genres, tags]", "fieldGroups: [genre, tags]");
    sandbox.write("jobs.d/manga/weekly-genres.yaml", &typo);
    let refused = sandbox.run(&["validate"]).expect_code(1);
    assert!(refused.stdout().contains("did you mean `genres`?"), "{}", refused.stdout());
    sandbox.write("jobs.d/manga/weekly-genres.yaml", &job);

    // 3. The dry run prints every line the README shows, and exits 3.
    let plan = sandbox.run(&["reconcile", "--dry-run"]).expect_code(3);
    let shown = readme_block(&readme, "```sh\ncurator reconcile --dry-run\n```");
    for line in shown.lines().filter(|l| l.trim() != "...") {
        assert!(plan.stdout().contains(line), "`{line}` is not in:\n{}", plan.stdout());
    }

    // 4. Serve and queue a run: the log names the job and its file, as shown.
    let mut server = Server::start(&sandbox);
    let preview = sandbox.run(&["preview", "manga/weekly-genres"]).success();
    assert!(preview.stdout().contains("nothing is written"), "{}", preview.stdout());
    let queued = sandbox.run(&["run", "manga/weekly-genres"]).success();
    assert!(queued.stdout().contains("queued run 2"), "{}", queued.stdout());
    let finished = server.wait_for_log("run finished", Duration::from_secs(15));
    let shown = readme_block(&readme, "each line naming the job and its\nfile:");
    let prefix = shown.lines().nth(1).unwrap().split(" updated=").next().unwrap();
    assert!(finished.contains(prefix), "`{prefix}` is not in:\n{finished}");

    // 5. Read the run.
    let list = sandbox.run(&["runs", "list", "--job", "manga/weekly-genres"]).success();
    assert!(list.stdout().starts_with("#2 manga/weekly-genres manual"), "{}", list.stdout());
    let run = sandbox.run(&["runs", "show", "2"]).success();
    let shown = readme_block(&readme, "curator runs show 2\n```");
    for line in shown.lines().skip(1).filter(|l| l.trim() != "...") {
        assert!(run.stdout().contains(line), "`{line}` is not in:\n{}", run.stdout());
    }
    sandbox.run(&["jobs", "show", "manga/weekly-genres"]).success();
}

// ----- PostgreSQL -----

#[test]
fn config_check_names_a_postgres_server_that_does_not_answer_without_its_password() {
    let sandbox = Sandbox::empty();
    sandbox.write("curator.yaml", "database: postgres://curator:hunter2@127.0.0.1:1/curator\n");
    let run = sandbox.run(&["config", "check"]).expect_code(1);
    assert!(
        run.stderr().starts_with(
            "curator.yaml:1:11: error: cannot connect to \
             `postgres://curator:<redacted>@127.0.0.1:1/curator`"
        ),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("hunter2"), "{}", run.stderr());
    // Backups of PostgreSQL are its own tools' work, and the command says which.
    let backup = sandbox.run(&["db", "backup", "x.db"]).expect_code(1);
    assert!(backup.stderr().contains("for PostgreSQL use `pg_dump`"), "{}", backup.stderr());
    let restore = sandbox.run(&["db", "restore", "x.db"]).expect_code(1);
    assert!(restore.stderr().contains("for PostgreSQL use `pg_restore`"), "{}", restore.stderr());
}

#[test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: run with CURATOR_TEST_POSTGRES=postgres://postgres@127.0.0.1/test"
)]
fn config_check_reaches_a_postgres_database_and_refuses_a_newer_schema() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = runtime.block_on(crate::testdb::TestDatabase::postgres());
    let sandbox = Sandbox::empty().with_database_url(&db.url);
    sandbox.run(&["config", "check"]).success();
    // Once curator has set it up, a schema version it does not know is refused.
    sandbox.write("jobs.d/.keep", "");
    sandbox.run(&["reconcile"]).success();
    runtime.block_on(db.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'future', true, '\\x00', 0)",
    ));
    let newer = sandbox.run(&["config", "check"]).expect_code(1);
    assert!(
        newer.stderr().contains("was written by a newer curator (schema version 9999"),
        "{}",
        newer.stderr()
    );
}
