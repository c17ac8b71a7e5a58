//! The watcher: turns file-system events under `jobs.d/` into "reconcile now" signals. It only
//! says that something changed; the reconciler rescans and compares by content hash, so a
//! missed or duplicated event costs one pass, never a wrong job.
//!
//! The directory is watched, not its files: editors save by writing a temporary file and
//! renaming it over the old one, and a watch on the old inode would go quiet. When `jobs.d/` is
//! in a Git work tree, the repository's reflog folder is watched too: a commit changes no job
//! file, but it changes the commit each job records. A repository made or removed after the
//! watch began (`git init` beside `jobs.d/`, then a first commit; `rm -rf .git`) is noticed,
//! and the caller then watches anew.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

/// How long events settle before one signal goes out. Much higher and a save takes visibly
/// long to go live; much lower and an editor's write-rename pair becomes two passes.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Whether a burst of events calls for a pass over `dir`, or after a change under one of `git`:
/// the repository's reflog (a commit, a checkout, a pull), or where a repository would appear.
fn relevant(result: &DebounceEventResult, dir: &Path, git: &[PathBuf]) -> bool {
    match result {
        // Opening and reading files are events too, and the reconciler reads every file:
        // counting them would make each pass trigger the next.
        Ok(events) => events.iter().any(|e| {
            e.need_rescan()
                || (!matches!(e.kind, notify::EventKind::Access(_))
                    && e.paths
                        .iter()
                        .any(|p| p.starts_with(dir) || git.iter().any(|g| p.starts_with(g))))
        }),
        // An error (an overflowed queue, say) may have lost events: rescan.
        Err(_) => true,
    }
}

/// A running watch; dropping it stops the events.
pub struct Watch {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    /// The reflog folder watched, if the directory was in a repository with one.
    reflog: Option<PathBuf>,
}

impl Watch {
    /// Whether the watch follows another reflog than the one `dir` has now: a repository was
    /// made, got its first commit, or was removed since the watch began. The caller then
    /// watches anew.
    pub fn misses_commits(&self, dir: &Path) -> bool {
        let now = std::path::absolute(dir).ok().and_then(|d| reflog_dir(&d));
        self.reflog != now
    }
}

/// Watches `dir` (and its parent, so a deleted and recreated directory is noticed) and sends
/// `()` on `signal` after each burst of changes. A missing `dir` is not an error while its
/// parent exists: the parent's watch reports when it appears, and the caller watches anew.
pub fn watch(dir: &Path, signal: mpsc::Sender<()>) -> notify::Result<Watch> {
    // Events carry absolute paths; compare against the absolute directory.
    let dir = &std::path::absolute(dir)?;
    let parent = dir.parent().filter(|p| p.is_dir());
    let git_dir = git_dir(dir);
    let reflog = git_dir.as_ref().map(|g| g.join("logs")).filter(|logs| logs.is_dir());
    // Commits grow the reflog, and the first one makes it; `git init` beside the directory,
    // or `rm -rf .git`, is a `.git` appearing or going in the parent, watched below.
    let git_events: Vec<PathBuf> =
        git_dir.iter().map(|g| g.join("logs")).chain(parent.map(|p| p.join(".git"))).collect();
    let dir_for_events: PathBuf = dir.clone();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        if relevant(&result, &dir_for_events, &git_events) {
            // A full channel already holds a pending signal, which is all that is needed.
            let _ = signal.try_send(());
        }
    })?;
    if let Some(parent) = parent {
        debouncer.watch(parent, RecursiveMode::NonRecursive)?;
    }
    let git_watch = reflog.as_deref().or(git_dir.as_deref());
    if let Some(git_watch) = git_watch
        && let Err(e) = debouncer.watch(git_watch, RecursiveMode::NonRecursive)
    {
        // Commits then show at the next pass that something else triggers.
        tracing::debug!(dir = %git_watch.display(), error = %e, "cannot watch the Git repository");
    }
    match debouncer.watch(dir, RecursiveMode::Recursive) {
        Ok(()) => {}
        Err(e) if !dir.exists() && dir.parent().is_some_and(Path::is_dir) => {
            tracing::warn!(dir = %dir.display(), error = %e, "jobs directory missing; watching for it to appear");
        }
        Err(e) => return Err(e),
    }
    Ok(Watch { _debouncer: debouncer, reflog })
}

/// The `logs` folder of the Git repository holding `dir`, where `HEAD`'s reflog grows with each
/// commit, checkout or pull; `None` outside a work tree, without Git, or before a first commit.
fn reflog_dir(dir: &Path) -> Option<PathBuf> {
    Some(git_dir(dir)?.join("logs")).filter(|logs| logs.is_dir())
}

/// The Git folder of the repository holding `dir` (or its parent, while `dir` is missing);
/// `None` outside a work tree or without Git.
fn git_dir(dir: &Path) -> Option<PathBuf> {
    let start = if dir.is_dir() { dir } else { dir.parent()? };
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(start)
        .args(["rev-parse", "--absolute-git-dir"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(PathBuf::from(String::from_utf8(output.stdout).ok()?.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, Event, EventKind, Flag};
    use notify_debouncer_full::DebouncedEvent;

    fn relevant_here(result: &DebounceEventResult, dir: &Path) -> bool {
        relevant(result, dir, &[PathBuf::from("/srv/.git/logs")])
    }

    fn burst(kind: EventKind, path: &str) -> DebounceEventResult {
        let event = Event::new(kind).add_path(PathBuf::from(path));
        Ok(vec![DebouncedEvent::new(event, std::time::Instant::now())])
    }

    #[test]
    fn changes_inside_the_directory_count_and_reads_do_not() {
        let dir = Path::new("/srv/jobs.d");
        assert!(relevant_here(
            &burst(EventKind::Create(CreateKind::File), "/srv/jobs.d/a.yaml"),
            dir
        ));
        assert!(!relevant_here(
            &burst(EventKind::Access(AccessKind::Read), "/srv/jobs.d/a.yaml"),
            dir
        ));
        assert!(!relevant_here(&burst(EventKind::Create(CreateKind::File), "/srv/data/c.db"), dir));
        let commit =
            burst(EventKind::Modify(notify::event::ModifyKind::Any), "/srv/.git/logs/HEAD");
        assert!(relevant_here(&commit, dir), "a commit changes what jobs record");
        assert!(!relevant(&commit, dir, &[]), "outside a work tree nothing is watched there");
        let init = burst(EventKind::Create(CreateKind::Folder), "/srv/.git");
        assert!(relevant(&init, dir, &[PathBuf::from("/srv/.git")]), "a repository appears");
        let first = burst(EventKind::Create(CreateKind::Folder), "/srv/.git/logs");
        assert!(relevant_here(&first, dir), "its first commit makes the reflog");
    }

    #[test]
    fn lost_or_overflowed_events_ask_for_a_full_rescan() {
        let dir = Path::new("/srv/jobs.d");
        let overflow = Event::new(EventKind::Other).set_flag(Flag::Rescan);
        let result: DebounceEventResult =
            Ok(vec![DebouncedEvent::new(overflow, std::time::Instant::now())]);
        assert!(relevant_here(&result, dir), "an overflow names no path but must rescan");
        let failed: DebounceEventResult = Err(vec![notify::Error::generic("queue overflow")]);
        assert!(relevant_here(&failed, dir));
    }
}
