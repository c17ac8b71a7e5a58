//! Meaning: what the schema cannot say. The cron expression parses and can fire, the zone is a
//! current IANA name, the selection matches the scope, and with a config the provider exists
//! and serves the scope, and the library is in the catalog. Each check reads the document's
//! raw values and runs whenever its own inputs are well-typed, so a file with a misspelt key
//! still hears about its impossible cron expression.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;

use super::{Context, Finding, suggest};
use crate::config::{Config, ProviderKind};
use crate::schedule;
use crate::schedule::cron::{self, CronProblem};
use crate::schedule::zones::{self, ZoneName};
use crate::spec::Scope;
use crate::spec::yaml::{self, Document};

/// Adds the meaning problems of a document; `empty_selection` says whether to report a side
/// of the scope that selects nothing.
pub(super) fn check(
    value: &Value,
    doc: &Document,
    ctx: &Context,
    empty_selection: bool,
    found: &mut Vec<Finding>,
) {
    let text = |key: &str| value.get(key).and_then(Value::as_str);
    let in_schedule =
        |key: &str| value.get("schedule").and_then(|s| s.get(key)).and_then(Value::as_str);
    if let Some(expr) = in_schedule("cron") {
        check_cron(expr, found);
    }
    if let Some(zone) = in_schedule("timezone") {
        check_zone(zone, found);
    }
    // A jitter the schema's pattern refuses has its error already.
    if let Some(jitter) = in_schedule("jitter")
        && jitter.bytes().all(|b| b.is_ascii_alphanumeric())
        && let Err(e) = schedule::parse_jitter(jitter)
    {
        found.push(Finding::error(
            "/schedule/jitter",
            "jitter",
            format!("`schedule.jitter`: `{jitter}`: {e}"),
        ));
    }
    let scope = text("scope").and_then(Scope::from_word);
    if let Some(scope) = scope {
        check_selection(value, scope, empty_selection, found);
    }
    check_repeats(value, doc, found);

    if let (Some(libraries), Some(library)) = (ctx.libraries, text("library"))
        && !libraries.contains(library)
    {
        let hint = suggest(library, libraries.iter().map(String::as_str));
        let message = format!("`library`: `{library}` is not in the catalog{hint}");
        found.push(Finding::error("/library", "library", message));
    }
    if let (Some(config), Some(provider)) = (ctx.config, text("provider")) {
        check_provider(provider, scope, config, ctx.manifests, found);
    }
}

thread_local! {
    /// Checked expressions: most directories repeat a handful, and croner takes a while to
    /// prove that one never fires.
    static CRON_CHECKS: RefCell<HashMap<String, Result<Vec<CronProblem>, CronProblem>>> =
        RefCell::new(HashMap::new());
}

fn check_cron(expr: &str, found: &mut Vec<Finding>) {
    let result = CRON_CHECKS.with(|cache| {
        if let Some(known) = cache.borrow().get(expr) {
            return known.clone();
        }
        let result = cron::check(expr);
        cache.borrow_mut().insert(expr.to_string(), result.clone());
        result
    });
    let at = |problem: CronProblem, error: bool| {
        let message = format!("`schedule.cron`: {}", problem.message);
        let mut finding = if error {
            Finding::error("/schedule/cron", "cron", message)
        } else {
            Finding::warning("/schedule/cron", "cron-either-day", message)
        };
        finding.offset = Some(problem.offset);
        finding
    };
    match result {
        Ok(warnings) => found.extend(warnings.into_iter().map(|w| at(w, false))),
        Err(problem) => found.push(at(problem, true)),
    }
}

fn check_zone(zone: &str, found: &mut Vec<Finding>) {
    let pointer = "/schedule/timezone";
    match zones::classify(zone) {
        ZoneName::Canonical(_) => {}
        ZoneName::Deprecated { canonical, advice, .. } => {
            let tail = match advice {
                Some(advice) => format!(", {advice}"),
                None => format!(": write `{canonical}`"),
            };
            let message = format!(
                "`schedule.timezone`: `{zone}` is a deprecated alias of `{canonical}`{tail}"
            );
            found.push(Finding::warning(pointer, "deprecated-timezone", message));
        }
        ZoneName::Unknown { reason, suggestion } => {
            let hint = zones::unknown_hint(&reason, suggestion.as_deref());
            let message = format!("`schedule.timezone`: `{zone}` is {reason}{hint}");
            found.push(Finding::error(pointer, "timezone", message));
        }
    }
}

/// A job writes the fields it selects on the sides its scope covers: an empty side is an
/// error (never "write everything"), and a selection on a side the scope leaves out is too.
fn check_selection(value: &Value, scope: Scope, empty_selection: bool, found: &mut Vec<Finding>) {
    let selects =
        |key: &str| value.get(key).and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    let series = selects("fieldGroups") || selects("extraFields");
    let books = selects("bookFieldGroups") || selects("bookExtraFields");
    let keys = ["fieldGroups", "extraFields", "bookFieldGroups", "bookExtraFields"];
    // A selection that is not a list has its own error already.
    let well_typed = keys.iter().all(|k| value.get(k).is_none_or(Value::is_array));
    let empty_selection = empty_selection && well_typed;
    let name = scope.as_str();
    if empty_selection && scope.series() && !series {
        let message = format!(
            "`scope`: `{name}` refreshes series, but the job selects no series field: set \
             `fieldGroups` or `extraFields` (an empty selection never means everything)"
        );
        found.push(Finding::error("/scope", "selection", message));
    }
    if empty_selection && scope.books() && !books {
        let message = format!(
            "`scope`: `{name}` refreshes books, but the job selects no book field: set \
             `bookFieldGroups` or `bookExtraFields` (an empty selection never means everything)"
        );
        found.push(Finding::error("/scope", "selection", message));
    }
    let side = if scope.series() { "book" } else { "series" };
    let left_out: &[&str] = match scope {
        Scope::SeriesOnly => &["bookFieldGroups", "bookExtraFields"],
        Scope::BooksOnly => &["fieldGroups", "extraFields"],
        Scope::SeriesAndBooks => &[],
    };
    for key in left_out.iter().filter(|key| selects(key)) {
        let message = format!(
            "`{key}`: {side} fields have no effect with scope `{name}`: remove them, or use \
             scope `series_and_books`"
        );
        found.push(Finding::error(&format!("/{key}"), "selection", message));
    }
}

/// A group or field listed twice is harmless but usually a slip.
fn check_repeats(value: &Value, doc: &Document, found: &mut Vec<Finding>) {
    for key in ["fieldGroups", "extraFields", "bookFieldGroups", "bookExtraFields"] {
        let Some(items) = value.get(key).and_then(Value::as_array) else { continue };
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Some(word) = item.as_str() else { continue };
            if !seen.insert(word) && found.len() < super::MAX_FINDINGS {
                let pointer = format!("/{key}/{i}");
                let path = yaml::pointer_to_path(&pointer);
                let message = format!("`{path}`: `{word}` is listed twice");
                if doc.spans.has(&pointer) {
                    found.push(Finding::warning(&pointer, "repeated", message));
                }
            }
        }
    }
}

fn check_provider(
    provider: &str,
    scope: Option<Scope>,
    config: &Config,
    manifests: Option<&super::Manifests>,
    found: &mut Vec<Finding>,
) {
    let name = provider.strip_prefix("plugin:").unwrap_or(provider);
    let Some(configured) = config.provider(name) else {
        let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        let hint = suggest(name, names.iter().copied());
        let known = if names.is_empty() { "none".to_string() } else { quote_list(&names) };
        let message = format!("`provider`: `{name}` is not configured (configured: {known}){hint}");
        found.push(Finding::error("/provider", "provider", message));
        return;
    };
    if !configured.enabled {
        let message =
            format!("`provider`: `{name}` is disabled in the config, so the job's runs will fail");
        found.push(Finding::warning("/provider", "provider", message));
    }
    // A plugin's capabilities come from its manifest, stored when it last started; a plugin
    // never started is checked by its first run.
    let serves = match configured.kind {
        ProviderKind::Directory => Some((true, true)),
        // The built-in providers report what they serve in the constants the run reads too.
        ProviderKind::Anilist => {
            let c = crate::provider::anilist::CAPABILITIES;
            Some((c.series, c.book))
        }
        ProviderKind::Openlibrary => {
            let c = crate::provider::openlibrary::CAPABILITIES;
            Some((c.series, c.book))
        }
        ProviderKind::Plugin => manifests.and_then(|m| m.get(name)).map(|c| (c.series, c.book)),
    };
    if let (Some((series, books)), Some(scope)) = (serves, scope)
        && ((scope.series() && !series) || (scope.books() && !books))
    {
        let message = match (series, books) {
            (true, _) => format!(
                "`scope`: provider `{name}` cannot serve scope `{}`: it provides series only, so \
                 use scope `series_only` or another provider",
                scope.as_str()
            ),
            (false, true) => format!(
                "`scope`: provider `{name}` cannot serve scope `{}`: it provides books only, so \
                 use scope `books_only` or another provider",
                scope.as_str()
            ),
            (false, false) => format!(
                "`scope`: provider `{name}` cannot serve scope `{}`: its manifest offers no \
                 series or book metadata",
                scope.as_str()
            ),
        };
        found.push(Finding::error("/scope", "scope", message));
    }
}

fn quote_list(words: &[&str]) -> String {
    words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")
}
