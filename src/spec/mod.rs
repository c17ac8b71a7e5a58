//! The job file: its Rust types (the source of the JSON Schema), and finding and reading the
//! files of a `jobs.d/` directory into documents with positions. Checking what a document
//! means is `validate`'s job.

pub mod reference;
pub mod yaml;

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::fields;

/// One scheduled job, as written in a YAML document under `jobs.d/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "curator LibraryJob")]
pub struct LibraryJob {
    /// The version of the job format: always `curator/v1`.
    #[schemars(example = &"curator/v1")]
    pub api_version: ApiVersion,
    /// The kind of object: always `LibraryJob`.
    #[schemars(example = &"LibraryJob")]
    pub kind: Kind,
    /// The job's ID, unique across the directory. Defaults to the file's path under `jobs.d/`
    /// without its extension; a file with several documents must name each one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"), length(min = 1, max = 128))]
    #[schemars(example = &"manga/anilist-ratings")]
    pub id: Option<String>,
    /// A display name. Defaults to `<provider>: <groups>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200), example = &"AniList ratings")]
    pub name: Option<String>,
    /// The ID of the library whose series and books the job refreshes.
    #[schemars(length(min = 1), example = &"manga", example = &"comics")]
    pub library: String,
    /// Whether the schedule fires. A disabled job can still be run by hand.
    #[serde(default = "default_true")]
    #[schemars(example = false)]
    pub enabled: bool,
    /// When the job fires: a cron expression, optionally a zone, catch-up and jitter.
    #[schemars(example = serde_json::json!({"cron": "0 4 * * *", "timezone": "Europe/Paris"}))]
    pub schedule: Schedule,
    /// What the job does; `metadata_refresh` is the only type.
    #[serde(rename = "type")]
    #[schemars(example = &"metadata_refresh")]
    pub job_type: JobType,
    /// The configured provider to ask, as `plugin:<name>` (Codex's form) or `<name>`.
    #[schemars(regex(pattern = r"^(plugin:)?[a-z0-9][a-z0-9_-]*$"))]
    #[schemars(example = &"plugin:anilist", example = &"curated")]
    pub provider: String,
    /// Which side of the library the job refreshes: `series_only`, `books_only` or
    /// `series_and_books`. Each side it covers must select at least one group or field.
    #[schemars(example = &"series_only")]
    pub scope: Scope,
    /// Series field groups the job may write; each names a set of series fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []), example = ["ratings", "status", "counts"])]
    pub field_groups: Vec<SeriesGroup>,
    /// Single series fields the job may write outside the selected groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []), example = ["language"])]
    pub extra_fields: Vec<SeriesField>,
    /// Book field groups the job may write, for scopes with books.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []), example = ["page_count", "release_date", "isbn"])]
    pub book_field_groups: Vec<BookGroup>,
    /// Single book fields the job may write outside the selected book groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []), example = ["subtitle"])]
    pub book_extra_fields: Vec<BookField>,
    /// Only refresh entries that already have an external ID for this provider.
    #[serde(default = "default_true")]
    #[schemars(example = true)]
    pub existing_source_ids_only: bool,
    /// Skip entries synced from this provider within this many seconds; 0 disables the skip.
    #[serde(default = "default_skip_recent")]
    #[schemars(example = 86400)]
    pub skip_recently_synced_within_s: u64,
    /// How many provider calls may be in flight at once, from 1 to 16.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 16), example = 4)]
    pub max_concurrency: u8,
}

/// When a job fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    /// A cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with a
    /// leading seconds field, or a nickname (`@hourly`, `@daily`, `@weekly`, `@monthly`,
    /// `@yearly`). Sunday is 0 or 7.
    #[schemars(length(min = 1))]
    #[schemars(example = &"0 4 * * *", example = &"@daily", example = &"30 0 4 * * 1-5")]
    pub cron: String,
    /// An IANA time zone (`Europe/Paris`); the server's `timezone` when absent. Deprecated
    /// names (`US/Pacific`) work with a warning; abbreviations (`PST`, `CEST`) are not zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"Europe/Paris", example = &"America/New_York", example = &"UTC")]
    pub timezone: Option<String>,
    /// After downtime that missed one or more firings, run once at start-up.
    #[serde(default = "default_true")]
    #[schemars(example = false)]
    pub catch_up: bool,
    /// A fixed per-job delay below this duration (`90s`, `10m`, `1h`), derived from the job ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m|h)$"), example = &"10m")]
    pub jitter: Option<String>,
}

/// The job format's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "curator/v1")]
    V1,
}

/// The kind of object a job file declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Kind {
    LibraryJob,
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    MetadataRefresh,
}

/// Which entries of the library a job refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(extend("enumDescriptions" = [
    "Series only: select `fieldGroups` or `extraFields`.",
    "Books only: select `bookFieldGroups` or `bookExtraFields`.",
    "Series and their books: select fields for both sides.",
]))]
pub enum Scope {
    SeriesOnly,
    BooksOnly,
    SeriesAndBooks,
}

impl Scope {
    pub fn series(self) -> bool {
        matches!(self, Scope::SeriesOnly | Scope::SeriesAndBooks)
    }

    pub fn books(self) -> bool {
        matches!(self, Scope::BooksOnly | Scope::SeriesAndBooks)
    }

    /// The scope a word names, if any.
    pub fn from_word(word: &str) -> Option<Scope> {
        [Scope::SeriesOnly, Scope::BooksOnly, Scope::SeriesAndBooks]
            .into_iter()
            .find(|scope| scope.as_str() == word)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::SeriesOnly => "series_only",
            Scope::BooksOnly => "books_only",
            Scope::SeriesAndBooks => "series_and_books",
        }
    }
}

/// Declares a string enum whose words are a list in `catalog::fields`, and checks at test time
/// that the two agree.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $list:expr, { $($variant:ident = $word:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        pub enum $name {
            $(#[serde(rename = $word)] $variant,)*
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)*
                }
            }

            /// The vocabulary list this enum mirrors.
            pub fn words() -> &'static [&'static str] {
                $list
            }
        }
    };
}

// Fixed names with their own field lists live in `catalog::fields`; these mirrors give the
// schema its `enum`s so editors complete them.
vocabulary!(
    /// A series field group.
    SeriesGroup, fields::SERIES_GROUPS, {
    Identifiers = "identifiers", Descriptive = "descriptive", Status = "status",
    Counts = "counts", Ratings = "ratings", Cover = "cover", Tags = "tags", Genres = "genres",
    AgeRating = "age_rating", Classification = "classification", Publisher = "publisher",
    ExternalRefs = "external_refs", Summary = "summary", AlternateTitles = "alternate_titles",
});

vocabulary!(
    /// A book field group.
    BookGroup, fields::BOOK_GROUPS, {
    Title = "title", Number = "number", Summary = "summary", Authors = "authors",
    ReleaseDate = "release_date", PageCount = "page_count", Isbn = "isbn",
    Publisher = "publisher", Cover = "cover",
});

vocabulary!(
    /// A single series field.
    SeriesField, &[], {
    Title = "title", TitleSort = "titleSort", AlternateTitles = "alternateTitles",
    Summary = "summary", Authors = "authors", Status = "status", Year = "year",
    TotalVolumeCount = "totalVolumeCount", TotalChapterCount = "totalChapterCount",
    Rating = "rating", ExternalRatings = "externalRatings", CoverUrl = "coverUrl", Tags = "tags",
    Genres = "genres", AgeRating = "ageRating", Language = "language",
    ReadingDirection = "readingDirection", Publisher = "publisher",
    ExternalLinks = "externalLinks",
});

vocabulary!(
    /// A single book field.
    BookField, &[], {
    Title = "title", Subtitle = "subtitle", Number = "number", Volume = "volume",
    Chapter = "chapter", Summary = "summary", Authors = "authors", ReleaseDate = "releaseDate",
    Year = "year", PageCount = "pageCount", Isbn = "isbn", Publisher = "publisher",
    CoverUrl = "coverUrl",
});

fn default_true() -> bool {
    true
}

fn default_skip_recent() -> u64 {
    3600
}

fn default_concurrency() -> u8 {
    4
}

impl LibraryJob {
    /// The provider's configured name, without Codex's `plugin:` prefix.
    pub fn provider_name(&self) -> &str {
        self.provider.strip_prefix("plugin:").unwrap_or(&self.provider)
    }

    /// The display name: the written one, else `<provider>: <groups and fields>`.
    pub fn display_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let mut parts: Vec<&str> = self.field_groups.iter().map(|g| g.as_str()).collect();
        parts.extend(self.extra_fields.iter().map(|f| f.as_str()));
        parts.extend(self.book_field_groups.iter().map(|g| g.as_str()));
        parts.extend(self.book_extra_fields.iter().map(|f| f.as_str()));
        parts.dedup();
        format!("{}: {}", self.provider_name(), parts.join(", "))
    }

    /// The series fields the job may write: its groups' fields plus its extra fields.
    pub fn series_selection(&self) -> Vec<&'static str> {
        let kind = crate::provider::EntityKind::Series;
        let mut names: Vec<&'static str> =
            self.field_groups.iter().flat_map(|g| fields::group_fields(kind, g.as_str())).collect();
        names.extend(self.extra_fields.iter().map(|f| f.as_str()));
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The book fields the job may write.
    pub fn book_selection(&self) -> Vec<&'static str> {
        let kind = crate::provider::EntityKind::Book;
        let mut names: Vec<&'static str> = self
            .book_field_groups
            .iter()
            .flat_map(|g| fields::group_fields(kind, g.as_str()))
            .collect();
        names.extend(self.book_extra_fields.iter().map(|f| f.as_str()));
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// The job file's JSON Schema (draft-07, which editors' YAML language servers fully support),
/// pretty-printed with a trailing newline: the exact text of `schemas/library-job.schema.json`.
pub fn schema_json() -> String {
    let schema = schema_value();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    text.push('\n');
    text
}

/// The job file's JSON Schema as a value.
pub fn schema_value() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<LibraryJob>().to_value();
    drop_integer_formats(&mut schema);
    let definitions = &mut schema["definitions"];
    describe_words(&mut definitions["SeriesGroup"], SeriesGroup::words(), |group| {
        let fields = fields::group_fields(crate::provider::EntityKind::Series, group);
        format!("Writes {}.", quoted(&fields))
    });
    describe_words(&mut definitions["BookGroup"], BookGroup::words(), |group| {
        let fields = fields::group_fields(crate::provider::EntityKind::Book, group);
        format!("Writes {}.", quoted(&fields))
    });
    let series_fields: Vec<&str> = SeriesField::ALL.iter().map(|f| f.as_str()).collect();
    describe_words(&mut definitions["SeriesField"], &series_fields, |name| {
        let group = fields::find(crate::provider::EntityKind::Series, name).map(|f| f.group);
        format!("In the group `{}`.", group.unwrap_or_default())
    });
    let book_fields: Vec<&str> = BookField::ALL.iter().map(|f| f.as_str()).collect();
    describe_words(&mut definitions["BookField"], &book_fields, |name| {
        let group = fields::find(crate::provider::EntityKind::Book, name).map(|f| f.group);
        format!("In the book group `{}`.", group.unwrap_or_default())
    });
    schema
}

/// schemars marks Rust integer widths as `format: uint8`; no validator or editor knows those
/// formats, and strict ones (ajv) refuse them.
fn drop_integer_formats(node: &mut serde_json::Value) {
    match node {
        serde_json::Value::Object(map) => {
            let integer_format = map
                .get("format")
                .and_then(|f| f.as_str())
                .is_some_and(|f| f.starts_with("uint") || f.starts_with("int"));
            if integer_format {
                map.remove("format");
            }
            map.values_mut().for_each(drop_integer_formats);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_integer_formats),
        _ => {}
    }
}

/// Adds `enumDescriptions` (shown by editors' YAML language servers next to each completion)
/// to a vocabulary enum's schema.
fn describe_words(node: &mut serde_json::Value, words: &[&str], describe: impl Fn(&str) -> String) {
    let descriptions: Vec<serde_json::Value> = words.iter().map(|w| describe(w).into()).collect();
    node["enumDescriptions"] = descriptions.into();
}

fn quoted(words: &[&str]) -> String {
    words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")
}

/// One YAML document of a job file, read but not yet checked.
#[derive(Debug, Clone)]
pub struct SourceDoc {
    /// The file as the user would name it (`jobs.d/manga/ratings.yaml`).
    pub file: PathBuf,
    /// The path under the jobs directory, with `/` separators (`manga/ratings.yaml`).
    pub relative: String,
    /// The document's place in its file, from 0.
    pub index: usize,
    /// How many documents the file holds.
    pub count: usize,
    pub doc: yaml::Document,
}

impl SourceDoc {
    /// The job ID the document declares, else the file's path stem (single-document files).
    pub fn job_id(&self) -> Option<String> {
        match self.doc.value.get("id").and_then(|v| v.as_str()) {
            Some(id) => Some(id.to_string()),
            None if self.count == 1 => Some(default_id(&self.relative)),
            None => None,
        }
    }
}

/// Whether `id` is a job ID: a letter or digit, then letters, digits, `.`, `_`, `/` and `-`,
/// 128 characters at most; the schema's `id` pattern, for IDs taken from a file's path.
pub fn is_job_id(id: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-');
    id.len() <= 128
        && id.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && id.bytes().all(allowed)
}

/// The ID a job gets from its file's path: `manga/ratings.yaml` -> `manga/ratings`.
pub fn default_id(relative: &str) -> String {
    let stem = relative.rsplit_once('.').map_or(relative, |(stem, _)| stem);
    stem.to_string()
}

/// Lists the job files under `root`, sorted by path: `*.yaml` and `*.yml`, skipping hidden
/// entries, editor leftovers and symlinks that lead outside `root` or nowhere.
pub fn discover(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(discover_with_metadata(root)?.into_iter().map(|(path, _)| path).collect())
}

/// [`discover`], and the symlinks it passed over, with why, in path order.
pub fn discover_with_skipped(root: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<SkippedLink>)> {
    let listing = list(root)?;
    Ok((listing.files.into_iter().map(|(path, _)| path).collect(), listing.skipped))
}

/// A symlink with a job file's name that the listing did not follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLink {
    pub path: PathBuf,
    /// Why, as the end of a sentence: "leads outside the jobs directory".
    pub why: &'static str,
}

/// The job files of a folder and the links passed over.
#[derive(Default)]
struct Listing {
    files: Vec<(PathBuf, std::fs::Metadata)>,
    skipped: Vec<SkippedLink>,
}

impl Listing {
    fn extend(&mut self, other: Listing) {
        self.files.extend(other.files);
        self.skipped.extend(other.skipped);
    }
}

/// [`discover`], with each file's metadata (of the symlink's target, for a symlink), read on
/// the way so a caller that compares sizes and times needs no second `stat`.
///
/// Symlinked folders inside `root` are followed (a ConfigMap with nested keys mounts its
/// folders that way); one that leads back to a folder the walk is already inside is an
/// error naming the link, since following it would never end. An entry deleted while the
/// walk runs is passed over: the watcher brings another pass.
pub fn discover_with_metadata(root: &Path) -> std::io::Result<Vec<(PathBuf, std::fs::Metadata)>> {
    Ok(list(root)?.files)
}

fn list(root: &Path) -> std::io::Result<Listing> {
    let root = Root { shown: root, real: root.canonicalize()? };
    let top = entries(root.shown, &root, &[])?
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
    let folders: Vec<&Folder> = top
        .iter()
        .filter_map(|e| match e {
            Entry::Folder(folder) => Some(folder),
            Entry::File(..) | Entry::Skipped(_) => None,
        })
        .collect();
    let mut listings = list_folders(&folders, &root)?.into_iter();
    let mut found = Listing::default();
    for entry in top {
        match entry {
            Entry::File(path, meta) => found.files.push((path, meta)),
            Entry::Skipped(link) => found.skipped.push(link),
            Entry::Folder(_) => found.extend(listings.next().expect("one listing per folder")),
        }
    }
    Ok(found)
}

/// The jobs directory as the user names it, and the real folder it is.
struct Root<'a> {
    shown: &'a Path,
    real: PathBuf,
}

/// One entry of a folder that matters to a listing.
enum Entry {
    File(PathBuf, std::fs::Metadata),
    Folder(Folder),
    Skipped(SkippedLink),
}

/// A folder to list: its path as walked, and the real folders from the root down to it.
struct Folder {
    path: PathBuf,
    inside: Vec<PathBuf>,
}

/// The job files and folders of `dir`, sorted by name: a depth-first walk over sorted folders
/// lists files in path order without sorting whole paths afterwards. `inside` holds the real
/// (canonical) folders from the root down to `dir`, `dir` included. `None` when `dir` was
/// deleted before it could be listed.
fn entries(dir: &Path, root: &Root, inside: &[PathBuf]) -> std::io::Result<Option<Vec<Entry>>> {
    let inside = match inside {
        [] => vec![root.real.clone()],
        _ => inside.to_vec(),
    };
    let listed = match std::fs::read_dir(dir) {
        Ok(listed) => listed,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(dir, e)),
    };
    let mut listed = listed
        .map(|e| e.map(|e| (e.file_name(), e)))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| at(dir, e))?;
    listed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let here = inside.last().expect("the walk is inside at least the root");
    let mut entries = Vec::with_capacity(listed.len());
    for (name, entry) in listed {
        let shown = name.to_string_lossy();
        if is_ignored_name(&shown) {
            continue;
        }
        let path = entry.path();
        let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        let (meta, real) = match entry.file_type() {
            Ok(kind) if kind.is_symlink() => {
                // A ConfigMap mount is symlinks inside the directory; one that leaves it, or
                // leads nowhere, is not ours.
                let job_name = shown.ends_with(".yaml") || shown.ends_with(".yml");
                let skip = |why| Entry::Skipped(SkippedLink { path: path.clone(), why });
                let Ok(target) = path.canonicalize() else {
                    if job_name {
                        entries.push(skip("leads to nothing that exists"));
                    }
                    continue;
                };
                if !target.starts_with(&root.real) {
                    if job_name || target.is_dir() {
                        entries.push(skip("leads outside the jobs directory"));
                    }
                    continue;
                }
                match std::fs::metadata(&path) {
                    Ok(meta) => (meta, target),
                    Err(e) if gone(&e) => continue,
                    Err(e) => return Err(at(&path, e)),
                }
            }
            Ok(_) => match entry.metadata() {
                Ok(meta) => (meta, here.join(&name)),
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(at(&path, e)),
            },
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(at(&path, e)),
        };
        if meta.is_dir() {
            if let Some(ancestor) = inside.iter().find(|a| a.starts_with(&real)) {
                let back = match ancestor.strip_prefix(&root.real) {
                    Ok(below) if below.as_os_str().is_empty() => "the jobs directory itself".into(),
                    Ok(below) => format!("`{}`", root.shown.join(below).display()),
                    Err(_) => format!("`{}`", ancestor.display()),
                };
                return Err(std::io::Error::other(format!(
                    "{}: a symlink back to {back}, which holds it; listing through it would \
                     never end, so remove the link or point it at a folder outside that one",
                    path.display()
                )));
            }
            let mut below = inside.clone();
            below.push(real);
            entries.push(Entry::Folder(Folder { path, inside: below }));
        } else if meta.is_file() && (shown.ends_with(".yaml") || shown.ends_with(".yml")) {
            entries.push(Entry::File(path, meta));
        }
    }
    Ok(Some(entries))
}

/// An I/O error that names the path it happened at.
fn at(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn walk(folder: &Folder, root: &Root, found: &mut Listing) -> std::io::Result<()> {
    for entry in entries(&folder.path, root, &folder.inside)?.unwrap_or_default() {
        match entry {
            Entry::File(path, meta) => found.files.push((path, meta)),
            Entry::Skipped(link) => found.skipped.push(link),
            Entry::Folder(below) => walk(&below, root, found)?,
        }
    }
    Ok(())
}

/// The job files under each folder, in order. The folders are shared out over a few threads:
/// a listing costs one `stat` per file, and at thousands of files those are most of its time.
fn list_folders(folders: &[&Folder], root: &Root) -> std::io::Result<Vec<Listing>> {
    let list = |folder: &Folder| {
        let mut found = Listing::default();
        walk(folder, root, &mut found).map(|()| found)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    if threads < 2 || folders.len() < 2 {
        return folders.iter().map(|f| list(f)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut listings: Vec<Option<std::io::Result<_>>> = folders.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(folders.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(folder) = folders.get(i) else { return done };
                        done.push((i, list(folder)));
                    }
                })
            })
            .collect();
        for worker in workers {
            for (i, listing) in worker.join().expect("a listing thread does not panic") {
                listings[i] = Some(listing);
            }
        }
    });
    listings.into_iter().map(|l| l.expect("every folder is listed")).collect()
}

/// Hidden files, and the leftovers of vim, emacs and others.
fn is_ignored_name(name: &str) -> bool {
    name.starts_with('.') || name.ends_with('~') || (name.starts_with('#') && name.ends_with('#'))
}

/// The path under `root`, with `/` separators.
pub fn relative_path(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_enums_match_the_field_table() {
        let groups: Vec<&str> = SeriesGroup::ALL.iter().map(|g| g.as_str()).collect();
        assert_eq!(groups, SeriesGroup::words());
        let groups: Vec<&str> = BookGroup::ALL.iter().map(|g| g.as_str()).collect();
        assert_eq!(groups, BookGroup::words());
        for field in SeriesField::ALL {
            assert!(fields::find(crate::provider::EntityKind::Series, field.as_str()).is_some());
        }
        for field in BookField::ALL {
            assert!(fields::find(crate::provider::EntityKind::Book, field.as_str()).is_some());
        }
        assert_eq!(SeriesField::ALL.len(), fields::SERIES_FIELDS.len());
        assert_eq!(BookField::ALL.len(), fields::BOOK_FIELDS.len());
    }

    #[test]
    fn every_field_is_documented_for_editors() {
        let schema = schema_value();
        let objects = [&schema, &schema["definitions"]["Schedule"]];
        for object in objects {
            for (name, property) in object["properties"].as_object().unwrap() {
                assert!(property["description"].is_string(), "`{name}` has a description");
                let examples = property["examples"].as_array();
                assert!(examples.is_some_and(|e| !e.is_empty()), "`{name}` has examples");
            }
        }
        for name in ["enabled", "existingSourceIdsOnly", "maxConcurrency", "fieldGroups"] {
            assert!(schema["properties"][name].get("default").is_some(), "`{name}` has a default");
        }
        assert_eq!(schema["definitions"]["Schedule"]["properties"]["catchUp"]["default"], true);
        for name in ["Scope", "SeriesGroup", "BookGroup", "SeriesField", "BookField"] {
            let definition = &schema["definitions"][name];
            let words = definition["enum"].as_array().map_or(0, Vec::len);
            let described = definition["enumDescriptions"].as_array().map_or(0, Vec::len);
            assert!(words > 0 && words == described, "`{name}` describes each of its words");
        }
        assert!(!schema.to_string().contains("uint"), "no Rust integer formats");
    }

    #[test]
    fn an_id_from_a_path_follows_the_id_pattern() {
        for id in ["manga/ratings", "books.v2", "9lives/a_b-c"] {
            assert!(is_job_id(id), "{id}");
        }
        for id in ["with space", "nl\nx", "esc\u{1b}[31m", "_hidden", "", "é", &"a".repeat(129)] {
            assert!(!is_job_id(id), "{id:?}");
        }
        let schema = schema_json();
        assert!(schema.contains(r#""pattern": "^[A-Za-z0-9][A-Za-z0-9._/-]*$""#), "the same rule");
    }

    #[test]
    fn default_id_is_the_path_without_extension() {
        assert_eq!(default_id("manga/anilist-ratings.yaml"), "manga/anilist-ratings");
        assert_eq!(default_id("books.yml"), "books");
    }

    fn job_files(root: &Path) -> Vec<String> {
        let found = discover(root).expect("the directory lists");
        found.iter().map(|f| relative_path(root, f)).collect()
    }

    #[test]
    fn a_symlink_back_up_the_tree_is_an_error_naming_the_link() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("jobs.d");
        std::fs::create_dir_all(root.join("manga")).unwrap();
        std::fs::write(root.join("manga/ratings.yaml"), "kind: metadata_refresh\n").unwrap();
        symlink("..", root.join("manga/loop")).unwrap();
        let error = discover(&root).unwrap_err().to_string();
        assert!(
            error.contains("manga/loop: a symlink back to the jobs directory itself"),
            "{error}"
        );

        // Two folders that lead into each other loop as surely as one that leads up.
        std::fs::remove_file(root.join("manga/loop")).unwrap();
        std::fs::create_dir(root.join("anime")).unwrap();
        symlink("../anime", root.join("manga/to-anime")).unwrap();
        symlink("../manga", root.join("anime/to-manga")).unwrap();
        let error = discover(&root).unwrap_err().to_string();
        let back = format!("a symlink back to `{}`", root.join("anime").display());
        assert!(error.contains(&format!("anime/to-manga/to-anime: {back}")), "{error}");

        // A link that leads to no folder that holds it is followed once, like a ConfigMap's.
        std::fs::remove_file(root.join("anime/to-manga")).unwrap();
        std::fs::write(root.join("anime/scores.yaml"), "kind: metadata_refresh\n").unwrap();
        assert_eq!(
            job_files(&root),
            ["anime/scores.yaml", "manga/ratings.yaml", "manga/to-anime/scores.yaml"]
        );
    }

    #[test]
    fn links_that_lead_nowhere_or_outside_are_passed_over() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("jobs.d");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(dir.path().join("outside.yaml"), "kind: metadata_refresh\n").unwrap();
        std::fs::write(root.join("books.yaml"), "kind: metadata_refresh\n").unwrap();
        symlink("../outside.yaml", root.join("outside.yaml")).unwrap();
        symlink("missing.yaml", root.join("dangling.yaml")).unwrap();
        symlink("itself.yaml", root.join("itself.yaml")).unwrap();
        assert_eq!(job_files(&root), ["books.yaml"]);
        let (_, skipped) = discover_with_skipped(&root).unwrap();
        let skipped: Vec<(String, &str)> =
            skipped.iter().map(|l| (relative_path(&root, &l.path), l.why)).collect();
        assert_eq!(
            skipped,
            [
                ("dangling.yaml".into(), "leads to nothing that exists"),
                ("itself.yaml".into(), "leads to nothing that exists"),
                ("outside.yaml".into(), "leads outside the jobs directory"),
            ]
        );
        let error = discover(&dir.path().join("nope")).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn editor_leftovers_and_hidden_files_are_ignored() {
        for name in [".hidden.yaml", "job.yaml~", "#job.yaml#", ".#job.yaml", ".job.yaml.swp"] {
            assert!(is_ignored_name(name), "{name} should be ignored");
        }
        assert!(!is_ignored_name("job.yaml"));
    }
}
