//! Checking job files: structure by the JSON Schema, then meaning (cron, zones, selections,
//! unique IDs, and with a config the provider and library). Every problem becomes a
//! [`Diagnostic`] at `file:line:column`; a file with any error yields no jobs, so the caller
//! can keep that file's last good version.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{Config, ProviderKind};
use crate::schedule;
use crate::spec::{self, LibraryJob, SourceDoc, yaml};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The dotted path of the offending value (`schedule.timezone`); empty for the document.
    pub path: String,
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
    pub diagnostics: Vec<Diagnostic>,
}

impl FileReport {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

/// What checking a set of files found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: Vec<FileReport>,
    /// Checks that were skipped, and why.
    pub notes: Vec<String>,
}

impl Report {
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.files.iter().flat_map(|f| f.diagnostics.iter())
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics().filter(|d| d.severity == Severity::Error).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics().filter(|d| d.severity == Severity::Warning).count()
    }
}

/// What the meaning checks may consult beyond the files themselves.
pub struct Context<'a> {
    /// With a config, providers are checked; without one those checks are skipped.
    pub config: Option<&'a Config>,
    /// The libraries in the database, when it could be read.
    pub libraries: Option<&'a HashSet<String>>,
}

/// Checks every job file under each path (files or directories). `root` is the jobs directory
/// that default IDs are taken relative to.
pub fn check_paths(paths: &[PathBuf], root: &Path, ctx: &Context) -> std::io::Result<Report> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(spec::discover(path)?.into_iter().map(|f| (path.clone(), f)));
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
    let mut report = Report::default();
    for (base, file) in files {
        let relative = spec::relative_path(&base, &file);
        report.files.push(check_file(&file, &relative, ctx));
    }
    flag_duplicate_ids(&mut report.files);
    for file in &mut report.files {
        if file.has_errors() {
            file.jobs.clear();
        }
        file.diagnostics
            .sort_by(|a, b| (a.line, a.column, &a.message).cmp(&(b.line, b.column, &b.message)));
    }
    if ctx.config.is_none() {
        report.notes.push("no config: provider checks were skipped".into());
    }
    if ctx.libraries.is_none() {
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

/// Reads and checks one file.
pub fn check_file(file: &Path, relative: &str, ctx: &Context) -> FileReport {
    let mut report = FileReport {
        file: file.to_path_buf(),
        relative: relative.to_string(),
        jobs: Vec::new(),
        declared_ids: Vec::new(),
        diagnostics: Vec::new(),
    };
    let shown = file.display().to_string();
    let at = |line, column, path: &str, code, message: String, severity| Diagnostic {
        file: shown.clone(),
        line,
        column,
        path: path.to_string(),
        code,
        message,
        severity,
    };

    let text = match read_text(file) {
        Ok(text) => text,
        Err(message) => {
            report.diagnostics.push(at(1, 1, "", "read", message, Severity::Error));
            return report;
        }
    };
    let docs = match yaml::parse(&text) {
        Ok(docs) => docs,
        Err(e) => {
            let message = format!("invalid YAML: {}", e.message);
            report.diagnostics.push(at(
                e.pos.line,
                e.pos.column,
                "",
                "yaml",
                message,
                Severity::Error,
            ));
            return report;
        }
    };
    if docs.is_empty() {
        let message = "the file holds no job".to_string();
        report.diagnostics.push(at(1, 1, "", "empty", message, Severity::Warning));
        return report;
    }

    let count = docs.len();
    let starts: Vec<usize> = docs.iter().map(|d| d.start.line).collect();
    for (index, doc) in docs.into_iter().enumerate() {
        let source =
            SourceDoc { file: file.to_path_buf(), relative: relative.into(), index, count, doc };
        let excerpt = document_text(&text, &starts, index);
        let mut found = Vec::new();
        if let Some(job) = check_document(&source, ctx, excerpt, &mut found) {
            report.jobs.push(job);
        }
        if let Some(id) = source.job_id() {
            report.declared_ids.push(id);
        }
        report.diagnostics.extend(found.into_iter().map(|(pointer, code, message, severity)| {
            let pos = if code == "unknown-key" {
                source.doc.spans.key(&pointer)
            } else {
                source.doc.spans.value(&pointer)
            };
            at(pos.line, pos.column, &yaml::pointer_to_path(&pointer), code, message, severity)
        }));
    }
    report
}

fn read_text(file: &Path) -> Result<String, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() > yaml::MAX_FILE_BYTES {
        return Err(format!(
            "the file is {} bytes, larger than the {}-byte limit",
            bytes.len(),
            yaml::MAX_FILE_BYTES
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!("the file is not valid UTF-8 (byte {} is not)", e.utf8_error().valid_up_to())
    })
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

type Found = Vec<(String, &'static str, String, Severity)>;

fn check_document(
    source: &SourceDoc,
    ctx: &Context,
    excerpt: String,
    found: &mut Found,
) -> Option<ValidJob> {
    let value = &source.doc.value;
    if !value.is_object() {
        found.push((
            String::new(),
            "schema",
            "a job must be a mapping of keys to values".into(),
            Severity::Error,
        ));
        return None;
    }
    for error in schema_validator().iter_errors(value) {
        found.push(schema_problem(&error));
    }
    if !found.is_empty() {
        return None;
    }
    let spec: LibraryJob = match serde_json::from_value(value.clone()) {
        Ok(spec) => spec,
        Err(e) => {
            found.push((String::new(), "schema", e.to_string(), Severity::Error));
            return None;
        }
    };
    let Some(id) = source.job_id() else {
        let message = format!("this file holds {} documents, so each must set `id`", source.count);
        found.push((String::new(), "id", message, Severity::Error));
        return None;
    };
    check_meaning(&spec, ctx, found);
    if found.iter().any(|f| f.3 == Severity::Error) {
        return None;
    }
    let normalized = serde_json::to_value(&spec).expect("a job always serialises");
    let content_hash = hex::encode(Sha256::digest(normalized.to_string().as_bytes()));
    Some(ValidJob {
        id,
        spec,
        normalized,
        content_hash,
        line: source.doc.start.line,
        source: excerpt,
    })
}

fn check_meaning(spec: &LibraryJob, ctx: &Context, found: &mut Found) {
    let mut error = |pointer: &str, code, message: String| {
        found.push((pointer.to_string(), code, message, Severity::Error));
    };
    let cron = &spec.schedule.cron;
    if let Err(e) = schedule::parse_cron(cron) {
        error("/schedule/cron", "cron", format!("invalid cron expression `{cron}`: {e}"));
    }
    if let Some(zone) = &spec.schedule.timezone
        && schedule::parse_zone(zone).is_err()
    {
        let hint = suggest(zone, chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()));
        error("/schedule/timezone", "timezone", format!("`{zone}` is not an IANA time zone{hint}"));
    }
    if let Some(jitter) = &spec.schedule.jitter
        && let Err(e) = schedule::parse_jitter(jitter)
    {
        error("/schedule/jitter", "jitter", format!("invalid jitter `{jitter}`: {e}"));
    }

    let series_selected = !spec.field_groups.is_empty() || !spec.extra_fields.is_empty();
    let books_selected = !spec.book_field_groups.is_empty() || !spec.book_extra_fields.is_empty();
    let scope = spec.scope.as_str();
    if spec.scope.series() && !series_selected {
        error(
            "/scope",
            "selection",
            format!(
                "scope `{scope}` refreshes series but the job selects no series field: \
                     set `fieldGroups` or `extraFields`"
            ),
        );
    }
    if spec.scope.books() && !books_selected {
        error(
            "/scope",
            "selection",
            format!(
                "scope `{scope}` refreshes books but the job selects no book field: \
                     set `bookFieldGroups` or `bookExtraFields`"
            ),
        );
    }
    if !spec.scope.series() && series_selected {
        let key = if spec.field_groups.is_empty() { "/extraFields" } else { "/fieldGroups" };
        error(key, "selection", format!("series fields have no effect with scope `{scope}`"));
    }
    if !spec.scope.books() && books_selected {
        let key =
            if spec.book_field_groups.is_empty() { "/bookExtraFields" } else { "/bookFieldGroups" };
        error(key, "selection", format!("book fields have no effect with scope `{scope}`"));
    }

    if let Some(libraries) = ctx.libraries
        && !libraries.contains(&spec.library)
    {
        let hint = suggest(&spec.library, libraries.iter().map(String::as_str));
        error(
            "/library",
            "library",
            format!("library `{}` is not in the catalog{hint}", spec.library),
        );
    }
    if let Some(config) = ctx.config {
        check_provider(spec, config, found);
    }
}

fn check_provider(spec: &LibraryJob, config: &Config, found: &mut Found) {
    let name = spec.provider_name();
    let Some(provider) = config.provider(name) else {
        let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        let hint = suggest(name, names.iter().copied());
        let known = if names.is_empty() { "none".to_string() } else { names.join(", ") };
        let message = format!("provider `{name}` is not configured (configured: {known}){hint}");
        found.push(("/provider".into(), "provider", message, Severity::Error));
        return;
    };
    if !provider.enabled {
        let message =
            format!("provider `{name}` is disabled in the config: the job's runs will fail");
        found.push(("/provider".into(), "provider", message, Severity::Warning));
    }
    // A plugin's capabilities come from its manifest, known once it has started; the run
    // checks them then.
    let capabilities = match provider.kind {
        ProviderKind::Directory => Some((true, true)),
        ProviderKind::Anilist => Some((true, false)),
        ProviderKind::Openlibrary => Some((false, true)),
        ProviderKind::Plugin => None,
    };
    if let Some((series, books)) = capabilities
        && ((spec.scope.series() && !series) || (spec.scope.books() && !books))
    {
        let message = format!(
            "provider `{name}` cannot serve scope `{}`: it provides {}",
            spec.scope.as_str(),
            if series { "series only" } else { "books only" }
        );
        found.push(("/scope".into(), "scope", message, Severity::Error));
    }
}

/// An error on every file that declares an ID another document also declares.
fn flag_duplicate_ids(files: &mut [FileReport]) {
    let mut owners: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, file) in files.iter().enumerate() {
        for id in &file.declared_ids {
            owners.entry(id.clone()).or_default().push(i);
        }
    }
    for (id, declaring) in owners {
        if declaring.len() < 2 {
            continue;
        }
        let names: Vec<String> =
            declaring.iter().map(|&i| files[i].file.display().to_string()).collect();
        let mut seen = HashSet::new();
        for &i in &declaring {
            if !seen.insert(i) {
                continue;
            }
            let message =
                format!("job ID `{id}` is declared more than once: in {}", names.join(", "));
            let file = &mut files[i];
            let line = file.jobs.iter().find(|j| j.id == id).map_or(1, |j| j.line);
            file.diagnostics.push(Diagnostic {
                file: file.file.display().to_string(),
                line,
                column: 1,
                path: "id".into(),
                code: "duplicate-id",
                message,
                severity: Severity::Error,
            });
        }
    }
}

fn schema_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::draft7::new(&spec::schema_value()).expect("the generated schema compiles")
    })
}

/// Turns one schema violation into wording that names the key or value and what was expected.
fn schema_problem(error: &jsonschema::ValidationError) -> (String, &'static str, String, Severity) {
    use jsonschema::error::ValidationErrorKind as Kind;
    let pointer = error.instance_path().as_str().to_string();
    let path = yaml::pointer_to_path(&pointer);
    let (pointer, code, message) = match error.kind() {
        Kind::AdditionalProperties { unexpected } => {
            let key = unexpected.first().cloned().unwrap_or_default();
            let known = known_keys(&pointer);
            let hint = suggest(&key, known.iter().map(String::as_str));
            let at = if path.is_empty() { String::new() } else { format!(" in `{path}`") };
            let child = format!("{pointer}/{}", yaml::escape_pointer(&key));
            (child, "unknown-key", format!("unknown key `{key}`{at}{hint}"))
        }
        Kind::Required { property } => {
            let key = property.as_str().unwrap_or_default();
            let at = if path.is_empty() { "the job".to_string() } else { format!("`{path}`") };
            (pointer, "missing-key", format!("{at} is missing the required key `{key}`"))
        }
        Kind::Enum { options } => {
            let words: Vec<&str> =
                options.as_array().map_or(vec![], |o| o.iter().filter_map(Value::as_str).collect());
            let value = show(error.instance());
            let hint = match error.instance().as_str() {
                Some(text) => suggest(text, words.iter().copied()),
                None => String::new(),
            };
            let message = if hint.is_empty() {
                format!("`{path}`: {value} is not one of {}", quote_list(&words))
            } else {
                format!("`{path}`: {value} is not a known value{hint}")
            };
            (pointer, "value", message)
        }
        Kind::Type { .. } => {
            let value = show(error.instance());
            (
                pointer,
                "type",
                format!("`{path}`: {value} has the wrong type: {}", strip_value(error)),
            )
        }
        _ => {
            let value = show(error.instance());
            (pointer, "value", format!("`{path}`: {value}: {}", strip_value(error)))
        }
    };
    (pointer, code, message, Severity::Error)
}

/// The validator's sentence without its leading copy of the value.
fn strip_value(error: &jsonschema::ValidationError) -> String {
    let text = error.to_string();
    let value = error.instance().to_string();
    text.strip_prefix(&value).map(|rest| rest.trim_start().to_string()).unwrap_or(text)
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

fn quote_list(words: &[&str]) -> String {
    words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")
}

/// The keys the schema allows at the object `pointer` points to.
fn known_keys(pointer: &str) -> Vec<String> {
    let schema = spec::schema_value();
    let mut node = &schema;
    for part in pointer.split('/').skip(1) {
        let next = node.get("properties").and_then(|p| p.get(part));
        node = match next {
            Some(n) => resolve_ref(&schema, n),
            None => return Vec::new(),
        };
    }
    node.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn resolve_ref<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => schema.pointer(pointer).unwrap_or(node),
        None => node,
    }
}

/// `; did you mean `x`?` when a known word is close to what was written.
pub fn suggest<'a>(written: &str, known: impl Iterator<Item = &'a str>) -> String {
    let lower = written.to_lowercase();
    let best = known
        .map(|k| (strsim::damerau_levenshtein(&lower, &k.to_lowercase()), k))
        .filter(|(distance, k)| *distance <= (k.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance);
    match best {
        Some((_, word)) if word != written => format!("; did you mean `{word}`?"),
        _ => String::new(),
    }
}

/// How `curator validate` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
    Github,
}

/// Renders a report: text with source excerpts, JSON, or GitHub workflow annotations.
pub fn render(report: &Report, output: Output) -> String {
    match output {
        Output::Text => render_text(report),
        Output::Json => {
            let json = serde_json::json!({
                "formatVersion": 1,
                "valid": report.error_count() == 0,
                "files": report.files.len(),
                "jobs": report.files.iter().map(|f| f.jobs.len()).sum::<usize>(),
                "errors": report.error_count(),
                "warnings": report.warning_count(),
                "notes": report.notes,
                "diagnostics": report.diagnostics().collect::<Vec<_>>(),
            });
            let mut text = serde_json::to_string_pretty(&json).expect("a report always serialises");
            text.push('\n');
            text
        }
        Output::Github => {
            let mut out = String::new();
            for d in report.diagnostics() {
                let level = if d.severity == Severity::Error { "error" } else { "warning" };
                let message = d.message.replace('%', "%25").replace('\n', "%0A");
                let _ = writeln!(
                    out,
                    "::{level} file={},line={},col={},title=curator {}::{message}",
                    d.file, d.line, d.column, d.code
                );
            }
            for note in &report.notes {
                let _ = writeln!(out, "::notice title=curator::{note}");
            }
            out
        }
    }
}

fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let mut sources: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for file in &report.files {
        for d in &file.diagnostics {
            let _ = writeln!(out, "{d}");
            let lines = sources.entry(d.file.as_str()).or_insert_with(|| {
                std::fs::read_to_string(&file.file)
                    .unwrap_or_default()
                    .lines()
                    .map(String::from)
                    .collect()
            });
            if let Some(line) = lines.get(d.line.saturating_sub(1)) {
                let number = d.line.to_string();
                let pad = " ".repeat(number.len());
                let caret = " ".repeat(d.column.saturating_sub(1));
                let _ = writeln!(out, " {number} | {line}\n {pad} | {caret}^");
            }
        }
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let jobs: usize = report.files.iter().map(|f| f.jobs.len()).sum();
    let _ = writeln!(
        out,
        "{} file(s), {jobs} valid job(s), {} error(s), {} warning(s)",
        report.files.len(),
        report.error_count(),
        report.warning_count()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> FileReport {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.yaml");
        std::fs::write(&path, text).unwrap();
        check_file(&path, "job.yaml", &Context { config: None, libraries: None })
    }

    const GOOD: &str = "apiVersion: curator/v1\nkind: LibraryJob\nlibrary: manga\n\
        schedule:\n  cron: \"0 4 * * *\"\ntype: metadata_refresh\nprovider: plugin:curated\n\
        scope: series_only\nfieldGroups: [ratings]\n";

    #[test]
    fn a_good_job_is_valid_and_takes_its_id_from_the_file() {
        let report = check(GOOD);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
        assert_eq!(report.jobs[0].id, "job");
        assert!(report.jobs[0].spec.enabled, "enabled defaults to true");
    }

    #[test]
    fn a_misspelled_key_points_at_the_key_with_a_suggestion() {
        let report = check(&GOOD.replace("fieldGroups", "fieldGroup"));
        let d = &report.diagnostics[0];
        assert_eq!((d.line, d.column), (9, 1), "{d}");
        assert_eq!(d.message, "unknown key `fieldGroup`; did you mean `fieldGroups`?");
        assert!(report.jobs.is_empty());
    }

    #[test]
    fn an_unknown_group_names_the_value_and_its_neighbour() {
        let report = check(&GOOD.replace("[ratings]", "[ratngs]"));
        let d = &report.diagnostics[0];
        assert_eq!((d.line, d.column, d.path.as_str()), (9, 15, "fieldGroups[0]"), "{d}");
        assert!(
            d.message.contains("`ratngs`") && d.message.contains("did you mean `ratings`?"),
            "{d}"
        );
    }

    #[test]
    fn bad_cron_and_zone_are_meaning_errors_at_their_values() {
        let text = GOOD.replace("\"0 4 * * *\"", "\"0 0 30 2 *\"\n  timezone: Mars/Olympus");
        let report = check(&text);
        let messages: Vec<String> = report.diagnostics.iter().map(|d| d.to_string()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains(":5:9: error: invalid cron expression `0 0 30 2 *`")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains(":6:13: error: `Mars/Olympus` is not an IANA time zone")),
            "{messages:?}"
        );
    }

    #[test]
    fn an_empty_selection_is_an_error_never_everything() {
        let report = check(&GOOD.replace("fieldGroups: [ratings]\n", ""));
        assert!(
            report.diagnostics[0].message.contains("selects no series field"),
            "{:?}",
            report.diagnostics
        );
    }

    #[test]
    fn several_documents_need_ids_each() {
        let report = check(&format!("{GOOD}---\n{GOOD}"));
        assert_eq!(report.diagnostics.len(), 2, "{:?}", report.diagnostics);
        assert!(report.diagnostics[0].message.contains("each must set `id`"));
    }

    #[test]
    fn a_job_id_declared_twice_is_an_error_in_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let with_id = GOOD.replace("library: manga", "id: shared\nlibrary: manga");
        std::fs::write(dir.path().join("a.yaml"), &with_id).unwrap();
        std::fs::write(dir.path().join("b.yaml"), &with_id).unwrap();
        std::fs::write(dir.path().join("c.yaml"), GOOD).unwrap();
        let ctx = Context { config: None, libraries: None };
        let report = check_dir(dir.path(), &ctx).unwrap();
        let errors: Vec<&str> = report.diagnostics().map(|d| d.code).collect();
        assert_eq!(errors, ["duplicate-id", "duplicate-id"], "{:?}", report.files);
        assert!(report.files[0].jobs.is_empty() && report.files[1].jobs.is_empty());
        assert_eq!(report.files[2].jobs.len(), 1, "the third file is unaffected");
        let message = &report.files[0].diagnostics[0].message;
        assert!(message.contains("`shared`") && message.contains("b.yaml"), "{message}");
    }

    #[test]
    fn yaml_errors_carry_their_position() {
        let report = check("apiVersion: curator/v1\nkind: [LibraryJob\n");
        let d = &report.diagnostics[0];
        assert_eq!(d.code, "yaml");
        assert!(d.line >= 2, "{d}");
    }
}
