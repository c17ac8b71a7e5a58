//! The field vocabulary: every metadata field curator can write, the group it belongs to, the
//! Codex permission that allows it, the provider response key it is read from, and the shape
//! its value must have. Jobs, validation and the run all read this one table, so a field is
//! added in exactly one place.

use serde_json::Value;

use crate::provider::EntityKind;

/// The shape a field's value must have before it may be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Text,
    Integer,
    Number,
    TextList,
    /// `ongoing | ended | hiatus | abandoned | unknown`, lower case (Codex's strict reading).
    Status,
    /// `ltr | rtl | ttb`.
    ReadingDirection,
    /// `{score: 0..=100, voteCount?, source}`.
    Rating,
    /// A list of objects; each must carry the named string key (`title`, `url`, `name`, ...).
    ObjectList(&'static str),
    /// Authors: bare strings or objects with a `name`.
    Authors,
    /// `YYYY-MM-DD`.
    Date,
}

/// One writable field.
#[derive(Debug)]
pub struct Field {
    /// The field's name in the catalog and in job files (`totalVolumeCount`).
    pub name: &'static str,
    /// The key the provider's answer carries it under; usually the same as `name`.
    pub response_key: &'static str,
    /// The group that selects it (`counts`).
    pub group: &'static str,
    /// The permission suffix after `metadata:write:` that allows writing it.
    pub permission: &'static str,
    pub shape: Shape,
}

const fn field(
    name: &'static str,
    group: &'static str,
    permission: &'static str,
    shape: Shape,
) -> Field {
    Field { name, response_key: name, group, permission, shape }
}

/// Series fields, in Codex's vocabulary. `summary` and `alternateTitles` also have the
/// narrower groups of the same name (see [`SERIES_GROUP_ALIASES`]).
pub const SERIES_FIELDS: &[Field] = &[
    field("title", "identifiers", "title", Shape::Text),
    field("titleSort", "identifiers", "title", Shape::Text),
    field("alternateTitles", "identifiers", "title", Shape::ObjectList("title")),
    field("summary", "descriptive", "summary", Shape::Text),
    field("authors", "descriptive", "authors", Shape::Authors),
    field("status", "status", "status", Shape::Status),
    field("year", "status", "year", Shape::Integer),
    field("totalVolumeCount", "counts", "total_volume_count", Shape::Integer),
    field("totalChapterCount", "counts", "total_chapter_count", Shape::Number),
    field("rating", "ratings", "ratings", Shape::Rating),
    field("externalRatings", "ratings", "ratings", Shape::ObjectList("source")),
    field("coverUrl", "cover", "covers", Shape::Text),
    field("tags", "tags", "tags", Shape::TextList),
    field("genres", "genres", "genres", Shape::TextList),
    field("ageRating", "age_rating", "age_rating", Shape::Integer),
    field("language", "classification", "language", Shape::Text),
    field("readingDirection", "classification", "reading_direction", Shape::ReadingDirection),
    field("publisher", "publisher", "publisher", Shape::Text),
    field("externalLinks", "external_refs", "links", Shape::ObjectList("url")),
];

/// Groups that name a subset of a Codex group: the seed's `summary` and `alternate_titles`.
pub const SERIES_GROUP_ALIASES: &[(&str, &[&str])] =
    &[("summary", &["summary"]), ("alternate_titles", &["alternateTitles"])];

/// Book fields. `releaseDate` and `pageCount` have no Codex permission; curator adds
/// `metadata:write:release_date` and `metadata:write:page_count` for them.
pub const BOOK_FIELDS: &[Field] = &[
    field("title", "title", "title", Shape::Text),
    field("subtitle", "title", "subtitle", Shape::Text),
    Field {
        name: "number",
        response_key: "seriesPosition",
        group: "number",
        permission: "series_position",
        shape: Shape::Number,
    },
    field("volume", "number", "volume", Shape::Number),
    field("chapter", "number", "chapter", Shape::Number),
    field("summary", "summary", "summary", Shape::Text),
    field("authors", "authors", "authors", Shape::Authors),
    field("releaseDate", "release_date", "release_date", Shape::Date),
    field("year", "release_date", "year", Shape::Integer),
    field("pageCount", "page_count", "page_count", Shape::Integer),
    field("isbn", "isbn", "isbn", Shape::Text),
    field("publisher", "publisher", "publisher", Shape::Text),
    field("coverUrl", "cover", "covers", Shape::Text),
];

/// Every series group name a job may select, Codex's twelve first.
pub const SERIES_GROUPS: &[&str] = &[
    "identifiers",
    "descriptive",
    "status",
    "counts",
    "ratings",
    "cover",
    "tags",
    "genres",
    "age_rating",
    "classification",
    "publisher",
    "external_refs",
    "summary",
    "alternate_titles",
];

/// Every book group name a job may select.
pub const BOOK_GROUPS: &[&str] = &[
    "title",
    "number",
    "summary",
    "authors",
    "release_date",
    "page_count",
    "isbn",
    "publisher",
    "cover",
];

/// The fields of one side of the catalog.
pub fn fields(kind: EntityKind) -> &'static [Field] {
    match kind {
        EntityKind::Series => SERIES_FIELDS,
        EntityKind::Book => BOOK_FIELDS,
    }
}

/// Looks a field up by its catalog name.
pub fn find(kind: EntityKind, name: &str) -> Option<&'static Field> {
    fields(kind).iter().find(|f| f.name == name)
}

/// The names of the fields a group selects; empty for an unknown group.
pub fn group_fields(kind: EntityKind, group: &str) -> Vec<&'static str> {
    if kind == EntityKind::Series
        && let Some((_, names)) = SERIES_GROUP_ALIASES.iter().find(|(g, _)| *g == group)
    {
        return names.to_vec();
    }
    fields(kind).iter().filter(|f| f.group == group).map(|f| f.name).collect()
}

/// A provider's permission allow-list in Codex's vocabulary (`metadata:write:ratings`,
/// `metadata:write:*`).
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    all: bool,
    granted: Vec<String>,
}

impl Permissions {
    pub fn new(list: &[String]) -> Self {
        let mut permissions = Permissions::default();
        for entry in list {
            match entry.strip_prefix("metadata:write:") {
                Some("*") => permissions.all = true,
                Some(name) => permissions.granted.push(name.to_string()),
                None => {}
            }
        }
        permissions
    }

    /// Whether the provider may write this field.
    pub fn allows(&self, field: &Field) -> bool {
        self.all || self.granted.iter().any(|g| g == field.permission)
    }
}

/// Every permission word curator understands, for validating a config's allow-lists.
pub fn known_permission(word: &str) -> bool {
    word == "*"
        || SERIES_FIELDS.iter().chain(BOOK_FIELDS).any(|f| f.permission == word)
        || word == "external_ids"
}

/// Checks a provider's value against the field's shape; the error says what was expected.
pub fn check_shape(field: &Field, value: &Value) -> Result<(), String> {
    let ok = match field.shape {
        Shape::Text => value.as_str().is_some_and(|s| !s.trim().is_empty()),
        // Every count, year, position and rating age in the vocabulary is at least zero.
        Shape::Integer => value.as_i64().is_some_and(|n| n >= 0),
        Shape::Number => value.as_f64().is_some_and(|n| n.is_finite() && n >= 0.0),
        Shape::TextList => value
            .as_array()
            .is_some_and(|items| !items.is_empty() && items.iter().all(Value::is_string)),
        Shape::Status => value
            .as_str()
            .is_some_and(|s| ["ongoing", "ended", "hiatus", "abandoned", "unknown"].contains(&s)),
        Shape::ReadingDirection => {
            value.as_str().is_some_and(|s| ["ltr", "rtl", "ttb"].contains(&s))
        }
        Shape::Rating => is_rating(value),
        Shape::ObjectList(key) => value.as_array().is_some_and(|items| {
            !items.is_empty()
                && items.iter().all(|item| item.get(key).is_some_and(Value::is_string))
        }),
        Shape::Authors => value.as_array().is_some_and(|items| {
            !items.is_empty()
                && items
                    .iter()
                    .all(|a| a.is_string() || a.get("name").is_some_and(Value::is_string))
        }),
        Shape::Date => {
            value.as_str().is_some_and(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok())
        }
    };
    if ok { Ok(()) } else { Err(format!("expected {}", shape_words(field.shape))) }
}

fn is_rating(value: &Value) -> bool {
    let score = value.get("score").and_then(Value::as_f64);
    score.is_some_and(|s| (0.0..=100.0).contains(&s))
        && value.get("source").is_some_and(Value::is_string)
}

fn shape_words(shape: Shape) -> &'static str {
    match shape {
        Shape::Text => "a non-empty string",
        Shape::Integer => "a whole number, zero or more",
        Shape::Number => "a number, zero or more",
        Shape::TextList => "a non-empty list of strings",
        Shape::Status => "one of `ongoing`, `ended`, `hiatus`, `abandoned`, `unknown`",
        Shape::ReadingDirection => "one of `ltr`, `rtl`, `ttb`",
        Shape::Rating => "an object with `score` from 0 to 100 and a `source`",
        Shape::ObjectList(_) => "a non-empty list of objects",
        Shape::Authors => "a non-empty list of names or objects with a `name`",
        Shape::Date => "a date as `YYYY-MM-DD`",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_series_group_selects_at_least_one_field() {
        for group in SERIES_GROUPS {
            assert!(
                !group_fields(EntityKind::Series, group).is_empty(),
                "group `{group}` is empty"
            );
        }
        for group in BOOK_GROUPS {
            assert!(!group_fields(EntityKind::Book, group).is_empty(), "group `{group}` is empty");
        }
    }

    #[test]
    fn wildcard_permission_allows_every_field_and_a_list_only_its_own() {
        let all = Permissions::new(&["metadata:write:*".into()]);
        let ratings = Permissions::new(&["metadata:write:ratings".into()]);
        let rating = find(EntityKind::Series, "rating").unwrap();
        let status = find(EntityKind::Series, "status").unwrap();
        assert!(all.allows(rating) && all.allows(status));
        assert!(ratings.allows(rating));
        assert!(!ratings.allows(status), "ratings permission must not allow status");
    }

    #[test]
    fn values_that_do_not_fit_their_field_are_refused() {
        let status = find(EntityKind::Series, "status").unwrap();
        assert!(check_shape(status, &json!("ended")).is_ok());
        assert!(check_shape(status, &json!("completed")).is_err());
        let count = find(EntityKind::Series, "totalVolumeCount").unwrap();
        assert!(check_shape(count, &json!("twelve")).is_err());
        assert!(check_shape(count, &json!(-3)).is_err());
        assert!(check_shape(count, &json!(0)).is_ok());
        let rating = find(EntityKind::Series, "rating").unwrap();
        assert!(check_shape(rating, &json!({"score": 140, "source": "x"})).is_err());
        assert!(check_shape(rating, &json!({"score": 88, "source": "x"})).is_ok());
    }
}
