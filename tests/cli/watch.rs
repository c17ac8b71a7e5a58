//! The watcher against a real directory: editors' atomic saves and swap files, a Kubernetes
//! ConfigMap's symlink swap, a deleted and recreated directory, and a burst of changes.

use std::os::unix::fs::symlink;
use std::time::Duration;

use crate::serve::{Server, eventually};
use crate::*;

impl Server {
    /// How many reconcile passes the log shows so far, after draining what arrived.
    fn passes(&mut self) -> usize {
        self.log().iter().filter(|l| l.contains(" reconciled ")).count()
    }
}

fn job_ids(sandbox: &Sandbox) -> Vec<String> {
    let jobs = sandbox.json(&["jobs", "list", "--output", "json"]);
    jobs.as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()).collect()
}

fn cron_of(sandbox: &Sandbox, id: &str) -> String {
    let job = sandbox.json(&["jobs", "show", id, "--output", "json"]);
    job["job"]["spec"]["schedule"]["cron"].as_str().unwrap().to_string()
}

#[test]
fn an_atomic_save_is_picked_up_and_swap_files_are_ignored() {
    let sandbox = Sandbox::new();
    let _server = Server::start(&sandbox);
    sandbox.write("jobs.d/a.yaml", JOB);
    eventually(Duration::from_secs(3), "the new job", || job_ids(&sandbox).contains(&"a".into()));

    // vim: a swap file appears, the new text is written to a temp file and renamed over.
    sandbox.write("jobs.d/.a.yaml.swp", "not yaml: [");
    sandbox.write("jobs.d/a.yaml~", "not yaml: [");
    sandbox.write("jobs.d/.a.yaml.tmp", &JOB.replace("0 4 * * *", "0 5 * * *"));
    std::fs::rename(sandbox.path("jobs.d/.a.yaml.tmp"), sandbox.path("jobs.d/a.yaml")).unwrap();
    eventually(Duration::from_secs(3), "the renamed-over edit", || {
        cron_of(&sandbox, "a") == "0 5 * * *"
    });
    let validate = sandbox.run(&["validate"]).success();
    assert!(
        validate.stdout().contains("4 file(s), 4 valid job(s), 0 error(s)"),
        "{}",
        validate.stdout()
    );
}

#[test]
fn a_configmap_symlink_swap_is_one_update() {
    let sandbox = Sandbox::new();
    // The layout kubelet writes: a timestamped folder, `..data` pointing at it, and visible
    // symlinks through `..data`.
    sandbox.write("jobs.d/..2026_12_03_10_00_00.1/cm.yaml", JOB);
    symlink("..2026_12_03_10_00_00.1", sandbox.path("jobs.d/..data")).unwrap();
    symlink("..data/cm.yaml", sandbox.path("jobs.d/cm.yaml")).unwrap();
    let _server = Server::start(&sandbox);
    assert_eq!(cron_of(&sandbox, "cm"), "0 4 * * *");

    sandbox
        .write("jobs.d/..2026_12_03_11_00_00.2/cm.yaml", &JOB.replace("0 4 * * *", "15 4 * * *"));
    symlink("..2026_12_03_11_00_00.2", sandbox.path("jobs.d/..data_tmp")).unwrap();
    std::fs::rename(sandbox.path("jobs.d/..data_tmp"), sandbox.path("jobs.d/..data")).unwrap();
    std::fs::remove_dir_all(sandbox.path("jobs.d/..2026_12_03_10_00_00.1")).unwrap();
    eventually(Duration::from_secs(3), "the swapped ConfigMap", || {
        cron_of(&sandbox, "cm") == "15 4 * * *"
    });
    assert_eq!(job_ids(&sandbox).iter().filter(|id| id.as_str() == "cm").count(), 1);
}

#[test]
fn a_deleted_and_recreated_directory_keeps_its_jobs_then_is_watched_again() {
    let sandbox = Sandbox::new();
    let mut server = Server::start(&sandbox);
    std::fs::remove_dir_all(sandbox.path("jobs.d")).unwrap();
    let refused = server.wait_for_log("reconcile refused", Duration::from_secs(5));
    assert!(refused.contains("apply_with=\"curator reconcile --allow-empty\""), "{refused}");
    let pass = server.wait_for_log("reconcile pass applied nothing", Duration::from_secs(5));
    assert!(pass.contains("pending_delete=3"), "{pass}");
    assert_eq!(job_ids(&sandbox).len(), 3, "a vanished directory prunes nothing");

    // The directory comes back (a checkout, a volume remounted), with one job more.
    for job in crate::examples::EXAMPLE_FILES.iter().filter(|f| f.starts_with("jobs.d/")) {
        crate::copy(&std::path::Path::new(REPO).join(job), &sandbox.path(job));
    }
    sandbox.write("jobs.d/fresh.yaml", JOB);
    eventually(Duration::from_secs(3), "the recreated directory's job", || {
        job_ids(&sandbox).contains(&"fresh".into())
    });
    sandbox.write("jobs.d/fresh.yaml", &JOB.replace("0 4 * * *", "0 6 * * *"));
    eventually(Duration::from_secs(3), "an edit in the recreated directory", || {
        cron_of(&sandbox, "fresh") == "0 6 * * *"
    });
}

#[test]
fn a_burst_of_a_thousand_files_is_coalesced_into_few_passes() {
    let sandbox = Sandbox::new();
    let mut server = Server::start(&sandbox);
    let before = server.passes();
    let writing = std::time::Instant::now();
    for i in 0..1000 {
        sandbox.write(&format!("jobs.d/burst/job-{i:04}.yaml"), JOB);
    }
    let took = writing.elapsed();
    eventually(Duration::from_secs(20), "all thousand jobs", || job_ids(&sandbox).len() == 1003);
    std::thread::sleep(Duration::from_millis(500));
    let passes = server.passes() - before;
    // At most one pass per 200 ms debounce window while the files were being written, and a
    // few after: on a loaded machine the writes themselves take seconds.
    let bound = took.as_millis() as usize / 200 + 4;
    assert!(passes <= bound.min(100), "1,000 files written in {took:?} took {passes} passes");
}

#[test]
fn a_commit_reaches_the_jobs_it_touches_without_a_file_change() {
    let sandbox = Sandbox::new();
    sandbox.git(&["init", "-q"]);
    sandbox.git(&["add", "jobs.d"]);
    sandbox.git(&["commit", "-qm", "the example jobs"]);
    let mut server = Server::start(&sandbox);
    sandbox.write("jobs.d/fresh.yaml", JOB);
    let git = |sandbox: &Sandbox| {
        let shown = sandbox.run(&["jobs", "show", "fresh", "--output", "json"]);
        let shown: serde_json::Value = serde_json::from_str(&shown.stdout()).unwrap_or_default();
        shown["job"]["git"].clone()
    };
    eventually(Duration::from_secs(5), "the new job, not committed yet", || {
        git(&sandbox) == serde_json::json!({"commit": null, "dirty": true})
    });
    let passes = server.passes();

    sandbox.git(&["add", "jobs.d/fresh.yaml"]);
    sandbox.git(&["commit", "-qm", "a fresh job"]);
    let commit = sandbox.git(&["rev-parse", "HEAD"]);
    eventually(Duration::from_secs(5), "the commit on the job", || {
        git(&sandbox) == serde_json::json!({"commit": commit, "dirty": false})
    });
    assert!(server.passes() > passes, "a pass ran for the commit alone");
}

#[test]
fn a_repository_made_after_the_server_started_is_followed() {
    let sandbox = Sandbox::new();
    let _server = Server::start(&sandbox);
    let git = |sandbox: &Sandbox| {
        let shown = sandbox.run(&["jobs", "show", "manga/curated-status", "--output", "json"]);
        let shown: serde_json::Value = serde_json::from_str(&shown.stdout()).unwrap_or_default();
        shown["job"]["git"].clone()
    };
    eventually(Duration::from_secs(10), "the example jobs", || {
        job_ids(&sandbox).contains(&"manga/curated-status".into())
    });
    assert_eq!(git(&sandbox), serde_json::Value::Null, "outside a work tree");

    // The path the README gives: the server runs, then the directory becomes a repository.
    sandbox.git(&["init", "-q"]);
    sandbox.git(&["add", "jobs.d"]);
    sandbox.git(&["commit", "-qm", "the example jobs"]);
    let first = sandbox.git(&["rev-parse", "HEAD"]);
    eventually(Duration::from_secs(10), "the first commit on the job", || {
        git(&sandbox) == serde_json::json!({"commit": first, "dirty": false})
    });

    // From then on the reflog is watched: a commit with no file change of its own shows.
    let status = "jobs.d/manga/curated-status.yaml";
    let text = std::fs::read_to_string(sandbox.path(status)).unwrap();
    sandbox.write(status, &format!("{text}# reviewed\n"));
    eventually(Duration::from_secs(10), "the edit, not committed yet", || {
        git(&sandbox) == serde_json::json!({"commit": first, "dirty": true})
    });
    sandbox.git(&["commit", "-qam", "reviewed"]);
    let second = sandbox.git(&["rev-parse", "HEAD"]);
    eventually(Duration::from_secs(10), "the second commit on the job", || {
        git(&sandbox) == serde_json::json!({"commit": second, "dirty": false})
    });

    // A repository removed takes its commits with it, and one made again is followed again.
    std::fs::remove_dir_all(sandbox.path(".git")).unwrap();
    eventually(Duration::from_secs(10), "no commit outside a work tree", || {
        git(&sandbox) == serde_json::Value::Null
    });
    sandbox.git(&["init", "-q"]);
    sandbox.git(&["add", "jobs.d"]);
    sandbox.git(&["commit", "-qm", "again"]);
    let third = sandbox.git(&["rev-parse", "HEAD"]);
    eventually(Duration::from_secs(10), "the new repository's commit", || {
        git(&sandbox) == serde_json::json!({"commit": third, "dirty": false})
    });
}
