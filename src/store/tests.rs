//! The store's behaviour, one suite for both backends: every case below runs once on a fresh
//! SQLite file (`store::tests::sqlite::…`) and once on a fresh PostgreSQL database
//! (`store::tests::postgres::…`). The PostgreSQL half runs when `CURATOR_TEST_POSTGRES` names
//! a server at build time; otherwise `cargo test` lists it as ignored, saying how to run it.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::testdb::TestDatabase;
use super::*;

/// Declares each case once and runs it on both backends. Inside a case, `$db` is the
/// [`TestDatabase`] and `$store` a [`Store`] opened on it.
macro_rules! store_tests {
    ($(async fn $name:ident($db:ident, $store:ident) $body:block)*) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $db = TestDatabase::sqlite();
                    let $store = Store::open(&$db.url).await.unwrap();
                    $body
                }
            )*
        }

        mod postgres {
            use super::*;
            $(
                #[cfg_attr(
                    not(postgres_tests),
                    ignore = "needs PostgreSQL: run with \
                              CURATOR_TEST_POSTGRES=postgres://postgres@127.0.0.1/test"
                )]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $db = TestDatabase::postgres().await;
                    let $store = Store::open(&$db.url).await.unwrap();
                    $body
                }
            )*
        }
    };
}

fn job(id: &str, file: &str) -> JobWrite {
    JobWrite {
        id: id.into(),
        name: id.into(),
        library_id: "manga".into(),
        provider: "curated".into(),
        enabled: true,
        spec_json: json!({
            "apiVersion": "curator/v1", "kind": "LibraryJob", "library": "manga",
            "schedule": {"cron": "0 4 * * *", "timezone": "Europe/Paris"},
            "type": "metadata_refresh", "provider": "curated", "scope": "series_only",
            "fieldGroups": ["ratings"],
        }),
        source: "library: manga\n".into(),
        source_file: file.into(),
        source_line: 1,
        content_hash: format!("hash-{id}"),
        git: None,
    }
}

fn catalog() -> CatalogFile {
    serde_json::from_value(json!({"libraries": [{
        "id": "manga", "name": "Manga",
        "series": [
            {"id": "a", "metadata": {"title": "A", "rating": 70}, "locks": ["summary"],
             "externalIds": {"curated": {"id": "a-1", "lastSyncedAt": "2026-11-30T04:00:00Z"}},
             "books": [{"id": "a-v1", "metadata": {"title": "Volume 1", "number": 1}}]},
            {"id": "b", "metadata": {"title": "B"}, "externalIds": {"curated": {"id": "b-1"}}},
            {"id": "c", "metadata": {"title": "C"}}
        ]
    }]}))
    .unwrap()
}

fn result(entry: &str, outcome: &str, changes: Vec<Change>) -> EntryResult {
    EntryResult {
        kind: EntityKind::Series,
        entry: entry.into(),
        title: None,
        outcome: outcome.into(),
        reason: None,
        changes,
    }
}

fn slot(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 4, minute, 0).unwrap()
}

store_tests! {
    async fn a_reopened_database_keeps_its_rows_and_schema(db, store) {
        store.create_run("a", "manual", "queued", None, None).await.unwrap();
        store.close().await;
        let again = Store::open(&db.url).await.unwrap();
        assert_eq!(again.runs(None, 10).await.unwrap().len(), 1);
        again.close().await;
    }

    async fn the_catalog_round_trips_and_a_seed_overwrites_nothing(db, store) {
        let counts = store.import_catalog(&catalog(), ImportMode::Upsert).await.unwrap();
        assert_eq!(counts, ImportCounts { libraries: 1, series: 3, books: 1 });
        assert_eq!(store.export_catalog(None).await.unwrap(), catalog());

        let mut changed = catalog();
        changed.libraries[0].series[0].metadata.insert("rating".into(), json!(10));
        store.import_catalog(&changed, ImportMode::Seed).await.unwrap();
        assert_eq!(store.export_catalog(Some("manga")).await.unwrap(), catalog(), "seed adds only");
        store.import_catalog(&changed, ImportMode::Upsert).await.unwrap();
        assert_eq!(store.export_catalog(None).await.unwrap(), changed, "upsert overwrites");
        assert!(matches!(
            store.export_catalog(Some("comics")).await,
            Err(StoreError::NotFound { what: "library", .. })
        ));
        assert_eq!(store.library_ids().await.unwrap(), HashSet::from(["manga".to_string()]));
    }

    async fn an_entry_write_merges_its_fields_and_records_its_result(db, store) {
        store.import_catalog(&catalog(), ImportMode::Upsert).await.unwrap();
        let entries = store.entries("manga", EntityKind::Series, "curated").await.unwrap();
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(entries[0].external_id.as_deref(), Some("a-1"));
        assert_eq!(entries[0].locks, ["summary"]);
        assert_eq!(entries[2].external_id, None);
        let books = store.entries("manga", EntityKind::Book, "curated").await.unwrap();
        assert_eq!(books[0].key, "a/a-v1");

        let run = store.start_run("j", "manual", None).await.unwrap();
        let change = Change { field: "rating".into(), before: json!(70), after: json!(85) };
        let synced = Utc.with_ymd_and_hms(2026, 12, 3, 5, 0, 0).unwrap();
        let written = result("a", "updated", vec![change]);
        store
            .write_entry(run.id, 0, &entries[0], "curated", None, Some(synced), &written)
            .await
            .unwrap();
        store.record_entry(run.id, 1, &result("c", "skipped", vec![])).await.unwrap();

        let a = &store.export_catalog(None).await.unwrap().libraries[0].series[0];
        assert_eq!(a.metadata["rating"], 85);
        assert_eq!(a.metadata["title"], "A", "fields the run did not change stay");
        assert_eq!(a.external_ids["curated"].last_synced_at, Some(synced));
        let recorded = store.run_entries(run.id).await.unwrap();
        assert_eq!(recorded.len(), 2);
        assert_eq!(recorded[0].changes[0].after, 85);
        assert_eq!(recorded[1].outcome, "skipped");
    }

    async fn a_second_reconcile_waits_for_the_first_and_sees_what_it_wrote(db, store) {
        let first = store.begin_reconcile(true).await.unwrap();
        let second = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = store.begin_reconcile(true).await.unwrap();
                tx.index().await.unwrap().job_count
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the second pass waits for the first one's lock");

        let a = job("a", "a.yaml");
        first.apply(&JobChanges { upserts: vec![&a], ..JobChanges::default() }).await.unwrap();
        assert_eq!(second.await.unwrap(), 1, "and plans against what the first wrote");
    }

    async fn a_pass_writes_jobs_files_and_provenance_that_the_next_pass_reads(db, store) {
        let (a, b) = (job("a", "a.yaml"), job("b", "b.yaml"));
        let git = Some(GitState { commit: Some("c0ffee".into()), dirty: false });
        let record =
            |path: &str| FileRecord { path: path.into(), stamp: 7, stable: true, git: git.clone() };
        let changes = JobChanges {
            upserts: vec![&a, &b],
            files: vec![record("a.yaml"), record("b.yaml")],
            index_key: Some(("key-1".into(), Some("head-1".into()))),
            summary: json!({"applied": true}),
            ..JobChanges::default()
        };
        store.begin_reconcile(true).await.unwrap().apply(&changes).await.unwrap();

        let mut tx = store.begin_reconcile(false).await.unwrap();
        let index = tx.index().await.unwrap();
        assert_eq!(index.job_count, 2);
        assert_eq!(index.files["a.yaml"], record("a.yaml"));
        assert_eq!(index.cache_key.as_deref(), Some("key-1"));
        assert_eq!(index.provenance_head.as_deref(), Some("head-1"));
        let scope = RowScope { files: vec!["b.yaml".into()], ..RowScope::default() };
        let rows = tx.job_rows(&scope).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["b"]);
        drop(tx);

        let git_by_file = [("a.yaml".to_string(), git.clone())];
        let changes = JobChanges {
            deletes: vec!["b".into()],
            git_by_file: &git_by_file,
            forget_files: vec!["b.yaml".into()],
            summary: json!({"applied": true, "pass": 2}),
            ..JobChanges::default()
        };
        store.create_run("b", "manual", "queued", None, None).await.unwrap();
        store.begin_reconcile(true).await.unwrap().apply(&changes).await.unwrap();

        let jobs = store.jobs().await.unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].git, git, "the file's Git state reached its job");
        assert_eq!(jobs[0].spec.schedule.timezone.as_deref(), Some("Europe/Paris"));
        let schedules = store.schedules().await.unwrap();
        assert_eq!(schedules[0].schedule.cron, "0 4 * * *");
        assert!(matches!(store.job("b").await, Err(StoreError::NotFound { what: "job", .. })));
        assert!(store.runs(Some("b"), 10).await.unwrap()[0].job_deleted_at.is_some());
        let last = store.last_reconcile().await.unwrap().unwrap();
        assert_eq!(last.summary["pass"], 2);

        // Its file comes back: so does its history.
        let back = JobChanges { upserts: vec![&b], ..JobChanges::default() };
        store.begin_reconcile(true).await.unwrap().apply(&back).await.unwrap();
        assert_eq!(store.runs(Some("b"), 10).await.unwrap()[0].job_deleted_at, None);
    }

    async fn rows_written_outside_a_pass_are_listed_until_the_next_pass_commits(db, store) {
        let (a, b) = (job("a", "a.yaml"), job("b", "b.yaml"));
        let changes = JobChanges { upserts: vec![&a, &b], ..JobChanges::default() };
        store.begin_reconcile(true).await.unwrap().apply(&changes).await.unwrap();
        let touched = |store: Store| async move {
            store.begin_reconcile(false).await.unwrap().index().await.unwrap().touched
        };
        assert!(touched(store.clone()).await.is_empty(), "the reconciler's own writes");

        // `(1 = 0)` is false in either dialect.
        db.execute("UPDATE jobs SET enabled = (1 = 0), source_file = 'c.yaml' WHERE id = 'a'")
            .await;
        db.execute("DELETE FROM jobs WHERE id = 'b'").await;
        let mut listed = touched(store.clone()).await;
        listed.sort();
        let expected = [("a", "a.yaml"), ("a", "c.yaml"), ("b", "b.yaml")]
            .map(|(id, file)| (id.to_string(), file.to_string()));
        assert_eq!(listed, expected);

        store.begin_reconcile(true).await.unwrap().apply(&JobChanges::default()).await.unwrap();
        assert!(touched(store).await.is_empty(), "a committed pass has looked at them");
    }

    async fn a_slot_is_claimed_once_with_its_run_however_many_processes_try(db, store) {
        let claims = (0..6).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_slot("j", slot(0), "schedule", None).await })
        });
        let mut won = Vec::new();
        for claim in claims {
            won.extend(claim.await.unwrap().unwrap());
        }
        assert_eq!(won.len(), 1, "one claim lands: {won:?}");
        assert_eq!(won[0].status, "running");
        assert_eq!(won[0].slot, Some(slot(0)));
        assert_eq!(store.runs(Some("j"), 10).await.unwrap().len(), 1, "one run for the slot");
        assert_eq!(store.last_slots().await.unwrap()["j"], slot(0));
    }

    async fn a_slot_passed_over_is_claimed_and_recorded_skipped(db, store) {
        let reason = "missed 3 slot(s); catchUp is false";
        let run = store.claim_slot("j", slot(5), "catch-up", Some(reason)).await.unwrap().unwrap();
        assert_eq!((run.status.as_str(), run.error.as_deref()), ("skipped", Some(reason)));
        assert!(run.finished_at.is_some());
        assert!(store.claim_slot("j", slot(5), "schedule", None).await.unwrap().is_none());
        assert_eq!(store.last_slots().await.unwrap()["j"], slot(5));
    }

    async fn a_job_never_runs_twice_at_once_across_processes(db, store) {
        let store = store.with_run_lease(Duration::from_millis(300));
        let first = store.start_run("j", "manual", None).await.unwrap();
        assert_eq!(first.status, "running");
        let second = store.start_run("j", "manual", None).await.unwrap();
        assert_eq!(
            (second.status.as_str(), second.error.as_deref()),
            ("skipped", Some(OVERLAP_REASON))
        );
        let fired = store.claim_slot("j", slot(1), "schedule", None).await.unwrap().unwrap();
        assert_eq!(fired.status, "skipped", "a firing during the run is recorded as skipped");
        store.create_run("j", "manual", "queued", None, None).await.unwrap();
        let queued = store.claim_queued_run().await.unwrap().unwrap();
        assert_eq!(queued.status, "skipped", "and so is a queued run taken during it");

        // A run whose holder stopped renewing no longer counts as going.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(store.start_run("j", "manual", None).await.unwrap().status, "running");
        assert_eq!(store.start_run("other", "manual", None).await.unwrap().status, "running");
    }

    async fn queued_runs_are_taken_once_each_by_concurrent_workers(db, store) {
        let mut queued = Vec::new();
        for i in 0..24 {
            queued.push(
                store
                    .create_run(&format!("job-{i}"), "manual", "queued", None, None)
                    .await
                    .unwrap(),
            );
        }
        let workers = (0..4).map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut taken = Vec::new();
                while let Some(run) = store.claim_queued_run().await.unwrap() {
                    assert_eq!(run.status, "running");
                    assert!(run.started_at.is_some());
                    taken.push(run.id);
                }
                taken
            })
        });
        let mut taken = Vec::new();
        for worker in workers {
            taken.extend(worker.await.unwrap());
        }
        taken.sort();
        assert_eq!(taken, queued, "every queued run exactly once");
    }

    async fn a_lease_holds_while_renewed_and_a_lapsed_run_is_interrupted_and_continued(db, store) {
        store.import_catalog(&catalog(), ImportMode::Upsert).await.unwrap();
        let store = store.with_run_lease(Duration::from_millis(500));
        let run = store.claim_slot("j", slot(2), "schedule", None).await.unwrap().unwrap();
        store.record_entry(run.id, 0, &result("a", "unchanged", vec![])).await.unwrap();
        store.record_entry(run.id, 1, &result("b", "failed", vec![])).await.unwrap();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            assert!(store.renew_lease(run.id).await.unwrap(), "renewed while held");
        }
        assert!(store.reap_expired_runs().await.unwrap().is_empty(), "a renewed run is kept");

        tokio::time::sleep(Duration::from_millis(700)).await;
        let reaped = store.reap_expired_runs().await.unwrap();
        assert_eq!(reaped.len(), 1);
        assert_eq!((reaped[0].run_id, reaped[0].job_id.as_str()), (run.id, "j"));
        assert_eq!(reaped[0].owner.as_deref(), Some(process_owner().as_str()));
        let interrupted = store.run(run.id).await.unwrap();
        assert_eq!(interrupted.status, "interrupted");
        assert_eq!(
            interrupted.totals,
            serde_json::json!({
                "updated": 0, "unchanged": 1, "skipped": 0, "failed": 1, "fieldsWritten": 0
            }),
            "counted from the entries it recorded"
        );
        assert_eq!(
            interrupted.error.as_deref(),
            Some("the process running it stopped renewing its lease")
        );
        assert!(store.reap_expired_runs().await.unwrap().is_empty(), "swept once");

        // The old holder can neither renew nor write: another process may be doing its entries.
        assert!(!store.renew_lease(run.id).await.unwrap());
        let entry = &store.entries("manga", EntityKind::Series, "curated").await.unwrap()[2];
        let unchanged = result("c", "unchanged", vec![]);
        let late = store.write_entry(run.id, 2, entry, "curated", None, None, &unchanged).await;
        assert!(matches!(late, Err(StoreError::RunLost { id }) if id == run.id), "{late:?}");
        assert_eq!(store.run_entries(run.id).await.unwrap().len(), 2, "nothing written late");

        // The continuation is queued for the same slot and knows what is done.
        let next = store.claim_queued_run().await.unwrap().unwrap();
        assert_eq!(Some(next.id), reaped[0].continuation);
        assert_eq!(
            (next.trigger.as_str(), next.slot, next.resumes, next.attempt),
            ("schedule", Some(slot(2)), Some(run.id), 2)
        );
        let done = store.done_entries(next.id).await.unwrap();
        let expected =
            HashSet::from([(EntityKind::Series, "a".into()), (EntityKind::Series, "b".into())]);
        assert_eq!(done, expected);
        store.write_entry(next.id, 0, entry, "curated", None, None, &unchanged).await.unwrap();

        // A continuation of the continuation knows both attempts' entries.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let again = store.reap_expired_runs().await.unwrap();
        let third = again[0].continuation.unwrap();
        assert_eq!(store.done_entries(third).await.unwrap().len(), 3);
        assert_eq!(store.run(third).await.unwrap().attempt, 3);
        assert!(store.claim_queued_run().await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(700)).await;
        let last = store.reap_expired_runs().await.unwrap();
        assert_eq!(last[0].continuation, None, "the third attempt is the last");
    }

    async fn manual_runs_are_interrupted_without_a_continuation(db, store) {
        let store = store.with_run_lease(Duration::from_millis(100));
        let manual = store.start_run("m", "manual", None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let reaped = store.reap_expired_runs().await.unwrap();
        assert_eq!(
            reaped.iter().map(|r| (r.run_id, r.continuation)).collect::<Vec<_>>(),
            [(manual.id, None)]
        );
        assert!(store.claim_queued_run().await.unwrap().is_none());
    }

    async fn shutdown_interrupts_this_process_runs_and_hands_scheduled_ones_on(db, store) {
        let scheduled = store.claim_slot("s", slot(3), "schedule", None).await.unwrap().unwrap();
        let manual = store.start_run("m", "manual", None).await.unwrap();
        let mut reaped = store.interrupt_own_runs().await.unwrap();
        reaped.sort_by_key(|r| r.run_id);
        assert_eq!(reaped.len(), 2);
        assert_eq!(reaped[0].run_id, scheduled.id);
        assert!(reaped[0].continuation.is_some());
        assert_eq!((reaped[1].run_id, reaped[1].continuation), (manual.id, None));
        let run = store.run(manual.id).await.unwrap();
        assert_eq!(run.error.as_deref(), Some("curator stopped before the run ended"));
    }

    async fn only_runs_of_dead_processes_become_interrupted(db, store) {
        let live = store.create_run("a", "manual", "running", None, None).await.unwrap();
        let dead = store.create_run("b", "manual", "running", None, None).await.unwrap();
        let elsewhere = store.create_run("c", "manual", "running", None, None).await.unwrap();
        db.execute(&format!(
            "UPDATE runs SET owner = '{}:4294967295' WHERE id = {dead}",
            host_name()
        ))
        .await;
        db.execute(&format!("UPDATE runs SET owner = 'another-host:1' WHERE id = {elsewhere}"))
            .await;

        let reaped = store.interrupt_orphaned_runs().await.unwrap();
        assert_eq!(reaped.iter().map(|r| r.run_id).collect::<Vec<_>>(), [dead]);
        assert_eq!(store.run(live).await.unwrap().status, "running", "this process is alive");
        assert_eq!(store.run(elsewhere).await.unwrap().status, "running", "its lease tells");
        let dead = store.run(dead).await.unwrap();
        assert_eq!(dead.status, "interrupted");
        assert_eq!(dead.error.as_deref(), Some("the process running it stopped"));
    }

    async fn a_cancel_ends_a_queued_run_asks_a_running_one_and_leaves_an_ended_one(db, store) {
        let queued = store.create_run("q", "manual", "queued", None, None).await.unwrap();
        assert_eq!(store.request_cancel(queued).await.unwrap(), CancelOutcome::Cancelled);
        assert_eq!(store.run(queued).await.unwrap().status, "cancelled");
        assert!(store.claim_queued_run().await.unwrap().is_none(), "nothing left to take");

        let running = store.claim_slot("r", slot(4), "schedule", None).await.unwrap().unwrap();
        assert!(!store.cancel_requested(running.id).await.unwrap());
        assert_eq!(store.request_cancel(running.id).await.unwrap(), CancelOutcome::Requested);
        assert!(store.cancel_requested(running.id).await.unwrap());
        // A run asked to stop is not handed on when its holder goes away.
        let reaped = store.interrupt_own_runs().await.unwrap();
        assert_eq!(
            reaped.iter().map(|r| (r.run_id, r.continuation)).collect::<Vec<_>>(),
            [(running.id, None)]
        );
        assert_eq!(
            store.request_cancel(running.id).await.unwrap(),
            CancelOutcome::AlreadyEnded("interrupted".into())
        );
        assert!(matches!(store.request_cancel(999).await, Err(StoreError::NotFound { .. })));
    }

    async fn a_match_attaches_its_id_with_the_entry_and_manifests_are_kept(db, store) {
        store.import_catalog(&catalog(), ImportMode::Upsert).await.unwrap();
        let c = store.entries("manga", EntityKind::Series, "curated").await.unwrap().remove(2);
        assert_eq!((c.key.as_str(), c.external_id.as_deref()), ("c", None));
        let run = store.start_run("j", "manual", None).await.unwrap();
        let unchanged = result("c", "unchanged", vec![]);
        store.write_entry(run.id, 0, &c, "curated", Some("c-9"), None, &unchanged).await.unwrap();
        let again = store.entries("manga", EntityKind::Series, "curated").await.unwrap();
        assert_eq!(again[2].external_id.as_deref(), Some("c-9"));

        let capabilities = crate::provider::Capabilities { series: true, book: false };
        store.save_manifest("echo", capabilities, &json!({"name": "echo"})).await.unwrap();
        store.save_manifest("echo", capabilities, &json!({"name": "echo", "v": 2})).await.unwrap();
        let manifests = store.manifests().await.unwrap();
        assert_eq!(manifests.len(), 1);
        assert_eq!(manifests["echo"], capabilities);
        let mut tx = store.begin_reconcile(false).await.unwrap();
        assert_eq!(tx.manifests().await.unwrap(), manifests);
    }

    async fn old_claimed_slots_are_forgotten_beyond_the_kept_count_but_never_the_latest(
        db,
        store
    ) {
        let day = chrono::TimeDelta::days(1);
        // Slots are whole seconds, as cron makes them.
        let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
        let old: Vec<DateTime<Utc>> = (2..7).map(|d| now - day * d).collect();
        for at in &old {
            store.claim_slot("j", *at, "schedule", Some("old")).await.unwrap();
        }
        let recent = now - chrono::TimeDelta::hours(1);
        store.claim_slot("j", recent, "schedule", Some("recent")).await.unwrap();
        store.claim_slot("other", old[4], "schedule", Some("old")).await.unwrap();

        store.prune_runs("j", 2, chrono::Duration::days(90)).await.unwrap();
        // A forgotten slot can be claimed again; a remembered one cannot.
        for at in [recent].iter().chain(&old) {
            let again = store.claim_slot("j", *at, "schedule", Some("again")).await.unwrap();
            let kept = *at == recent || *at == old[0];
            assert_eq!(again.is_none(), kept, "slot {at}: kept {kept}");
        }
        assert_eq!(store.last_slots().await.unwrap()["j"], recent, "the latest stays");
        assert!(store.claim_slot("other", old[4], "schedule", None).await.unwrap().is_none());
    }

    async fn a_finished_run_keeps_its_ending_and_history_is_pruned(db, store) {
        let mut ids = Vec::new();
        for _ in 0..4 {
            let run = store.start_run("j", "manual", None).await.unwrap();
            store.finish_run(run.id, "succeeded", &json!({"updated": 1}), None).await.unwrap();
            ids.push(run.id);
        }
        store.finish_run(ids[3], "failed", &json!({}), Some("late")).await.unwrap();
        let last = store.run(ids[3]).await.unwrap();
        assert_eq!((last.status.as_str(), last.totals["updated"].as_i64()), ("succeeded", Some(1)));
        store.create_run("j", "schedule", "skipped", None, Some(OVERLAP_REASON)).await.unwrap();
        assert_eq!(store.last_runs().await.unwrap()["j"].id, ids[3], "skipped runs are not last");

        assert_eq!(store.prune_runs("j", 2, chrono::Duration::days(90)).await.unwrap(), 3);
        let kept: Vec<i64> =
            store.runs(Some("j"), 10).await.unwrap().iter().map(|r| r.id).collect();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1], ids[3]);
        assert!(store.runs(None, 1).await.unwrap().len() == 1);
        assert!(matches!(store.run(ids[0]).await, Err(StoreError::NotFound { what: "run", .. })));
    }
}

#[test]
fn a_url_names_its_backend_or_is_refused_naming_both() {
    assert_eq!(Backend::of("sqlite://data/c.db").unwrap(), Backend::Sqlite);
    assert_eq!(Backend::of("sqlite::memory:").unwrap(), Backend::Sqlite);
    assert_eq!(Backend::of("postgres://u@db/c").unwrap(), Backend::Postgres);
    assert_eq!(Backend::of("postgresql://u@db/c").unwrap(), Backend::Postgres);
    let error = Backend::of("mysql://u:secret@db/c").unwrap_err().to_string();
    assert!(error.contains("`mysql://u:<redacted>@db/c`"), "{error}");
    assert!(error.contains("`sqlite:`") && error.contains("`postgres:`"), "{error}");
}
