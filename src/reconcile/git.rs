//! Provenance from Git: for each job file, the commit that last changed it and whether the work
//! tree holds uncommitted changes to it. It runs the `git` binary a fixed number of times per
//! pass whatever the number of files (`rev-parse`, `status`, and `log` only when HEAD moved or
//! a file is new to the index). No `git`, a directory outside a work tree, or a failing command
//! means no provenance for the pass, never an error.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::store::{FileRecord, GitState};

/// More paths than this and `git log` is given the whole directory instead of a list.
const MAX_PATHSPECS: usize = 64;

/// What Git says about a pass's job files.
#[derive(Debug, Clone, Default)]
pub struct GitView {
    /// The work tree's HEAD; `None` before its first commit.
    pub head: Option<String>,
    /// Each job file's state, by path under the jobs directory.
    pub files: HashMap<String, GitState>,
}

/// What the last applied pass recorded, so a HEAD that has not moved costs no `git log`.
pub struct Known<'a> {
    /// The HEAD the stored commits were read at.
    pub head: Option<&'a str>,
    /// The file records, with the commit each was last seen at.
    pub records: &'a HashMap<String, FileRecord>,
}

impl Known<'_> {
    /// The stored commit of `file` (inner `None`: never committed), if it has one stored.
    fn commit(&self, file: &str) -> Option<Option<String>> {
        self.records.get(file).and_then(|r| r.git.as_ref()).map(|g| g.commit.clone())
    }
}

/// The state of each of `files` (paths under `dir`), or `None` when Git cannot say.
pub fn inspect(dir: &Path, files: &[&str], known: &Known) -> Option<GitView> {
    let (prefix, head) = locate(dir)?;
    let status = match status(dir, &prefix) {
        Ok(status) => status,
        Err(e) => {
            tracing::warn!(
                dir = %dir.display(),
                error = %e,
                "git status failed: no provenance this pass"
            );
            return None;
        }
    };

    // A file's last commit depends only on HEAD and its path: while HEAD stays, the stored
    // commits hold; when HEAD moved forward, only the files its new commits touched changed.
    let mut commits: HashMap<String, Option<String>> = HashMap::new();
    if let Some(head) = &head {
        let reuse = match known.head {
            Some(old) if old == head => true,
            Some(old) if is_ancestor(dir, old, head) => {
                match log(dir, Some(&format!("{old}..{head}")), None) {
                    Ok(changed) => {
                        commits.extend(changed.into_iter().map(|(f, c)| (f, Some(c))));
                        true
                    }
                    Err(_) => false,
                }
            }
            _ => false,
        };
        if reuse {
            for file in files {
                if let (false, Some(commit)) = (commits.contains_key(*file), known.commit(file)) {
                    commits.insert(file.to_string(), commit);
                }
            }
        }
        let wanted: BTreeSet<&str> = files
            .iter()
            .filter(|f| !commits.contains_key(**f) && !uncommitted(status.get(**f)))
            .copied()
            .collect();
        if !wanted.is_empty() {
            match log(dir, None, Some(&wanted)) {
                Ok(found) => commits.extend(found.into_iter().map(|(f, c)| (f, Some(c)))),
                Err(e) => {
                    tracing::warn!(
                        dir = %dir.display(),
                        error = %e,
                        "git log failed: no provenance this pass"
                    );
                    return None;
                }
            }
        }
    }

    let files = files
        .iter()
        .map(|file| {
            // A file `git status` does not list is tracked and clean, even when its commit lies
            // beyond the history a shallow clone holds.
            let commit = commits.get(*file).cloned().flatten();
            (file.to_string(), GitState { commit, dirty: status.contains_key(*file) })
        })
        .collect();
    Some(GitView { head, files })
}

fn git(dir: &Path) -> Command {
    let mut command = Command::new("git");
    // `status` would otherwise refresh the index and take its lock, which can make a user's
    // own `git commit` fail while a pass runs.
    command
        .arg("-C")
        .arg(dir)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    command
}

/// The directory's path inside its work tree (`jobs.d/`) and the HEAD commit, or `None` when
/// `git` is missing or the directory is not in a work tree.
fn locate(dir: &Path) -> Option<(String, Option<String>)> {
    // Git finds its repository by looking for `.git` upwards; when there is none and nothing in
    // the environment points elsewhere, there is no need to start it to hear so.
    let pointed =
        std::env::var_os("GIT_DIR").is_some() || std::env::var_os("GIT_WORK_TREE").is_some();
    let absolute = std::path::absolute(dir).ok()?;
    if !pointed && !absolute.ancestors().any(|a| a.join(".git").exists()) {
        tracing::debug!(dir = %dir.display(), "not in a Git work tree: no provenance");
        return None;
    }
    let output = match git(dir).args(["rev-parse", "--show-prefix", "HEAD"]).output() {
        Ok(output) => output,
        Err(e) => {
            tracing::debug!(error = %e, "git cannot be run: no provenance");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let prefix = lines.next().unwrap_or_default().to_string();
    if output.status.success() {
        return Some((prefix, lines.next().map(str::to_string)));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("ambiguous argument 'HEAD'") || stderr.contains("unknown revision") {
        // A work tree without a commit yet: the prefix was printed before HEAD failed.
        return Some((prefix, None));
    }
    if stderr.contains("not a git repository") {
        tracing::debug!(dir = %dir.display(), "not in a Git work tree: no provenance");
    } else {
        tracing::warn!(
            dir = %dir.display(),
            error = %stderr.trim(),
            "git refuses the directory: no provenance"
        );
    }
    None
}

/// Each path under `dir` that `git status` lists, with its two-letter code.
fn status(dir: &Path, prefix: &str) -> std::io::Result<HashMap<String, String>> {
    let output = git(dir)
        .args(["status", "--porcelain=v1", "-z", "--no-renames", "--untracked-files=all"])
        .args(["--ignored=matching", "--", "."])
        .output()?;
    if !output.status.success() {
        return Err(std::io::Error::other(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    // Porcelain paths are relative to the top of the work tree, whatever the current folder.
    let mut listed = HashMap::new();
    for entry in output.stdout.split(|b| *b == 0).filter(|e| e.len() > 3) {
        let entry = String::from_utf8_lossy(entry);
        let (code, path) = entry.split_at(2);
        if let Some(path) = path[1..].strip_prefix(prefix) {
            listed.insert(path.to_string(), code.to_string());
        }
    }
    Ok(listed)
}

/// Whether a `git status` code means the file has no commit to find: untracked, ignored, or
/// added to the index for the first time.
fn uncommitted(code: Option<&String>) -> bool {
    code.is_some_and(|c| c == "??" || c == "!!" || c.starts_with('A'))
}

/// Whether `stored`, the commit the database was last reconciled from, is newer than `head`,
/// this work tree's: `head` is one of its ancestors, or the work tree has not fetched it, or,
/// when the two histories diverged, it was committed later. Several replicas pull the same
/// repository at slightly different moments; the one still behind must not put older
/// versions back.
pub fn behind(dir: &Path, head: &str, stored: &str) -> bool {
    if head == stored || is_ancestor(dir, stored, head) {
        return false;
    }
    let known = git(dir)
        .args(["cat-file", "-e", &format!("{stored}^{{commit}}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !known || is_ancestor(dir, head, stored) {
        return true;
    }
    let time = |commit: &str| -> Option<i64> {
        let output = git(dir).args(["log", "-1", "--format=%ct", commit]).output().ok()?;
        String::from_utf8_lossy(&output.stdout).trim().parse().ok()
    };
    time(stored) > time(head)
}

fn is_ancestor(dir: &Path, old: &str, new: &str) -> bool {
    git(dir)
        .args(["merge-base", "--is-ancestor", old, new])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The newest commit that changed each path `git log` names, over `range` (HEAD's history by
/// default). With `wanted`, only those paths are looked for, and reading stops as soon as each
/// has been found: a file last changed long ago costs a longer walk, the others none.
fn log(
    dir: &Path,
    range: Option<&str>,
    wanted: Option<&BTreeSet<&str>>,
) -> std::io::Result<HashMap<String, String>> {
    let mut command = git(dir);
    command.args(["--literal-pathspecs", "log", "--no-renames", "--relative", "-z"]);
    command.args(["--name-only", "--format=%x01%H"]);
    command.args(range);
    command.arg("--");
    match wanted {
        Some(paths) if paths.len() <= MAX_PATHSPECS => command.args(paths.iter()),
        _ => command.arg("."),
    };
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let mut reader = BufReader::new(child.stdout.take().expect("stdout is piped"));

    // The stream reads `\x01<commit>\0\n<path>\0<path>\0\x01<commit>\0...`, newest first.
    let mut found = HashMap::new();
    let mut commit = String::new();
    let mut field = Vec::new();
    loop {
        field.clear();
        if reader.read_until(0, &mut field)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&field);
        let text = text.trim_end_matches('\0').trim_start_matches('\n');
        if let Some(hash) = text.strip_prefix('\u{1}') {
            commit = hash.to_string();
        } else if !text.is_empty()
            && wanted.is_none_or(|w| w.contains(text))
            && !found.contains_key(text)
        {
            found.insert(text.to_string(), commit.clone());
            if wanted.is_some_and(|w| found.len() == w.len()) {
                break;
            }
        }
    }
    // Stopping early leaves git writing into a closed pipe; it is ours to end.
    let _ = child.kill();
    let _ = child.wait();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=curator", "-c", "user.email=curator@example.org"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    }

    fn has_git() -> bool {
        Command::new("git").arg("--version").output().is_ok()
    }

    #[test]
    fn commits_and_uncommitted_changes_are_read_per_file_and_reused_while_head_stays() {
        if !has_git() {
            return;
        }
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path().join("jobs.d");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.yaml"), "a").unwrap();
        std::fs::write(dir.join("sub/b.yaml"), "b").unwrap();
        run(repo.path(), &["init", "-q"]);
        run(repo.path(), &["add", "."]);
        run(repo.path(), &["commit", "-qm", "one"]);
        std::fs::write(dir.join("a.yaml"), "a2").unwrap();
        run(repo.path(), &["commit", "-qam", "two"]);
        std::fs::write(dir.join("sub/b.yaml"), "b2").unwrap();
        std::fs::write(dir.join("new.yaml"), "n").unwrap();

        let files = ["a.yaml", "sub/b.yaml", "new.yaml"];
        let none = HashMap::new();
        let view = inspect(&dir, &files, &Known { head: None, records: &none }).unwrap();
        let head = view.head.clone().unwrap();
        let a = &view.files["a.yaml"];
        assert_eq!((a.commit.as_deref(), a.dirty), (Some(head.as_str()), false));
        let b = &view.files["sub/b.yaml"];
        assert!(b.dirty && b.commit.is_some() && b.commit.as_deref() != Some(&head), "{b:?}");
        assert_eq!(view.files["new.yaml"], GitState { commit: None, dirty: true });

        // With HEAD unmoved, a stored commit is believed without asking `git log`.
        let stored = FileRecord {
            path: "a.yaml".into(),
            stamp: 0,
            stable: true,
            git: Some(GitState { commit: Some("stored".into()), dirty: false }),
        };
        let stored = HashMap::from([("a.yaml".to_string(), stored)]);
        let again = inspect(&dir, &files, &Known { head: Some(&head), records: &stored }).unwrap();
        assert_eq!(again.files["a.yaml"].commit.as_deref(), Some("stored"));
        assert_eq!(again.files["sub/b.yaml"].commit, b.commit, "looked up: no record");
    }

    #[test]
    fn a_work_tree_without_a_commit_has_no_commits_and_everything_dirty() {
        if !has_git() {
            return;
        }
        let repo = tempfile::tempdir().unwrap();
        std::fs::write(repo.path().join("a.yaml"), "a").unwrap();
        run(repo.path(), &["init", "-q"]);
        let none = HashMap::new();
        let view =
            inspect(repo.path(), &["a.yaml"], &Known { head: None, records: &none }).unwrap();
        assert_eq!(view.head, None);
        assert_eq!(view.files["a.yaml"], GitState { commit: None, dirty: true });
    }

    #[test]
    fn a_directory_outside_a_work_tree_has_no_provenance() {
        let dir = tempfile::tempdir().unwrap();
        let none = HashMap::new();
        assert!(inspect(dir.path(), &["a.yaml"], &Known { head: None, records: &none }).is_none());
    }
}
