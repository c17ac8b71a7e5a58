//! The scheduler: one queue of (fire time, job) for every enabled job and one timer that sleeps
//! until the earliest, instead of a task or a poll per job. A reconcile hands it the current
//! jobs with [`Scheduler::sync`]; a changed schedule takes effect at once.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::{Clock, Timing};
use crate::spec::Schedule;
use crate::store::ScheduleRow;

/// A job's place in the queue.
#[derive(Debug, Clone)]
struct Slot {
    /// The schedule the slot was computed from. A job whose schedule did not change keeps its
    /// slot: an edit to its fields must not move a firing that is due within its jitter.
    schedule: Schedule,
    /// The zone the schedule was resolved in: the job's own, or the default at the time.
    zone: chrono_tz::Tz,
    /// The cron instant this firing is for.
    slot: DateTime<Utc>,
    /// When it fires: the slot plus the job's jitter.
    fire: DateTime<Utc>,
}

#[derive(Default)]
struct State {
    queue: BTreeSet<(DateTime<Utc>, String)>,
    jobs: HashMap<String, Slot>,
}

/// A due firing handed to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub job_id: String,
    pub slot: DateTime<Utc>,
    /// When it was due: the slot plus the job's jitter.
    pub due: DateTime<Utc>,
}

pub struct Scheduler {
    state: Mutex<State>,
    wake: Notify,
    clock: Arc<dyn Clock>,
}

/// The longest the timer sleeps before it looks at the wall clock again, so a clock that jumps
/// (NTP, a suspended machine) delays a firing by at most this much.
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(60);

impl Scheduler {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Scheduler> {
        Arc::new(Scheduler { state: Mutex::default(), wake: Notify::new(), clock })
    }

    /// The scheduler's time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Brings the queue in line with `jobs`: new jobs and jobs with a changed schedule get their
    /// next slot after `now`, the others keep theirs, disabled and deleted ones leave the queue.
    pub fn sync(&self, jobs: &[ScheduleRow], default_zone: chrono_tz::Tz, now: DateTime<Utc>) {
        let mut state = self.state.lock().expect("scheduler lock");
        let mut keep = HashMap::new();
        for job in jobs.iter().filter(|j| j.enabled) {
            if let Some(existing) = state.jobs.get(&job.id)
                && existing.schedule == job.schedule
            {
                keep.insert(job.id.clone(), existing.clone());
                continue;
            }
            let timing = match Timing::new(&job.id, &job.schedule, default_zone) {
                Ok(t) => t,
                Err(e) => {
                    // Validation refuses such a schedule; a row that has one came from elsewhere.
                    tracing::error!(job.id = %job.id, error = %e, "job has an unusable schedule");
                    continue;
                }
            };
            if let Some(slot) = timing.next_slot(now) {
                let fire = timing.fire_time(slot);
                tracing::debug!(job.id = %job.id, next = %fire, "job scheduled");
                keep.insert(
                    job.id.clone(),
                    Slot { schedule: job.schedule.clone(), zone: timing.zone, slot, fire },
                );
            }
        }
        state.queue = keep.iter().map(|(id, s)| (s.fire, id.clone())).collect();
        state.jobs = keep;
        drop(state);
        self.wake.notify_one();
    }

    /// When the job fires next, if it is scheduled.
    pub fn next_fire(&self, job_id: &str) -> Option<DateTime<Utc>> {
        self.state.lock().expect("scheduler lock").jobs.get(job_id).map(|s| s.fire)
    }

    /// How many jobs are in the queue.
    pub fn len(&self) -> usize {
        self.state.lock().expect("scheduler lock").jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes every firing due at `now` off the queue and puts each job back at its next slot.
    /// Slots missed while the process slept are not fired one by one: the job fires once and
    /// moves on to its first slot after `now`.
    pub fn take_due(&self, now: DateTime<Utc>) -> Vec<Firing> {
        let mut state = self.state.lock().expect("scheduler lock");
        let mut due = Vec::new();
        while let Some((fire, id)) = state.queue.first().cloned() {
            if fire > now {
                break;
            }
            state.queue.pop_first();
            let Some(slot) = state.jobs.get_mut(&id) else { continue };
            due.push(Firing { job_id: id.clone(), slot: slot.slot, due: fire });
            let after = if slot.slot > now { slot.slot } else { now };
            // The parsed expression is not kept between firings: croner's holds a bitfield of
            // 5,000 years, about 5 KB a job, which at 100,000 jobs is half a gigabyte. Parsing
            // again at each firing costs microseconds.
            let timing = Timing::new(&id, &slot.schedule, slot.zone).ok();
            match timing.as_ref().and_then(|t| t.next_slot(after).map(|next| (t, next))) {
                Some((timing, next)) => {
                    slot.slot = next;
                    slot.fire = timing.fire_time(next);
                    let fire = slot.fire;
                    state.queue.insert((fire, id));
                }
                None => {
                    state.jobs.remove(&id);
                }
            }
        }
        due
    }

    /// Sleeps until the earliest firing (or a change to the queue), then hands every due
    /// firing to `fire`, until `stop` resolves.
    pub async fn run(
        self: Arc<Self>,
        fire: impl Fn(Firing),
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            let next = self.state.lock().expect("scheduler lock").queue.first().map(|(t, _)| *t);
            let wait = match next {
                Some(t) => (t - self.clock.now()).to_std().unwrap_or_default().min(MAX_SLEEP),
                None => MAX_SLEEP,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => continue,
                _ = &mut stop => return,
            }
            for firing in self.take_due(self.clock.now()) {
                fire(firing);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{LibraryJob, Schedule};
    use chrono::TimeZone;

    fn job(id: &str, cron: &str, enabled: bool) -> ScheduleRow {
        ScheduleRow::from(&job_row(id, cron, enabled))
    }

    fn job_row(id: &str, cron: &str, enabled: bool) -> crate::store::JobRow {
        let spec: LibraryJob = serde_json::from_value(serde_json::json!({
            "apiVersion": "curator/v1", "kind": "LibraryJob", "library": "manga",
            "schedule": {"cron": cron}, "type": "metadata_refresh", "provider": "curated",
            "scope": "series_only", "fieldGroups": ["ratings"], "enabled": enabled,
        }))
        .unwrap();
        crate::store::JobRow {
            id: id.into(),
            name: id.into(),
            library_id: "manga".into(),
            provider: "curated".into(),
            enabled,
            spec_json: serde_json::to_value(&spec).unwrap(),
            content_hash: format!("{cron}{enabled}"),
            git: None,
            spec,
            source: String::new(),
            source_file: format!("{id}.yaml"),
            source_line: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn scheduler() -> Arc<Scheduler> {
        Scheduler::new(Arc::new(crate::schedule::SystemClock))
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, h, m, 0).unwrap()
    }

    #[test]
    fn due_jobs_fire_once_and_move_to_their_next_slot() {
        let scheduler = scheduler();
        scheduler.sync(
            &[job("a", "0 * * * *", true), job("b", "30 * * * *", true)],
            chrono_tz::UTC,
            at(10, 5),
        );
        assert_eq!(scheduler.take_due(at(10, 29)), vec![]);
        let due = scheduler.take_due(at(11, 0));
        let expected = vec![
            Firing { job_id: "b".into(), slot: at(10, 30), due: at(10, 30) },
            Firing { job_id: "a".into(), slot: at(11, 0), due: at(11, 0) },
        ];
        assert_eq!(due, expected, "due firings come in fire-time order");
        assert_eq!(scheduler.next_fire("a"), Some(at(12, 0)));
        assert_eq!(scheduler.next_fire("b"), Some(at(11, 30)));
    }

    #[test]
    fn missed_slots_fire_once_not_once_each() {
        let scheduler = scheduler();
        scheduler.sync(&[job("a", "*/10 * * * *", true)], chrono_tz::UTC, at(10, 1));
        let due = scheduler.take_due(at(11, 5));
        assert_eq!(due.len(), 1, "six missed slots give one firing: {due:?}");
        assert_eq!(scheduler.next_fire("a"), Some(at(11, 10)));
    }

    #[test]
    fn disabled_jobs_are_not_queued_and_changes_take_effect_at_once() {
        let scheduler = scheduler();
        scheduler.sync(&[job("a", "0 4 * * *", false)], chrono_tz::UTC, at(1, 0));
        assert!(scheduler.is_empty());
        scheduler.sync(&[job("a", "0 4 * * *", true)], chrono_tz::UTC, at(1, 0));
        assert_eq!(scheduler.next_fire("a"), Some(at(4, 0)));
        scheduler.sync(&[job("a", "0 2 * * *", true)], chrono_tz::UTC, at(1, 0));
        assert_eq!(scheduler.next_fire("a"), Some(at(2, 0)));
        scheduler.sync(&[], chrono_tz::UTC, at(1, 0));
        assert_eq!(scheduler.next_fire("a"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_fires_each_slot_on_time_without_real_sleeping() {
        let clock = crate::schedule::TokioClock::starting_at(at(10, 58));
        let scheduler = Scheduler::new(clock.clone());
        scheduler.sync(&[job("a", "* * * * *", true)], chrono_tz::UTC, scheduler.now());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let timer = tokio::spawn(scheduler.clone().run(
            move |f: Firing| tx.send((f.slot, clock.now())).unwrap(),
            tokio::time::sleep(std::time::Duration::from_secs(181)),
        ));
        timer.await.unwrap();
        let mut fired = Vec::new();
        while let Ok(f) = rx.try_recv() {
            fired.push(f);
        }
        let slots: Vec<DateTime<Utc>> = fired.iter().map(|(slot, _)| *slot).collect();
        assert_eq!(slots, [at(10, 59), at(11, 0), at(11, 1)], "one firing per minute");
        for (slot, when) in fired {
            assert!(
                when >= slot && when - slot < chrono::Duration::milliseconds(5),
                "late: {slot} at {when}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_schedule_takes_effect_while_the_timer_sleeps() {
        let clock = crate::schedule::TokioClock::starting_at(at(10, 0));
        let scheduler = Scheduler::new(clock.clone());
        scheduler.sync(&[job("a", "0 12 * * *", true)], chrono_tz::UTC, scheduler.now());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let timer = tokio::spawn(scheduler.clone().run(
            move |f: Firing| tx.send(f.slot).unwrap(),
            tokio::time::sleep(std::time::Duration::from_secs(3600)),
        ));
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        scheduler.sync(&[job("a", "30 10 * * *", true)], chrono_tz::UTC, scheduler.now());
        timer.await.unwrap();
        assert_eq!(rx.try_recv().ok(), Some(at(10, 30)), "the new 10:30 slot fired");
        assert!(rx.try_recv().is_err(), "and nothing else within the hour");
    }

    #[test]
    fn an_edit_outside_the_schedule_keeps_the_slot_and_a_schedule_edit_moves_it() {
        let scheduler = scheduler();
        let mut a = job("a", "0 4 * * *", true);
        a.schedule.jitter = Some("10m".into());
        scheduler.sync(std::slice::from_ref(&a), chrono_tz::UTC, at(3, 0));
        let due = scheduler.next_fire("a").unwrap();
        assert!(due >= at(4, 0) && due < at(4, 10), "{due}");

        // Between the slot and its jittered firing, an edit to the job's fields arrives.
        let mut edited = a.clone();
        edited.content_hash = "edited".into();
        scheduler.sync(&[edited.clone()], chrono_tz::UTC, at(4, 0));
        assert_eq!(scheduler.next_fire("a"), Some(due), "today's firing is not skipped");

        edited.schedule.cron = "0 5 * * *".into();
        scheduler.sync(&[edited], chrono_tz::UTC, at(4, 0));
        let moved = scheduler.next_fire("a").unwrap();
        assert!(moved >= at(5, 0) && moved < at(5, 10), "recomputed: {moved}");
    }

    #[test]
    fn a_schedule_written_with_a_zone_is_unaffected_by_the_default() {
        let mut j = job("a", "0 4 * * *", true);
        j.schedule = Schedule { timezone: Some("Asia/Tokyo".into()), ..j.schedule.clone() };
        let scheduler = scheduler();
        scheduler.sync(&[j], chrono_tz::Europe::Paris, at(1, 0));
        // 04:00 in Tokyo is 19:00 UTC the day before; from 01:00 UTC the next is 19:00 UTC.
        assert_eq!(scheduler.next_fire("a"), Some(at(19, 0)));
    }
}
