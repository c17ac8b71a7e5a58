//! `curator init`: a working setup in an empty folder, so that `curator serve` runs a job
//! offline with no edit: the config with every setting explained, an example job with its
//! schema, a catalog and the metadata its job reads, a `.gitignore` for the database and a CI
//! workflow that validates the jobs. Nothing that exists is ever overwritten.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::cli::Exit;

/// The files `curator init` writes, by their path under the folder.
pub fn files() -> Vec<(&'static str, String)> {
    let pin = match env!("CURATOR_COMMIT") {
        "unknown" => format!("--tag v{}", env!("CARGO_PKG_VERSION")),
        commit => format!("--rev {commit}"),
    };
    vec![
        ("curator.yaml", include_str!("init/curator.yaml").to_string()),
        ("jobs.d/example.yaml", include_str!("init/jobs.d/example.yaml").to_string()),
        ("schemas/library-job.schema.json", crate::spec::schema_json()),
        ("catalog.yaml", include_str!("init/catalog.yaml").to_string()),
        ("metadata/series/frieren.json", include_str!("init/metadata/series/frieren.json").into()),
        (".gitignore", include_str!("init/gitignore").to_string()),
        (".github/workflows/curator.yml", include_str!("init/workflow.yml").replace("{pin}", &pin)),
    ]
}

/// Writes the setup into `dir`, creating it if needed. When any of the files exists, names
/// them all and writes nothing.
pub fn init(dir: &Path) -> anyhow::Result<Exit> {
    let files = files();
    let existing: Vec<PathBuf> =
        files.iter().map(|(rel, _)| dir.join(rel)).filter(|p| p.exists()).collect();
    if !existing.is_empty() {
        for path in &existing {
            eprintln!("error: `{}` already exists", path.display());
        }
        eprintln!("nothing was written: curator init never overwrites a file");
        return Ok(Exit::Invalid);
    }
    let mut written = Vec::new();
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Err(e) = write_new(&path, text) {
            // All or nothing: what this run wrote goes again.
            for done in written.iter().rev() {
                let _ = std::fs::remove_file(done);
            }
            return Err(e);
        }
        written.push(path);
    }
    for path in &written {
        println!("created {}", path.display());
    }
    let cd =
        if dir == Path::new(".") { String::new() } else { format!("cd {} && ", dir.display()) };
    println!(
        "\nnext: {cd}curator validate && curator serve\n\
         then, in another terminal: curator run example --wait"
    );
    Ok(Exit::Ok)
}

/// Creates `path` with `text`; fails if it appeared since the check.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder `{}`", parent.display()))?;
    }
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("`{}` already exists", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create `{}`", path.display())),
    };
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write `{}`", path.display()))
}
