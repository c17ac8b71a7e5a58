//! Checking job files: how the bytes read as YAML, structure by the JSON Schema (`schema`),
//! then meaning (`meaning`: cron, zones, selections, and with a config the provider and
//! library), then IDs across files. Every problem becomes a [`Diagnostic`] at
//! `file:line:column`, and every file is checked whatever the others hold; a file with any
//! error yields no jobs, so the caller can keep that file's last good version. `render` turns
//! a [`Report`] into text, JSON or GitHub annotations.

mod meaning;
mod render;
mod schema;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::spec::yaml::{self, Pos};
use crate::spec::{self, LibraryJob, SourceDoc};

pub use render::{Output, render, render_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one file. Its JSON form is part of `curator validate --output json`'s
/// documented shape: keep the field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// Counted from 1.
    pub line: usize,
    /// Counted from 1, in characters.
    pub column: usize,
    /// The dotted path of the offending key or value (`schedule.timezone`); empty for the file
    /// or document as a whole.
    pub path: String,
    /// A stable word for the kind of problem (`unknown-key`, `cron`, ...), listed in README.md.
    pub code: &'static str,
    pub message: String,
    pub severity: Severity,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}:{}: {level}: {}", self.file, self.line, self.column, self.message)
    }
}

/// A job document that passed every check.
#[derive(Debug, Clone)]
pub struct ValidJob {
    pub id: String,
    pub spec: LibraryJob,
    /// The spec with defaults filled in, as stored and compared.
    pub normalized: Value,
    /// SHA-256 of the normalized spec: equal hashes mean nothing to apply.
    pub content_hash: String,
    /// The line the document starts on.
    pub line: usize,
    /// The document's YAML as written.
    pub source: String,
}

/// What checking one file found.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub file: PathBuf,
    /// The path under the jobs directory (`manga/ratings.yaml`): the job rows' `source_file`.
    pub relative: String,
    /// The valid jobs; empty whenever the file has an error.
    pub jobs: Vec<ValidJob>,
    /// Every job ID the file declares, valid or not.
    pub declared_ids: Vec<String>,
    /// Where each of `declared_ids` is declared: its `id` value, or its document's start for an
    /// ID taken from the file's path.
    pub declared_at: Vec<Pos>,
    pub diagnostics: Vec<Diagnostic>,
    /// Which of `declared_ids` come from the file's path rather than an `id` key.
    ids_from_path: Vec<bool>,
    /// Errors and warnings found past [`MAX_DIAGNOSTICS`], counted but not listed.
    omitted: (usize, usize),
}

impl FileReport {
    fn new(file: &Path, relative: &str) -> FileReport {
        FileReport {
            file: file.to_path_buf(),
            relative: relative.to_string(),
            jobs: Vec::new(),
            declared_ids: Vec::new(),
            declared_at: Vec::new(),
            diagnostics: Vec::new(),
            ids_from_path: Vec::new(),
            omitted: (0, 0),
        }
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }

    /// Line order, so that output is the same from run to run.
    fn sort_diagnostics(&mut self) {
        self.diagnostics.sort_by(|a, b| {
            (a.line, a.column, a.severity, a.code, &a.message)
                .cmp(&(b.line, b.column, b.severity, b.code, &b.message))
        });
    }

    /// Keeps the first [`MAX_DIAGNOSTICS`] and says how many more there were, as compilers
    /// do: a file with a mistake on every line of a long list needs its first ones fixed, not a
    /// screen per item.
    fn cap_diagnostics(&mut self) {
        if self.diagnostics.len() <= MAX_DIAGNOSTICS {
            return;
        }
        let rest = self.diagnostics.split_off(MAX_DIAGNOSTICS);
        let errors = rest.iter().filter(|d| d.severity == Severity::Error).count();
        self.omitted = (errors, rest.len() - errors);
        let first = &rest[0];
        let pos = Pos { line: first.line, column: first.column };
        let message = format!(
            "and {} more problem(s) found in this file ({errors} error(s)): fix these first",
            rest.len()
        );
        let severity = if errors > 0 { Severity::Error } else { Severity::Warning };
        self.push(pos, "", "more", message, severity);
    }

    fn push(
        &mut self,
        pos: Pos,
        path: &str,
        code: &'static str,
        message: String,
        severity: Severity,
    ) {
        self.diagnostics.push(Diagnostic {
            file: self.file.display().to_string(),
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            code,
            message: readable(message),
            severity,
        });
    }
}

/// The most diagnostics reported for one file.
pub const MAX_DIAGNOSTICS: usize = 50;

/// How many problems of one kind a check looks for in one document before it stops.
pub const MAX_FINDINGS: usize = 1000;

/// The longest message kept whole; a value quoted in a message can make it any length.
const MAX_MESSAGE_CHARS: usize = 500;

/// A message as a terminal shows it truthfully: control and invisible characters that a quoted
/// value brought in are spelled out (`\u{1b}`, `\u{200b}`), and a message that a long value
/// made long is cut, saying by how much.
fn readable(message: String) -> String {
    // A message is one line: a line break in a quoted value would start a forged one.
    let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) else {
        if let std::borrow::Cow::Owned(escaped) = one_line(&message) {
            return escaped;
        }
        return message;
    };
    let rest = message[cut..].chars().count();
    format!("{}… ({rest} more characters)", one_line(&message[..cut]))
}

/// Text from files or providers as a terminal may be given it: control characters other than
/// line breaks and tabs, and invisible ones, are spelled out (`\u{1b}`), so a name or a title
/// cannot clear the screen, colour what follows or turn the line around.
pub fn spelled_out(text: &str) -> std::borrow::Cow<'_, str> {
    escaped(text, |c| (c.is_control() && c != '\n' && c != '\t') || is_invisible(c))
}

/// Text that must stay on one line, as a name in a listing: [`spelled_out`], line breaks and
/// tabs included.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    escaped(text, |c| c.is_control() || is_invisible(c) || is_line_break(c))
}

/// `text` with each character that `hidden` picks written as its Rust escape.
fn escaped(text: &str, hidden: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(&hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hidden(c) { out.extend(c.escape_default()) } else { out.push(c) }
    }
    std::borrow::Cow::Owned(out)
}

/// The line and paragraph separators, which some terminals and editors break lines at.
fn is_line_break(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
}

/// Characters that take no room on a terminal but change what a value is: zero-width spaces
/// and joiners, direction marks and overrides, the byte-order mark, the soft hyphen.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}')
}

/// What checking a set of files found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: Vec<FileReport>,
    /// Checks that were skipped, and why, in words.
    pub notes: Vec<String>,
    /// The same as stable words for machines: `provider`, `library`.
    pub skipped: Vec<&'static str>,
}

impl Report {
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.files.iter().flat_map(|f| f.diagnostics.iter())
    }

    /// Every error found, those past a file's [`MAX_DIAGNOSTICS`] included.
    pub fn error_count(&self) -> usize {
        self.count(Severity::Error) + self.files.iter().map(|f| f.omitted.0).sum::<usize>()
    }

    /// Every warning found, those past a file's [`MAX_DIAGNOSTICS`] included.
    pub fn warning_count(&self) -> usize {
        self.count(Severity::Warning) + self.files.iter().map(|f| f.omitted.1).sum::<usize>()
    }

    /// The diagnostics listed with `severity`, leaving out the line that counts the rest.
    fn count(&self, severity: Severity) -> usize {
        self.diagnostics().filter(|d| d.severity == severity && d.code != "more").count()
    }

    pub fn job_count(&self) -> usize {
        self.files.iter().map(|f| f.jobs.len()).sum()
    }

    /// Whether a file could not be read at all: an I/O error, not a mistake in it.
    pub fn has_io_errors(&self) -> bool {
        self.diagnostics().any(|d| d.code == "io")
    }
}

/// What the meaning checks may consult beyond the files themselves.
pub struct Context<'a> {
    /// With a config, providers are checked; without one those checks are skipped.
    pub config: Option<&'a Config>,
    /// The libraries in the database, when it could be read.
    pub libraries: Option<&'a HashSet<String>>,
    /// What each plugin's manifest said when it last started, when the database could be read.
    /// A plugin never started has no entry, and its scope is checked by the run.
    pub manifests: Option<&'a Manifests>,
}

/// Plugin capabilities by provider name, as stored when each plugin last started.
pub type Manifests = std::collections::HashMap<String, crate::provider::Capabilities>;

/// Checks every job file under each path (files or directories). `root` is the jobs directory
/// that default IDs are taken relative to. Files are reported in path order, each once.
pub fn check_paths(paths: &[PathBuf], root: &Path, ctx: &Context) -> std::io::Result<Report> {
    let mut files = Vec::new();
    let mut notes = Vec::new();
    for path in paths {
        if path.is_dir() {
            let (found, skipped) = spec::discover_with_skipped(path)?;
            files.extend(found.into_iter().map(|f| (path.clone(), f)));
            notes.extend(
                skipped.into_iter().map(|link| {
                    format!("{}: skipped: the symlink {}", link.path.display(), link.why)
                }),
            );
        } else if path.is_file() {
            let base = if path.starts_with(root) { root.to_path_buf() } else { parent_of(path) };
            files.push((base, path.clone()));
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: no such file or directory", path.display()),
            ));
        }
    }
    // A file named twice (`jobs.d jobs.d/a.yaml`) is one file, not a duplicate of its IDs.
    // One directory lists each file once, already sorted.
    if paths.len() > 1 {
        let mut seen = HashSet::new();
        files.retain(|(_, file)| seen.insert(file.canonicalize().unwrap_or_else(|_| file.clone())));
        files.sort_by(|a, b| a.1.cmp(&b.1));
    }

    let mut report = Report { files: check_files(&files, ctx), notes, ..Report::default() };
    flag_duplicate_ids(&mut report.files);
    for file in &mut report.files {
        if file.has_errors() {
            file.jobs.clear();
        }
        file.sort_diagnostics();
        file.cap_diagnostics();
    }
    if ctx.config.is_none() {
        report.skipped = vec!["provider", "library"];
        report.notes.push("no config: provider and library checks were skipped".into());
    } else if ctx.libraries.is_none() {
        report.skipped = vec!["library"];
        report.notes.push("no database: library checks were skipped".into());
    }
    Ok(report)
}

/// Checks the whole jobs directory.
pub fn check_dir(root: &Path, ctx: &Context) -> std::io::Result<Report> {
    check_paths(&[root.to_path_buf()], root, ctx)
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Checks `(base, file)` pairs on every core: files are independent until IDs are compared.
fn check_files(files: &[(PathBuf, PathBuf)], ctx: &Context) -> Vec<FileReport> {
    let check =
        |(base, file): &(PathBuf, PathBuf)| check_file(file, &spec::relative_path(base, file), ctx);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if threads == 1 || files.len() < 64 {
        return files.iter().map(check).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, FileReport)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(pair) = files.get(i) else { break out };
                        out.push((i, check(pair)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a file check never panics")).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, report)| report).collect()
}

/// Reads and checks one file.
pub fn check_file(file: &Path, relative: &str, ctx: &Context) -> FileReport {
    match yaml::read_file(file) {
        Ok(Ok(bytes)) => check_source(file, relative, &bytes, ctx),
        Ok(Err(too_large)) => {
            let mut report = FileReport::new(file, relative);
            report.push(too_large.pos, "", too_large.code, too_large.message, Severity::Error);
            report
        }
        Err(e) => {
            let mut report = FileReport::new(file, relative);
            let message = format!("cannot read the file: {e}");
            report.push(Pos::START, "", "io", message, Severity::Error);
            report
        }
    }
}

/// Checks one file's bytes, as if read from `file`. Never panics, whatever the bytes.
pub fn check_source(file: &Path, relative: &str, bytes: &[u8], ctx: &Context) -> FileReport {
    let mut report = FileReport::new(file, relative);
    let docs = match yaml::decode(bytes).and_then(|text| Ok((text, yaml::load(text)?))) {
        Ok(read) => read,
        Err(e) => {
            let message = match e.code {
                "yaml" => format!("invalid YAML: {}", e.message),
                _ => e.message,
            };
            report.push(e.pos, "", e.code, message, Severity::Error);
            return report;
        }
    };
    let (text, docs) = docs;
    let jobs_in_file = docs.iter().filter(|d| !d.value.is_null()).count();
    if jobs_in_file == 0 {
        let pos = docs.first().map_or(Pos::START, |d| d.start);
        let message = "the file holds no job (it is empty or only comments)".to_string();
        report.push(pos, "", "empty", message, Severity::Warning);
        return report;
    }

    let starts: Vec<usize> = docs.iter().map(|d| d.start.line).collect();
    for (index, doc) in docs.into_iter().enumerate() {
        for problem in &doc.problems {
            report.push(problem.pos, "", problem.code, problem.message.clone(), Severity::Error);
        }
        if doc.value.is_null() {
            let message = format!("document {} of the file holds no job", index + 1);
            report.push(doc.start, "", "empty", message, Severity::Warning);
            continue;
        }
        let source = SourceDoc {
            file: file.to_path_buf(),
            relative: relative.into(),
            index,
            count: jobs_in_file,
            doc,
        };
        let mut found = Vec::new();
        let job = check_document(&source, ctx, &mut found);
        if let Some(id) = source.job_id() {
            let written = source.doc.spans.has("/id");
            report.declared_ids.push(id);
            report.declared_at.push(if written {
                source.doc.spans.value("/id")
            } else {
                source.doc.start
            });
            report.ids_from_path.push(!written);
            if !written && !spec::is_job_id(report.declared_ids.last().expect("just pushed")) {
                let id = report.declared_ids.last().expect("just pushed");
                let message = format!(
                    "the job ID `{id}`, taken from the file's path, is not a job ID: name the \
                     file and its folders with letters, digits, `.`, `_` and `-` (starting with \
                     a letter or digit), or set `id`"
                );
                report.push(source.doc.start, "id", "id", message, Severity::Error);
            }
        }
        for finding in found {
            let pos = finding.position(&source.doc, text);
            let path = yaml::pointer_to_path(&finding.pointer);
            report.push(pos, &path, finding.code, finding.message, finding.severity);
        }
        if let Some(mut job) = job {
            job.source = document_text(text, &starts, index);
            report.jobs.push(job);
        }
    }
    if report.has_errors() {
        report.jobs.clear();
    }
    report.sort_diagnostics();
    report
}

/// The lines of document `index`, from its first line to the next document's.
fn document_text(text: &str, starts: &[usize], index: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = if index == 0 { 0 } else { starts[index].saturating_sub(1) };
    let to = starts.get(index + 1).map_or(lines.len(), |next| next.saturating_sub(1));
    let mut slice: Vec<&str> = lines[from.min(lines.len())..to.min(lines.len())].to_vec();
    while slice.last().is_some_and(|l| l.trim() == "---" || l.trim().is_empty()) {
        slice.pop();
    }
    let mut out = slice.join("\n");
    out.push('\n');
    out
}

/// One problem found in a document, before it has a line and column.
struct Finding {
    /// The JSON pointer of the offending member.
    pointer: String,
    /// Whether the problem is the key itself (an unknown key), not its value.
    at_key: bool,
    /// Characters into the value's text (a cron field), when the problem is inside it.
    offset: Option<usize>,
    code: &'static str,
    message: String,
    severity: Severity,
}

impl Finding {
    fn error(pointer: &str, code: &'static str, message: String) -> Finding {
        Finding {
            pointer: pointer.into(),
            at_key: false,
            offset: None,
            code,
            message,
            severity: Severity::Error,
        }
    }

    fn warning(pointer: &str, code: &'static str, message: String) -> Finding {
        Finding { severity: Severity::Warning, ..Finding::error(pointer, code, message) }
    }

    fn position(&self, doc: &yaml::Document, text: &str) -> Pos {
        if self.at_key {
            return doc.spans.key(&self.pointer);
        }
        let pos = doc.spans.value(&self.pointer);
        let Some(offset) = self.offset else {
            return pos;
        };
        // Inside a quoted scalar the text starts one character later.
        let line = text.lines().nth(pos.line.saturating_sub(1)).unwrap_or_default();
        let quoted =
            line.chars().nth(pos.column.saturating_sub(1)).is_some_and(|c| c == '"' || c == '\'');
        Pos { line: pos.line, column: pos.column + offset + usize::from(quoted) }
    }
}

fn check_document(source: &SourceDoc, ctx: &Context, found: &mut Vec<Finding>) -> Option<ValidJob> {
    let value = &source.doc.value;
    if !value.is_object() {
        let message = format!(
            "a job is a mapping of keys to values, but this document is {}",
            schema::describe_kind(value)
        );
        found.push(Finding::error("", "not-a-job", message));
        return None;
    }
    let id = source.job_id();
    if id.is_none() {
        let message = format!(
            "this file holds {} documents, so each must set `id` (only a file with one job may \
             take its ID from the file's path)",
            source.count
        );
        found.push(Finding::error("", "id", message));
    }
    schema::check(value, &source.doc, found);
    // An unknown top-level key may be a misspelt `fieldGroups`: then "selects nothing" is noise.
    let unknown_top_key =
        found.iter().any(|f| f.code == "unknown-key" && f.pointer.matches('/').count() == 1);
    meaning::check(value, &source.doc, ctx, !unknown_top_key, found);
    if !source.doc.problems.is_empty() || found.iter().any(|f| f.severity == Severity::Error) {
        return None;
    }

    let spec = match serde_path_to_error::deserialize::<_, LibraryJob>(value) {
        Ok(spec) => spec,
        Err(e) => {
            // The schema is generated from these types; what it lets through is a number JSON
            // Schema counts as whole (`1.0`, `1e23`) that the field cannot hold.
            let pointer = crate::config::path_to_pointer(e.path());
            let path = yaml::pointer_to_path(&pointer);
            let inner = e.inner().to_string();
            let written = match source.doc.value.pointer(&pointer) {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let written = source.doc.spans.written(&pointer).map_or(written, str::to_string);
            let message = if inner.starts_with("invalid type: floating point") {
                format!(
                    "`{path}`: `{written}` is not a whole number this field can hold: write \
                     digits only, with no `.` or exponent, within its range"
                )
            } else {
                format!("`{path}`: {inner}")
            };
            found.push(Finding::error(&pointer, "type", message));
            return None;
        }
    };
    let normalized = serde_json::to_value(&spec).expect("a job always serialises");
    let content_hash = hash_json(&normalized);
    Some(ValidJob {
        id: id?,
        spec,
        normalized,
        content_hash,
        line: source.doc.start.line,
        source: String::new(),
    })
}

/// SHA-256 of a value's compact JSON text, through a buffer each thread reuses.
fn hash_json(value: &Value) -> String {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        serde_json::to_writer(&mut *buffer, value).expect("a value always serialises");
        hex::encode(Sha256::digest(&buffer[..]))
    })
}

/// An error on every document that declares an ID another document also declares, naming
/// the others.
fn flag_duplicate_ids(files: &mut [FileReport]) {
    let mut owners: BTreeMap<&str, Vec<(usize, Pos, bool)>> = BTreeMap::new();
    for (i, file) in files.iter().enumerate() {
        let declared = file.declared_ids.iter().zip(&file.declared_at).zip(&file.ids_from_path);
        for ((id, pos), from_path) in declared {
            owners.entry(id.as_str()).or_default().push((i, *pos, *from_path));
        }
    }
    let mut flagged = Vec::new();
    for (id, declaring) in owners {
        if declaring.len() < 2 {
            continue;
        }
        for (n, &(i, pos, from_path)) in declaring.iter().enumerate() {
            let others: Vec<String> = declaring
                .iter()
                .enumerate()
                .filter(|(m, _)| *m != n)
                .map(|(_, &(j, at, _))| {
                    format!("{}:{}:{}", files[j].file.display(), at.line, at.column)
                })
                .collect();
            let origin = if from_path { " (taken from the file's path)" } else { "" };
            let message = format!(
                "job ID `{id}`{origin} is also declared at {}: IDs must be unique across the \
                 jobs directory",
                others.join(", ")
            );
            flagged.push((i, pos, message));
        }
    }
    for (i, pos, message) in flagged {
        files[i].push(pos, "id", "duplicate-id", message, Severity::Error);
    }
}

/// `; did you mean `x`?` when a known word is close to what was written.
pub fn suggest<'a>(written: &str, known: impl Iterator<Item = &'a str>) -> String {
    let lower = written.to_lowercase();
    let length = lower.chars().count();
    let within = |k: &str| (k.len() / 3).max(2);
    let best = known
        // A word whose length is further off than the distance allowed cannot be meant; a long
        // value is then never compared whole.
        .filter(|k| length.abs_diff(k.chars().count()) <= within(k))
        .map(|k| (strsim::damerau_levenshtein(&lower, &k.to_lowercase()), k))
        .filter(|(distance, k)| *distance <= within(k))
        .min_by_key(|(distance, _)| *distance);
    match best {
        Some((_, word)) if word != written => format!("; did you mean `{word}`?"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
