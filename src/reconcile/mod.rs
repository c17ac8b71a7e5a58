//! Reconcile: compare the jobs the directory declares with the jobs in the database, produce a
//! plan (create, update with field diffs, delete, unchanged, kept), and apply it in one
//! transaction. An invalid file never deletes or changes a job, and an empty or unreadable
//! directory never prunes unless the caller allows it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::schedule::Timing;
use crate::store::{JobRow, JobWrite, Store, StoreError};
use crate::validate::{self, Context, Report, ValidJob};

/// How a reconcile pass may behave.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Compute and report the plan without writing.
    pub dry_run: bool,
    /// Let an empty or missing directory delete every job.
    pub allow_empty: bool,
    /// Let a plan delete more than half of the jobs.
    pub allow_mass_delete: bool,
}

/// One field that differs between the database and the file.
#[derive(Debug, Clone, Serialize)]
pub struct FieldDiff {
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// A job the plan creates or updates.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    pub id: String,
    /// The file as the user names it (`jobs.d/manga/ratings.yaml`).
    pub file: String,
    pub line: usize,
    pub diffs: Vec<FieldDiff>,
    /// The next fire times of a new or changed schedule.
    pub next_fires: Vec<DateTime<Utc>>,
    #[serde(skip)]
    pub write: JobWrite,
}

/// A job left as it is because its file has errors.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub id: String,
    pub file: String,
}

/// What a pass would do, or did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub create: Vec<Planned>,
    pub update: Vec<Planned>,
    pub delete: Vec<Kept>,
    pub unchanged: Vec<String>,
    pub kept: Vec<Kept>,
    /// Why deletions were held back, when they were.
    pub refused: Option<String>,
    #[serde(skip)]
    pub report: Report,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.create.is_empty() || !self.update.is_empty() || !self.delete.is_empty()
    }

    pub fn has_errors(&self) -> bool {
        self.report.error_count() > 0 || self.refused.is_some()
    }
}

/// Plans and (unless `dry_run`) applies one pass over the config's jobs directory.
pub async fn reconcile(
    store: &Store,
    config: &Config,
    options: Options,
) -> Result<Plan, StoreError> {
    let libraries = store.library_ids().await?;
    let current = store.jobs().await?;
    let ctx = Context { config: Some(config), libraries: Some(&libraries) };
    let mut plan = plan(&config.jobs_dir, &ctx, &current, config.timezone, options);
    if !options.dry_run && plan.has_changes() {
        let upserts: Vec<JobWrite> =
            plan.create.iter().chain(&plan.update).map(|p| p.write.clone()).collect();
        let deletes: Vec<String> = plan.delete.iter().map(|d| d.id.clone()).collect();
        store.apply_jobs(&upserts, &deletes).await?;
    }
    if !options.dry_run {
        store.save_reconcile_state(&status_summary(&plan)).await?;
    }
    plan.report.notes.retain(|n| !n.starts_with("no database"));
    Ok(plan)
}

/// Computes the plan from the directory and the current rows, without touching the database.
pub fn plan(
    jobs_dir: &Path,
    ctx: &Context,
    current: &[JobRow],
    zone: chrono_tz::Tz,
    options: Options,
) -> Plan {
    let (report, readable) = match validate::check_dir(jobs_dir, ctx) {
        Ok(report) => (report, true),
        Err(e) => {
            let mut report = Report::default();
            report
                .notes
                .push(format!("cannot read the jobs directory {}: {e}", jobs_dir.display()));
            (report, false)
        }
    };
    let mut plan = Plan::default();
    let by_id: HashMap<&str, &JobRow> = current.iter().map(|j| (j.id.as_str(), j)).collect();

    // Jobs of an invalid file, and IDs an invalid file declares, keep their last good rows.
    let invalid: HashSet<&str> =
        report.files.iter().filter(|f| f.has_errors()).map(|f| f.relative.as_str()).collect();
    let mut protected: HashSet<&str> = current
        .iter()
        .filter(|j| invalid.contains(j.source_file.as_str()))
        .map(|j| j.id.as_str())
        .collect();
    for file in report.files.iter().filter(|f| f.has_errors()) {
        protected.extend(file.declared_ids.iter().map(String::as_str));
    }

    let mut desired: BTreeMap<&str, (&validate::FileReport, &ValidJob)> = BTreeMap::new();
    for file in &report.files {
        for job in &file.jobs {
            desired.insert(job.id.as_str(), (file, job));
        }
    }
    for (id, (file, job)) in &desired {
        let write = job_write(job, &file.relative);
        let file = file.file.display().to_string();
        let file = file.as_str();
        match by_id.get(id) {
            None => plan.create.push(planned(
                job,
                file,
                diff(&Value::Null, &job.normalized),
                zone,
                write,
                true,
            )),
            Some(row) if !same(row, &write) => {
                let mut diffs = diff(&row.spec_json, &job.normalized);
                if row.source_file != write.source_file {
                    diffs.push(FieldDiff {
                        path: "(source file)".into(),
                        old: Some(json!(row.source_file)),
                        new: Some(json!(write.source_file)),
                    });
                }
                let schedule_changed = diffs.iter().any(|d| d.path.starts_with("schedule"));
                plan.update.push(planned(job, file, diffs, zone, write, schedule_changed));
            }
            Some(_) => plan.unchanged.push(id.to_string()),
        }
    }
    for row in current {
        if desired.contains_key(row.id.as_str()) {
            continue;
        }
        let entry = Kept {
            id: row.id.clone(),
            file: jobs_dir.join(&row.source_file).display().to_string(),
        };
        if protected.contains(row.id.as_str()) {
            plan.kept.push(entry);
        } else {
            plan.delete.push(entry);
        }
    }

    if !plan.delete.is_empty()
        && !options.allow_empty
        && (!readable || desired.is_empty() && protected.is_empty())
    {
        plan.refused = Some(format!(
            "the jobs directory {} is {}: refusing to delete all {} job(s); pass --allow-empty \
             to delete them",
            jobs_dir.display(),
            if readable { "empty" } else { "unreadable" },
            plan.delete.len()
        ));
        plan.delete.clear();
    } else if !options.allow_mass_delete
        && (!options.allow_empty || !desired.is_empty())
        && plan.delete.len() * 2 > current.len()
        && current.len() > 1
    {
        plan.refused = Some(format!(
            "the plan would delete {} of {} jobs, more than half: refusing; pass \
             --allow-mass-delete if that is intended",
            plan.delete.len(),
            current.len()
        ));
        plan.delete.clear();
    }
    plan.report = report;
    plan
}

fn job_write(job: &ValidJob, file: &str) -> JobWrite {
    JobWrite {
        id: job.id.clone(),
        name: job.spec.display_name(),
        library_id: job.spec.library.clone(),
        provider: job.spec.provider_name().to_string(),
        enabled: job.spec.enabled,
        spec_json: job.normalized.clone(),
        source: job.source.clone(),
        source_file: file.to_string(),
        source_line: job.line as i64,
        content_hash: job.content_hash.clone(),
    }
}

/// Whether the row already holds exactly what the file says, provenance included.
fn same(row: &JobRow, write: &JobWrite) -> bool {
    row.content_hash == write.content_hash
        && row.source_file == write.source_file
        && row.source_line == write.source_line
        && row.source == write.source
        && row.name == write.name
}

fn planned(
    job: &ValidJob,
    file: &str,
    diffs: Vec<FieldDiff>,
    zone: chrono_tz::Tz,
    write: JobWrite,
    with_fires: bool,
) -> Planned {
    let next_fires = if with_fires {
        Timing::new(&job.id, &job.spec.schedule, zone)
            .map(|t| t.next_slots(Utc::now(), 3).into_iter().map(|s| t.fire_time(s)).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Planned { id: job.id.clone(), file: file.to_string(), line: job.line, diffs, next_fires, write }
}

/// Field-level differences between two specs, by dotted path; lists compare as whole values.
pub fn diff(old: &Value, new: &Value) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    diff_into("", old, new, &mut out);
    out
}

fn diff_into(path: &str, old: &Value, new: &Value, out: &mut Vec<FieldDiff>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                diff_into(
                    &child,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Null, Value::Object(b)) => {
            for (key, value) in b {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                diff_into(&child, &Value::Null, value, out);
            }
        }
        _ if old != new => out.push(FieldDiff {
            path: path.to_string(),
            old: (!old.is_null()).then(|| old.clone()),
            new: (!new.is_null()).then(|| new.clone()),
        }),
        _ => {}
    }
}

/// What the last pass found, kept in the database for status reads.
fn status_summary(plan: &Plan) -> Value {
    let invalid: Vec<Value> = plan
        .report
        .files
        .iter()
        .filter(|f| f.has_errors())
        .map(|f| json!({ "file": f.file.display().to_string(), "diagnostics": f.diagnostics }))
        .collect();
    json!({
        "created": plan.create.len(),
        "updated": plan.update.len(),
        "deleted": plan.delete.len(),
        "unchanged": plan.unchanged.len(),
        "kept": plan.kept.len(),
        "refused": plan.refused,
        "invalidFiles": invalid,
    })
}

/// The plan as `terraform plan` would show it.
pub fn render_text(plan: &Plan, zone: chrono_tz::Tz, dry_run: bool) -> String {
    let mut out = String::new();
    for d in plan.report.diagnostics() {
        let _ = writeln!(out, "{d}");
    }
    for p in &plan.create {
        let _ = writeln!(out, "+ create {} ({}:{})", p.id, p.file, p.line);
        for d in &p.diffs {
            let _ = writeln!(out, "    {}: {}", d.path, show(&d.new));
        }
        fires(&mut out, p, zone);
    }
    for p in &plan.update {
        let _ = writeln!(out, "~ update {} ({}:{})", p.id, p.file, p.line);
        for d in &p.diffs {
            let _ = writeln!(out, "    {}: {} -> {}", d.path, show(&d.old), show(&d.new));
        }
        fires(&mut out, p, zone);
    }
    for d in &plan.delete {
        let _ = writeln!(out, "- delete {} (was in {})", d.id, d.file);
    }
    for k in &plan.kept {
        let _ = writeln!(
            out,
            "! keep {}: {} has errors, the job keeps its last good version",
            k.id, k.file
        );
    }
    if let Some(reason) = &plan.refused {
        let _ = writeln!(out, "error: {reason}");
    }
    let (create, update, delete) = (plan.create.len(), plan.update.len(), plan.delete.len());
    let (unchanged, kept) = (plan.unchanged.len(), plan.kept.len());
    let _ = if dry_run {
        writeln!(
            out,
            "Plan: {create} to create, {update} to update, {delete} to delete, {unchanged} unchanged, {kept} kept."
        )
    } else {
        writeln!(
            out,
            "Applied: {create} created, {update} updated, {delete} deleted, {unchanged} unchanged, {kept} kept."
        )
    };
    out
}

fn fires(out: &mut String, p: &Planned, zone: chrono_tz::Tz) {
    let zone = p.write.spec_json["schedule"]["timezone"]
        .as_str()
        .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
        .unwrap_or(zone);
    for t in &p.next_fires {
        let local = t.with_timezone(&zone);
        let _ = writeln!(
            out,
            "    next: {} ({} {})",
            t.format("%Y-%m-%d %H:%M:%S UTC"),
            local.format("%Y-%m-%d %H:%M:%S"),
            zone.name()
        );
    }
}

fn show(value: &Option<Value>) -> String {
    match value {
        None => "(none)".into(),
        Some(v) => v.to_string(),
    }
}

/// The plan as data, for `--output json`.
pub fn render_json(plan: &Plan) -> String {
    let value = json!({
        "formatVersion": 1,
        "create": plan.create,
        "update": plan.update,
        "delete": plan.delete,
        "unchanged": plan.unchanged,
        "kept": plan.kept,
        "refused": plan.refused,
        "diagnostics": plan.report.diagnostics().collect::<Vec<_>>(),
        "notes": plan.report.notes,
    });
    let mut text = serde_json::to_string_pretty(&value).expect("a plan serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_name_nested_paths() {
        let old = json!({"schedule": {"cron": "0 4 * * *"}, "enabled": true});
        let new = json!({"schedule": {"cron": "0 5 * * *"}, "enabled": true});
        let diffs = diff(&old, &new);
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].path, "schedule.cron");
        assert_eq!(diffs[0].old, Some(json!("0 4 * * *")));
    }
}
