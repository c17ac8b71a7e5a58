use super::*;
use crate::config::{ProviderConfig, ProviderKind};

/// Checks `text` as `jobs.d/job.yaml` without a config.
fn check(text: &str) -> FileReport {
    check_bytes(text.as_bytes())
}

fn check_bytes(bytes: &[u8]) -> FileReport {
    let ctx = Context { config: None, libraries: None, manifests: None };
    check_source(Path::new("jobs.d/job.yaml"), "job.yaml", bytes, &ctx)
}

/// Each diagnostic as its first line of text output.
fn lines(report: &FileReport) -> Vec<String> {
    report.diagnostics.iter().map(|d| d.to_string()).collect()
}

/// The diagnostics of a single-problem file, and that it yields no job.
fn only(text: &str) -> String {
    let report = check(text);
    assert_eq!(report.diagnostics.len(), 1, "{:#?}", lines(&report));
    if report.has_errors() {
        assert!(report.jobs.is_empty(), "a file with an error yields no job");
    }
    report.diagnostics[0].to_string()
}

const GOOD: &str = "apiVersion: curator/v1
kind: LibraryJob
library: manga
schedule:
  cron: \"0 4 * * *\"
type: metadata_refresh
provider: plugin:curated
scope: series_only
fieldGroups: [ratings]
";

fn with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "GOOD has no `{from}`");
    GOOD.replacen(from, to, 1)
}

#[test]
fn a_good_job_is_valid_and_takes_its_id_from_the_file() {
    let report = check(GOOD);
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    assert_eq!(report.jobs[0].id, "job");
    assert!(report.jobs[0].spec.enabled, "enabled defaults to true");
    assert_eq!(report.jobs[0].spec.max_concurrency, 4, "maxConcurrency defaults to 4");
    let stored = hex::encode(Sha256::digest(report.jobs[0].normalized.to_string()));
    assert_eq!(report.jobs[0].content_hash, stored, "the hash the store compares is unchanged");
}

// YAML as YAML 1.2, refusing ambiguity.

#[test]
fn yaml_1_1_booleans_are_strings_so_a_job_called_no_stays_no() {
    let report = check(&with("library: manga", "id: no\nname: off\nlibrary: on"));
    assert!(report.diagnostics.is_empty(), "{:?}", lines(&report));
    assert_eq!(report.jobs[0].id, "no");
    assert_eq!(report.jobs[0].spec.name.as_deref(), Some("off"));
    assert_eq!(report.jobs[0].spec.library, "on");
    let words = "`identifiers`, `descriptive`, `status`, `counts`, `ratings`, `cover`, `tags`, \
        `genres`, `age_rating`, `classification`, `publisher`, `external_refs`, `summary`, \
        `alternate_titles`";
    assert_eq!(
        only(&with("[ratings]", "[on]")),
        format!(
            "jobs.d/job.yaml:9:15: error: `fieldGroups[0]`: `on` is not a series field group: \
             write one of {words}"
        ),
        "a group named `on` is the word `on`, not `true`"
    );
}

#[test]
fn a_boolean_written_yes_says_how_yaml_1_2_reads_it() {
    assert_eq!(
        only(&with("library: manga", "library: manga\nenabled: yes")),
        "jobs.d/job.yaml:4:10: error: `enabled`: expected `true` or `false`, found the string \
         `yes`; YAML 1.2 reads `yes` as a string: write `true`"
    );
}

#[test]
fn a_number_with_a_leading_zero_is_refused_where_a_number_is_due() {
    assert_eq!(
        only(&with(
            "fieldGroups: [ratings]",
            "fieldGroups: [ratings]\nskipRecentlySyncedWithinS: 0600"
        )),
        "jobs.d/job.yaml:10:28: error: `skipRecentlySyncedWithinS`: expected a whole number, \
         found the string `0600`; a leading zero makes `0600` octal in YAML 1.1 and decimal in \
         1.2, so curator reads neither: write it without the zero"
    );
    let report = check(&with("library: manga", "library: \"007\"\nid: 0042"));
    assert_eq!(report.jobs[0].id, "0042", "where text is due, `0042` is the text written");
}

#[test]
fn a_duplicate_key_is_an_error_at_the_second_and_the_rest_is_still_checked() {
    let report = check(&with("library: manga", "library: manga\nlibrary: comics\nlibary: x"));
    assert_eq!(
        lines(&report),
        [
            "jobs.d/job.yaml:4:1: error: duplicate key `library`: it is first set at line 3, column \
         1; a key may appear once in a mapping",
            "jobs.d/job.yaml:5:1: error: unknown key `libary`; did you mean `library`?",
        ]
    );
    assert_eq!(report.diagnostics[0].code, "duplicate-key");
    assert!(report.jobs.is_empty());
}

#[test]
fn anchors_and_aliases_are_allowed() {
    let text = with(
        "scope: series_only\nfieldGroups: [ratings]",
        "scope: series_and_books\n\
         fieldGroups: &shared [summary, publisher]\nbookFieldGroups: *shared",
    );
    let report = check(&text);
    assert!(report.diagnostics.is_empty(), "{:?}", lines(&report));
    assert_eq!(report.jobs[0].spec.book_field_groups.len(), 2);
}

#[test]
fn an_alias_bomb_is_refused_quickly_at_the_alias() {
    let mut text = with("library: manga", "library: manga\nx0: &a0 [x, x, x, x, x, x, x, x]");
    for level in 1..10 {
        let items = vec![format!("*a{}", level - 1); 8].join(", ");
        text.push_str(&format!("x{level}: &a{level} [{items}]\n"));
    }
    let started = std::time::Instant::now();
    let line = only(&text);
    assert!(started.elapsed().as_millis() < 500, "took {:?}", started.elapsed());
    assert_eq!(
        line,
        "jobs.d/job.yaml:14:48: error: anchors and aliases copy more than 50000 nodes: refusing \
         what looks like an alias bomb"
    );
}

#[test]
fn a_whole_number_written_as_a_float_is_refused_at_its_key() {
    assert_eq!(
        only(&format!("{GOOD}maxConcurrency: 1.0\n")),
        "jobs.d/job.yaml:10:17: error: `maxConcurrency`: `1.0` is not a whole number this field \
         can hold: write digits only, with no `.` or exponent, within its range"
    );
    let huge = only(&format!("{GOOD}skipRecentlySyncedWithinS: 100000000000000000000000\n"));
    assert!(
        huge.starts_with("jobs.d/job.yaml:10:28: error: `skipRecentlySyncedWithinS`: "),
        "{huge}"
    );
}

#[test]
fn a_file_over_1_mib_is_refused() {
    let mut text = GOOD.to_string();
    text.push_str(&"# padding\n".repeat(yaml::MAX_FILE_BYTES / 10));
    assert_eq!(
        only(&text),
        format!(
            "jobs.d/job.yaml:1:1: error: the file is {} bytes, over the limit of 1048576 bytes \
             (1 MiB): split it",
            text.len()
        )
    );
}

#[test]
fn tabs_in_indentation_are_refused_at_the_first_tab() {
    assert_eq!(
        only(&with("  cron:", "\tcron:")),
        "jobs.d/job.yaml:5:1: error: a tab in indentation: YAML indents with spaces, never tabs"
    );
}

#[test]
fn a_byte_order_mark_is_refused() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(GOOD.as_bytes());
    let report = check_bytes(&bytes);
    assert_eq!(
        lines(&report),
        [
            "jobs.d/job.yaml:1:1: error: the file starts with a byte-order mark (U+FEFF): save it as \
         UTF-8 without one"
        ]
    );
}

#[test]
fn invalid_utf8_is_refused_at_the_first_bad_byte() {
    let text = with("library: manga", "library: manga\nname: Caf\u{e9}");
    let bytes = text.replace('\u{e9}', "\u{1}").into_bytes();
    let bytes: Vec<u8> = bytes.into_iter().map(|b| if b == 1 { 0xE9 } else { b }).collect();
    assert_eq!(
        lines(&check_bytes(&bytes)),
        [
            "jobs.d/job.yaml:4:10: error: the file is not valid UTF-8 (byte `0xe9`): save it as UTF-8"
        ]
    );
}

#[test]
fn several_documents_are_several_jobs() {
    let first = with("library: manga", "id: manga-ratings\nlibrary: manga");
    let second = with("library: manga", "id: comics-ratings\nlibrary: comics");
    let report = check(&format!("{first}---\n{second}"));
    assert!(report.diagnostics.is_empty(), "{:?}", lines(&report));
    let ids: Vec<&str> = report.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["manga-ratings", "comics-ratings"]);
    assert_eq!((report.jobs[0].line, report.jobs[1].line), (1, 12));
    assert!(
        report.jobs[1].source.starts_with("apiVersion: curator/v1\nkind: LibraryJob\nid: comics")
    );
}

#[test]
fn several_documents_need_ids_each() {
    let report = check(&format!("{GOOD}---\n{GOOD}"));
    assert_eq!(
        lines(&report),
        [
            "jobs.d/job.yaml:1:1: error: this file holds 2 documents, so each must set `id` (only a \
         file with one job may take its ID from the file's path)",
            "jobs.d/job.yaml:11:1: error: this file holds 2 documents, so each must set `id` (only a \
         file with one job may take its ID from the file's path)",
        ]
    );
}

#[test]
fn an_empty_file_or_one_of_comments_is_a_warning_not_an_error() {
    for text in ["", "# a job will go here\n\n", "---\n"] {
        let report = check(text);
        assert_eq!(
            lines(&report),
            ["jobs.d/job.yaml:1:1: warning: the file holds no job (it is empty or only comments)"]
        );
        assert!(!report.has_errors());
    }
    let report = check(&format!("{GOOD}---\n# nothing yet\n"));
    assert_eq!(
        lines(&report),
        ["jobs.d/job.yaml:10:1: warning: document 2 of the file holds no job"]
    );
    assert_eq!(report.jobs.len(), 1, "a trailing empty document does not cost the job its ID");
}

#[test]
fn a_document_that_is_not_a_mapping_is_an_error() {
    assert_eq!(
        only("- apiVersion: curator/v1\n"),
        "jobs.d/job.yaml:1:1: error: a job is a mapping of keys to values, but this document is \
         a list"
    );
}

// Schema errors at the offending key or value.

#[test]
fn an_unknown_key_points_at_the_key_with_a_suggestion() {
    assert_eq!(
        only(&with("fieldGroups", "fieldGroup")),
        "jobs.d/job.yaml:9:1: error: unknown key `fieldGroup`; did you mean `fieldGroups`?"
    );
    assert_eq!(
        only(&with("  cron: \"0 4 * * *\"", "  cron: \"0 4 * * *\"\n  timeZone: UTC")),
        "jobs.d/job.yaml:6:3: error: unknown key `timeZone` in `schedule`; did you mean \
         `timezone`?"
    );
    assert_eq!(
        only(&with("library: manga", "library: manga\ntimezone: UTC")),
        "jobs.d/job.yaml:4:1: error: unknown key `timezone`: it belongs under `schedule`"
    );
    assert_eq!(
        only(&with("library: manga", "library: manga\n<<: {name: x}")),
        "jobs.d/job.yaml:4:1: error: unknown key `<<`: merge keys are YAML 1.1 and curator reads \
         YAML 1.2; repeat the keys instead"
    );
}

#[test]
fn a_missing_key_points_at_its_mapping_and_says_what_to_add() {
    assert_eq!(
        only(&with("apiVersion: curator/v1\n", "")),
        "jobs.d/job.yaml:1:1: error: the job is missing the required key `apiVersion`: add \
         `apiVersion: curator/v1`"
    );
    assert_eq!(
        only(&with("  cron: \"0 4 * * *\"", "  timezone: UTC")),
        "jobs.d/job.yaml:4:1: error: `schedule` is missing the required key `cron`"
    );
}

#[test]
fn a_value_of_the_wrong_type_says_what_was_expected() {
    assert_eq!(
        only(&with("schedule:\n  cron: \"0 4 * * *\"", "schedule: \"0 4 * * *\"")),
        "jobs.d/job.yaml:4:11: error: `schedule`: expected a mapping, found the string `0 4 * * \
         *`; write `schedule:` with `cron:` indented under it"
    );
    assert_eq!(
        only(&with("library: manga", "library: 1984")),
        "jobs.d/job.yaml:3:10: error: `library`: expected a string, found the number `1984`; \
         quote it to keep it text: `\"1984\"`"
    );
    assert_eq!(
        only(&with("[ratings]", "ratings")),
        "jobs.d/job.yaml:9:14: error: `fieldGroups`: expected a list, found the string \
         `ratings`; write a list, such as `[ratings]`"
    );
}

#[test]
fn an_unknown_group_names_the_value_and_its_neighbour() {
    assert_eq!(
        only(&with("[ratings]", "[ratings, ratngs]")),
        "jobs.d/job.yaml:9:24: error: `fieldGroups[1]`: `ratngs` is not a series field group; \
         did you mean `ratings`?"
    );
    assert_eq!(
        only(&with("[ratings]", "[ratings, language]")),
        "jobs.d/job.yaml:9:24: error: `fieldGroups[1]`: `language` is not a series field group: \
         it is a series field, so it belongs in `extraFields`"
    );
    assert_eq!(
        only(&with("scope: series_only", "scope: series")),
        "jobs.d/job.yaml:8:8: error: `scope`: `series` is not a scope: write one of \
         `series_only`, `books_only`, `series_and_books`"
    );
}

#[test]
fn patterns_say_what_a_name_or_duration_looks_like() {
    assert_eq!(
        only(&with("plugin:curated", "Plugin:Curated")),
        "jobs.d/job.yaml:7:11: error: `provider`: `Plugin:Curated` is not a provider name: \
         write `<name>` or `plugin:<name>` in lowercase letters, digits, `_` and `-`; did you \
         mean `plugin:curated`?"
    );
    assert_eq!(
        only(&with("  cron: \"0 4 * * *\"", "  cron: \"0 4 * * *\"\n  jitter: 10 minutes")),
        "jobs.d/job.yaml:6:11: error: `schedule.jitter`: `10 minutes` is not a duration: write a \
         whole number and a unit, such as `90s`, `10m` or `1h`"
    );
}

#[test]
fn max_concurrency_outside_1_to_16_is_refused() {
    assert_eq!(
        only(&with("library: manga", "library: manga\nmaxConcurrency: 0")),
        "jobs.d/job.yaml:4:17: error: `maxConcurrency`: `0` is below the minimum of 1: it takes \
         1 to 16"
    );
    assert_eq!(
        only(&with("library: manga", "library: manga\nmaxConcurrency: 0x11")),
        "jobs.d/job.yaml:4:17: error: `maxConcurrency`: `0x11` is above the maximum of 16: it \
         takes 1 to 16"
    );
}

#[test]
fn every_error_of_a_file_is_reported_in_line_order() {
    let text = "apiVersion: curator/v2\nkind: LibraryJob\nlibrary: manga\nschedule:\n  \
        cron: \"0 0 30 2 *\"\n  timezone: CEST\ntype: metadata_refresh\nprovider: curated\n\
        scope: series_only\nfieldGroups: [ratings]\nbookFieldGroups: [isbn]\nmaxConcurrency: 17\n";
    let report = check(text);
    assert_eq!(
        lines(&report),
        [
            "jobs.d/job.yaml:1:13: error: `apiVersion`: `curator/v2` is not an API version curator \
         reads; did you mean `curator/v1`?",
            "jobs.d/job.yaml:5:14: error: `schedule.cron`: `0 0 30 2 *` never fires: no month it \
         allows (`2`) has the day `30`",
            "jobs.d/job.yaml:6:13: error: `schedule.timezone`: `CEST` is a time-zone abbreviation, \
         not an IANA zone: write a location such as `Europe/Paris`",
            "jobs.d/job.yaml:11:18: error: `bookFieldGroups`: book fields have no effect with scope \
         `series_only`: remove them, or use scope `series_and_books`",
            "jobs.d/job.yaml:12:17: error: `maxConcurrency`: `17` is above the maximum of 16: it \
         takes 1 to 16",
        ]
    );
}

// Meaning.

fn cron(expr: &str) -> FileReport {
    check(&with("0 4 * * *", expr))
}

#[test]
fn a_cron_expression_that_can_never_fire_is_an_error_at_its_day() {
    assert_eq!(
        lines(&cron("0 0 30 2 *")),
        ["jobs.d/job.yaml:5:14: error: `schedule.cron`: `0 0 30 2 *` never fires: no month it \
         allows (`2`) has the day `30`"]
    );
}

#[test]
fn a_cron_field_out_of_range_is_named_at_its_column() {
    assert_eq!(
        lines(&cron("0 4 * * 9")),
        ["jobs.d/job.yaml:5:18: error: `schedule.cron`: the day-of-week field `9` is out of \
         range: it takes 0-7 (0 and 7 are Sunday), SUN-SAT, `L` or `#`"]
    );
    assert_eq!(
        lines(&cron("@reboot")),
        ["jobs.d/job.yaml:5:10: error: `schedule.cron`: `@reboot` is not a nickname curator \
         knows: use `@hourly`, `@daily`, `@weekly`, `@monthly` or `@yearly` (also `@annually`)"]
    );
}

#[test]
fn sunday_as_7_nicknames_and_a_seconds_field_are_accepted() {
    for expr in ["0 4 * * 7", "0 4 * * SUN", "@weekly", "@daily", "30 0 4 * * *"] {
        let report = cron(expr);
        assert!(report.diagnostics.is_empty(), "{expr}: {:?}", lines(&report));
        assert_eq!(report.jobs.len(), 1);
    }
}

#[test]
fn both_day_fields_set_is_a_warning_and_the_job_stays_valid() {
    let report = cron("0 0 1-7 * 1");
    assert_eq!(
        lines(&report),
        ["jobs.d/job.yaml:5:20: warning: `schedule.cron`: day-of-month `1-7` and day-of-week `1` \
         are both set, so it fires on every day that matches either (Vixie cron); for \"the \
         first Monday\" write `*` and `1#1`"]
    );
    assert_eq!(report.jobs.len(), 1);
}

fn zone(name: &str) -> FileReport {
    check(&with("  cron: \"0 4 * * *\"", &format!("  cron: \"0 4 * * *\"\n  timezone: {name}")))
}

#[test]
fn a_deprecated_zone_alias_is_a_warning_naming_the_canonical_zone() {
    let report = zone("US/Pacific");
    assert_eq!(
        lines(&report),
        ["jobs.d/job.yaml:6:13: warning: `schedule.timezone`: `US/Pacific` is a deprecated alias \
         of `America/Los_Angeles`: write `America/Los_Angeles`"]
    );
    assert_eq!(report.jobs.len(), 1, "a warning leaves the job valid");
    assert_eq!(
        lines(&zone("EST")),
        ["jobs.d/job.yaml:6:13: warning: `schedule.timezone`: `EST` is a deprecated alias of \
         `America/Panama`, a fixed UTC-5 offset: for US Eastern time write `America/New_York`"]
    );
    assert!(zone("UTC").diagnostics.is_empty() && zone("Europe/Paris").diagnostics.is_empty());
}

#[test]
fn abbreviations_and_misspellings_are_not_zones() {
    assert_eq!(
        lines(&zone("PST")),
        ["jobs.d/job.yaml:6:13: error: `schedule.timezone`: `PST` is a time-zone abbreviation, \
         not an IANA zone: write a location such as `America/Los_Angeles`"]
    );
    assert_eq!(
        lines(&zone("CEST")),
        ["jobs.d/job.yaml:6:13: error: `schedule.timezone`: `CEST` is a time-zone abbreviation, \
         not an IANA zone: write a location such as `Europe/Paris`"]
    );
    assert_eq!(
        lines(&zone("Europe/Pariss")),
        ["jobs.d/job.yaml:6:13: error: `schedule.timezone`: `Europe/Pariss` is not an IANA time \
         zone; did you mean `Europe/Paris`?"]
    );
}

#[test]
fn an_empty_selection_is_an_error_never_everything() {
    assert_eq!(
        only(&with("fieldGroups: [ratings]\n", "")),
        "jobs.d/job.yaml:8:8: error: `scope`: `series_only` refreshes series, but the job \
         selects no series field: set `fieldGroups` or `extraFields` (an empty selection never \
         means everything)"
    );
}

#[test]
fn book_groups_with_a_series_only_scope_are_an_error() {
    assert_eq!(
        only(&with("fieldGroups: [ratings]", "fieldGroups: [ratings]\nbookFieldGroups: [isbn]")),
        "jobs.d/job.yaml:10:18: error: `bookFieldGroups`: book fields have no effect with scope \
         `series_only`: remove them, or use scope `series_and_books`"
    );
    let report =
        check(&with("fieldGroups: [ratings]", "fieldGroups: [ratings]\nbookFieldGroups: []"));
    assert!(report.diagnostics.is_empty(), "an empty list selects nothing: {:?}", lines(&report));
}

fn config(kind: ProviderKind) -> Config {
    Config {
        source: None,
        database: "sqlite::memory:".into(),
        run_lease: crate::store::DEFAULT_RUN_LEASE,
        workers: 4,
        jobs_dir: PathBuf::from("jobs.d"),
        listen: "127.0.0.1:0".into(),
        timezone: chrono_tz::UTC,
        catalog: Vec::new(),
        providers: vec![ProviderConfig {
            name: "curated".into(),
            kind,
            command: None,
            args: Vec::new(),
            path: None,
            enabled: true,
            permissions: Vec::new(),
            settings: Value::Null,
            timeout_seconds: 30,
            base_url: None,
            credentials: Default::default(),
            match_threshold: crate::config::MATCH_THRESHOLD,
            requests_per_minute: None,
        }],
        api_token: None,
        api_token_for_reads: false,
        retention: Default::default(),
        webhooks: Vec::new(),
        log_format: None,
        log_level: None,
    }
}

fn check_with(text: &str, config: &Config, libraries: Option<&HashSet<String>>) -> FileReport {
    let ctx = Context { config: Some(config), libraries, manifests: None };
    check_source(Path::new("jobs.d/job.yaml"), "job.yaml", text.as_bytes(), &ctx)
}

#[test]
fn a_scope_the_provider_cannot_serve_is_an_error() {
    let text = with(
        "scope: series_only\nfieldGroups: [ratings]",
        "scope: books_only\nbookFieldGroups: [isbn]",
    );
    let report = check_with(&text, &config(ProviderKind::Anilist), None);
    assert_eq!(
        lines(&report),
        ["jobs.d/job.yaml:8:8: error: `scope`: provider `curated` cannot serve scope \
         `books_only`: it provides series only, so use scope `series_only` or another provider"]
    );
    assert!(check_with(&text, &config(ProviderKind::Directory), None).diagnostics.is_empty());
}

#[test]
fn with_a_config_the_provider_and_library_must_exist() {
    let text = with("plugin:curated", "plugin:curatd").replace("library: manga", "library: mang");
    let libraries: HashSet<String> = ["manga".to_string()].into();
    let report = check_with(&text, &config(ProviderKind::Directory), Some(&libraries));
    assert_eq!(
        lines(&report),
        [
            "jobs.d/job.yaml:3:10: error: `library`: `mang` is not in the catalog; did you mean \
         `manga`?",
            "jobs.d/job.yaml:7:11: error: `provider`: `curatd` is not configured (configured: \
         `curated`); did you mean `curated`?",
        ]
    );
}

/// Every diagnostic as printed, with the temporary directory shown as `jobs.d`.
fn shown_under_jobs_dir(report: &Report, dir: &Path) -> Vec<String> {
    let root = dir.display().to_string();
    report.diagnostics().map(|d| d.to_string().replace(&root, "jobs.d")).collect()
}

#[test]
fn a_job_id_declared_twice_is_an_error_in_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let with_id = with("library: manga", "id: shared\nlibrary: manga");
    std::fs::write(dir.path().join("a.yaml"), &with_id).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/b.yaml"), format!("# shared\n{with_id}")).unwrap();
    std::fs::write(dir.path().join("c.yaml"), GOOD).unwrap();
    let ctx = Context { config: None, libraries: None, manifests: None };
    let report = check_dir(dir.path(), &ctx).unwrap();
    let shown = shown_under_jobs_dir(&report, dir.path());
    assert_eq!(
        shown,
        [
            "jobs.d/a.yaml:3:5: error: job ID `shared` is also declared at jobs.d/sub/b.yaml:4:5: \
         IDs must be unique across the jobs directory",
            "jobs.d/sub/b.yaml:4:5: error: job ID `shared` is also declared at jobs.d/a.yaml:3:5: \
         IDs must be unique across the jobs directory",
        ]
    );
    assert!(report.files[0].jobs.is_empty() && report.files[2].jobs.is_empty());
    assert_eq!(report.files[1].jobs.len(), 1, "c.yaml is unaffected");
}

#[test]
fn ids_taken_from_paths_can_collide_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), GOOD).unwrap();
    std::fs::write(dir.path().join("a.yml"), GOOD).unwrap();
    let ctx = Context { config: None, libraries: None, manifests: None };
    let report = check_dir(dir.path(), &ctx).unwrap();
    let shown = shown_under_jobs_dir(&report, dir.path());
    assert_eq!(
        shown,
        [
            "jobs.d/a.yaml:1:1: error: job ID `a` (taken from the file's path) is also declared at \
         jobs.d/a.yml:1:1: IDs must be unique across the jobs directory",
            "jobs.d/a.yml:1:1: error: job ID `a` (taken from the file's path) is also declared at \
         jobs.d/a.yaml:1:1: IDs must be unique across the jobs directory",
        ]
    );
}

#[test]
fn files_and_their_problems_come_in_a_stable_order() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("b.yaml", with("scope", "scop")),
        ("a/z.yaml", with("kind", "kin")),
        ("a.yaml", GOOD.to_string()),
    ] {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let ctx = Context { config: None, libraries: None, manifests: None };
    let a = check_paths(&[dir.path().join("b.yaml"), dir.path().to_path_buf()], dir.path(), &ctx)
        .unwrap();
    let b = check_dir(dir.path(), &ctx).unwrap();
    let names = |r: &Report| r.files.iter().map(|f| f.relative.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), ["a/z.yaml", "a.yaml", "b.yaml"], "each file once, by path components");
    assert_eq!(names(&a), names(&b));
    assert_eq!(a.diagnostics().collect::<Vec<_>>(), b.diagnostics().collect::<Vec<_>>());
}

// Outputs.

fn report_of(text: &str) -> Report {
    let ctx = Context { config: None, libraries: None, manifests: None };
    Report {
        files: vec![check_source(Path::new("jobs.d/job.yaml"), "job.yaml", text.as_bytes(), &ctx)],
        notes: vec!["no config: provider and library checks were skipped".into()],
        skipped: vec!["provider", "library"],
    }
}

#[test]
fn an_unreadable_jitter_has_the_jitter_code_as_documented() {
    for jitter in ["2 hours", "10 minutes"] {
        let report = check(&with(
            "  cron: \"0 4 * * *\"",
            &format!("  cron: \"0 4 * * *\"\n  jitter: {jitter}"),
        ));
        let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["jitter"], "`{jitter}`: {:#?}", lines(&report));
    }
}

#[test]
fn json_output_has_the_documented_shape() {
    let report = report_of(&with("scope: series_only", "scope: series"));
    let json: Value = serde_json::from_str(&render(&report, Output::Json)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "formatVersion": 1,
            "valid": false,
            "files": 1,
            "jobs": 0,
            "errors": 1,
            "warnings": 0,
            "skipped": ["provider", "library"],
            "notes": ["no config: provider and library checks were skipped"],
            "diagnostics": [{
                "file": "jobs.d/job.yaml",
                "line": 8,
                "column": 8,
                "path": "scope",
                "code": "value",
                "message": "`scope`: `series` is not a scope: write one of `series_only`, \
                    `books_only`, `series_and_books`",
                "severity": "error",
            }],
        })
    );
}

#[test]
fn github_output_is_workflow_commands_with_escaped_properties() {
    let report = report_of(&with("library: manga", "library: manga\nname: \"100%\"\nname: x"));
    let mut report = report;
    report.files[0].diagnostics[0].file = "jobs.d/a,b:c.yaml".into();
    report.files[0].diagnostics[0].message.push_str("\nsecond line 100%");
    assert_eq!(
        render(&report, Output::Github),
        "::error file=jobs.d/a%2Cb%3Ac.yaml,line=5,col=1,title=curator duplicate-key::duplicate \
         key `name`: it is first set at line 4, column 1; a key may appear once in a \
         mapping%0Asecond line 100%25\n\
         ::notice title=curator::no config: provider and library checks were skipped\n\
         1 file(s), 0 valid job(s), 1 error(s), 0 warning(s)\n"
    );
}

#[test]
fn text_output_shows_the_line_and_a_caret_and_colours_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.yaml");
    std::fs::write(&path, with("[ratings]", "[ratings, ratngs]")).unwrap();
    let ctx = Context { config: None, libraries: None, manifests: None };
    let report = check_dir(dir.path(), &ctx).unwrap();
    let plain = render_text(&report, false);
    let shown = plain.replace(&dir.path().display().to_string(), "jobs.d");
    assert_eq!(
        shown,
        "jobs.d/job.yaml:9:24: error: `fieldGroups[1]`: `ratngs` is not a series field group; \
         did you mean `ratings`?\n \
         9 | fieldGroups: [ratings, ratngs]\n   \
           |                        ^\n\
         note: no config: provider and library checks were skipped\n\
         1 file(s), 0 valid job(s), 1 error(s), 0 warning(s)\n"
    );
    assert!(!plain.contains('\u{1b}'));
    let coloured = render_text(&report, true);
    assert!(coloured.contains("\u{1b}[1m\u{1b}[31merror\u{1b}[0m"), "{coloured:?}");
}

#[test]
fn a_file_over_the_limit_is_refused_by_its_size_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.yaml");
    // Sparse: 200 MB on the disk's say-so; reading it would show in the test's time and memory.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(200_000_000).unwrap();
    let ctx = Context { config: None, libraries: None, manifests: None };
    let report = check_dir(dir.path(), &ctx).unwrap();
    let plain = render_text(&report, false).replace(&dir.path().display().to_string(), "jobs.d");
    assert_eq!(
        plain,
        "jobs.d/job.yaml:1:1: error: the file is 200000000 bytes, over the limit of 1048576 \
         bytes (1 MiB): split it\n\
         note: no config: provider and library checks were skipped\n\
         1 file(s), 0 valid job(s), 1 error(s), 0 warning(s)\n"
    );
}

#[test]
fn a_mistake_in_every_item_of_a_long_list_is_listed_fifty_times_then_counted() {
    let items = vec!["x"; 5_000].join(", ");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("job.yaml"), with("[ratings]", &format!("[{items}]"))).unwrap();
    let ctx = Context { config: None, libraries: None, manifests: None };
    let report = check_dir(dir.path(), &ctx).unwrap();
    let diagnostics = &report.files[0].diagnostics;
    assert_eq!(diagnostics.len(), MAX_DIAGNOSTICS + 1);
    assert!(diagnostics[0].message.contains("`fieldGroups[0]`: `x` is not a series field group"));
    assert!(diagnostics[49].message.contains("`fieldGroups[49]`"), "{}", diagnostics[49].message);
    assert_eq!(
        diagnostics[50].message,
        "and 950 more problem(s) found in this file (950 error(s)): fix these first"
    );
    assert_eq!((diagnostics[50].line, diagnostics[50].column), (9, 15 + 50 * 3));
    // A check stops looking after a thousand; the count says what was found.
    assert_eq!(report.error_count(), MAX_FINDINGS);
    assert_eq!(
        render_text(&report, false).lines().last(),
        Some("1 file(s), 0 valid job(s), 1000 error(s), 0 warning(s)")
    );
}

#[test]
fn a_long_line_is_shown_around_its_column_and_a_long_value_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(5_000);
    std::fs::write(dir.path().join("job.yaml"), with("kind: LibraryJob", &format!("kind: {long}")))
        .unwrap();
    let ctx = Context { config: None, libraries: None, manifests: None };
    let report = check_dir(dir.path(), &ctx).unwrap();
    let message = &report.files[0].diagnostics[0].message;
    assert!(message.ends_with(" more characters)"), "{message}");
    assert!(message.chars().count() < 600, "{message}");
    let plain = render_text(&report, false);
    let excerpt: Vec<&str> = plain.lines().filter(|l| l.contains(" | ")).collect();
    assert_eq!(excerpt.len(), 2, "{plain}");
    assert!(excerpt[0].ends_with(&format!("2 | kind: {}…", "x".repeat(114))), "{plain}");
    assert!(excerpt[1].ends_with(&format!("  | {}^", " ".repeat(6))), "{plain}");
}

#[test]
fn an_excerpt_deep_in_a_long_line_is_a_window_with_the_caret_on_its_column() {
    let line = format!("{}X{}", "a".repeat(3_000), "b".repeat(3_000));
    let (shown, column) = render::excerpt(&line, 3_001);
    assert_eq!(shown.chars().nth(column - 1), Some('X'));
    assert_eq!(shown, format!("…{}X{}…", "a".repeat(40), "b".repeat(79)));
    let (shown, column) = render::excerpt(&line, 6_001);
    assert_eq!(shown, format!("…{}", "b".repeat(120)));
    assert_eq!(shown.chars().nth(column - 1), Some('b'));
    assert_eq!(column, 121, "the last character");
    assert_eq!(render::excerpt("short\u{1b}", 6), ("short\u{241b}".to_string(), 6));
}

#[test]
fn control_and_invisible_characters_are_spelled_out() {
    let report = check(&with("kind: LibraryJob", "kind: Library\u{1b}[2JJob"));
    let message = &report.diagnostics[0].message;
    assert!(message.contains("`Library\\u{1b}[2JJob`"), "{message}");
    let report = check(&with("apiVersion: curator/v1", "apiVersion: curator/v1\u{200b}"));
    let message = &report.diagnostics[0].message;
    assert!(message.contains("curator/v1\\u{200b}"), "{message}");
    assert!(!message.contains('\u{200b}'), "{message}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("job.yaml"), with("kind: LibraryJob", "kind: Li\u{7}bJob"))
        .unwrap();
    let ctx = Context { config: None, libraries: None, manifests: None };
    let plain = render_text(&check_dir(dir.path(), &ctx).unwrap(), false);
    assert!(plain.contains("| kind: Li\u{2407}bJob\n"), "the bell is drawn, not rung: {plain}");
    assert!(!plain.contains('\u{7}'), "{plain}");
}

/// Whatever a file holds, checking it never panics, and every diagnostic it yields has a real
/// position and leaves the file without jobs when it is an error. Bounded to a few seconds,
/// since `cargo test` runs in CI.
mod never_panics {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;

    /// Pieces of job files and of YAML's sharp edges, to make bytes that reach deep.
    const PIECES: &[&str] = &[
        "apiVersion: curator/v1\n",
        "kind: LibraryJob\n",
        "library: manga\n",
        "schedule:\n",
        "  cron: ",
        "\"0 4 * * *\"",
        "\"0 0 30 2 *\"",
        "@weekly",
        "  timezone: ",
        "US/Pacific",
        "PST",
        "type: metadata_refresh\n",
        "provider: curated\n",
        "scope: series_only\n",
        "fieldGroups: [ratings]\n",
        "bookFieldGroups: [isbn]\n",
        "id: ",
        "no",
        "yes",
        "0755",
        "~",
        "---\n",
        "...\n",
        "&a ",
        "*a",
        "!!str ",
        "!custom ",
        "? ",
        ": ",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        "\"",
        "'",
        "|\n",
        ">-\n",
        "\n",
        "  ",
        "\t",
        "# note\n",
        "<<: ",
        "%YAML 1.2\n",
        "\r\n",
        "\u{feff}",
        "\u{0}",
        "\u{e9}",
        "maxConcurrency: 99\n",
    ];

    fn pieces() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            4 => proptest::sample::select(PIECES).prop_map(|p| p.as_bytes().to_vec()),
            1 => proptest::collection::vec(any::<u8>(), 1..4),
        ];
        proptest::collection::vec(piece, 0..48).prop_map(|parts| parts.concat())
    }

    const KEYS: &[&str] = &[
        "apiVersion",
        "kind",
        "id",
        "name",
        "library",
        "enabled",
        "schedule",
        "cron",
        "timezone",
        "catchUp",
        "jitter",
        "type",
        "provider",
        "scope",
        "fieldGroups",
        "extraFields",
        "bookFieldGroups",
        "bookExtraFields",
        "maxConcurrency",
        "skipRecentlySyncedWithinS",
        "fieldGroup",
        "<<",
        "",
        "a/b~c",
    ];
    const WORDS: &[&str] = &[
        "curator/v1",
        "LibraryJob",
        "metadata_refresh",
        "series_only",
        "books_only",
        "series_and_books",
        "ratings",
        "isbn",
        "language",
        "0 4 * * *",
        "0 0 30 2 *",
        "0 4 * * 9",
        "@reboot",
        "0 0 1-7 * 1",
        "Europe/Paris",
        "US/Pacific",
        "CEST",
        "10m",
        "10 minutes",
        "plugin:curated",
        "Plugin:X",
        "no",
        "0755",
        "",
    ];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-40i64..70_000).prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            proptest::sample::select(WORDS).prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
        ]
    }

    fn tree() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(
                    |entries| {
                        let map: Map<String, Value> =
                            entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                        Value::Object(map)
                    }
                ),
            ]
        })
    }

    /// A good job with one member replaced or added at the top or in `schedule`.
    fn mutated_job() -> impl Strategy<Value = Value> {
        (proptest::sample::select(KEYS), tree(), any::<bool>()).prop_map(|(key, value, nested)| {
            let mut job: Value = yaml::parse(GOOD).unwrap().remove(0).value;
            let target = if nested { &mut job["schedule"] } else { &mut job };
            target[key] = value;
            job
        })
    }

    /// The tree as block YAML, and as JSON, which is YAML too.
    fn texts(value: &Value) -> [String; 2] {
        let mut block = String::new();
        let _ = saphyr::YamlEmitter::new(&mut block).dump(&crate::spec::yaml::to_yaml(value));
        [block, serde_json::to_string(value).unwrap()]
    }

    fn holds_up(bytes: &[u8]) -> Result<(), TestCaseError> {
        let report = check_bytes(bytes);
        let lines = bytes.split(|b| *b == b'\n').count();
        for d in &report.diagnostics {
            prop_assert!(
                d.line >= 1 && d.column >= 1 && d.line <= lines + 1,
                "{d} in {lines} lines"
            );
            prop_assert!(!d.message.is_empty());
        }
        prop_assert!(!report.has_errors() || report.jobs.is_empty(), "an invalid file has no jobs");
        let whole = Report { files: vec![report], ..Report::default() };
        for output in [Output::Text, Output::Json, Output::Github] {
            let _ = render(&whole, output);
        }
        Ok(())
    }

    /// 384 cases each unless `PROPTEST_CASES` asks for a longer hunt.
    fn config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok());
        ProptestConfig {
            cases: cases.unwrap_or(384),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in pieces()) {
            holds_up(&bytes)?;
        }

        #[test]
        fn arbitrary_yaml_trees_never_panic(value in tree()) {
            for text in texts(&value) {
                holds_up(text.as_bytes())?;
            }
        }

        #[test]
        fn mutated_jobs_never_panic_and_stay_readable(job in mutated_job()) {
            for text in texts(&job) {
                holds_up(text.as_bytes())?;
                let report = check(&text);
                prop_assert!(report.diagnostics.iter().all(|d| d.code != "yaml"), "{:?}\n{text}", lines(&report));
            }
        }
    }
}
