//! A [`Report`] as people and machines read it: text like a compiler's (a source excerpt with
//! a caret, coloured when asked), JSON in a documented shape, or GitHub workflow commands that
//! annotate the lines of a pull request.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

use super::{Report, Severity};
use crate::spec::yaml;

/// How `curator validate` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
    Github,
}

/// The version of `--output json`'s shape; it changes only when a field changes meaning or
/// goes away.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// Renders a report without colour.
pub fn render(report: &Report, output: Output) -> String {
    match output {
        Output::Text => render_text(report, false),
        Output::Json => render_json(report),
        Output::Github => render_github(report),
    }
}

/// Every diagnostic as `file:line:column: level: message`, then the line and a caret under
/// the column; then the skipped checks and a count. `colour` adds ANSI styles.
pub fn render_text(report: &Report, colour: bool) -> String {
    let paint = |style: Style, text: &str| {
        if colour { format!("{style}{text}{style:#}") } else { text.to_string() }
    };
    let error = Style::new().bold().fg_color(Some(AnsiColor::Red.into()));
    let warning = Style::new().bold().fg_color(Some(AnsiColor::Yellow.into()));
    let note = Style::new().bold().fg_color(Some(AnsiColor::Cyan.into()));
    let gutter = Style::new().bold().fg_color(Some(AnsiColor::Blue.into()));
    let bold = Style::new().bold();

    let mut out = String::new();
    for file in report.files.iter().filter(|f| !f.diagnostics.is_empty()) {
        // A file over the size limit was never read, and has no line to show.
        let source = yaml::read_file(&file.file).ok().and_then(Result::ok).unwrap_or_default();
        let source = String::from_utf8_lossy(&source);
        let lines: Vec<&str> = source.lines().collect();
        for d in &file.diagnostics {
            let level = match d.severity {
                Severity::Error => paint(error, "error"),
                Severity::Warning => paint(warning, "warning"),
            };
            let place = format!("{}:{}:{}:", d.file, d.line, d.column);
            let _ = writeln!(out, "{} {level}: {}", paint(bold, &place), paint(bold, &d.message));
            let Some(line) = lines.get(d.line.wrapping_sub(1)) else { continue };
            let number = d.line.to_string();
            let pad = " ".repeat(number.len());
            let (line, column) = excerpt(line, d.column);
            // Tabs stay tabs, so the caret lines up however the terminal shows them.
            let lead: String = line
                .chars()
                .take(column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let bar = paint(gutter, "|");
            let _ = writeln!(out, " {} {bar} {line}", paint(gutter, &number));
            let caret = match d.severity {
                Severity::Error => paint(error, "^"),
                Severity::Warning => paint(warning, "^"),
            };
            let _ = writeln!(out, " {pad} {bar} {lead}{caret}");
        }
    }
    for text in &report.notes {
        let _ = writeln!(out, "{}: {text}", paint(note, "note"));
    }
    let _ = writeln!(out, "{}", summary(report));
    out
}

/// The widest excerpt shown, in characters; a longer line is shown around the column.
const EXCERPT_CHARS: usize = 120;

/// The part of `line` to show under a diagnostic at `column`, and the column within it. A long
/// line is cut to a window around the column, marked `…` where cut; a character a terminal
/// would act on or not show is drawn as a visible stand-in of the same width, so the caret
/// still points at it.
pub(super) fn excerpt(line: &str, column: usize) -> (String, usize) {
    let shown = |c: char| match c {
        '\t' => '\t',
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
        '\u{7f}' => '\u{2421}',
        c if c.is_control() || super::is_invisible(c) => '\u{fffd}',
        c => c,
    };
    let count = line.chars().count();
    if count <= EXCERPT_CHARS {
        return (line.chars().map(shown).collect(), column);
    }
    let at = column.saturating_sub(1).min(count);
    let start = at.saturating_sub(EXCERPT_CHARS / 3).min(count - EXCERPT_CHARS);
    let end = start + EXCERPT_CHARS;
    let mut text = String::new();
    let mut column = at - start + 1;
    if start > 0 {
        text.push('…');
        column += 1;
    }
    text.extend(line.chars().skip(start).take(EXCERPT_CHARS).map(shown));
    if end < count {
        text.push('…');
    }
    (text, column)
}

/// The shape documented in README.md ("JSON output"); field names are a contract.
fn render_json(report: &Report) -> String {
    let json = serde_json::json!({
        "formatVersion": JSON_FORMAT_VERSION,
        "valid": report.error_count() == 0,
        "files": report.files.len(),
        "jobs": report.job_count(),
        "errors": report.error_count(),
        "warnings": report.warning_count(),
        "skipped": report.skipped,
        "notes": report.notes,
        "diagnostics": report.diagnostics().collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&json).expect("a report always serialises");
    text.push('\n');
    text
}

/// One workflow command per diagnostic, a notice per skipped check, then the count as plain
/// text (the runner shows it in the log and annotates nothing with it).
fn render_github(report: &Report) -> String {
    let mut out = String::new();
    for d in report.diagnostics() {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(
            out,
            "::{level} file={},line={},col={},title={}::{}",
            property(&d.file),
            d.line,
            d.column,
            property(&format!("curator {}", d.code)),
            data(&d.message)
        );
    }
    for text in &report.notes {
        let _ = writeln!(out, "::notice title=curator::{}", data(text));
    }
    let _ = writeln!(out, "{}", summary(report));
    out
}

/// The closing line of the text and GitHub outputs.
fn summary(report: &Report) -> String {
    format!(
        "{} file(s), {} valid job(s), {} error(s), {} warning(s)",
        report.files.len(),
        report.job_count(),
        report.error_count(),
        report.warning_count()
    )
}

/// Escapes a workflow command's message, as the runner's toolkit does.
fn data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a workflow command's property value (`file=`, `title=`), where `:` and `,` end it.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}
