//! The repository's runnable example files, as the tests copy them: the config, the three
//! example jobs, the example catalog and metadata, and the schema. Named one by one rather than
//! copied as folders, so a job a reader adds to `jobs.d/` while following the README does not
//! change what the tests see (shared by `src/web/tests.rs` and `tests/cli`).

use std::path::Path;

/// The example files and folders, relative to the repository root.
pub const EXAMPLE_FILES: &[&str] = &[
    "curator.yaml",
    "jobs.d/manga/curated-status.yaml",
    "jobs.d/books/curated-volumes.yaml",
    "jobs.d/comics/curated-summaries.yaml",
    "examples",
    "schemas",
];

/// Copies the example files from the repository at `repo` into `to`.
pub fn copy_examples(repo: &Path, to: &Path) {
    for item in EXAMPLE_FILES {
        copy(&repo.join(item), &to.join(item));
    }
}

/// Copies a file, or a folder with everything in it.
pub fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}
