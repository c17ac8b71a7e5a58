//! Planning: what a pass does to the job rows, worked out from what the scan found and the rows
//! that matter, without touching the database. The rules that keep jobs safe live here: a file
//! with errors keeps its jobs, a file that cannot be read as jobs holds back every deletion,
//! and a plan that would empty the table or delete more than half of it is refused whole.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Options;
use super::git::GitView;
use super::scan::DirectoryError;
use crate::schedule::{self, Timing};
use crate::store::{GitState, JobRow, JobWrite};
use crate::validate::{FileReport, Report, ValidJob};

/// One field that differs between the database and the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDiff {
    /// The field's path: `schedule.cron`, `fieldGroups[2]`.
    pub path: String,
    pub op: Op,
    /// The value in the database; `None` for a field the file adds.
    pub old: Option<Value>,
    /// The value in the file; `None` for a field the file drops.
    pub new: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Add,
    Remove,
    Change,
}

/// One upcoming firing, in UTC and in the job's zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FireTime {
    pub utc: DateTime<Utc>,
    pub local: DateTime<FixedOffset>,
}

/// A job the plan creates or updates.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    pub id: String,
    /// The file as the user names it (`jobs.d/manga/ratings.yaml`).
    pub file: String,
    /// The line its document starts on.
    pub line: usize,
    /// The file the job was in before, when it moved.
    pub moved_from: Option<String>,
    /// The row had been changed outside curator; the update puts the file's version back.
    pub drift: bool,
    pub changes: Vec<FieldDiff>,
    pub enabled: bool,
    /// The zone the job's schedule runs in.
    pub timezone: String,
    /// The next three firings of a new or changed schedule; empty when the schedule is
    /// unchanged or the job is disabled.
    pub next_fire_times: Vec<FireTime>,
    #[serde(skip)]
    pub write: JobWrite,
}

/// A job the plan deletes.
#[derive(Debug, Clone, Serialize)]
pub struct Deleted {
    pub id: String,
    /// The file it was in, as the user names it.
    pub file: String,
    pub line: usize,
}

/// A job the plan leaves alone although its file says otherwise, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub id: String,
    pub file: String,
    /// The line of the version that stays; `None` for a job that has none.
    pub line: Option<usize>,
    pub reason: String,
}

/// Which safety rule refused a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guard {
    /// The directory is empty, missing or unreadable and the plan deletes every job.
    EmptyDirectory,
    /// The plan deletes more than half of the jobs.
    MassDelete,
    /// The work tree's HEAD is older than the commit the database was last reconciled from
    /// (another replica's checkout is ahead): applying would undo newer changes.
    OlderCommit,
}

/// Why a plan was refused: nothing of it is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    pub guard: Guard,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// How many jobs each part of a plan holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub unchanged: usize,
    pub kept: usize,
    pub skipped: usize,
    /// Updates that put back a row changed outside curator (counted in `update` too).
    pub drift: usize,
}

/// What a pass would do, or did.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub create: Vec<Planned>,
    pub update: Vec<Planned>,
    pub delete: Vec<Deleted>,
    /// How many jobs stay as they are.
    pub unchanged: usize,
    /// Existing jobs whose file has errors, or whose deletion is held back.
    pub kept: Vec<Held>,
    /// New jobs in a file with errors: not created until it is fixed.
    pub skipped: Vec<Held>,
    /// Unchanged jobs whose line, YAML text or Git state is refreshed.
    pub refreshed: Vec<JobWrite>,
    /// Files the index vouches for whose jobs get a new Git state, and nothing else.
    pub git_by_file: Vec<(String, Option<GitState>)>,
    pub refused: Option<Refusal>,
    /// Why the directory could not be read (an error unless `--allow-empty`).
    pub directory_error: Option<String>,
    /// What checking the files read this pass found.
    pub report: Report,
    /// The work tree's HEAD, when the directory is in one.
    pub commit: Option<String>,
    /// Whether the plan was written to the database.
    pub applied: bool,
}

impl Plan {
    /// Whether the plan creates, updates or deletes a job.
    pub fn has_changes(&self) -> bool {
        !self.create.is_empty() || !self.update.is_empty() || !self.delete.is_empty()
    }

    /// Whether a file has errors, the directory could not be read, or the plan was refused.
    pub fn has_errors(&self) -> bool {
        self.report.error_count() > 0 || self.refused.is_some() || self.directory_error.is_some()
    }

    pub fn counts(&self) -> Counts {
        Counts {
            create: self.create.len(),
            update: self.update.len(),
            delete: self.delete.len(),
            unchanged: self.unchanged,
            kept: self.kept.len(),
            skipped: self.skipped.len(),
            drift: self.update.iter().filter(|p| p.drift).count(),
        }
    }

    /// How many files get new provenance without a change to their jobs' specs.
    pub fn provenance_files(&self) -> usize {
        let mut files: HashSet<&str> =
            self.refreshed.iter().map(|w| w.source_file.as_str()).collect();
        files.extend(self.git_by_file.iter().map(|(f, _)| f.as_str()));
        files.len()
    }
}

/// What planning looks at.
pub struct Input<'a> {
    /// The jobs directory, as the user names it.
    pub root: &'a Path,
    /// Why the directory could not be read, if it could not.
    pub directory_error: Option<&'a DirectoryError>,
    /// Whether a file is vouched for by the index and was not checked: its jobs are as stored.
    pub untouched: &'a (dyn Fn(&str) -> bool + Sync),
    /// The rows that matter this pass: those of checked and vanished files, those with an ID a
    /// checked file declares, and those written outside curator.
    pub rows: &'a [JobRow],
    /// How many rows there are in all.
    pub job_count: usize,
    /// IDs of rows written outside curator since the last applied pass.
    pub touched: &'a HashSet<String>,
    pub git: Option<&'a GitView>,
    /// The zone of jobs that name none.
    pub zone: chrono_tz::Tz,
    /// Where next fire times are counted from.
    pub now: DateTime<Utc>,
    pub options: &'a Options,
}

/// Works out the plan from the input and what checking this pass's files found.
pub fn plan(input: &Input, report: Report) -> Plan {
    let mut plan = decide(input, &report);
    plan.report = report;
    guard(input, &mut plan);
    plan
}

/// Whether a file-level error leaves the file's job IDs unknown: it could not be read or
/// parsed, or its documents do not name their IDs.
fn hides_ids(code: &str) -> bool {
    matches!(
        code,
        "io" | "too-large"
            | "encoding"
            | "bom"
            | "tab"
            | "line-ending"
            | "yaml"
            | "duplicate-key"
            | "alias"
            | "tag"
            | "key"
            | "id"
            | "not-a-job"
    )
}

/// What each job's rows and files say should happen to it, before the guards.
fn decide(input: &Input, report: &Report) -> Plan {
    let mut plan = Plan::default();
    let shown = |relative: &str| input.root.join(relative).display().to_string();
    let rows: HashMap<&str, &JobRow> = input.rows.iter().map(|r| (r.id.as_str(), r)).collect();

    let mut desired: BTreeMap<&str, (&FileReport, &ValidJob)> = BTreeMap::new();
    for file in &report.files {
        for job in &file.jobs {
            desired.insert(job.id.as_str(), (file, job));
        }
    }
    let invalid: Vec<&FileReport> = report.files.iter().filter(|f| f.has_errors()).collect();
    let invalid_paths: HashSet<&str> = invalid.iter().map(|f| f.relative.as_str()).collect();
    let mut declared_by_invalid: HashMap<&str, &FileReport> = HashMap::new();
    for file in &invalid {
        for id in &file.declared_ids {
            declared_by_invalid.entry(id.as_str()).or_insert(file);
        }
    }
    // A broken file whose job IDs cannot all be known might declare any job: deleting one now
    // could delete a job that only moved into it.
    let unknowable = invalid.iter().find(|f| f.diagnostics.iter().any(|d| hides_ids(d.code)));
    // A file emptied (or saved half-way by an editor that truncates first) keeps its jobs:
    // deleting jobs is done by deleting their file.
    let emptied: HashSet<&str> = report
        .files
        .iter()
        .filter(|f| f.jobs.is_empty() && f.diagnostics.iter().any(|d| d.code == "empty"))
        .map(|f| f.relative.as_str())
        .collect();

    let mut fires = Fires { input, crons: HashMap::new() };
    for (id, (file, job)) in &desired {
        let git = input.git.and_then(|g| g.files.get(&file.relative).cloned());
        let write = job_write(job, &file.relative, git);
        let planned = |changes, moved_from, drift, next_fire_times, write| Planned {
            id: job.id.clone(),
            file: shown(&file.relative),
            line: job.line,
            moved_from,
            drift,
            changes,
            enabled: job.spec.enabled,
            timezone: zone_of(job, input.zone).name().to_string(),
            next_fire_times,
            write,
        };
        let Some(row) = rows.get(id) else {
            let changes = diff(&Value::Null, &write.spec_json);
            plan.create.push(planned(changes, None, false, fires.next(job), write));
            continue;
        };
        let mut changes = diff(&row.spec_json, &write.spec_json);
        column_diffs(row, &write, &mut changes);
        let moved = row.source_file != write.source_file;
        if !changes.is_empty() || moved {
            let drift = input.touched.contains(*id) && !changes.is_empty();
            let schedule =
                changes.iter().any(|c| c.path.starts_with("schedule") || c.path == "enabled");
            let next = if schedule { fires.next(job) } else { Vec::new() };
            let from = moved.then(|| shown(&row.source_file));
            plan.update.push(planned(changes, from, drift, next, write));
        } else {
            if row.source_line != write.source_line
                || row.source != write.source
                || row.git != write.git
            {
                plan.refreshed.push(write);
            }
            plan.unchanged += 1;
        }
    }

    for row in input.rows.iter().filter(|r| !desired.contains_key(r.id.as_str())) {
        if (input.untouched)(&row.source_file) {
            plan.unchanged += 1;
            continue;
        }
        let held = |reason: String| Held {
            id: row.id.clone(),
            file: shown(&row.source_file),
            line: usize::try_from(row.source_line).ok(),
            reason,
        };
        if invalid_paths.contains(row.source_file.as_str()) {
            plan.kept.push(held(
                "the file has errors: the job keeps its last good version and keeps running".into(),
            ));
        } else if emptied.contains(row.source_file.as_str()) {
            plan.kept.push(held(
                "the file holds no job now: the job is kept; delete the file to delete it".into(),
            ));
        } else if let Some(file) = declared_by_invalid.get(row.id.as_str()) {
            plan.kept.push(held(format!(
                "{} declares it and has errors: the job keeps its last good version and keeps \
                 running",
                file.file.display()
            )));
        } else if let Some(file) = unknowable {
            plan.kept.push(held(format!(
                "not deleted while {} cannot be read as jobs: it may declare this one",
                file.file.display()
            )));
        } else if input.directory_error.is_some_and(|e| !e.missing) {
            // Listing failed part-way: a file not seen may be there all the same.
            plan.kept.push(held("not deleted while the jobs directory cannot be listed".into()));
        } else {
            plan.delete.push(Deleted {
                id: row.id.clone(),
                file: shown(&row.source_file),
                line: usize::try_from(row.source_line).unwrap_or_default(),
            });
        }
    }
    let mut seen = HashSet::new();
    for file in &invalid {
        for id in &file.declared_ids {
            if !rows.contains_key(id.as_str()) && seen.insert(id) {
                plan.skipped.push(Held {
                    id: id.clone(),
                    file: file.file.display().to_string(),
                    line: None,
                    reason: "the file has errors: the job is created once it is fixed".into(),
                });
            }
        }
    }
    // Rows that were not loaded belong to vouched files.
    plan.unchanged += input.job_count.saturating_sub(input.rows.len());
    plan
}

/// Refuses a plan that would empty the table because the directory is empty, missing or
/// unreadable, or that deletes more than half of the jobs, unless the caller allows it.
fn guard(input: &Input, plan: &mut Plan) {
    let options = input.options;
    let no_invalid_file = plan.report.files.iter().all(|f| !f.has_errors());
    let deletes = plan.delete.len();
    let remaining = (input.job_count + plan.create.len()).saturating_sub(deletes);
    let emptied = deletes > 0 && remaining == 0;
    if let Some(error) = input.directory_error {
        if !error.missing {
            // A directory that exists but cannot be listed is not empty: its jobs were kept
            // above, and --allow-empty does not make it so.
            plan.directory_error = Some(error.to_string());
        } else if options.allow_empty {
            plan.report.notes.push(format!("{error}: taken as empty (--allow-empty)"));
        } else {
            plan.directory_error = Some(error.to_string());
            if deletes > 0 {
                plan.refused = Some(Refusal {
                    guard: Guard::EmptyDirectory,
                    message: format!(
                        "{error}: refusing to delete its {deletes} job(s); pass --allow-empty to \
                         delete them"
                    ),
                });
            }
        }
    } else if emptied && no_invalid_file && !options.allow_empty {
        plan.refused = Some(Refusal {
            guard: Guard::EmptyDirectory,
            message: format!(
                "the jobs directory `{}` declares no job: refusing to delete all {deletes} job(s); \
                 pass --allow-empty if that is intended",
                input.root.display()
            ),
        });
    }
    if plan.refused.is_none()
        && !options.allow_mass_delete
        && deletes * 2 > input.job_count
        && !(options.allow_empty && emptied)
    {
        plan.refused = Some(Refusal {
            guard: Guard::MassDelete,
            message: format!(
                "the plan deletes {deletes} of {} jobs, more than half: refusing to apply it; \
                 pass --allow-mass-delete if that is intended",
                input.job_count
            ),
        });
    }
}

fn job_write(job: &ValidJob, relative: &str, git: Option<GitState>) -> JobWrite {
    JobWrite {
        id: job.id.clone(),
        name: job.spec.display_name(),
        library_id: job.spec.library.clone(),
        provider: job.spec.provider_name().to_string(),
        enabled: job.spec.enabled,
        spec_json: job.normalized.clone(),
        source: job.source.clone(),
        source_file: relative.to_string(),
        source_line: i64::try_from(job.line).unwrap_or(i64::MAX),
        content_hash: job.content_hash.clone(),
        git,
    }
}

fn zone_of(job: &ValidJob, default: chrono_tz::Tz) -> chrono_tz::Tz {
    let zone = job.spec.schedule.timezone.as_deref();
    zone.and_then(|z| schedule::parse_zone(z).ok()).unwrap_or(default)
}

/// Next fire times, each cron expression parsed once: thousands of jobs share a few schedules,
/// and parsing one costs more than finding its next firings.
struct Fires<'a> {
    input: &'a Input<'a>,
    crons: HashMap<String, Option<croner::Cron>>,
}

impl Fires<'_> {
    /// The next three firings of an enabled job, jitter included; none for a disabled one.
    fn next(&mut self, job: &ValidJob) -> Vec<FireTime> {
        let schedule = &job.spec.schedule;
        let cron = self
            .crons
            .entry(schedule.cron.clone())
            .or_insert_with(|| schedule::parse_cron(&schedule.cron).ok());
        let (Some(cron), true) = (cron, job.spec.enabled) else { return Vec::new() };
        let window = schedule.jitter.as_deref().and_then(|j| schedule::parse_jitter(j).ok());
        let zone = zone_of(job, self.input.zone);
        let timing = Timing {
            cron: cron.clone(),
            zone,
            jitter: schedule::jitter_for(&job.id, window.unwrap_or_default()),
        };
        let slots = timing.next_slots(self.input.now, 3);
        slots
            .into_iter()
            .map(|slot| {
                let utc = timing.fire_time(slot);
                FireTime { utc, local: utc.with_timezone(&zone).fixed_offset() }
            })
            .collect()
    }
}

/// The columns the scheduler and the listings read, where they disagree with the file and the
/// spec diff does not already say so: only an edit outside curator makes a row disagree with
/// its own spec.
fn column_diffs(row: &JobRow, write: &JobWrite, changes: &mut Vec<FieldDiff>) {
    let columns = [
        ("enabled", json!(row.enabled), json!(write.enabled)),
        ("name", json!(row.name), json!(write.name)),
        ("library", json!(row.library_id), json!(write.library_id)),
        ("provider", json!(row.provider), json!(write.provider)),
    ];
    for (path, old, new) in columns {
        if old != new && !changes.iter().any(|c| c.path == path) {
            changes.push(FieldDiff {
                path: path.into(),
                op: Op::Change,
                old: Some(old),
                new: Some(new),
            });
        }
    }
    if changes.is_empty() && row.content_hash != write.content_hash {
        changes.push(FieldDiff {
            path: "contentHash".into(),
            op: Op::Change,
            old: Some(json!(row.content_hash)),
            new: Some(json!(write.content_hash)),
        });
    }
}

/// Field-level differences between two specs, by path. Objects compare key by key; a list of
/// plain values compares item by item (what was removed, what was added), and shows whole only
/// when just its order changed.
pub fn diff(old: &Value, new: &Value) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    diff_into("", old, new, &mut out);
    out
}

fn diff_into(path: &str, old: &Value, new: &Value, out: &mut Vec<FieldDiff>) {
    let child = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let (a, b) =
                    (a.get(key).unwrap_or(&Value::Null), b.get(key).unwrap_or(&Value::Null));
                diff_into(&child(key), a, b, out);
            }
        }
        (Value::Null, Value::Object(b)) => {
            for (key, value) in b {
                diff_into(&child(key), &Value::Null, value, out);
            }
        }
        (Value::Object(a), Value::Null) => {
            for (key, value) in a {
                diff_into(&child(key), value, &Value::Null, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a != b => diff_list(path, a, b, out),
        _ if old != new => out.push(FieldDiff {
            path: path.to_string(),
            op: match (old.is_null(), new.is_null()) {
                (true, _) => Op::Add,
                (_, true) => Op::Remove,
                _ => Op::Change,
            },
            old: (!old.is_null()).then(|| old.clone()),
            new: (!new.is_null()).then(|| new.clone()),
        }),
        _ => {}
    }
}

fn diff_list(path: &str, a: &[Value], b: &[Value], out: &mut Vec<FieldDiff>) {
    let scalar = |v: &Value| !v.is_object() && !v.is_array();
    if !(a.iter().all(scalar) && b.iter().all(scalar)) {
        for i in 0..a.len().max(b.len()) {
            let (x, y) = (a.get(i).unwrap_or(&Value::Null), b.get(i).unwrap_or(&Value::Null));
            diff_into(&format!("{path}[{i}]"), x, y, out);
        }
        return;
    }
    // Items match as a multiset: a value kept is not reported, whatever its new place.
    let mut unmatched: Vec<Option<&Value>> = b.iter().map(Some).collect();
    let mut removed = Vec::new();
    for (i, item) in a.iter().enumerate() {
        match unmatched.iter().position(|u| *u == Some(item)) {
            Some(j) => unmatched[j] = None,
            None => removed.push((i, item)),
        }
    }
    let added: Vec<(usize, &Value)> =
        unmatched.iter().enumerate().filter_map(|(j, u)| u.map(|v| (j, v))).collect();
    if removed.is_empty() && added.is_empty() {
        out.push(FieldDiff {
            path: path.to_string(),
            op: Op::Change,
            old: Some(Value::Array(a.to_vec())),
            new: Some(Value::Array(b.to_vec())),
        });
        return;
    }
    for (i, item) in removed {
        out.push(FieldDiff {
            path: format!("{path}[{i}]"),
            op: Op::Remove,
            old: Some(item.clone()),
            new: None,
        });
    }
    for (j, item) in added {
        out.push(FieldDiff {
            path: format!("{path}[{j}]"),
            op: Op::Add,
            old: None,
            new: Some(item.clone()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_fields_are_named_by_path() {
        let old = json!({"schedule": {"cron": "0 4 * * *", "catchUp": true}, "enabled": true});
        let new = json!({"schedule": {"cron": "0 5 * * *", "catchUp": true}, "enabled": true});
        assert_eq!(
            diff(&old, &new),
            [FieldDiff {
                path: "schedule.cron".into(),
                op: Op::Change,
                old: Some(json!("0 4 * * *")),
                new: Some(json!("0 5 * * *")),
            }]
        );
    }

    #[test]
    fn lists_change_item_by_item() {
        let old = json!({"fieldGroups": ["status", "counts", "ratings"]});
        let new = json!({"fieldGroups": ["status", "ratings", "tags"]});
        let shown: Vec<(String, Op)> =
            diff(&old, &new).into_iter().map(|d| (d.path, d.op)).collect();
        assert_eq!(
            shown,
            [("fieldGroups[1]".to_string(), Op::Remove), ("fieldGroups[2]".to_string(), Op::Add)]
        );
    }

    #[test]
    fn a_reordered_list_shows_whole_and_an_added_key_is_an_add() {
        let old = json!({"extraFields": ["language", "year"]});
        let new = json!({"extraFields": ["year", "language"], "jitter": "10m"});
        let diffs = diff(&old, &new);
        assert_eq!(diffs[0].path, "extraFields");
        assert_eq!(diffs[0].new, Some(json!(["year", "language"])));
        assert_eq!((diffs[1].path.as_str(), diffs[1].op), ("jitter", Op::Add));
    }

    #[test]
    fn a_new_job_lists_every_field_with_lists_whole() {
        let diffs =
            diff(&Value::Null, &json!({"fieldGroups": ["a", "b"], "schedule": {"cron": "x"}}));
        let paths: Vec<&str> = diffs.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["fieldGroups", "schedule.cron"]);
        assert!(diffs.iter().all(|d| d.op == Op::Add));
    }
}
