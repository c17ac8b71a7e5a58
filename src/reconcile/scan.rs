//! The directory side of a pass: which job files exist, which of them must be read again, and
//! what checking those finds. A file whose stamp (size, times, inode) matches its record is not
//! read at all: at 10,000 files, reading and checking every one would cost most of a second per
//! pass, and a `stat` costs a microsecond.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::spec;
use crate::store::FileRecord;
use crate::validate::{self, Context, Report};

/// How far apart two writes must be for a file system clock to give them different times: a
/// few milliseconds on Linux file systems with nanosecond times (they read a coarse clock),
/// a whole second on those that keep seconds only.
const FINE_TICK_NS: i64 = 20_000_000;
const COARSE_TICK_NS: i64 = 1_000_000_000;

/// A job file found in the directory.
#[derive(Debug, Clone)]
pub struct Found {
    pub path: PathBuf,
    /// Its stamp, taken before it is read, so a write during the pass shows at the next one.
    pub stamp: i64,
    /// Whether it was last modified well before the pass began (see [`FileRecord::stable`]).
    pub stable: bool,
}

/// Why the jobs directory could not be listed.
#[derive(Debug, Clone)]
pub struct DirectoryError {
    pub message: String,
    /// The directory does not exist, as opposed to existing and failing to list (a symlink
    /// loop, a folder it cannot open): only a missing one may be taken as empty.
    pub missing: bool,
}

impl std::fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// How the directory compares with the index.
#[derive(Debug)]
pub struct Scan {
    /// Every job file, by path under the directory; `Err` says why the directory could not be
    /// read.
    pub walked: Result<BTreeMap<String, Found>, DirectoryError>,
    /// Files that are new, written since, or not vouched for by their record: read and checked
    /// this pass. Every other walked file is vouched for: its jobs are as stored.
    pub changed: BTreeSet<String>,
    /// How many walked files have a record: when all records do, no file has vanished.
    pub recorded: usize,
    /// The files checked this pass: the changed ones and any vouched file asked for.
    pub checked: BTreeSet<String>,
    /// What checking them found.
    pub report: Report,
}

impl Scan {
    /// Whether `file` was found and its record vouches for it.
    pub fn vouched(&self, file: &str) -> bool {
        self.walked.as_ref().is_ok_and(|w| w.contains_key(file)) && !self.changed.contains(file)
    }

    /// The vouched files that were not checked: their jobs are as stored.
    pub fn untouched(&self) -> impl Iterator<Item = &String> {
        let walked = self.walked.as_ref().ok().into_iter().flat_map(|w| w.keys());
        walked.filter(|f| !self.changed.contains(*f) && !self.checked.contains(*f))
    }
}

/// Lists the directory, sorts its files against the index and checks what must be checked:
/// every file when `check_all` (the index was built under other libraries, providers or
/// binary), and the vouched files in `also` (those of rows written outside curator).
pub fn scan(
    root: &Path,
    index: &HashMap<String, FileRecord>,
    check_all: bool,
    also: &BTreeSet<String>,
    ctx: &Context,
) -> Scan {
    let began = now_ns();
    let walked = match spec::discover_with_metadata(root) {
        Ok(found) => found,
        Err(e) => {
            let missing = e.kind() == std::io::ErrorKind::NotFound;
            let message = if missing {
                format!("the jobs directory `{}` does not exist", root.display())
            } else {
                format!("cannot read the jobs directory `{}`: {e}", root.display())
            };
            return Scan {
                walked: Err(DirectoryError { message, missing }),
                changed: BTreeSet::new(),
                recorded: 0,
                checked: BTreeSet::new(),
                report: Report::default(),
            };
        }
    };
    let walked: BTreeMap<String, Found> = walked
        .into_iter()
        .map(|(path, meta)| {
            let (stamp, stable) = stamp(&meta, began);
            // The walk joined plain names onto `root`, so the rest of the path is already the
            // `/`-separated relative path.
            let relative = match path.strip_prefix(root).ok().and_then(Path::to_str) {
                Some(relative) => relative.to_string(),
                None => spec::relative_path(root, &path),
            };
            (relative, Found { path, stamp, stable })
        })
        .collect();

    let (mut changed, mut recorded) = (BTreeSet::new(), 0);
    for (relative, found) in &walked {
        let record = index.get(relative);
        recorded += usize::from(record.is_some());
        match record {
            Some(record) if !check_all && record.stable && record.stamp == found.stamp => {}
            _ => {
                changed.insert(relative.clone());
            }
        }
    }
    let mut scan = Scan {
        walked: Ok(walked),
        changed,
        recorded,
        checked: BTreeSet::new(),
        report: Report::default(),
    };
    let mut checked = scan.changed.clone();
    checked.extend(also.iter().filter(|f| scan.vouched(f)).cloned());
    check(root, &mut scan, checked, ctx);
    scan
}

/// Checks `files` (replacing what was checked before): the changed files plus, for a second
/// round, vouched files that declare an ID a changed file declares too.
pub fn check(root: &Path, scan: &mut Scan, files: BTreeSet<String>, ctx: &Context) {
    let Ok(walked) = &scan.walked else { return };
    let paths: Vec<PathBuf> =
        files.iter().filter_map(|f| walked.get(f)).map(|f| f.path.clone()).collect();
    scan.report = if paths.is_empty() {
        Report::default()
    } else {
        // A file deleted since the listing fails the whole call: check the ones still there.
        validate::check_paths(&paths, root, ctx)
            .or_else(|_| {
                let present: Vec<PathBuf> = paths.into_iter().filter(|p| p.is_file()).collect();
                validate::check_paths(&present, root, ctx)
            })
            .unwrap_or_default()
    };
    scan.report.notes.retain(|n| !n.starts_with("no database"));
    scan.checked = files;
}

/// A file's stamp, and whether it was modified long enough before `began` for the stamp to
/// change at any later write.
fn stamp(meta: &std::fs::Metadata, began: i64) -> (i64, bool) {
    use std::os::unix::fs::MetadataExt;
    let mtime_ns = meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec());
    let ctime_ns = meta.ctime().saturating_mul(1_000_000_000).saturating_add(meta.ctime_nsec());
    // The hasher only has to be stable within one binary: the index is rebuilt by another.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (meta.size(), mtime_ns, ctime_ns, meta.ino(), meta.dev()).hash(&mut hasher);
    let stamp = i64::from_ne_bytes(hasher.finish().to_ne_bytes());
    (stamp, settled(mtime_ns, began))
}

/// Whether a file modified at `mtime_ns` and read after `began` would show a later write in its
/// times. File times come from a coarse clock, so a write in the same tick as the read can leave
/// them as they were.
fn settled(mtime_ns: i64, began: i64) -> bool {
    let tick = if mtime_ns % 1_000_000_000 == 0 { COARSE_TICK_NS } else { FINE_TICK_NS };
    mtime_ns < began - tick
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_modified_in_the_tick_before_the_pass_is_read_again_next_time() {
        let second = 1_000_000_000;
        assert!(settled(100 * second + 5, 101 * second), "modified well before");
        assert!(!settled(100 * second + 5, 100 * second + 10_000_005), "same tick");
        assert!(!settled(100 * second, 100 * second + 500_000_000), "a whole-second clock");
    }
}
