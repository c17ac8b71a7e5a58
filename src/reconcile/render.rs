//! How a plan reads: as text in the manner of `terraform plan` (in colour only when asked, which
//! the command line does on a terminal), or as JSON with a `formatVersion` and the shape the
//! README documents.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::plan::{FieldDiff, Op, Plan, Planned};

/// Bump when a field of the JSON plan changes meaning or goes away; adding one does not.
pub const FORMAT_VERSION: u32 = 1;

/// How text output looks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// ANSI colours: `+` green, `~` yellow, `-` red, `!` magenta, errors bold red.
    pub color: bool,
}

impl Style {
    /// `text`, in colour when asked; what it quotes from job files is spelled out first, so
    /// only curator's own colours reach the terminal.
    fn paint(self, code: &str, text: &str) -> String {
        let text = crate::validate::spelled_out(text);
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.into_owned() }
    }
}

const GREEN: &str = "32";
const YELLOW: &str = "33";
const RED: &str = "31";
const MAGENTA: &str = "35";
const ERROR: &str = "1;31";

/// The plan as text: problems first, then one block per job, then a summary line.
pub fn render_text(plan: &Plan, dry_run: bool, style: Style) -> String {
    let mut out = String::new();
    for d in plan.report.diagnostics() {
        let _ = writeln!(out, "{d}");
    }
    if plan.report.diagnostics().next().is_some() {
        out.push('\n');
    }

    for p in &plan.create {
        let head = format!("+ create {} ({}:{})", p.id, p.file, p.line);
        let _ = writeln!(out, "{}", style.paint(GREEN, &head));
        changes(&mut out, p, style);
        fires(&mut out, p, true);
    }
    for p in &plan.update {
        let mut head = format!("~ update {} ({}:{}", p.id, p.file, p.line);
        if let Some(from) = &p.moved_from {
            let _ = write!(head, ", moved from {from}");
        }
        head.push(')');
        if p.drift {
            head.push_str(
                ": drift, the row was changed outside curator; the file's version goes back",
            );
        }
        let _ = writeln!(out, "{}", style.paint(YELLOW, &head));
        changes(&mut out, p, style);
        let schedule =
            p.changes.iter().any(|c| c.path.starts_with("schedule") || c.path == "enabled");
        fires(&mut out, p, schedule);
    }
    for d in &plan.delete {
        let head = format!("- delete {} (was in {}:{})", d.id, d.file, d.line);
        let _ = writeln!(out, "{}", style.paint(RED, &head));
    }
    for k in &plan.kept {
        let at = k.line.map(|l| format!(":{l}")).unwrap_or_default();
        let head = format!("! keep {} ({}{at}): {}", k.id, k.file, k.reason);
        let _ = writeln!(out, "{}", style.paint(MAGENTA, &head));
    }
    for s in &plan.skipped {
        let head = format!("! skip {} ({}): {}", s.id, s.file, s.reason);
        let _ = writeln!(out, "{}", style.paint(MAGENTA, &head));
    }

    for note in &plan.report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let provenance = plan.provenance_files();
    if provenance > 0 {
        let _ = writeln!(
            out,
            "note: {provenance} file(s) {} a new line, YAML text or Git state on jobs whose spec \
             is unchanged",
            if dry_run { "would record" } else { "recorded" }
        );
    }
    if let Some(refusal) = &plan.refused {
        let _ = writeln!(out, "{} {refusal}", style.paint(ERROR, "error:"));
    } else if let Some(error) = &plan.directory_error {
        let _ = writeln!(out, "{} {error}", style.paint(ERROR, "error:"));
    }

    let c = plan.counts();
    let drift = if c.drift > 0 { format!(" ({} drift)", c.drift) } else { String::new() };
    if dry_run || plan.refused.is_some() {
        if !plan.has_changes() && !plan.has_errors() {
            let _ = writeln!(out, "No changes: the database matches the job files.");
        }
        let _ = writeln!(
            out,
            "Plan: {} to create, {} to update{drift}, {} to delete, {} unchanged, {} kept, {} \
             skipped.",
            c.create, c.update, c.delete, c.unchanged, c.kept, c.skipped
        );
        if !dry_run {
            let _ = writeln!(out, "Nothing applied: the plan was refused.");
        }
    } else {
        let _ = writeln!(
            out,
            "Applied: {} created, {} updated{drift}, {} deleted, {} unchanged, {} kept, {} \
             skipped.",
            c.create, c.update, c.delete, c.unchanged, c.kept, c.skipped
        );
    }
    out
}

fn changes(out: &mut String, p: &Planned, style: Style) {
    for FieldDiff { path, op, old, new } in &p.changes {
        let line = match op {
            Op::Add => style.paint(GREEN, &format!("+ {path}: {}", show(new))),
            Op::Remove => style.paint(RED, &format!("- {path}: {}", show(old))),
            Op::Change => style.paint(YELLOW, &format!("~ {path}: {} -> {}", show(old), show(new))),
        };
        let _ = writeln!(out, "    {line}");
    }
}

fn fires(out: &mut String, p: &Planned, schedule_changed: bool) {
    if !schedule_changed {
        return;
    }
    if !p.enabled {
        let _ = writeln!(out, "    disabled: no scheduled firings");
    }
    for t in &p.next_fire_times {
        let _ = writeln!(
            out,
            "    next: {} ({} {})",
            t.utc.format("%Y-%m-%d %H:%M:%S UTC"),
            t.local.format("%Y-%m-%d %H:%M:%S"),
            p.timezone
        );
    }
}

/// A value as JSON, with a space after each comma of a list so it reads like the YAML.
fn show(value: &Option<Value>) -> String {
    match value {
        None => "(none)".to_string(),
        Some(Value::Array(items)) => {
            let items: Vec<String> = items.iter().map(Value::to_string).collect();
            format!("[{}]", items.join(", "))
        }
        Some(other) => other.to_string(),
    }
}

/// The plan as data: the same content as the text, in the shape the README documents.
pub fn render_json(plan: &Plan, dry_run: bool) -> String {
    let counts = plan.counts();
    let value = json!({
        "formatVersion": FORMAT_VERSION,
        "dryRun": dry_run,
        "applied": plan.applied,
        "commit": plan.commit,
        "summary": {
            "create": counts.create,
            "update": counts.update,
            "delete": counts.delete,
            "unchanged": counts.unchanged,
            "kept": counts.kept,
            "skipped": counts.skipped,
            "drift": counts.drift,
            "provenanceFiles": plan.provenance_files(),
            "errors": plan.report.error_count(),
            "warnings": plan.report.warning_count(),
        },
        "create": plan.create,
        "update": plan.update,
        "delete": plan.delete,
        "kept": plan.kept,
        "skipped": plan.skipped,
        "refused": plan.refused,
        "directoryError": plan.directory_error,
        "diagnostics": plan.report.diagnostics().collect::<Vec<_>>(),
        "notes": plan.report.notes,
    });
    let mut text = serde_json::to_string_pretty(&value).expect("a plan serialises");
    text.push('\n');
    text
}
