//! The `directory` provider: metadata kept as JSON files in a folder, one per external ID
//! (`series/<id>.json`, `books/<id>.json`), in the field names of the Codex protocol's
//! `metadata/series/get` and `metadata/book/get` results. It lets a library's curated metadata
//! live in Git, and lets the examples run offline.

use std::path::PathBuf;

use serde_json::Value;

use super::{Capabilities, EntityKind, Metadata, ProviderError};

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
        let folder = match kind {
            EntityKind::Series => "series",
            EntityKind::Book => "books",
        };
        let path = self.root.join(folder).join(format!("{external_id}.json"));
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
}
