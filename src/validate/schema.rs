//! Structure: the generated JSON Schema's violations, in words. Each names the offending key or
//! value by path, shows the value as written, says what was expected, and suggests the likely
//! fix: a close known word, the list a word belongs in, the YAML 1.2 reading of `yes`.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind as Kind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::{Finding, suggest};
use crate::spec::yaml::{self, Document};
use crate::spec::{self, BookField, BookGroup, SeriesField, SeriesGroup};

/// The generated schema, and its validator, built once.
fn schema() -> &'static (Value, Validator) {
    static SCHEMA: OnceLock<(Value, Validator)> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema = spec::schema_value();
        let validator = jsonschema::draft7::new(&schema).expect("the generated schema compiles");
        (schema, validator)
    })
}

/// Adds a finding for each schema violation in `value`. Where several keywords object to one
/// value (a scope that is a number fails `type` and `enum`), only the most telling is kept.
pub(super) fn check(value: &Value, doc: &Document, found: &mut Vec<Finding>) {
    let (_, validator) = schema();
    if validator.is_valid(value) {
        return;
    }
    let mut by_value: HashMap<String, (u8, Finding)> = HashMap::new();
    let mut order = Vec::new();
    // A file with a mistake in every item of a long list has as many violations: past a
    // thousand, more say nothing new and cost time while a pass holds the database.
    for error in validator.iter_errors(value).take(super::MAX_FINDINGS) {
        for (rank, finding) in describe(&error, doc) {
            if rank == 0 {
                found.push(finding);
                continue;
            }
            match by_value.get(&finding.pointer) {
                Some((kept, _)) if *kept <= rank => {}
                _ => {
                    if !by_value.contains_key(&finding.pointer) {
                        order.push(finding.pointer.clone());
                    }
                    by_value.insert(finding.pointer.clone(), (rank, finding));
                }
            }
        }
    }
    found.extend(order.into_iter().filter_map(|p| by_value.remove(&p)).map(|(_, f)| f));
}

/// One violation as findings, each with a rank: 0 for one of several per value (unknown and
/// missing keys), else lower ranks win for the same value.
fn describe(error: &ValidationError, doc: &Document) -> Vec<(u8, Finding)> {
    let pointer = error.instance_path().as_str().to_string();
    let path = yaml::pointer_to_path(&pointer);
    let instance = error.instance();
    let shown = show(doc, &pointer, instance);
    let error_at =
        |rank, code, message: String| vec![(rank, Finding::error(&pointer, code, message))];
    match error.kind() {
        Kind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|key| {
                let child = format!("{pointer}/{}", yaml::escape_pointer(key));
                let mut finding = Finding::error(&child, "unknown-key", unknown_key(&pointer, key));
                finding.at_key = true;
                (0, finding)
            })
            .collect(),
        Kind::Required { property } => {
            let key = property.as_str().unwrap_or_default();
            let whole = if path.is_empty() { "the job".to_string() } else { format!("`{path}`") };
            let mut message = format!("{whole} is missing the required key `{key}`");
            let only = schema_at(&format!("{pointer}/{key}")).and_then(single_value);
            if let Some(word) = only {
                message.push_str(&format!(": add `{key}: {word}`"));
            }
            let mut finding = Finding::error(&pointer, "missing-key", message);
            finding.at_key = true;
            vec![(0, finding)]
        }
        Kind::Type { kind } => {
            let expected = expected_types(kind);
            let hint = type_hint(&path, kind, instance, &shown);
            let found = found_kind(instance, &shown);
            error_at(1, "type", format!("`{path}`: expected {expected}, found {found}{hint}"))
        }
        Kind::Enum { options } => {
            let words: Vec<&str> =
                options.as_array().map_or(vec![], |o| o.iter().filter_map(Value::as_str).collect());
            error_at(2, "value", not_one_of(&path, &pointer, instance, &shown, &words))
        }
        Kind::Minimum { limit } | Kind::Maximum { limit } => {
            let below = matches!(error.kind(), Kind::Minimum { .. });
            let side = if below { "below the minimum" } else { "above the maximum" };
            let range = schema_at(&pointer).and_then(|s| {
                Some(format!(": it takes {} to {}", s.get("minimum")?, s.get("maximum")?))
            });
            let range = range.unwrap_or_default();
            error_at(3, "value", format!("`{path}`: {shown} is {side} of {limit}{range}"))
        }
        Kind::MinLength { limit: 1 } => error_at(3, "value", format!("`{path}` must not be empty")),
        Kind::MaxLength { limit } => {
            error_at(3, "value", format!("`{path}`: {shown} is longer than {limit} characters"))
        }
        Kind::Pattern { pattern } => {
            // An unreadable jitter has its own code, whichever check finds it.
            let code = if path == "schedule.jitter" { "jitter" } else { "value" };
            error_at(3, code, bad_pattern(&path, instance, &shown, pattern))
        }
        _ => error_at(4, "value", format!("`{path}`: {shown}: {}", strip_value(error))),
    }
}

fn unknown_key(parent: &str, key: &str) -> String {
    let path = yaml::pointer_to_path(parent);
    let place = if path.is_empty() { String::new() } else { format!(" in `{path}`") };
    if key == "<<" {
        return format!(
            "unknown key `<<`{place}: merge keys are YAML 1.1 and curator reads YAML 1.2; \
             repeat the keys instead"
        );
    }
    let known = known_keys(parent);
    let hint = suggest(key, known.iter().map(String::as_str));
    if !hint.is_empty() {
        return format!("unknown key `{key}`{place}{hint}");
    }
    if parent.is_empty() && known_keys("/schedule").iter().any(|k| k == key) {
        return format!("unknown key `{key}`: it belongs under `schedule`");
    }
    if parent == "/schedule" && known_keys("").iter().any(|k| k == key) {
        return format!("unknown key `{key}` in `schedule`: it belongs at the top level");
    }
    if known.len() <= 6 && !known.is_empty() {
        let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        return format!("unknown key `{key}`{place}: it takes {}", list.join(", "));
    }
    format!("unknown key `{key}`{place}")
}

fn not_one_of(path: &str, pointer: &str, instance: &Value, shown: &str, words: &[&str]) -> String {
    let field = pointer.trim_start_matches('/').split('/').next().unwrap_or_default();
    let noun = match field {
        "fieldGroups" => "a series field group",
        "bookFieldGroups" => "a book field group",
        "extraFields" => "a series field",
        "bookExtraFields" => "a book field",
        "scope" => "a scope",
        "apiVersion" => "an API version curator reads",
        "kind" => "a kind of object curator knows",
        "type" => "a job type",
        _ => "an allowed value",
    };
    let Some(text) = instance.as_str() else {
        return format!("`{path}`: {shown} is not {noun}: write one of {}", quote_list(words));
    };
    if let Some(hint) = other_list(field, text) {
        return format!("`{path}`: {shown} is not {noun}: {hint}");
    }
    let hint = suggest(text, words.iter().copied());
    if hint.is_empty() {
        format!("`{path}`: {shown} is not {noun}: write one of {}", quote_list(words))
    } else {
        format!("`{path}`: {shown} is not {noun}{hint}")
    }
}

/// The list a group or field name belongs in, when it was written in another.
fn other_list(field: &str, word: &str) -> Option<String> {
    let series_group = SeriesGroup::ALL.iter().any(|g| g.as_str() == word);
    let book_group = BookGroup::ALL.iter().any(|g| g.as_str() == word);
    let series_field = SeriesField::ALL.iter().any(|f| f.as_str() == word);
    let book_field = BookField::ALL.iter().any(|f| f.as_str() == word);
    let (what, list) = match field {
        "fieldGroups" if series_field => ("a series field", "extraFields"),
        "fieldGroups" if book_group => ("a book field group", "bookFieldGroups"),
        "extraFields" if series_group => ("a series field group", "fieldGroups"),
        "extraFields" if book_field => ("a book field", "bookExtraFields"),
        "bookFieldGroups" if book_field => ("a book field", "bookExtraFields"),
        "bookFieldGroups" if series_group => ("a series field group", "fieldGroups"),
        "bookExtraFields" if book_group => ("a book field group", "bookFieldGroups"),
        "bookExtraFields" if series_field => ("a series field", "extraFields"),
        _ => return None,
    };
    Some(format!("it is {what}, so it belongs in `{list}`"))
}

fn bad_pattern(path: &str, instance: &Value, shown: &str, pattern: &str) -> String {
    match path {
        "id" => format!(
            "`id`: {shown} is not a job ID: start with a letter or digit, then use letters, \
             digits, `.`, `_`, `/` and `-`"
        ),
        "provider" => {
            let lower = instance.as_str().unwrap_or_default().to_lowercase();
            let hint = if lower != instance.as_str().unwrap_or_default()
                && regex_matches(pattern, &lower)
            {
                format!("; did you mean `{lower}`?")
            } else {
                String::new()
            };
            format!(
                "`provider`: {shown} is not a provider name: write `<name>` or \
                 `plugin:<name>` in lowercase letters, digits, `_` and `-`{hint}"
            )
        }
        "schedule.jitter" => format!(
            "`schedule.jitter`: {shown} is not a duration: write a whole number and a unit, \
             such as `90s`, `10m` or `1h`"
        ),
        _ => format!("`{path}`: {shown} does not match the pattern `{pattern}`"),
    }
}

fn regex_matches(pattern: &str, text: &str) -> bool {
    let schema = serde_json::json!({ "type": "string", "pattern": pattern });
    jsonschema::draft7::new(&schema).is_ok_and(|v| v.is_valid(&Value::String(text.into())))
}

fn expected_types(kind: &TypeKind) -> String {
    let names: Vec<String> = match kind {
        TypeKind::Single(t) => vec![t.to_string()],
        TypeKind::Multiple(ts) => ts.iter().map(|t| t.to_string()).collect(),
    };
    let mut words: Vec<&str> = names
        .iter()
        .filter(|n| n.as_str() != "null" || names.len() == 1)
        .map(|n| match n.as_str() {
            "string" => "a string",
            "integer" => "a whole number",
            "number" => "a number",
            "boolean" => "`true` or `false`",
            "array" => "a list",
            "object" => "a mapping",
            _ => "nothing",
        })
        .collect();
    words.dedup();
    words.join(" or ")
}

fn found_kind(instance: &Value, shown: &str) -> String {
    match instance {
        Value::Null => "nothing".to_string(),
        Value::Bool(_) => shown.to_string(),
        Value::Number(_) => format!("the number {shown}"),
        Value::String(_) => format!("the string {shown}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a mapping".to_string(),
    }
}

/// What a document is, for the error that it is not a job.
pub(super) fn describe_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The likely fix for a value of the wrong type.
fn type_hint(path: &str, kind: &TypeKind, instance: &Value, shown: &str) -> String {
    let wants = |name: &str| match kind {
        TypeKind::Single(t) => t.to_string() == name,
        TypeKind::Multiple(ts) => ts.iter().any(|t| t.to_string() == name),
    };
    match instance {
        Value::String(text) if wants("boolean") => {
            let word = match text.to_lowercase().as_str() {
                "yes" | "y" | "on" => "true",
                "no" | "n" | "off" => "false",
                _ => return String::new(),
            };
            format!("; YAML 1.2 reads {shown} as a string: write `{word}`")
        }
        Value::String(text) if (wants("integer") || wants("number")) => {
            if yaml::has_leading_zero(text) {
                format!(
                    "; a leading zero makes {shown} octal in YAML 1.1 and decimal in 1.2, so \
                     curator reads neither: write it without the zero"
                )
            } else {
                String::new()
            }
        }
        Value::String(_) if path == "schedule" => {
            "; write `schedule:` with `cron:` indented under it".to_string()
        }
        Value::String(text) if wants("array") => {
            format!("; write a list, such as `[{text}]`")
        }
        Value::Number(_) if path == "schedule.jitter" => {
            "; write the number with its unit, such as `90s` or `10m`".to_string()
        }
        Value::Number(_) | Value::Bool(_) if wants("string") => {
            let text = shown.trim_matches('`');
            format!("; quote it to keep it text: `\"{text}\"`")
        }
        _ => String::new(),
    }
}

/// The value in backticks as the file wrote it (`0x10`, not `16`).
fn show(doc: &Document, pointer: &str, value: &Value) -> String {
    if let Some(text) = doc.spans.written(pointer) {
        return format!("`{text}`");
    }
    match value {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

fn quote_list(words: &[&str]) -> String {
    words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")
}

/// The validator's sentence without its leading copy of the value.
fn strip_value(error: &ValidationError) -> String {
    let text = error.to_string();
    let value = error.instance().to_string();
    text.strip_prefix(&value).map(|rest| rest.trim_start().to_string()).unwrap_or(text)
}

/// The one value a key can take (`apiVersion: curator/v1`), for the hint when it is missing.
fn single_value(node: &Value) -> Option<String> {
    let options = node.get("enum")?.as_array()?;
    match options.as_slice() {
        [Value::String(only)] => Some(only.clone()),
        _ => None,
    }
}

/// The keys the schema allows at the object `pointer` points to.
fn known_keys(pointer: &str) -> Vec<String> {
    schema_at(pointer)
        .and_then(|node| node.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The schema node that describes the value at `pointer`, following `$ref` and `allOf`.
fn schema_at(pointer: &str) -> Option<&'static Value> {
    let (schema, _) = schema();
    let mut node = resolve(schema, schema);
    for part in pointer.split('/').skip(1) {
        let next = if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            node.get("items")
        } else {
            node.get("properties").and_then(|p| p.get(part.replace("~1", "/").replace("~0", "~")))
        };
        node = resolve(schema, next?);
    }
    Some(node)
}

fn resolve<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    let target = node
        .get("$ref")
        .or_else(|| {
            node.get("allOf").and_then(|all| all.get(0)).and_then(|first| first.get("$ref"))
        })
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'));
    match target {
        Some(pointer) => schema.pointer(pointer).unwrap_or(node),
        None => node,
    }
}
