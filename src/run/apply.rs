//! The field-selection rule, and nothing else: for one entry and one provider answer, what
//! happens to every field. A field is written only when the job selects it (groups and extra
//! fields), the provider is permitted to write it, the provider returned it, the value fits
//! the field, it differs from what is stored, and the entry does not lock it. Runs and
//! previews both read their verdicts from [`judge`], so the two never disagree.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::catalog::fields::{self, Permissions};
use crate::provider::{EntityKind, Metadata};
use crate::store::{Change, Entry, EntryResult};

/// What a job may write: its selected fields per side, and the provider's allow-list.
pub struct Selection {
    pub series: HashSet<&'static str>,
    pub books: HashSet<&'static str>,
    pub permissions: Permissions,
}

/// Which layer keeps a field from being written, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Layer {
    /// The job's groups and extra fields do not include it.
    OutsideGroups,
    /// The provider's `permissions` do not allow it.
    NotPermitted,
    /// The provider's answer does not carry it.
    NotReturned,
    /// The provider's value does not fit the field (wrong type, out of range, unknown word).
    Refused,
    /// The entry locks it.
    Locked,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::OutsideGroups => "outside the job's groups",
            Layer::NotPermitted => "not permitted",
            Layer::NotReturned => "not returned",
            Layer::Refused => "refused",
            Layer::Locked => "locked",
        }
    }
}

/// What happens to one field.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum Verdict {
    Change {
        before: Value,
        after: Value,
    },
    Unchanged,
    Blocked {
        layer: Layer,
        /// For `refused`: the value and what was expected.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

/// One field's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldVerdict {
    pub field: &'static str,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Whether the provider's answer carried a value for it.
    #[serde(skip)]
    pub returned: bool,
}

/// The verdict on every field of the entry's side, in the vocabulary's order.
pub fn judge(entry: &Entry, response: &Metadata, selection: &Selection) -> Vec<FieldVerdict> {
    let selected = match entry.kind {
        EntityKind::Series => &selection.series,
        EntityKind::Book => &selection.books,
    };
    let blocked = |layer, detail| Verdict::Blocked { layer, detail };
    fields::fields(entry.kind)
        .iter()
        .map(|field| {
            let returned = response.get(field.response_key).filter(|v| !v.is_null());
            let current = entry.metadata.get(field.name).cloned().unwrap_or(Value::Null);
            let verdict = if !selected.contains(field.name) {
                blocked(Layer::OutsideGroups, None)
            } else if !selection.permissions.allows(field) {
                blocked(Layer::NotPermitted, None)
            } else if let Some(value) = returned {
                if let Err(expected) = fields::check_shape(field, value) {
                    blocked(Layer::Refused, Some(format!("`{value}`: {expected}")))
                } else if &current == value {
                    Verdict::Unchanged
                } else if entry.locks.iter().any(|l| l == field.name) {
                    blocked(Layer::Locked, None)
                } else {
                    Verdict::Change { before: current, after: value.clone() }
                }
            } else {
                blocked(Layer::NotReturned, None)
            };
            FieldVerdict { field: field.name, verdict, returned: returned.is_some() }
        })
        .collect()
}

/// Decides one entry's outcome from the provider's answer. Pure: the caller writes it.
///
/// Fields the provider did not return, or that the job does not select, are not mentioned;
/// a returned, selected field that is held back is named in the reason under its layer. An
/// entry whose every differing field was held back by a lock or a permission is `skipped`.
pub fn decide(entry: &Entry, response: &Metadata, selection: &Selection) -> EntryResult {
    let mut changes = Vec::new();
    let mut unchanged = 0;
    let mut held: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for FieldVerdict { field, verdict, returned } in judge(entry, response, selection) {
        match verdict {
            Verdict::Change { before, after } => {
                changes.push(Change { field: field.to_string(), before, after })
            }
            Verdict::Unchanged => unchanged += 1,
            Verdict::Blocked { layer: Layer::Refused, detail } => held
                .entry(Layer::Refused.as_str())
                .or_default()
                .push(format!("{field} ({})", detail.unwrap_or_default())),
            Verdict::Blocked { layer: layer @ (Layer::Locked | Layer::NotPermitted), .. }
                if returned =>
            {
                held.entry(layer.as_str()).or_default().push(field.to_string())
            }
            Verdict::Blocked { .. } => {}
        }
    }
    let reason = (!held.is_empty()).then(|| {
        held.iter()
            .map(|(why, names)| format!("{why}: {}", names.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let outcome = if !changes.is_empty() {
        "updated"
    } else if unchanged == 0
        && (held.contains_key(Layer::Locked.as_str())
            || held.contains_key(Layer::NotPermitted.as_str()))
    {
        // Everything that differed was held back: the entry was skipped, and the reason says why.
        "skipped"
    } else {
        "unchanged"
    };
    result(entry, outcome, reason, changes)
}

/// An entry's recorded result.
pub fn result(
    entry: &Entry,
    outcome: &str,
    reason: Option<String>,
    changes: Vec<Change>,
) -> EntryResult {
    EntryResult {
        kind: entry.kind,
        entry: entry.key.clone(),
        title: entry.title(),
        outcome: outcome.to_string(),
        reason,
        changes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(metadata: Value, locks: &[&str]) -> Entry {
        Entry {
            kind: EntityKind::Series,
            row_id: 1,
            key: "frieren".into(),
            metadata: metadata.as_object().unwrap().clone(),
            locks: locks.iter().map(|l| l.to_string()).collect(),
            external_id: Some("frieren".into()),
            last_synced_at: None,
        }
    }

    fn selection(fields: &[&'static str], permissions: &[&str]) -> Selection {
        Selection {
            series: fields.iter().copied().collect(),
            books: HashSet::new(),
            permissions: Permissions::new(
                &permissions.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            ),
        }
    }

    #[test]
    fn only_selected_permitted_unlocked_changed_fields_are_written() {
        let e = entry(
            json!({"status": "ongoing", "totalVolumeCount": 10, "summary": "old", "year": 2020}),
            &["summary"],
        );
        let response = json!({"status": "ended", "totalVolumeCount": 12, "summary": "new", "year": 2020, "genres": ["X"]});
        let s =
            selection(&["status", "totalVolumeCount", "summary", "year"], &["metadata:write:*"]);
        let r = decide(&e, response.as_object().unwrap(), &s);
        assert_eq!(r.outcome, "updated");
        let written: Vec<&str> = r.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            written,
            ["status", "totalVolumeCount"],
            "genres is outside the groups, summary is locked, year is unchanged"
        );
        assert_eq!(r.reason.as_deref(), Some("locked: summary"));
    }

    #[test]
    fn a_field_outside_the_permissions_is_held_back() {
        let e = entry(json!({"status": "ongoing"}), &[]);
        let response = json!({"status": "ended"});
        let s = selection(&["status"], &["metadata:write:ratings"]);
        let r = decide(&e, response.as_object().unwrap(), &s);
        assert_eq!(r.outcome, "skipped");
        assert!(r.changes.is_empty());
        assert_eq!(r.reason.as_deref(), Some("not permitted: status"));
    }

    #[test]
    fn a_value_that_does_not_fit_is_refused_not_stored() {
        let e = entry(json!({"status": "ongoing"}), &[]);
        let response = json!({"status": "completed"});
        let s = selection(&["status"], &["metadata:write:*"]);
        let r = decide(&e, response.as_object().unwrap(), &s);
        assert!(r.changes.is_empty());
        assert!(r.reason.unwrap().starts_with("refused: status"));
    }
}

#[cfg(test)]
mod verdicts {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_field_gets_a_verdict_from_the_first_layer_that_blocks_it() {
        let entry = Entry {
            kind: EntityKind::Series,
            row_id: 1,
            key: "berserk".into(),
            metadata: json!({"status": "hiatus", "year": 1989, "summary": "old"})
                .as_object()
                .unwrap()
                .clone(),
            locks: vec!["status".into()],
            external_id: Some("1".into()),
            last_synced_at: None,
        };
        let response = json!({
            "status": "ended", "year": 1989, "totalVolumeCount": 42, "summary": "new",
            "totalChapterCount": "many", "genres": ["Action"]
        });
        let selection = Selection {
            series: ["status", "year", "totalVolumeCount", "totalChapterCount", "rating", "genres"]
                .into_iter()
                .collect(),
            books: HashSet::new(),
            permissions: Permissions::new(&[
                "metadata:write:status".into(),
                "metadata:write:year".into(),
                "metadata:write:total_volume_count".into(),
                "metadata:write:total_chapter_count".into(),
                "metadata:write:ratings".into(),
            ]),
        };
        let verdicts = judge(&entry, response.as_object().unwrap(), &selection);
        let of = |name: &str| verdicts.iter().find(|v| v.field == name).unwrap().verdict.clone();
        let blocked = |layer| Verdict::Blocked { layer, detail: None };
        assert_eq!(of("status"), blocked(Layer::Locked));
        assert_eq!(of("year"), Verdict::Unchanged);
        assert_eq!(
            of("totalVolumeCount"),
            Verdict::Change { before: json!(null), after: json!(42) }
        );
        assert!(matches!(of("totalChapterCount"), Verdict::Blocked { layer: Layer::Refused, .. }));
        assert_eq!(of("rating"), blocked(Layer::NotReturned));
        assert_eq!(of("genres"), blocked(Layer::NotPermitted));
        assert_eq!(of("summary"), blocked(Layer::OutsideGroups), "returned, but not selected");
        assert_eq!(verdicts.len(), crate::catalog::fields::fields(EntityKind::Series).len());
    }
}
