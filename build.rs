//! Build-time facts and switches: the commit curator is built from, for `curator --version` (a
//! build outside a Git work tree, such as a source tarball or a container context without
//! `.git`, says `unknown` rather than failing; a packager may set `CURATOR_BUILD_COMMIT`
//! instead); the PostgreSQL tests, which run when `CURATOR_TEST_POSTGRES` names a server
//! (otherwise they are listed as ignored, with the reason saying how to run them); and a
//! changed migration rebuilds the binary that embeds it.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rerun-if-env-changed=CURATOR_TEST_POSTGRES");
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CURATOR_TEST_POSTGRES").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=postgres_tests");
    }

    println!("cargo:rerun-if-env-changed=CURATOR_BUILD_COMMIT");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let commit = std::env::var("CURATOR_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_string())
        .or_else(|| git_commit(Path::new(&dir)))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CURATOR_COMMIT={commit}");
}

/// HEAD's commit, and the files whose change means a new HEAD; `None` without Git.
fn git_commit(dir: &Path) -> Option<String> {
    let commit = git(dir, &["rev-parse", "--verify", "HEAD"])?;
    // A commit, a checkout or a fetch into a packed ref moves HEAD through one of these.
    for file in ["HEAD", "packed-refs"] {
        watch(dir, file);
    }
    if let Some(head_ref) = git(dir, &["symbolic-ref", "--quiet", "HEAD"]) {
        watch(dir, &head_ref);
    }
    Some(commit)
}

/// Reruns this script when a file of the Git directory changes. Only existing files: cargo
/// reruns a build script on every build while a file it watches is missing.
fn watch(dir: &Path, git_file: &str) {
    if let Some(path) = git(dir, &["rev-parse", "--git-path", git_file]) {
        let path = dir.join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}
