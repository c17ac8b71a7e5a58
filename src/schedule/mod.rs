//! When jobs fire: cron expressions (croner, Vixie semantics), time zones (chrono-tz's
//! compiled-in database) and jitter. Every fire time in curator comes from [`Timing::next`];
//! `scheduler` keeps one queue of them and fires due jobs.

pub mod cron;
pub mod scheduler;
pub mod zones;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use sha2::{Digest, Sha256};

use crate::spec::Schedule;

/// Parses a cron expression: 5 fields, or 6 with leading seconds, or a nickname. A pattern
/// that parses but can never fire (`0 0 30 2 *`) is an error too.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let parser = CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build();
    let cron = parser.parse(expr).map_err(|e| lower_first(&e.to_string()))?;
    // croner only finds out while searching that a date never exists; a year's search bound
    // lets the check run in a few milliseconds.
    let start = Utc::now().with_timezone(&chrono_tz::UTC);
    match cron.find_next_occurrence(&start, false) {
        Ok(_) => Ok(cron),
        Err(_) => Err("the expression never fires (no date matches it)".into()),
    }
}

/// Parses an IANA zone name.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    Tz::from_str(name).map_err(|_| "not an IANA time zone".to_string())
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
            Some(name) => parse_zone(name).map_err(|e| format!("`{name}`: {e}"))?,
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
        self.cron.find_next_occurrence(&local, false).ok().map(|t| t.with_timezone(&Utc))
    }

    /// The next `count` slots after `after`.
    pub fn next_slots(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut slots = Vec::with_capacity(count);
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
        assert!(parse_cron("0 25 * * *").is_err());
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

    #[test]
    fn jitter_is_stable_and_inside_its_window() {
        let window = Duration::from_secs(600);
        let a = jitter_for("manga-ratings", window);
        assert_eq!(a, jitter_for("manga-ratings", window));
        assert!(a < window);
        assert_ne!(a, jitter_for("books-refresh", window), "different jobs spread out");
    }
}
