//! The `directory` provider: metadata kept as JSON files in a folder, one per external ID
//! (`series/<id>.json`, `books/<id>.json`), in the field names of the Codex protocol's
//! `metadata/series/get` and `metadata/book/get` results. It lets a library's curated metadata
//! live in Git, and lets the examples run offline.

use std::path::PathBuf;

use serde_json::Value;

use super::{Capabilities, EntityKind, MatchCandidate, MatchQuery, Metadata, ProviderError};
use super::{isbn_digits as digits, normalise_title as normalise};

pub struct DirectoryProvider {
    name: String,
    root: PathBuf,
}

impl DirectoryProvider {
    /// A provider over `root`; the folder must exist.
    pub fn new(name: &str, root: PathBuf) -> Result<Self, ProviderError> {
        if !root.is_dir() {
            return Err(ProviderError::Unavailable {
                provider: name.to_string(),
                reason: format!("`{}` is not a directory", root.display()),
            });
        }
        Ok(DirectoryProvider { name: name.to_string(), root })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks that the folder is still there.
    pub fn check(&self) -> Result<(), ProviderError> {
        if self.root.is_dir() {
            return Ok(());
        }
        Err(ProviderError::Unavailable {
            provider: self.name.clone(),
            reason: format!("`{}` is not a directory", self.root.display()),
        })
    }

    /// A folder can hold either side.
    pub fn capabilities(&self) -> Capabilities {
        Capabilities { series: true, book: true }
    }

    pub async fn get(
        &self,
        kind: EntityKind,
        external_id: &str,
    ) -> Result<Metadata, ProviderError> {
        let method = format!("metadata/{}/get", kind.as_str());
        let protocol = |reason: String| ProviderError::Protocol {
            provider: self.name.clone(),
            method: method.clone(),
            reason,
        };
        // An ID is a file name, never a path: `../x` must not read outside the folder.
        let safe = !external_id.is_empty()
            && !external_id.contains(['/', '\\', '\0'])
            && !external_id.starts_with('.');
        if !safe {
            return Err(protocol(format!("external ID `{external_id}` cannot name a file")));
        }
        let path = self.root.join(folder(kind)).join(format!("{external_id}.json"));
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProviderError::NotFound {
                    provider: self.name.clone(),
                    kind: kind.as_str(),
                    external_id: external_id.to_string(),
                });
            }
            Err(e) => return Err(protocol(format!("{}: {e}", path.display()))),
        };
        match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(protocol(format!("{}: not a JSON object", path.display()))),
            Err(e) => Err(protocol(format!("{}: {e}", path.display()))),
        }
    }
}

impl DirectoryProvider {
    /// Finds the file whose metadata names the entry: for a book, the same ISBN (certain); else
    /// the same title once case, punctuation and spacing are ignored (certain when the years
    /// agree or either is unknown, half as sure when they differ). A folder is curated by hand,
    /// so nothing looser is offered.
    pub async fn match_entry(
        &self,
        kind: EntityKind,
        query: &MatchQuery,
    ) -> Result<Option<MatchCandidate>, ProviderError> {
        let folder = self.root.join(folder(kind));
        let mut files = match tokio::fs::read_dir(&folder).await {
            Ok(files) => files,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.unreadable(&folder, e)),
        };
        let wanted = normalise(&query.title);
        let mut best: Option<MatchCandidate> = None;
        while let Some(file) = files.next_entry().await.map_err(|e| self.unreadable(&folder, e))? {
            let path = file.path();
            let Some(id) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            if path.extension().is_none_or(|e| e != "json") || id.starts_with('.') {
                continue;
            }
            let Ok(metadata) = self.get(kind, &id).await else { continue };
            let text = |key: &str| metadata.get(key).and_then(Value::as_str).map(str::to_owned);
            let title = text("title").unwrap_or_default();
            let same_isbn = query.isbn.as_ref().is_some_and(|isbn| {
                text("isbn").is_some_and(|i| digits(&i) == digits(isbn))
                    || metadata.get("isbns").and_then(Value::as_array).is_some_and(|all| {
                        all.iter().filter_map(Value::as_str).any(|i| digits(i) == digits(isbn))
                    })
            });
            let confidence = if same_isbn {
                1.0
            } else if !wanted.is_empty() && normalise(&title) == wanted {
                let year = metadata.get("year").and_then(Value::as_i64);
                match (year, query.year) {
                    (Some(a), Some(b)) if a != b => 0.5,
                    _ => 1.0,
                }
            } else {
                continue;
            };
            // Ties go to the smallest ID, so the answer does not depend on the folder's order.
            let better = best.as_ref().is_none_or(|b| {
                confidence > b.confidence || (confidence == b.confidence && id < b.external_id)
            });
            if better {
                best = Some(MatchCandidate { external_id: id, title, confidence });
            }
        }
        Ok(best)
    }

    fn unreadable(&self, folder: &std::path::Path, e: std::io::Error) -> ProviderError {
        ProviderError::Unavailable {
            provider: self.name.clone(),
            reason: format!("cannot read `{}`: {e}", folder.display()),
        }
    }
}

fn folder(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Series => "series",
        EntityKind::Book => "books",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_files_by_id_and_refuses_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("series")).unwrap();
        std::fs::write(dir.path().join("series/a.json"), r#"{"externalId":"a","title":"A"}"#)
            .unwrap();
        let provider = DirectoryProvider::new("curated", dir.path().to_path_buf()).unwrap();
        let found = provider.get(EntityKind::Series, "a").await.unwrap();
        assert_eq!(found["title"], "A");
        let missing = provider.get(EntityKind::Series, "b").await.unwrap_err();
        assert!(matches!(missing, ProviderError::NotFound { .. }), "{missing}");
        let escape = provider.get(EntityKind::Series, "../series/a").await.unwrap_err();
        assert!(matches!(escape, ProviderError::Protocol { .. }), "{escape}");
    }

    #[tokio::test]
    async fn matches_by_isbn_then_by_title_and_year() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("series")).unwrap();
        std::fs::create_dir_all(dir.path().join("books")).unwrap();
        let write = |path: &str, text: &str| std::fs::write(dir.path().join(path), text).unwrap();
        write("series/m.json", r#"{"externalId":"m","title":"Monster","year":1994}"#);
        write("series/z.json", r#"{"externalId":"z","title":"MONSTER!","year":1994}"#);
        write("books/b.json", r#"{"externalId":"b","title":"Vol 1","isbn":"978-1-4215-6961-6"}"#);
        let provider = DirectoryProvider::new("curated", dir.path().to_path_buf()).unwrap();
        let query = |title: &str, year: Option<i64>| MatchQuery {
            title: title.into(),
            year,
            ..MatchQuery::default()
        };

        let found = provider.match_entry(EntityKind::Series, &query("monster", None)).await;
        let found = found.unwrap().unwrap();
        assert_eq!((found.external_id.as_str(), found.confidence), ("m", 1.0), "ties: lowest ID");
        let other_year = query("Monster", Some(2004));
        let other_year = provider.match_entry(EntityKind::Series, &other_year).await;
        assert_eq!(other_year.unwrap().unwrap().confidence, 0.5);
        let none = provider.match_entry(EntityKind::Series, &query("Pluto", None)).await.unwrap();
        assert_eq!(none, None);

        let isbn = MatchQuery { isbn: Some("9781421569616".into()), ..query("Other", None) };
        let book = provider.match_entry(EntityKind::Book, &isbn).await.unwrap().unwrap();
        assert_eq!((book.external_id.as_str(), book.confidence), ("b", 1.0));
    }
}
