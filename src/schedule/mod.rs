//! When jobs fire: cron expressions (croner, Vixie semantics), time zones (chrono-tz's
//! compiled-in database) and jitter. Every fire time in curator comes from [`Timing::next`];
//! `scheduler` keeps one queue of them and fires due jobs.

pub mod cron;
pub mod scheduler;
pub mod zones;

use std::sync::Arc;

use std::time::Duration;

use chrono::{DateTime, Offset as _, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use sha2::{Digest, Sha256};

use crate::spec::Schedule;

/// Parses a cron expression: 5 fields, or 6 with leading seconds, or a nickname. A pattern
/// that parses but can never fire (`0 0 30 2 *`) is an error too. The wording of every error
/// comes from [`cron::check`], the same that validation reports at the field.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    cron::check(expr).map_err(|problem| problem.message)?;
    let parser = CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build();
    let cron = parser.parse(expr.trim()).map_err(|e| lower_first(&e.to_string()))?;
    // croner only finds out while searching that a date never exists; a year's search bound
    // lets the check run in a few milliseconds.
    let start = Utc::now().with_timezone(&chrono_tz::UTC);
    match cron.find_next_occurrence(&start, false) {
        Ok(_) => Ok(cron),
        Err(_) => Err("the expression never fires (no date matches it)".into()),
    }
}

/// Resolves a zone name; a deprecated alias resolves to its zone. The error is a sentence
/// naming the value and what to write instead.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    match zones::classify(name) {
        zones::ZoneName::Canonical(zone) | zones::ZoneName::Deprecated { zone, .. } => Ok(zone),
        zones::ZoneName::Unknown { reason, suggestion } => Err(format!(
            "`{name}` is {reason}{}",
            zones::unknown_hint(&reason, suggestion.as_deref())
        )),
    }
}

/// Parses a jitter window: `90s`, `10m`, `1h`, `500ms`.
pub fn parse_jitter(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

/// The delay a job's firings get within its jitter window: the same on every replica and
/// across restarts, because it depends only on the job ID.
pub fn jitter_for(job_id: &str, window: Duration) -> Duration {
    if window.is_zero() {
        return Duration::ZERO;
    }
    let digest = Sha256::digest(job_id.as_bytes());
    let seed = u64::from_be_bytes(digest[..8].try_into().expect("a sha256 digest has 32 bytes"));
    let millis = window.as_millis().max(1) as u64;
    Duration::from_millis(seed % millis)
}

/// A job's resolved timing: expression, zone and jitter.
#[derive(Debug, Clone)]
pub struct Timing {
    pub cron: Cron,
    pub zone: Tz,
    pub jitter: Duration,
}

impl Timing {
    /// Resolves a job's schedule, with `default_zone` for a job that names none.
    pub fn new(job_id: &str, schedule: &Schedule, default_zone: Tz) -> Result<Timing, String> {
        let cron = parse_cron(&schedule.cron)?;
        let zone = match &schedule.timezone {
            Some(name) => parse_zone(name)?,
            None => default_zone,
        };
        let window = match &schedule.jitter {
            Some(text) => parse_jitter(text)?,
            None => Duration::ZERO,
        };
        Ok(Timing { cron, zone, jitter: jitter_for(job_id, window) })
    }

    /// The first cron slot strictly after `after`, in UTC, without jitter.
    pub fn next_slot(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        if let Ok(next) = self.cron.find_next_occurrence(&local, false) {
            return Some(next.with_timezone(&Utc));
        }
        // The search gives up when the next match is a local time the zone skipped whole (Samoa
        // went from 29 to 31 December 2011). On the clock the zone kept before the jump, every
        // local time exists: there the match is found, and the instant it names lies past the
        // jump, where the search starts again.
        let before = after.with_timezone(&local.offset().fix());
        let skipped = self.cron.find_next_occurrence(&before, false).ok()?;
        let from = skipped.with_timezone(&self.zone);
        self.cron.find_next_occurrence(&from, true).ok().map(|t| t.with_timezone(&Utc))
    }

    /// The next `count` slots after `after`.
    pub fn next_slots(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut slots = Vec::with_capacity(count.min(64));
        let mut cursor = after;
        while slots.len() < count {
            match self.next_slot(cursor) {
                Some(slot) => {
                    slots.push(slot);
                    cursor = slot;
                }
                None => break,
            }
        }
        slots
    }

    /// When the slot actually fires: the slot plus the job's jitter.
    pub fn fire_time(&self, slot: DateTime<Utc>) -> DateTime<Utc> {
        slot + chrono::Duration::from_std(self.jitter).unwrap_or_default()
    }

    /// The expression in words (`At 04:00`).
    pub fn describe(&self) -> String {
        self.cron.describe()
    }
}

/// Where the scheduler reads the time. Everything that decides when a job fires asks this, so
/// tests move time forward instead of sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at a chosen instant and advances with tokio's time, so a test that
/// pauses tokio's time runs a day of schedule in milliseconds.
pub struct TokioClock {
    start: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(start: DateTime<Utc>) -> Arc<TokioClock> {
        Arc::new(TokioClock { start, origin: tokio::time::Instant::now() })
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now() - self.origin;
        self.start + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }
}

/// What start-up does about slots a job missed while curator was down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    pub job_id: String,
    /// The latest slot that did not fire.
    pub slot: DateTime<Utc>,
    /// How many slots were missed, counted up to [`MISSED_COUNT_LIMIT`].
    pub count: usize,
    /// Whether the job runs once now (`catchUp: true`) or the slots are only recorded.
    pub catch_up: bool,
}

/// Counting missed slots stops here: an every-second job down for a week needs no exact figure.
pub const MISSED_COUNT_LIMIT: usize = 1000;

impl Timing {
    /// The slots after `since` up to and including `now`, as (latest, count); `None` when no
    /// slot was missed. Searches forward from `since`, which for the common case (nothing
    /// missed) is one cheap step even for a yearly schedule.
    pub fn missed(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, usize)> {
        let mut latest = self.next_slot(since).filter(|slot| *slot <= now)?;
        let mut count = 1;
        while let Some(slot) = self.next_slot(latest).filter(|slot| *slot <= now) {
            if count == MISSED_COUNT_LIMIT {
                // Past the limit, jump straight to the newest missed slot.
                let local = now.with_timezone(&self.zone);
                latest = self
                    .cron
                    .find_previous_occurrence(&local, true)
                    .map_or(slot, |t| t.with_timezone(&Utc));
                break;
            }
            latest = slot;
            count += 1;
        }
        Some((latest, count))
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn schedule(cron: &str, zone: Option<&str>) -> Schedule {
        Schedule { cron: cron.into(), timezone: zone.map(Into::into), catch_up: true, jitter: None }
    }

    #[test]
    fn never_firing_expressions_are_refused() {
        assert!(parse_cron("0 0 30 2 *").unwrap_err().contains("never fires"));
        assert!(parse_cron("0 4 * * *").is_ok());
        assert!(parse_cron("@daily").is_ok());
        assert!(parse_cron("30 0 4 * * *").is_ok(), "a leading seconds field is accepted");
        assert!(parse_cron("@annually").is_ok());
        assert!(parse_cron("@midnight").unwrap_err().contains("; `@midnight` is `@daily`"));
        assert!(parse_cron("60 * * * *").unwrap_err().contains("minute"));
        assert!(parse_cron("0 4 * *").unwrap_err().starts_with("expected 5 fields"));
        assert!(parse_cron("0 25 * * *").unwrap_err().contains("hour"));
    }

    #[test]
    fn slots_follow_the_jobs_zone() {
        let timing =
            Timing::new("j", &schedule("0 4 * * *", Some("Europe/Paris")), chrono_tz::UTC).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        // 04:00 in Paris in winter is 03:00 UTC.
        assert_eq!(
            timing.next_slot(after),
            Some(Utc.with_ymd_and_hms(2026, 12, 4, 3, 0, 0).unwrap())
        );
    }

    #[test]
    fn sunday_is_zero_and_seven() {
        let after = Utc.with_ymd_and_hms(2026, 12, 3, 0, 0, 0).unwrap(); // a Thursday
        let zero = Timing::new("j", &schedule("0 4 * * 0", None), chrono_tz::UTC).unwrap();
        let seven = Timing::new("j", &schedule("0 4 * * 7", None), chrono_tz::UTC).unwrap();
        let sunday = Utc.with_ymd_and_hms(2026, 12, 6, 4, 0, 0).unwrap();
        assert_eq!(zero.next_slot(after), Some(sunday));
        assert_eq!(seven.next_slot(after), Some(sunday));
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn slots(cron: &str, zone: &str, from: &str, count: usize) -> Vec<String> {
        let timing = Timing::new("j", &schedule(cron, Some(zone)), chrono_tz::UTC).unwrap();
        timing
            .next_slots(utc(from), count)
            .iter()
            .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
            .collect()
    }

    #[test]
    fn a_day_the_zone_skipped_is_stepped_over_and_the_schedule_goes_on() {
        // Samoa went from the end of 29 December 2011 (UTC-10) to 31 December (UTC+14).
        assert_eq!(
            slots("0 0 * * *", "Pacific/Apia", "2011-12-28T00:00:00Z", 4),
            ["2011-12-28T10:00Z", "2011-12-29T10:00Z", "2011-12-30T10:00Z", "2011-12-31T10:00Z"]
        );
        // A yearly job on the skipped date comes back the next year.
        assert_eq!(
            slots("0 0 30 12 *", "Pacific/Apia", "2011-12-01T00:00:00Z", 2),
            ["2012-12-29T10:00Z", "2013-12-29T10:00Z"]
        );
        // Kwajalein skipped 21 August 1993: noon on the 20th (UTC-12), then the 22nd (UTC+12).
        assert_eq!(
            slots("0 12 * * *", "Pacific/Kwajalein", "1993-08-19T00:00:00Z", 3),
            ["1993-08-20T00:00Z", "1993-08-21T00:00Z", "1993-08-22T00:00Z"]
        );
    }

    #[test]
    fn a_time_skipped_by_spring_forward_fires_once_right_after_the_gap() {
        // New York jumps from 02:00 to 03:00 on 8 March 2026: 02:30 does not exist.
        assert_eq!(
            slots("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 3),
            ["2026-03-08T07:00Z", "2026-03-09T06:30Z", "2026-03-10T06:30Z"]
        );
        // Lord Howe moves 30 minutes, 02:00 -> 02:30, on 4 October 2026.
        assert_eq!(
            slots("0 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", 2),
            ["2026-10-03T15:30Z", "2026-10-04T15:00Z"]
        );
        assert_eq!(
            slots("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", 2),
            ["2026-10-03T15:30Z", "2026-10-04T15:15Z"]
        );
        // Sydney, southern hemisphere: 02:00 -> 03:00 on 4 October 2026.
        assert_eq!(
            slots("0 2 * * *", "Australia/Sydney", "2026-10-03T00:00:00Z", 2),
            ["2026-10-03T16:00Z", "2026-10-04T15:00Z"]
        );
    }

    #[test]
    fn a_time_repeated_by_fall_back_fires_once() {
        // New York repeats 01:00-02:00 on 1 November 2026.
        assert_eq!(
            slots("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 3),
            ["2026-11-01T05:30Z", "2026-11-02T06:30Z", "2026-11-03T06:30Z"]
        );
        // Lord Howe repeats 01:30-02:00 on 5 April 2026.
        assert_eq!(
            slots("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00Z", 2),
            ["2026-04-04T14:45Z", "2026-04-05T15:15Z"]
        );
    }

    #[test]
    fn wildcard_and_stepped_hours_fire_every_real_hour_through_both_transitions() {
        assert_eq!(
            slots("0 * * * *", "America/New_York", "2026-11-01T04:30:00Z", 4),
            ["2026-11-01T05:00Z", "2026-11-01T06:00Z", "2026-11-01T07:00Z", "2026-11-01T08:00Z"]
        );
        assert_eq!(
            slots("0 * * * *", "America/New_York", "2026-03-08T05:30:00Z", 3),
            ["2026-03-08T06:00Z", "2026-03-08T07:00Z", "2026-03-08T08:00Z"]
        );
        assert_eq!(
            slots("*/30 * * * *", "Europe/London", "2026-10-25T00:00:00Z", 4),
            ["2026-10-25T00:30Z", "2026-10-25T01:00Z", "2026-10-25T01:30Z", "2026-10-25T02:00Z"]
        );
        // A stepped hour follows the wall clock: 00:00 GMT, then 02:00 BST one real hour later.
        assert_eq!(
            slots("0 */2 * * *", "Europe/London", "2026-03-28T22:30:00Z", 3),
            ["2026-03-29T00:00Z", "2026-03-29T01:00Z", "2026-03-29T03:00Z"]
        );
    }

    #[test]
    fn weekly_and_monthly_jobs_are_neither_lost_nor_doubled_on_short_and_long_days() {
        // London's 23-hour Sunday (29 March) and 25-hour Sunday (25 October 2026).
        assert_eq!(
            slots("30 1 * * 0", "Europe/London", "2026-03-22T12:00:00Z", 3),
            ["2026-03-29T01:00Z", "2026-04-05T00:30Z", "2026-04-12T00:30Z"]
        );
        assert_eq!(
            slots("30 1 * * 0", "Europe/London", "2026-10-18T12:00:00Z", 3),
            ["2026-10-25T00:30Z", "2026-11-01T01:30Z", "2026-11-08T01:30Z"]
        );
        // A monthly job on the first, across New York's November change.
        assert_eq!(
            slots("30 1 1 * *", "America/New_York", "2026-10-15T00:00:00Z", 2),
            ["2026-11-01T05:30Z", "2026-12-01T06:30Z"]
        );
    }

    #[test]
    fn missed_slots_are_counted_from_the_last_firing() {
        let timing = Timing::new("j", &schedule("0 * * * *", None), chrono_tz::UTC).unwrap();
        let missed = timing.missed(utc("2026-12-03T01:00:00Z"), utc("2026-12-03T04:30:00Z"));
        assert_eq!(missed, Some((utc("2026-12-03T04:00:00Z"), 3)));
        assert_eq!(timing.missed(utc("2026-12-03T04:00:00Z"), utc("2026-12-03T04:30:00Z")), None);
        let every_second =
            Timing::new("j", &schedule("* * * * * *", None), chrono_tz::UTC).unwrap();
        let week = every_second.missed(utc("2026-11-26T00:00:00Z"), utc("2026-12-03T00:00:00Z"));
        assert_eq!(
            week,
            Some((utc("2026-12-03T00:00:00Z"), MISSED_COUNT_LIMIT)),
            "counting stops, the latest is still exact"
        );
    }

    #[test]
    fn jitter_is_stable_and_inside_its_window() {
        let window = Duration::from_secs(600);
        let a = jitter_for("manga-ratings", window);
        assert_eq!(a, jitter_for("manga-ratings", window));
        assert!(a < window);
        assert_ne!(a, jitter_for("books-refresh", window), "different jobs spread out");
    }
}
