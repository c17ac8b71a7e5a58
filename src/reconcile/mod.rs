//! Reconcile: bring the jobs in the database in line with the files under `jobs.d/`. A pass
//! lists the directory and reads what changed (`scan`), asks Git where each file stands
//! (`git`), works out the plan (`plan`), applies it in one transaction, and reports it
//! (`render`). An invalid file never changes or deletes a job, and an empty or unreadable
//! directory never prunes unless the caller allows it.

mod git;
pub mod plan;
pub mod render;
mod scan;

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use plan::{Counts, Deleted, FieldDiff, FireTime, Guard, Held, Op, Plan, Planned, Refusal};
pub use render::{FORMAT_VERSION, Style, render_json, render_text};

use crate::config::Config;
use crate::store::{FileRecord, GitState, JobChanges, JobRow, RowScope, Store, StoreError};
use crate::validate::{Context, Severity};

/// How a pass may behave.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Work out and report the plan without writing anything.
    pub dry_run: bool,
    /// Let an empty, missing or unreadable directory delete every job.
    pub allow_empty: bool,
    /// Let a plan delete more than half of the jobs.
    pub allow_mass_delete: bool,
    /// Let a work tree whose HEAD is older than the commit the database was last reconciled
    /// from apply its plan.
    pub allow_older_commit: bool,
    /// Where next fire times are counted from; the current time when `None`.
    pub now: Option<DateTime<Utc>>,
}

/// The outcome of the last applied (or refused) pass, as stored for the API and UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub finished_at: DateTime<Utc>,
    /// Whether the plan was applied; `false` when it was refused.
    pub applied: bool,
    /// The HEAD of the work tree `jobs.d/` is in, if it is in one.
    pub commit: Option<String>,
    pub counts: Counts,
    pub refused: Option<Refusal>,
    pub directory_error: Option<String>,
    /// Every file with errors, with its errors: their jobs keep their last good version.
    pub invalid_files: Vec<InvalidFile>,
}

/// A job file with errors, as the last pass saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvalidFile {
    pub file: String,
    pub errors: Vec<FileError>,
}

/// One error in a job file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileError {
    pub line: usize,
    pub column: usize,
    /// The offending value's path (`schedule.cron`); empty for the document.
    pub path: String,
    pub code: String,
    pub message: String,
}

/// Plans one pass over the config's jobs directory and, unless `dry_run`, applies it in one
/// transaction.
pub async fn reconcile(
    store: &Store,
    config: &Config,
    options: Options,
) -> Result<Plan, StoreError> {
    let now = options.now.unwrap_or_else(Utc::now);
    // The directory is read under the lock: a pass that read the files before another pass
    // applied newer ones would put the older versions back.
    let mut tx = store.begin_reconcile(!options.dry_run).await?;
    let mut libraries = tx.library_ids().await?;
    if options.dry_run {
        // A real pass seeds the config's catalog files first; a dry run only reads them.
        for path in &config.catalog {
            if let Ok(catalog) = crate::catalog::file::CatalogFile::read(path) {
                libraries.extend(catalog.libraries.into_iter().map(|l| l.id));
            }
        }
    }
    let manifests = tx.manifests().await?;
    let index = tx.index().await?;
    let key = cache_key(config, &libraries, &manifests);
    let check_all = index.cache_key.as_deref() != Some(key.as_str());
    let touched: HashSet<String> = index.touched.iter().map(|(id, _)| id.clone()).collect();
    let touched_files: BTreeSet<String> = index.touched.into_iter().map(|(_, f)| f).collect();
    let records = index.files;

    // Read: list the directory, read and check what changed, ask Git about every file.
    let ctx =
        Context { config: Some(config), libraries: Some(&libraries), manifests: Some(&manifests) };
    let (mut scan, git) = blocking(|| {
        let scan = scan::scan(&config.jobs_dir, &records, check_all, &touched_files, &ctx);
        let git = scan.walked.as_ref().ok().and_then(|walked| {
            let files: Vec<&str> = walked.keys().map(String::as_str).collect();
            let known = git::Known { head: index.provenance_head.as_deref(), records: &records };
            git::inspect(&config.jobs_dir, &files, &known)
        });
        (scan, git)
    });

    // The rows that matter: those of checked and vanished files, those with an ID a checked
    // file declares, those written outside curator, and those of files never indexed.
    let vanished: Vec<String> = match &scan.walked {
        Ok(_) if scan.recorded == records.len() => Vec::new(),
        Ok(walked) => records.keys().filter(|f| !walked.contains_key(*f)).cloned().collect(),
        Err(_) => records.keys().cloned().collect(),
    };
    let declared: HashSet<String> = declared_ids(&scan);
    let scope = RowScope {
        all: check_all,
        files: scan.checked.iter().cloned().chain(vanished.iter().cloned()).collect(),
        ids: declared.iter().chain(&touched).cloned().collect(),
    };
    let mut rows = tx.job_rows(&scope).await?;

    // A vouched file that declares an ID a checked file declares too is checked as well, so
    // the duplicate is reported on both, as a full check would.
    let twins: BTreeSet<String> = rows
        .iter()
        .filter(|r| declared.contains(&r.id) && !scan.checked.contains(&r.source_file))
        .filter(|r| scan.vouched(&r.source_file))
        .map(|r| r.source_file.clone())
        .collect();
    if !twins.is_empty() {
        let files: BTreeSet<String> = scan.checked.iter().chain(&twins).cloned().collect();
        blocking(|| scan::check(&config.jobs_dir, &mut scan, files, &ctx));
        let scope = RowScope { files: twins.into_iter().collect(), ..RowScope::default() };
        merge_rows(&mut rows, tx.job_rows(&scope).await?);
    }

    // Plan.
    let report = std::mem::take(&mut scan.report);
    let input = plan::Input {
        root: &config.jobs_dir,
        directory_error: scan.walked.as_ref().err(),
        untouched: &|file| scan.vouched(file) && !scan.checked.contains(file),
        rows: &rows,
        job_count: index.job_count,
        touched: &touched,
        git: git.as_ref(),
        zone: config.timezone,
        now,
        options: &options,
    };
    let mut plan = plan::plan(&input, report);
    plan.commit = git.as_ref().and_then(|g| g.head.clone());
    if let (Some(head), Some(stored)) = (&plan.commit, &index.provenance_head)
        && plan.refused.is_none()
        && plan.has_changes()
        && !options.allow_older_commit
        && blocking(|| git::behind(&config.jobs_dir, head, stored))
    {
        plan.refused = Some(plan::Refusal {
            guard: plan::Guard::OlderCommit,
            message: format!(
                "this work tree is at commit `{}`, older than commit `{}` the database was last \
                 reconciled from: nothing is applied until it catches up (pass \
                 --allow-older-commit if the branch was moved back on purpose)",
                short(head),
                short(stored)
            ),
        });
    }
    plan.git_by_file = git_by_file(scan.untouched(), &records, git.as_ref());
    if options.dry_run {
        return Ok(plan);
    }

    // Apply: everything or, when refused, only the outcome.
    plan.applied = plan.refused.is_none();
    let summary = serde_json::to_value(status(&plan)).expect("a status serialises");
    let changes = if plan.applied {
        let (files, forget_files) = file_records(&scan, &plan, &records, git.as_ref());
        JobChanges {
            upserts: plan.create.iter().chain(&plan.update).map(|p| &p.write).collect(),
            refreshes: &plan.refreshed,
            deletes: plan.delete.iter().map(|d| d.id.clone()).collect(),
            git_by_file: &plan.git_by_file,
            files,
            forget_files,
            index_key: Some((key, plan.commit.clone())),
            summary,
        }
    } else {
        JobChanges { summary, ..JobChanges::default() }
    };
    tx.apply(&changes).await?;
    Ok(plan)
}

/// A commit's abbreviation, as Git prints it.
fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The last applied or refused pass's outcome; `None` before the first.
pub async fn last_status(store: &Store) -> Result<Option<Status>, StoreError> {
    let Some(stored) = store.last_reconcile().await? else { return Ok(None) };
    serde_json::from_value(stored.summary)
        .map(Some)
        .map_err(|e| StoreError::Corrupt { what: "reconcile summary", reason: e.to_string() })
}

/// Runs a step that reads files or waits on `git` without holding up the other tasks of a
/// multi-threaded runtime (the scheduler's timer among them); elsewhere it simply runs.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => work(),
        _ => tokio::task::block_in_place(work),
    }
}

/// What the file index depends on besides the files themselves: a file checked under other
/// libraries or providers, or by another curator binary, is checked again.
fn cache_key(
    config: &Config,
    libraries: &HashSet<String>,
    manifests: &crate::validate::Manifests,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION"));
    // A rebuilt binary may check differently at the same version number.
    let built = std::env::current_exe().and_then(std::fs::metadata).and_then(|m| m.modified());
    hasher.update(format!("\0{built:?}\0"));
    let dir = std::path::absolute(&config.jobs_dir).unwrap_or_else(|_| config.jobs_dir.clone());
    hasher.update(dir.as_os_str().as_encoded_bytes());
    let mut libraries: Vec<&String> = libraries.iter().collect();
    libraries.sort();
    for library in libraries {
        hasher.update(format!("\0library\0{library}"));
    }
    for p in &config.providers {
        let serves = manifests.get(&p.name).map(|c| (c.series, c.book));
        hasher.update(format!("\0provider\0{}\0{:?}\0{}\0{serves:?}", p.name, p.kind, p.enabled));
    }
    hex::encode(hasher.finalize())
}

/// Every job ID the checked files declare, valid or not.
fn declared_ids(scan: &scan::Scan) -> HashSet<String> {
    scan.report.files.iter().flat_map(|f| f.declared_ids.iter().cloned()).collect()
}

fn merge_rows(rows: &mut Vec<JobRow>, more: Vec<JobRow>) {
    let known: HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
    rows.extend(more.into_iter().filter(|r| !known.contains(&r.id)));
    rows.sort_by(|a, b| a.id.cmp(&b.id));
}

/// Untouched files whose Git state moved (a commit, a new uncommitted edit): their jobs get the
/// new state and nothing else.
fn git_by_file<'a>(
    untouched: impl Iterator<Item = &'a String>,
    records: &HashMap<String, FileRecord>,
    git: Option<&git::GitView>,
) -> Vec<(String, Option<GitState>)> {
    // Outside Git, before and now, nothing can have moved.
    if git.is_none() && records.values().all(|r| r.git.is_none()) {
        return Vec::new();
    }
    untouched
        .filter_map(|file| {
            let new = git.and_then(|g| g.files.get(file));
            let old = records.get(file).and_then(|r| r.git.as_ref());
            (new != old).then(|| (file.clone(), new.cloned()))
        })
        .collect()
}

/// The file index after this pass: a record for each valid file read or with a new Git state,
/// and the paths of vanished files and files now with errors to forget.
fn file_records(
    scan: &scan::Scan,
    plan: &Plan,
    records: &HashMap<String, FileRecord>,
    git: Option<&git::GitView>,
) -> (Vec<FileRecord>, Vec<String>) {
    let git_of = |file: &str| git.and_then(|g| g.files.get(file)).cloned();
    let invalid: HashSet<&str> =
        plan.report.files.iter().filter(|f| f.has_errors()).map(|f| f.relative.as_str()).collect();
    let reported: HashSet<&str> = plan.report.files.iter().map(|f| f.relative.as_str()).collect();
    let empty = Default::default();
    let walked = scan.walked.as_ref().unwrap_or(&empty);

    let mut store = Vec::new();
    for file in &scan.checked {
        if invalid.contains(file.as_str()) {
            continue;
        }
        let record = match (scan.changed.contains(file), walked.get(file), records.get(file)) {
            // Read this pass and clean; one that vanished before it was checked vouches for
            // nothing.
            (true, Some(found), _) if reported.contains(file.as_str()) => FileRecord {
                path: file.clone(),
                stamp: found.stamp,
                stable: found.stable,
                git: git_of(file),
            },
            (false, _, Some(old)) => FileRecord { git: git_of(file), ..old.clone() },
            _ => continue,
        };
        if records.get(file) != Some(&record) {
            store.push(record);
        }
    }
    for (file, git) in &plan.git_by_file {
        if let Some(old) = records.get(file) {
            store.push(FileRecord { git: git.clone(), ..old.clone() });
        }
    }

    let mut forget: Vec<String> = match &scan.walked {
        Ok(_) if scan.recorded == records.len() => Vec::new(),
        _ => records.keys().filter(|f| !walked.contains_key(*f)).cloned().collect(),
    };
    forget.extend(invalid.iter().filter(|f| records.contains_key(**f)).map(|f| f.to_string()));
    (store, forget)
}

fn status(plan: &Plan) -> Status {
    let invalid_files = plan
        .report
        .files
        .iter()
        .filter(|f| f.has_errors())
        .map(|f| InvalidFile {
            file: f.file.display().to_string(),
            errors: f
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| FileError {
                    line: d.line,
                    column: d.column,
                    path: d.path.clone(),
                    code: d.code.to_string(),
                    message: d.message.clone(),
                })
                .collect(),
        })
        .collect();
    Status {
        finished_at: Utc::now(),
        applied: plan.applied,
        commit: plan.commit.clone(),
        counts: plan.counts(),
        refused: plan.refused.clone(),
        directory_error: plan.directory_error.clone(),
        invalid_files,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::catalog::file::{CatalogFile, LibraryDef};
    use crate::config::Overrides;
    use crate::store::ImportMode;

    const JOB: &str = "apiVersion: curator/v1\nkind: LibraryJob\nlibrary: manga\n\
        schedule:\n  cron: \"0 4 * * *\"\n  timezone: Europe/Paris\ntype: metadata_refresh\n\
        provider: curated\nscope: series_only\nfieldGroups: [ratings]\n";

    /// A jobs directory, its config and a database whose catalog has the `manga` library.
    struct World {
        dir: tempfile::TempDir,
        config: Config,
        store: Store,
    }

    impl World {
        async fn new(files: &[(&str, &str)]) -> World {
            let dir = tempfile::tempdir().unwrap();
            let config_file = dir.path().join("curator.yaml");
            std::fs::write(
                &config_file,
                "database: sqlite://c.db\njobsDir: jobs.d\ntimezone: UTC\nproviders:\n  \
                 - name: curated\n    kind: directory\n    path: metadata\n",
            )
            .unwrap();
            let config = Config::load(Some(&config_file), &Overrides::default()).unwrap();
            let store = Store::open(&config.database).await.unwrap();
            let manga = LibraryDef { id: "manga".into(), name: "Manga".into(), series: vec![] };
            let catalog = CatalogFile { libraries: vec![manga] };
            store.import_catalog(&catalog, ImportMode::Upsert).await.unwrap();
            let world = World { dir, config, store };
            for (path, text) in files {
                world.write(path, text);
            }
            world
        }

        /// Writes a file dated a minute ago, as if saved before the pass began: a file saved
        /// in the instant a pass starts is read again by the next one.
        fn write(&self, rel: &str, text: &str) {
            let path = self.dir.path().join("jobs.d").join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            let a_minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(a_minute_ago).unwrap();
        }

        async fn pass(&self, dry_run: bool) -> Plan {
            let now = Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap();
            let options = Options { dry_run, now: Some(now), ..Options::default() };
            reconcile(&self.store, &self.config, options).await.unwrap()
        }

        /// The text of a plan, with the temporary directory's path taken out.
        fn text(&self, plan: &Plan, dry_run: bool) -> String {
            let text = render_text(plan, dry_run, Style::default());
            text.replace(&format!("{}/", self.dir.path().display()), "")
        }
    }

    #[tokio::test]
    async fn fire_times_are_pinned_in_utc_and_the_jobs_zone_for_a_fixed_clock() {
        let world = World::new(&[("a.yaml", JOB)]).await;
        world.pass(false).await;
        world.write("a.yaml", &JOB.replace("0 4 * * *", "30 1 * * *"));
        world.write("b.yaml", &JOB.replace("ratings", "status").replace("0 4", "0 23"));

        // Europe/Paris moves to summer time in the night of 28 to 29 March 2026.
        let plan = world.pass(true).await;
        assert_eq!(
            world.text(&plan, true),
            r#"+ create b (jobs.d/b.yaml:1)
    + apiVersion: "curator/v1"
    + enabled: true
    + existingSourceIdsOnly: true
    + fieldGroups: ["status"]
    + kind: "LibraryJob"
    + library: "manga"
    + maxConcurrency: 4
    + provider: "curated"
    + schedule.catchUp: true
    + schedule.cron: "0 23 * * *"
    + schedule.timezone: "Europe/Paris"
    + scope: "series_only"
    + skipRecentlySyncedWithinS: 3600
    + type: "metadata_refresh"
    next: 2026-03-27 22:00:00 UTC (2026-03-27 23:00:00 Europe/Paris)
    next: 2026-03-28 22:00:00 UTC (2026-03-28 23:00:00 Europe/Paris)
    next: 2026-03-29 21:00:00 UTC (2026-03-29 23:00:00 Europe/Paris)
~ update a (jobs.d/a.yaml:1)
    ~ schedule.cron: "0 4 * * *" -> "30 1 * * *"
    next: 2026-03-28 00:30:00 UTC (2026-03-28 01:30:00 Europe/Paris)
    next: 2026-03-29 00:30:00 UTC (2026-03-29 01:30:00 Europe/Paris)
    next: 2026-03-29 23:30:00 UTC (2026-03-30 01:30:00 Europe/Paris)
Plan: 1 to create, 1 to update, 0 to delete, 0 unchanged, 0 kept, 0 skipped.
"#
        );
        let colored = render_text(&plan, true, Style { color: true });
        assert!(colored.contains("\u{1b}[32m+ create b ("), "{colored}");
        assert!(colored.contains("\u{1b}[33m~ update a ("), "{colored}");
    }

    #[tokio::test]
    async fn only_new_or_changed_files_are_read_again() {
        let files: Vec<(String, String)> =
            (0..5).map(|i| (format!("job-{i}.yaml"), JOB.to_string())).collect();
        let files: Vec<(&str, &str)> =
            files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
        let world = World::new(&files).await;
        assert_eq!(world.pass(false).await.report.files.len(), 5, "the first pass reads all");

        world.write("job-3.yaml", &JOB.replace("[ratings]", "[ratings, status]"));
        let plan = world.pass(false).await;
        let read: Vec<&str> = plan.report.files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(read, ["job-3.yaml"]);
        assert_eq!((plan.update.len(), plan.unchanged), (1, 4));

        // The same bytes written again: checked once, found unchanged, then not read at all.
        world.write("job-1.yaml", JOB);
        let plan = world.pass(false).await;
        assert_eq!(plan.report.files.len(), 1);
        assert!(!plan.has_changes());
        let plan = world.pass(false).await;
        assert!(plan.report.files.is_empty() && !plan.has_changes());
        assert_eq!(plan.unchanged, 5);
    }

    #[tokio::test]
    async fn a_changed_file_that_takes_the_id_of_an_unchanged_one_makes_both_invalid() {
        let with_id =
            |id: &str| JOB.replace("library: manga", &format!("id: {id}\nlibrary: manga"));
        let world =
            World::new(&[("a.yaml", &with_id("shared")), ("b.yaml", &with_id("other"))]).await;
        world.pass(false).await;

        world.write("b.yaml", &with_id("shared"));
        let plan = world.pass(true).await;
        let invalid: Vec<&str> = plan
            .report
            .files
            .iter()
            .filter(|f| f.diagnostics.iter().any(|d| d.code == "duplicate-id"))
            .map(|f| f.relative.as_str())
            .collect();
        assert_eq!(invalid, ["a.yaml", "b.yaml"], "as a full check would find");
        let kept: Vec<&str> = plan.kept.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(kept, ["other", "shared"]);
        assert!(!plan.has_changes());
    }

    #[tokio::test]
    async fn the_last_result_is_stored_with_time_counts_file_errors_and_commit() {
        let world =
            World::new(&[("a.yaml", JOB), ("b.yaml", JOB), ("bad.yaml", "kind: [\n")]).await;
        assert_eq!(last_status(&world.store).await.unwrap(), None);
        world.pass(false).await;

        let status = last_status(&world.store).await.unwrap().unwrap();
        assert!(status.applied && status.refused.is_none());
        assert_eq!(status.commit, None, "not in a work tree");
        assert_eq!((status.counts.create, status.counts.skipped), (2, 0));
        assert_eq!(status.invalid_files.len(), 1);
        let bad = &status.invalid_files[0];
        assert!(bad.file.ends_with("jobs.d/bad.yaml"), "{bad:?}");
        assert_eq!((bad.errors[0].line, bad.errors[0].code.as_str()), (2, "yaml"));

        // A dry run leaves the stored result alone; a refused pass records its refusal.
        std::fs::remove_file(world.dir.path().join("jobs.d/bad.yaml")).unwrap();
        std::fs::remove_file(world.dir.path().join("jobs.d/a.yaml")).unwrap();
        std::fs::remove_file(world.dir.path().join("jobs.d/b.yaml")).unwrap();
        world.pass(true).await;
        assert_eq!(last_status(&world.store).await.unwrap().unwrap(), status);
        world.pass(false).await;
        let refused = last_status(&world.store).await.unwrap().unwrap();
        assert!(!refused.applied);
        assert_eq!(refused.refused.map(|r| r.guard), Some(Guard::EmptyDirectory));
        assert_eq!(refused.counts.delete, 2);
        assert!(refused.finished_at >= status.finished_at);
    }
}
