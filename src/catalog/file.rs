//! The catalog file format read by `curator catalog import` and written by `catalog export`:
//! libraries, series and books with their metadata, locks and external IDs. The two commands
//! round-trip, and an import is an upsert keyed by library, series and book IDs.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{ConfigError, deserialize_at};
use crate::provider::EntityKind;
use crate::spec::yaml;

use super::fields;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    pub libraries: Vec<LibraryDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryDef {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub series: Vec<SeriesDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeriesDef {
    pub id: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locks: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external_ids: BTreeMap<String, ExternalIdDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub books: Vec<BookDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookDef {
    pub id: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locks: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external_ids: BTreeMap<String, ExternalIdDef>,
}

/// A provider's ID for an entry, and when curator last synced the entry from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalIdDef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synced_at: Option<DateTime<Utc>>,
}

impl CatalogFile {
    /// Reads a catalog file (YAML, of which JSON is a subset) and checks its field names,
    /// values and IDs; an error names the file, line and value.
    pub fn read(path: &Path) -> Result<CatalogFile, ConfigError> {
        let mut errors = ConfigError { file: path.display().to_string(), problems: Vec::new() };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(None, format!("cannot read the catalog: {e}"));
                return Err(errors);
            }
        };
        let docs = match yaml::parse(&text) {
            Ok(docs) => docs,
            Err(e) => {
                errors.push(Some(e.pos), e.message);
                return Err(errors);
            }
        };
        let Some(doc) = docs.first() else {
            return Ok(CatalogFile::default());
        };
        let catalog: CatalogFile = deserialize_at(path, doc)?;
        let mut problems = Vec::new();
        catalog.check(&mut problems);
        for (pointer, message) in problems {
            errors.push(Some(doc.spans.value(&pointer)), message);
        }
        if errors.problems.is_empty() { Ok(catalog) } else { Err(errors) }
    }

    /// Checks IDs for uniqueness, field and lock names against the vocabulary, and values
    /// against their fields' shapes. Each problem comes with the JSON pointer of its culprit.
    fn check(&self, problems: &mut Vec<(String, String)>) {
        let mut library_ids = std::collections::HashSet::new();
        for (l, library) in self.libraries.iter().enumerate() {
            let at = format!("/libraries/{l}");
            check_id("library", &library.id, &format!("{at}/id"), problems);
            if !library_ids.insert(&library.id) {
                problems
                    .push((format!("{at}/id"), format!("library `{}` appears twice", library.id)));
            }
            let mut series_ids = std::collections::HashSet::new();
            for (s, series) in library.series.iter().enumerate() {
                let at = format!("{at}/series/{s}");
                check_id("series", &series.id, &format!("{at}/id"), problems);
                if !series_ids.insert(&series.id) {
                    let message =
                        format!("series `{}` appears twice in library `{}`", series.id, library.id);
                    problems.push((format!("{at}/id"), message));
                }
                check_entry(EntityKind::Series, &at, &series.metadata, &series.locks, problems);
                let mut book_ids = std::collections::HashSet::new();
                for (b, book) in series.books.iter().enumerate() {
                    let at = format!("{at}/books/{b}");
                    check_id("book", &book.id, &format!("{at}/id"), problems);
                    if !book_ids.insert(&book.id) {
                        let message =
                            format!("book `{}` appears twice in series `{}`", book.id, series.id);
                        problems.push((format!("{at}/id"), message));
                    }
                    check_entry(EntityKind::Book, &at, &book.metadata, &book.locks, problems);
                }
            }
        }
    }
}

/// IDs are keys in URLs, run records (`series/book`) and file names: non-empty, no `/`, no
/// surrounding spaces.
fn check_id(what: &str, id: &str, pointer: &str, problems: &mut Vec<(String, String)>) {
    if id.is_empty() || id.contains('/') || id.trim() != id {
        let message =
            format!("{what} ID `{id}` must be non-empty, without `/` or surrounding spaces");
        problems.push((pointer.to_string(), message));
    }
}

fn check_entry(
    kind: EntityKind,
    at: &str,
    metadata: &Map<String, Value>,
    locks: &[String],
    problems: &mut Vec<(String, String)>,
) {
    let known: Vec<&str> = fields::fields(kind).iter().map(|f| f.name).collect();
    for (name, value) in metadata {
        let pointer = format!("{at}/metadata/{}", yaml::escape_pointer(name));
        let Some(field) = fields::find(kind, name) else {
            let hint = crate::validate::suggest(name, known.iter().copied());
            problems.push((pointer, format!("`{name}` is not a {} field{hint}", kind.as_str())));
            continue;
        };
        if let Err(expected) = fields::check_shape(field, value) {
            problems.push((pointer, format!("`{name}`: `{value}` does not fit: {expected}")));
        }
    }
    for (i, lock) in locks.iter().enumerate() {
        if fields::find(kind, lock).is_none() {
            let hint = crate::validate::suggest(lock, known.iter().copied());
            let message = format!("lock `{lock}` is not a {} field{hint}", kind.as_str());
            problems.push((format!("{at}/locks/{i}"), message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_catalog_reads_cleanly() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/catalog.yaml");
        let catalog = CatalogFile::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let series: usize = catalog.libraries.iter().map(|l| l.series.len()).sum();
        assert!(series >= 20, "the example library has {series} series");
    }

    #[test]
    fn an_unknown_field_is_reported_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "libraries:\n  - id: m\n    name: M\n    series:\n      - id: a\n        metadata: { titel: A }\n").unwrap();
        let err = CatalogFile::read(&path).unwrap_err();
        assert!(err.problems[0].location.ends_with("c.yaml:6:28"), "{err}");
        assert!(err.problems[0].message.contains("did you mean `title`?"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_in_line_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "libraries:\n  - id: m\n    name: M\n    series:\n      - id: a\n        metadata:\n          titel: A\n          status: completed\n        locks: [ratng]\n      - id: a\n",
        )
        .unwrap();
        let err = CatalogFile::read(&path).unwrap_err();
        let shown = err.lines().replace(&format!("{}", path.display()), "c.yaml");
        assert_eq!(
            shown,
            "c.yaml:7:18: error: `titel` is not a series field; did you mean `title`?\n\
             c.yaml:8:19: error: `status`: `\"completed\"` does not fit: expected one of \
             `ongoing`, `ended`, `hiatus`, `abandoned`, `unknown`\n\
             c.yaml:9:17: error: lock `ratng` is not a series field; did you mean `rating`?\n\
             c.yaml:10:13: error: series `a` appears twice in library `m`\n"
        );
    }
}
