//! The job file reference in Markdown (`docs/job-reference.md`), written from the JSON Schema
//! so the two cannot disagree: every key with its type, default, limits and description, then
//! every word list (scopes, groups, fields) with what each word means.

use std::fmt::Write as _;

use serde_json::Value;

/// The reference page, from [`super::schema_value`].
pub fn markdown() -> String {
    let schema = super::schema_value();
    let definitions = &schema["definitions"];
    let mut out = String::new();
    out.push_str("# Job file reference\n\n");
    out.push_str(
        "<!-- Generated from the JSON Schema by `curator::spec::reference`; do not edit. \
         `CURATOR_UPDATE_DOCS=1 cargo test --lib reference` rewrites it. -->\n\n",
    );
    let _ = writeln!(out, "{}\n", text(&schema["description"]));
    out.push_str(
        "A job file under `jobs.d/` holds one or more YAML documents (`---`); each is one job. \
         Unknown keys are errors.\n\n",
    );
    out.push_str("## Keys\n\n");
    keys(&mut out, &schema, "", definitions);
    for (name, definition) in definitions.as_object().into_iter().flatten() {
        // A one-word list (`apiVersion: curator/v1`) is shown in the key's type already.
        if definition["enum"].as_array().is_none_or(|words| words.len() < 2) {
            continue;
        }
        let _ = writeln!(out, "## {name}\n\n{}\n", text(&definition["description"]));
        let words = definition["enum"].as_array().cloned().unwrap_or_default();
        let meanings = definition["enumDescriptions"].as_array().cloned().unwrap_or_default();
        if meanings.is_empty() {
            let list: Vec<String> = words.iter().map(|w| format!("`{}`", text(w))).collect();
            let _ = writeln!(out, "{}\n", list.join(", "));
            continue;
        }
        out.push_str("| value | meaning |\n|---|---|\n");
        for (word, meaning) in words.iter().zip(meanings.iter()) {
            let _ = writeln!(out, "| `{}` | {} |", text(word), cell(&text(meaning)));
        }
        out.push('\n');
    }
    out.trim_end().to_string() + "\n"
}

/// A table of an object's keys, then the tables of its object-valued keys.
fn keys(out: &mut String, object: &Value, prefix: &str, definitions: &Value) {
    let required: Vec<&str> = object["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = object["properties"].as_object().cloned().unwrap_or_default();
    out.push_str("| key | type | required | default | description |\n|---|---|---|---|---|\n");
    let mut nested = Vec::new();
    for (key, property) in &properties {
        let target = resolve(property, definitions);
        let path = format!("{prefix}{key}");
        let required = if required.contains(&key.as_str()) { "yes" } else { "no" };
        let default = property.get("default").or(target.get("default"));
        let default = default.map_or(String::new(), |d| format!("`{d}`"));
        let mut description = text(&property["description"]);
        if let Some(limits) = limits(property).filter(|l| !description.contains(l.as_str())) {
            let mut chars = limits.chars();
            let first = chars.next().map(|c| c.to_uppercase().to_string()).unwrap_or_default();
            let _ = write!(description, " {first}{}.", chars.as_str());
        }
        if let Some(example) = property["examples"].as_array().and_then(|e| e.first()) {
            let _ = write!(description, " Example: `{example}`.");
        }
        let _ = writeln!(
            out,
            "| `{path}` | {} | {required} | {default} | {} |",
            kind(property, definitions),
            cell(&description)
        );
        if target.get("properties").is_some() {
            nested.push((path, target.clone()));
        }
    }
    out.push('\n');
    for (path, target) in nested {
        let _ = writeln!(out, "### `{path}`\n\n{}\n", text(&target["description"]));
        keys(out, &target, &format!("{path}."), definitions);
    }
}

/// The definition a property refers to (`$ref`, or `allOf: [$ref]`), or the property itself.
fn resolve<'a>(property: &'a Value, definitions: &'a Value) -> &'a Value {
    let reference = property["$ref"].as_str().or_else(|| property["allOf"][0]["$ref"].as_str());
    match reference.and_then(|r| r.strip_prefix("#/definitions/")) {
        Some(name) => &definitions[name],
        None => property,
    }
}

/// A property's type in words: `string`, `integer`, `one of `a`, `b``, a link to a word list.
fn kind(property: &Value, definitions: &Value) -> String {
    let reference = property["$ref"].as_str().or_else(|| property["allOf"][0]["$ref"].as_str());
    if let Some(name) = reference.and_then(|r| r.strip_prefix("#/definitions/")) {
        let definition = &definitions[name];
        return match definition["enum"].as_array() {
            Some(words) if words.len() == 1 => format!("`{}`", text(&words[0])),
            Some(_) => format!("[{name}](#{})", name.to_lowercase()),
            None => "object".into(),
        };
    }
    if property["type"] == "array" {
        return format!("list of {}", kind(&property["items"], definitions));
    }
    match &property["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => {
            let types: Vec<&str> =
                types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
            types.join(" or ")
        }
        _ => "any".into(),
    }
}

/// Bounds and patterns, in lower-case words.
fn limits(property: &Value) -> Option<String> {
    let mut parts = Vec::new();
    match (property.get("minimum"), property.get("maximum")) {
        (Some(min), Some(max)) => parts.push(format!("from {min} to {max}")),
        (Some(min), None) if min != 0 => parts.push(format!("at least {min}")),
        (_, Some(max)) => parts.push(format!("at most {max}")),
        _ => {}
    }
    if let Some(max) = property.get("maxLength") {
        parts.push(format!("at most {max} characters"));
    }
    if let Some(pattern) = property["pattern"].as_str() {
        parts.push(format!("matches `{pattern}`"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.replace('\n', " "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Text that fits one table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Fails unless the committed `rel` (under the repository) is `generated`; with
/// `CURATOR_UPDATE_DOCS` set, writes it first. For the generated pages under `docs/`.
#[cfg(test)]
pub(crate) fn assert_doc_current(rel: &str, generated: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if std::env::var_os("CURATOR_UPDATE_DOCS").is_some() {
        std::fs::write(&path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{rel} is stale: run `CURATOR_UPDATE_DOCS=1 cargo test --lib reference`"
    );
}

#[cfg(test)]
mod tests {
    /// `docs/job-reference.md` is this module's output.
    #[test]
    fn the_job_reference_matches_the_schema() {
        super::assert_doc_current("docs/job-reference.md", &super::markdown());
    }
}
