//! YAML with positions: parses a YAML 1.2 stream into JSON values plus a map from each value's
//! JSON pointer to where it was written, so every later error can name `file:line:column`.
//!
//! YAML 1.2's core schema is what makes `no`, `on` and `off` strings; saphyr implements it and
//! refuses duplicate keys. Config, catalog and job files all come through here.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

/// Files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// A line and column, both counted from 1 in characters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Where each value of a document was written, by JSON pointer (`/schedule/cron`).
#[derive(Debug, Clone, Default)]
pub struct Spans {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Spans {
    /// The position of the value at `pointer`, else of its nearest written ancestor.
    pub fn value(&self, pointer: &str) -> Pos {
        let mut pointer = pointer;
        loop {
            if let Some(pos) = self.values.get(pointer) {
                return *pos;
            }
            match pointer.rfind('/') {
                Some(i) => pointer = &pointer[..i],
                None => return Pos { line: 1, column: 1 },
            }
        }
    }

    /// The position of the key that holds the member at `pointer`; the value's if it has none.
    pub fn key(&self, pointer: &str) -> Pos {
        self.keys.get(pointer).copied().unwrap_or_else(|| self.value(pointer))
    }
}

/// One YAML document of a stream.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    pub spans: Spans,
    /// Where the document's top node starts.
    pub start: Pos,
}

/// Why a YAML stream could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Parses every document of a YAML stream.
pub fn parse(source: &str) -> Result<Vec<Document>, YamlError> {
    if source.len() > MAX_FILE_BYTES {
        return Err(YamlError {
            pos: Pos { line: 1, column: 1 },
            message: format!(
                "file is {} bytes, larger than the {MAX_FILE_BYTES}-byte limit",
                source.len()
            ),
        });
    }
    let nodes = MarkedYaml::load_from_str(source).map_err(|e| YamlError {
        pos: Pos { line: e.marker().line(), column: e.marker().col() + 1 },
        message: e.info().to_string(),
    })?;
    nodes
        .iter()
        .map(|node| {
            let mut spans = Spans::default();
            let value = convert(node, String::new(), &mut spans)?;
            Ok(Document { value, spans, start: pos(node) })
        })
        .collect()
}

fn pos(node: &MarkedYaml) -> Pos {
    Pos { line: node.span.start.line(), column: node.span.start.col() + 1 }
}

fn convert(node: &MarkedYaml, pointer: String, spans: &mut Spans) -> Result<Value, YamlError> {
    spans.values.insert(pointer.clone(), pos(node));
    let error = |message: String| YamlError { pos: pos(node), message };
    let value = match &node.data {
        YamlData::Value(scalar) => scalar_to_json(scalar).map_err(error)?,
        YamlData::Representation(text, style, tag) => {
            let scalar = Scalar::parse_from_cow_and_metadata(text.clone(), *style, tag.as_ref())
                .ok_or_else(|| error(format!("`{text}` does not fit its tag")))?;
            scalar_to_json(&scalar).map_err(error)?
        }
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(convert(item, format!("{pointer}/{i}"), spans)?);
            }
            Value::Array(out)
        }
        YamlData::Mapping(entries) => {
            let mut out = Map::new();
            for (key, item) in entries {
                let name = key_text(key)?;
                let child = format!("{pointer}/{}", escape_pointer(&name));
                spans.keys.insert(child.clone(), pos(key));
                let converted = convert(item, child, spans)?;
                out.insert(name, converted);
            }
            Value::Object(out)
        }
        YamlData::Tagged(_, inner) => convert(inner, pointer, spans)?,
        YamlData::Alias(_) | YamlData::BadValue => {
            return Err(error("value cannot be read (a bad tag or an unresolved alias)".into()));
        }
    };
    Ok(value)
}

fn key_text(key: &MarkedYaml) -> Result<String, YamlError> {
    let text = match &key.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        YamlData::Representation(text, ..) => Some(text.to_string()),
        _ => None,
    };
    text.ok_or_else(|| YamlError { pos: pos(key), message: "mapping keys must be strings".into() })
}

fn scalar_to_json(scalar: &Scalar) -> Result<Value, String> {
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        Scalar::FloatingPoint(f) => Number::from_f64(f.into_inner())
            .map(Value::Number)
            .ok_or_else(|| format!("`{}` is not a finite number", f.into_inner()))?,
        Scalar::String(s) => Value::String(s.to_string()),
    })
}

/// Escapes a key for use in a JSON pointer (RFC 6901).
pub fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Turns a JSON pointer into the dotted path people read: `/fieldGroups/2` -> `fieldGroups[2]`.
pub fn pointer_to_path(pointer: &str) -> String {
    let mut path = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            path.push_str(&format!("[{part}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&part);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_1_2_words_stay_strings() {
        let docs = parse("a: no\nb: on\nc: off\nd: yes\ne: true\n").unwrap();
        assert_eq!(docs[0].value, json!({"a": "no", "b": "on", "c": "off", "d": "yes", "e": true}));
    }

    #[test]
    fn positions_point_at_values_and_keys() {
        let docs = parse("schedule:\n  cron: \"0 4 * * *\"\n  zone: x\n").unwrap();
        assert_eq!(docs[0].spans.value("/schedule/cron"), Pos { line: 2, column: 9 });
        assert_eq!(docs[0].spans.key("/schedule/zone"), Pos { line: 3, column: 3 });
        // An absent member falls back to its parent.
        assert_eq!(docs[0].spans.value("/schedule/missing").line, 2);
    }

    #[test]
    fn duplicate_keys_are_refused_with_a_position() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.pos.line, 2, "{err:?}");
    }

    #[test]
    fn several_documents_are_several_values() {
        let docs = parse("a: 1\n---\na: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].start.line, 3);
    }

    #[test]
    fn pointers_read_as_paths() {
        assert_eq!(pointer_to_path("/fieldGroups/2"), "fieldGroups[2]");
        assert_eq!(pointer_to_path("/schedule/timezone"), "schedule.timezone");
    }
}
