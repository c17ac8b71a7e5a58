//! The planner: which of a library's entries a run fetches, in which order, and why the others
//! are left out. Pure, so the order and the counts are pinned by unit tests.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::spec::LibraryJob;
use crate::store::Entry;

/// Why the planner left an entry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// No external ID for the provider, and the job does not match.
    NoId,
    /// Synced from the provider within the job's window.
    Recent,
}

/// How many entries each filter kept or dropped, so a run answers "why did nothing change?".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanCounts {
    /// The library's series and books in the job's scope.
    pub candidates: usize,
    pub skipped_no_id: usize,
    pub skipped_recent: usize,
    /// Entries without an ID that go through the provider's match call.
    pub to_match: usize,
    /// Entries fetched, matched ones included.
    pub planned: usize,
}

/// A run's entries: the ones to fetch, in order, and the ones left out with their reason.
#[derive(Debug, Default)]
pub struct Plan {
    pub work: Vec<Entry>,
    pub skipped: Vec<(Entry, Skip)>,
    pub counts: PlanCounts,
}

impl Plan {
    /// Filters `entries` for `job` at `now`. Entries with an ID are kept unless synced within
    /// `skipRecentlySyncedWithinS`; entries without one go to the match call, or are left out
    /// under `existingSourceIdsOnly`. Least recently synced first (never synced before
    /// anything), then series before books, then by key: the same catalog always gives the
    /// same order.
    pub fn new(job: &LibraryJob, entries: Vec<Entry>, now: DateTime<Utc>) -> Plan {
        // A window reaching before the calendar's start counts every synced entry as recent.
        let cutoff = i64::try_from(job.skip_recently_synced_within_s)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .and_then(|window| now.checked_sub_signed(window))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut plan = Plan::default();
        plan.counts.candidates = entries.len();
        for entry in entries {
            let recent = job.skip_recently_synced_within_s > 0
                && entry.last_synced_at.is_some_and(|t| t > cutoff);
            if entry.external_id.is_none() {
                if job.existing_source_ids_only {
                    plan.counts.skipped_no_id += 1;
                    plan.skipped.push((entry, Skip::NoId));
                } else {
                    plan.counts.to_match += 1;
                    plan.work.push(entry);
                }
            } else if recent {
                plan.counts.skipped_recent += 1;
                plan.skipped.push((entry, Skip::Recent));
            } else {
                plan.work.push(entry);
            }
        }
        plan.work.sort_by(|a, b| {
            (a.last_synced_at, a.kind as u8, &a.key).cmp(&(b.last_synced_at, b.kind as u8, &b.key))
        });
        plan.counts.planned = plan.work.len();
        plan
    }
}

impl Skip {
    /// The recorded reason.
    pub fn reason(&self, job: &LibraryJob) -> String {
        let provider = job.provider_name();
        match self {
            Skip::NoId => format!("no ID: the entry has no `{provider}` external ID"),
            Skip::Recent => format!(
                "recent: synced from `{provider}` within {}s",
                job.skip_recently_synced_within_s
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::EntityKind;

    fn job(ids_only: bool, window: u64) -> LibraryJob {
        let text = format!(
            "apiVersion: curator/v1\nkind: LibraryJob\nlibrary: manga\nschedule: {{cron: '@daily'}}\n\
             type: metadata_refresh\nprovider: curated\nscope: series_and_books\nfieldGroups: [status]\n\
             existingSourceIdsOnly: {ids_only}\nskipRecentlySyncedWithinS: {window}\n"
        );
        let value = crate::spec::yaml::parse(&text).unwrap().remove(0).value;
        serde_json::from_value(value).unwrap()
    }

    fn entry(
        kind: EntityKind,
        key: &str,
        id: Option<&str>,
        synced_hours_ago: Option<i64>,
    ) -> Entry {
        let now = Utc::now();
        Entry {
            kind,
            row_id: 1,
            key: key.into(),
            metadata: Default::default(),
            locks: Vec::new(),
            external_id: id.map(String::from),
            last_synced_at: synced_hours_ago.map(|h| now - chrono::Duration::hours(h)),
        }
    }

    fn keys(plan: &Plan) -> Vec<&str> {
        plan.work.iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn least_recently_synced_first_then_series_then_key() {
        let entries = vec![
            entry(EntityKind::Series, "b", Some("1"), Some(5)),
            entry(EntityKind::Book, "a/v1", Some("2"), None),
            entry(EntityKind::Series, "c", Some("3"), None),
            entry(EntityKind::Series, "a", Some("4"), Some(9)),
            entry(EntityKind::Series, "d", Some("5"), Some(0)),
        ];
        let plan = Plan::new(&job(true, 3600), entries, Utc::now());
        assert_eq!(keys(&plan), ["c", "a/v1", "a", "b"], "never synced first, `d` is recent");
        let counts = PlanCounts {
            candidates: 5,
            skipped_no_id: 0,
            skipped_recent: 1,
            to_match: 0,
            planned: 4,
        };
        assert_eq!(plan.counts, counts);
    }

    #[test]
    fn entries_without_an_id_are_matched_or_left_out() {
        let entries = || {
            vec![
                entry(EntityKind::Series, "x", None, None),
                entry(EntityKind::Series, "y", Some("1"), Some(1)),
            ]
        };
        let strict = Plan::new(&job(true, 0), entries(), Utc::now());
        assert_eq!((keys(&strict), strict.counts.skipped_no_id), (vec!["y"], 1));
        assert_eq!(
            strict.skipped[0].1.reason(&job(true, 0)),
            "no ID: the entry has no `curated` external ID"
        );
        let loose = Plan::new(&job(false, 0), entries(), Utc::now());
        assert_eq!((keys(&loose), loose.counts.to_match), (vec!["x", "y"], 1));
    }

    #[test]
    fn a_zero_window_never_skips() {
        let entries = vec![entry(EntityKind::Series, "a", Some("1"), Some(0))];
        let plan = Plan::new(&job(true, 0), entries, Utc::now());
        assert_eq!(plan.counts.skipped_recent, 0);
        let mut forever = job(true, 0);
        forever.skip_recently_synced_within_s = u64::MAX;
        let entries = vec![entry(EntityKind::Series, "a", Some("1"), Some(0))];
        let huge = Plan::new(&forever, entries, Utc::now());
        assert_eq!(huge.counts.skipped_recent, 1, "a huge window does not overflow");
    }
}
