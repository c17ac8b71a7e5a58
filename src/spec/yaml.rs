//! YAML with positions: turns a file's bytes into JSON values plus a map from each value's JSON
//! pointer to where it was written, so every later error can name `file:line:column`.
//!
//! The reading is YAML 1.2's core schema and refuses what people trip over: `no`, `on`, `off`
//! and `yes` are strings; a number with a leading zero (`0755`, octal in YAML 1.1, decimal in
//! 1.2) stays the string it was written as; duplicate keys, tabs in indentation, byte-order
//! marks, invalid UTF-8, tags and files over [`MAX_FILE_BYTES`] are errors; aliases may copy
//! at most [`MAX_ALIAS_NODES`] nodes, so an alias bomb fails fast. Config, catalog and job files
//! all come through here; what the values mean is for their readers.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use saphyr::Scalar;
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

/// Files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// How many nodes anchors and aliases may copy in one file. A job has about fifty nodes; ten
/// nested aliases of ten items each would make ten billion.
pub const MAX_ALIAS_NODES: usize = 50_000;

/// A line and column, both counted from 1 in characters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    /// The first character of a file.
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn at(mark: Marker) -> Pos {
        Pos { line: mark.line(), column: mark.col() + 1 }
    }
}

/// Where each value of a document was written, by JSON pointer (`/schedule/cron`).
///
/// The pointers share one buffer and are found by a linear scan: a job has a few dozen nodes,
/// lookups happen only for problems, and building it costs no allocation per node. A document
/// with many more nodes (a list of thousands of items) gets a hash index at its first lookup,
/// so that a problem per item does not cost a scan of them all.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    /// Every recorded pointer, end to end.
    text: String,
    values: Vec<Span>,
    keys: Vec<Span>,
    /// The source text of scalars whose JSON form reads differently (`1e3`, `0x10`, `~`).
    written: Vec<(Span, String)>,
    index: std::sync::OnceLock<Index>,
}

/// More spans than this and lookups go through an [`Index`].
const SCANNED_SPANS: usize = 256;

/// The first position recorded for each pointer, of values and of keys.
#[derive(Debug, Clone, Default)]
struct Index {
    values: HashMap<Box<str>, Pos>,
    keys: HashMap<Box<str>, Pos>,
}

/// A pointer's place in [`Spans::text`] and where its node was written.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    pos: Pos,
}

impl Spans {
    /// The position of the value at `pointer`, else of its nearest written ancestor.
    pub fn value(&self, pointer: &str) -> Pos {
        let mut pointer = pointer;
        loop {
            if let Some(pos) = self.find(false, pointer) {
                return pos;
            }
            match pointer.rfind('/') {
                Some(i) => pointer = &pointer[..i],
                None => return Pos::START,
            }
        }
    }

    /// The position of the key that holds the member at `pointer`; the value's if it has none.
    pub fn key(&self, pointer: &str) -> Pos {
        self.find(true, pointer).unwrap_or_else(|| self.value(pointer))
    }

    /// Whether a key or value was written at `pointer` (an alias's members were not).
    pub fn has(&self, pointer: &str) -> bool {
        self.find(false, pointer).is_some()
    }

    /// The value at `pointer` as the file wrote it, when its JSON form reads differently.
    pub fn written(&self, pointer: &str) -> Option<&str> {
        self.written
            .iter()
            .find(|(span, _)| &self.text[span.start..span.end] == pointer)
            .map(|(_, text)| text.as_str())
    }

    /// Where the value (or, with `keys`, the key) at `pointer` was first written.
    fn find(&self, keys: bool, pointer: &str) -> Option<Pos> {
        let list = if keys { &self.keys } else { &self.values };
        if self.values.len() + self.keys.len() <= SCANNED_SPANS {
            let mut spans = list.iter();
            return spans.find(|span| &self.text[span.start..span.end] == pointer).map(|s| s.pos);
        }
        let index = self.index.get_or_init(|| {
            let map = |list: &[Span]| {
                let mut map = HashMap::with_capacity(list.len());
                for span in list {
                    map.entry(self.text[span.start..span.end].into()).or_insert(span.pos);
                }
                map
            };
            Index { values: map(&self.values), keys: map(&self.keys) }
        });
        let map = if keys { &index.keys } else { &index.values };
        map.get(pointer).copied()
    }

    fn span(&mut self, pointer: &str, pos: Pos) -> Span {
        if self.text.capacity() == 0 {
            // Enough for a job's pointers in one allocation.
            self.text.reserve(1024);
            self.values.reserve(64);
            self.keys.reserve(48);
        }
        let start = self.text.len();
        self.text.push_str(pointer);
        Span { start, end: self.text.len(), pos }
    }

    fn add_value(&mut self, pointer: &str, pos: Pos) {
        let span = self.span(pointer, pos);
        self.values.push(span);
    }

    fn add_key(&mut self, pointer: &str, pos: Pos) {
        let span = self.span(pointer, pos);
        self.keys.push(span);
    }

    fn add_written(&mut self, pointer: &str, text: String) {
        let span = self.span(pointer, Pos::START);
        self.written.push((span, text));
    }
}

/// One YAML document of a stream.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    pub spans: Spans,
    /// Where the document's top node starts.
    pub start: Pos,
    /// Mistakes that still let the document be read, each at its position: a duplicate key
    /// (the first value is kept, so the rest of the document can still be checked).
    pub problems: Vec<YamlError>,
}

/// Why YAML text could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    /// What kind of mistake, as a stable word for machines (`duplicate-key`, `tab`, `bom`, ...).
    pub code: &'static str,
    pub message: String,
}

impl YamlError {
    fn new(pos: Pos, code: &'static str, message: impl Into<String>) -> YamlError {
        YamlError { pos, code, message: message.into() }
    }
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.pos.line, self.pos.column, self.message)
    }
}

/// The error for a file of `size` bytes, over [`MAX_FILE_BYTES`].
pub fn too_large(size: u64) -> YamlError {
    let message = format!(
        "the file is {size} bytes, over the limit of {MAX_FILE_BYTES} bytes (1 MiB): split it"
    );
    YamlError::new(Pos::START, "too-large", message)
}

/// Reads a job file, or says how large it is when it is over [`MAX_FILE_BYTES`]: a file that
/// cannot be a job is never read whole.
pub fn read_file(file: &std::path::Path) -> std::io::Result<Result<Vec<u8>, YamlError>> {
    use std::io::Read;
    let opened = std::fs::File::open(file)?;
    let size = opened.metadata()?.len();
    if size > MAX_FILE_BYTES as u64 {
        return Ok(Err(too_large(size)));
    }
    // It may have grown since: one byte past the limit is enough for `decode` to refuse it.
    let mut bytes = Vec::with_capacity(size as usize);
    opened.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes)?;
    Ok(Ok(bytes))
}

/// Checks a file's bytes before parsing: size, encoding and byte-order mark.
pub fn decode(bytes: &[u8]) -> Result<&str, YamlError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    if bytes.starts_with(&[0xFE, 0xFF]) || bytes.starts_with(&[0xFF, 0xFE]) {
        let message = "the file is UTF-16 (it starts with a UTF-16 byte-order mark): save it as \
                       UTF-8";
        return Err(YamlError::new(Pos::START, "encoding", message));
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        let message = "the file starts with a byte-order mark (U+FEFF): save it as UTF-8 \
                       without one";
        return Err(YamlError::new(Pos::START, "bom", message));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        // The prefix is valid UTF-8 by definition, so it can be counted in characters.
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        let line = valid.matches('\n').count() + 1;
        let column = valid.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
        let byte = bytes[e.valid_up_to()];
        let message =
            format!("the file is not valid UTF-8 (byte `0x{byte:02x}`): save it as UTF-8");
        YamlError::new(Pos { line, column }, "encoding", message)
    })
}

/// Parses every document of a YAML stream, failing on the first mistake of any kind.
pub fn parse(source: &str) -> Result<Vec<Document>, YamlError> {
    let docs = load(source)?;
    if let Some(problem) = docs.iter().flat_map(|d| &d.problems).next() {
        return Err(problem.clone());
    }
    Ok(docs)
}

/// Parses every document of a YAML stream, keeping mistakes that leave a document readable in
/// [`Document::problems`] so the caller can report them with everything else.
pub fn load(source: &str) -> Result<Vec<Document>, YamlError> {
    if source.len() > MAX_FILE_BYTES {
        return decode(source.as_bytes()).map(|_| Vec::new());
    }
    if source.starts_with('\u{feff}') {
        return decode(source.as_bytes()).map(|_| Vec::new());
    }
    if source.contains('\t') {
        check_indentation(source)?;
    }
    if source.contains('\r') {
        check_line_endings(source)?;
    }
    let mut loader = Loader::default();
    for event in Parser::new_from_str(source) {
        let (event, span) = event
            .map_err(|e| YamlError::new(Pos::at(*e.marker()), "yaml", e.info().to_string()))?;
        loader.event(event, span.start)?;
    }
    Ok(loader.docs)
}

/// Refuses a tab in the indentation of any line outside a block scalar. saphyr accepts some
/// (a tab before a top-level key) and words others as "found a tab while scanning a plain
/// scalar"; either way the file does not mean what it looks like in an editor.
fn check_indentation(source: &str) -> Result<(), YamlError> {
    // The indentation of the line that opened a block scalar (`key: |`), while inside it.
    let mut block: Option<usize> = None;
    let mut found: Option<Pos> = None;
    let mut more = 0;
    for (index, line) in source.lines().enumerate() {
        let spaces = line.len() - line.trim_start_matches(' ').len();
        let content = line.trim_start_matches([' ', '\t']);
        if let Some(indent) = block {
            if content.is_empty() || spaces > indent {
                continue;
            }
            block = None;
        }
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let lead = &line[..line.len() - content.len()];
        if let Some(tab) = lead.find('\t') {
            if found.is_some() {
                more += 1;
            } else {
                found = Some(Pos { line: index + 1, column: tab + 1 });
            }
        }
        if opens_block_scalar(content) {
            block = Some(spaces);
        }
    }
    match found {
        None => Ok(()),
        Some(pos) => {
            let also = match more {
                0 => String::new(),
                1 => " (and on 1 more line)".to_string(),
                n => format!(" (and on {n} more lines)"),
            };
            let message =
                format!("a tab in indentation{also}: YAML indents with spaces, never tabs");
            Err(YamlError::new(pos, "tab", message))
        }
    }
}

/// Refuses a carriage return without a line feed: YAML counts it as a line break, editors and
/// `file:line` readers mostly do not, so every position after it would be wrong.
fn check_line_endings(source: &str) -> Result<(), YamlError> {
    for (index, line) in source.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(byte) = line.find('\r') {
            let column = line[..byte].chars().count() + 1;
            let message = "a carriage return without a line feed: save the file with LF or CRLF \
                           line endings";
            return Err(YamlError::new(Pos { line: index + 1, column }, "line-ending", message));
        }
    }
    Ok(())
}

/// Whether a line ends with a block scalar header (`|`, `>-`, `|2+`) after a key, a dash or a
/// document start.
fn opens_block_scalar(content: &str) -> bool {
    let content = match content.find(" #") {
        Some(i) => &content[..i],
        None => content,
    };
    let content = content.trim_end();
    let Some(header_start) = content.rfind(['|', '>']) else {
        return false;
    };
    let indicators = &content[header_start + 1..];
    if indicators.len() > 2 || !indicators.chars().all(|c| matches!(c, '+' | '-' | '1'..='9')) {
        return false;
    }
    let before = content[..header_start].trim_end();
    let last = before.rsplit(' ').next().unwrap_or_default();
    before.is_empty()
        || before.ends_with(':')
        || last == "-"
        || last == "---"
        || last.starts_with('&')
        || last.starts_with('!')
}

/// A collection still being read.
struct Frame {
    /// The length of the collection's own pointer in [`Loader::pointer`].
    base: usize,
    anchor: usize,
    /// Nodes inside, itself included: what copying it through an alias would cost.
    nodes: usize,
    kind: FrameKind,
}

enum FrameKind {
    Sequence(Vec<Value>),
    Mapping {
        entries: Map<String, Value>,
        /// The key read and waiting for its value; `None` while the next node is a key.
        key: Option<PendingKey>,
    },
}

struct PendingKey {
    name: String,
    /// A duplicate's value is read (and its spans recorded under a throwaway pointer) but not
    /// kept.
    duplicate: bool,
}

/// Builds documents from parser events.
#[derive(Default)]
struct Loader {
    docs: Vec<Document>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, usize)>,
    /// Nodes copied by anchors and aliases so far in this file.
    copied: usize,
    spans: Spans,
    /// The pointer of the node being read; each collection keeps its prefix.
    pointer: String,
    start: Option<Pos>,
    /// Where the document opened (its `---`), the start of one that holds nothing.
    opened: Pos,
    root: Option<Value>,
    problems: Vec<YamlError>,
    /// Counts duplicates, to give each discarded value a pointer of its own.
    discarded: usize,
}

impl Loader {
    fn event(&mut self, event: Event, mark: Marker) -> Result<(), YamlError> {
        let pos = Pos::at(mark);
        let node = matches!(
            event,
            Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::Alias(_)
        );
        if node && self.stack.is_empty() {
            self.start.get_or_insert(pos);
        }
        let mapping = matches!(event, Event::MappingStart(..));
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                self.spans = Spans::default();
                self.opened = pos;
                self.start = None;
                self.root = None;
                self.anchors.clear();
            }
            Event::DocumentEnd => {
                let value = self.root.take().unwrap_or(Value::Null);
                // An empty document's empty scalar sits at the next token: use its `---`.
                let start = if value.is_null() { None } else { self.start.take() };
                self.docs.push(Document {
                    value,
                    spans: std::mem::take(&mut self.spans),
                    start: start.unwrap_or(self.opened),
                    problems: std::mem::take(&mut self.problems),
                });
            }
            Event::Scalar(text, style, anchor, tag) => {
                if self.awaiting_key() {
                    if anchor > 0 {
                        self.anchors.insert(anchor, (Value::String(text.to_string()), 1));
                    }
                    return self.key(text, pos);
                }
                self.enter_child();
                let (value, written) = scalar(text, style, tag.as_deref(), pos)?;
                if let Some(written) = written {
                    self.spans.add_written(&self.pointer, written);
                }
                self.spans.add_value(&self.pointer, pos);
                self.finish(value, 1, anchor, pos)?;
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                if self.awaiting_key() {
                    let message = "a mapping key must be a plain string, not a list or mapping";
                    return Err(YamlError::new(pos, "key", message));
                }
                if let Some(tag) = tag.as_deref() {
                    let expected = if mapping { "map" } else { "seq" };
                    if !(tag.is_yaml_core_schema() && tag.suffix == expected) {
                        return Err(unsupported_tag(tag, pos));
                    }
                }
                self.enter_child();
                self.spans.add_value(&self.pointer, pos);
                let kind = if mapping {
                    FrameKind::Mapping { entries: Map::new(), key: None }
                } else {
                    FrameKind::Sequence(Vec::new())
                };
                self.stack.push(Frame { base: self.pointer.len(), anchor, nodes: 1, kind });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = self.stack.pop().expect("the parser balances collections");
                let value = match frame.kind {
                    FrameKind::Sequence(items) => Value::Array(items),
                    FrameKind::Mapping { entries, .. } => Value::Object(entries),
                };
                self.finish(value, frame.nodes, frame.anchor, pos)?;
            }
            Event::Alias(id) => {
                let Some((value, nodes)) = self.anchors.get(&id).cloned() else {
                    return Err(YamlError::new(pos, "alias", "this alias names no anchor"));
                };
                if self.awaiting_key() {
                    let Value::String(text) = value else {
                        let message = "a mapping key must be a plain string, not an alias of \
                                       a list or mapping";
                        return Err(YamlError::new(pos, "key", message));
                    };
                    return self.key(Cow::Owned(text), pos);
                }
                self.copy(nodes, pos)?;
                self.enter_child();
                self.spans.add_value(&self.pointer, pos);
                self.finish(value, nodes, 0, pos)?;
            }
        }
        Ok(())
    }

    fn awaiting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame { kind: FrameKind::Mapping { key: None, .. }, .. }))
    }

    /// Records a mapping key, or a duplicate of one, and points at its value.
    fn key(&mut self, text: Cow<str>, pos: Pos) -> Result<(), YamlError> {
        let Some(Frame { base, kind: FrameKind::Mapping { entries, key }, .. }) =
            self.stack.last_mut()
        else {
            unreachable!("keys are only read inside a mapping");
        };
        let name = text.into_owned();
        self.pointer.truncate(*base);
        self.pointer.push('/');
        self.pointer.push_str(&escape_pointer(&name));
        let duplicate = entries.contains_key(&name);
        if duplicate {
            let first = self.spans.find(true, &self.pointer).unwrap_or(Pos::START);
            let message = format!(
                "duplicate key `{name}`: it is first set at line {}, column {}; a key may \
                 appear once in a mapping",
                first.line, first.column
            );
            self.problems.push(YamlError::new(pos, "duplicate-key", message));
            self.discarded += 1;
            self.pointer.truncate(*base);
            let _ = write!(self.pointer, "/\u{0}duplicate-{}", self.discarded);
        } else {
            self.spans.add_key(&self.pointer, pos);
        }
        *key = Some(PendingKey { name, duplicate });
        Ok(())
    }

    /// Points [`Loader::pointer`] at the node about to be read. A mapping's value is already
    /// pointed at by its key.
    fn enter_child(&mut self) {
        match self.stack.last() {
            None => self.pointer.clear(),
            Some(Frame { base, kind: FrameKind::Sequence(items), .. }) => {
                self.pointer.truncate(*base);
                let _ = write!(self.pointer, "/{}", items.len());
            }
            Some(Frame { kind: FrameKind::Mapping { .. }, .. }) => {}
        }
    }

    /// Charges a copy of `nodes` nodes against the file's budget.
    fn copy(&mut self, nodes: usize, pos: Pos) -> Result<(), YamlError> {
        self.copied += nodes;
        if self.copied > MAX_ALIAS_NODES {
            let message = format!(
                "anchors and aliases copy more than {MAX_ALIAS_NODES} nodes: refusing what \
                 looks like an alias bomb"
            );
            return Err(YamlError::new(pos, "alias", message));
        }
        Ok(())
    }

    /// Places a finished node in its parent, or makes it the document's root.
    fn finish(
        &mut self,
        value: Value,
        nodes: usize,
        anchor: usize,
        pos: Pos,
    ) -> Result<(), YamlError> {
        if anchor > 0 {
            // Keeping the anchored copy is itself a copy: nested anchors must not multiply.
            if nodes > 1 {
                self.copy(nodes, pos)?;
            }
            self.anchors.insert(anchor, (value.clone(), nodes));
        }
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(value);
            return Ok(());
        };
        parent.nodes += nodes;
        match &mut parent.kind {
            FrameKind::Sequence(items) => items.push(value),
            FrameKind::Mapping { entries, key } => {
                let pending = key.take().expect("a value follows its key");
                if !pending.duplicate {
                    entries.insert(pending.name, value);
                }
            }
        }
        Ok(())
    }
}

/// Resolves a scalar by YAML 1.2's core schema, with the leading-zero rule and tags; with the
/// text as written when its JSON form reads differently (`0x10` is `16`).
fn scalar(
    text: Cow<str>,
    style: ScalarStyle,
    tag: Option<&Tag>,
    pos: Pos,
) -> Result<(Value, Option<String>), YamlError> {
    if let Some(tag) = tag {
        return tagged_scalar(&text, tag, pos).map(|value| (value, None));
    }
    if style != ScalarStyle::Plain || has_leading_zero(&text) {
        return Ok((Value::String(text.into_owned()), None));
    }
    if text.is_empty() {
        // `name:` with nothing after it is null, never an empty string.
        return Ok((Value::Null, None));
    }
    let (value, canonical) = match Scalar::parse_from_cow(Cow::Borrowed(&text)) {
        Scalar::String(_) => return Ok((Value::String(text.into_owned()), None)),
        Scalar::Null => (Value::Null, text == "null"),
        Scalar::Boolean(b) => (Value::Bool(b), text == if b { "true" } else { "false" }),
        Scalar::Integer(i) => {
            let digits = text.strip_prefix('-').unwrap_or(&text);
            (Value::Number(i.into()), digits.bytes().all(|b| b.is_ascii_digit()) && text != "-0")
        }
        // `.inf` and `.nan` have no JSON form; as strings they still fail where a number is due.
        Scalar::FloatingPoint(f) => match Number::from_f64(f.into_inner()) {
            Some(number) => (Value::Number(number), false),
            None => return Ok((Value::String(text.into_owned()), None)),
        },
    };
    Ok((value, (!canonical).then(|| text.into_owned())))
}

/// `!!str 5` is how YAML quotes on purpose; other core tags must fit their text.
fn tagged_scalar(text: &str, tag: &Tag, pos: Pos) -> Result<Value, YamlError> {
    // The non-specific tag `! x` only says "not a plain scalar": a string.
    if tag.handle.is_empty() && tag.suffix == "!" {
        return Ok(Value::String(text.to_string()));
    }
    if !tag.is_yaml_core_schema() {
        return Err(unsupported_tag(tag, pos));
    }
    let value = match tag.suffix.as_str() {
        "str" => Some(Value::String(text.to_string())),
        "null" => matches!(text, "" | "~" | "null" | "Null" | "NULL").then_some(Value::Null),
        "bool" => match text {
            "true" | "True" | "TRUE" => Some(Value::Bool(true)),
            "false" | "False" | "FALSE" => Some(Value::Bool(false)),
            _ => None,
        },
        "int" => match Scalar::parse_from_cow(Cow::Borrowed(text)) {
            Scalar::Integer(i) if !has_leading_zero(text) => Some(Value::Number(i.into())),
            _ => None,
        },
        "float" => match Scalar::parse_from_cow(Cow::Borrowed(text)) {
            Scalar::Integer(i) => Number::from_f64(i as f64).map(Value::Number),
            Scalar::FloatingPoint(f) => Number::from_f64(f.into_inner()).map(Value::Number),
            _ => None,
        },
        _ => return Err(unsupported_tag(tag, pos)),
    };
    value.ok_or_else(|| {
        YamlError::new(pos, "tag", format!("`{text}` is not a valid `!!{}`", tag.suffix))
    })
}

fn unsupported_tag(tag: &Tag, pos: Pos) -> YamlError {
    let shown =
        if tag.is_yaml_core_schema() { format!("!!{}", tag.suffix) } else { tag.to_string() };
    YamlError::new(pos, "tag", format!("the tag `{shown}` is not supported: write plain YAML"))
}

/// `0755`, `-012`: octal in YAML 1.1, decimal in 1.2, so read as neither.
pub fn has_leading_zero(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Escapes a key for use in a JSON pointer (RFC 6901).
pub fn escape_pointer(key: &str) -> Cow<'_, str> {
    if key.contains(['~', '/']) {
        Cow::Owned(key.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(key)
    }
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

/// A JSON value as a YAML node, for writing YAML out (`catalog export`).
pub fn to_yaml(value: &Value) -> saphyr::Yaml<'static> {
    use saphyr::{Scalar, Yaml};
    match value {
        Value::Null => Yaml::Value(Scalar::Null),
        Value::Bool(b) => Yaml::Value(Scalar::Boolean(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Value(Scalar::Integer(i)),
            None => Yaml::Value(Scalar::FloatingPoint(n.as_f64().unwrap_or_default().into())),
        },
        Value::String(s) => Yaml::Value(Scalar::String(s.clone().into())),
        Value::Array(items) => Yaml::Sequence(items.iter().map(to_yaml).collect()),
        Value::Object(map) => {
            let mut out = saphyr::Mapping::new();
            for (k, v) in map {
                out.insert(Yaml::Value(Scalar::String(k.clone().into())), to_yaml(v));
            }
            Yaml::Mapping(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(source: &str) -> Value {
        let docs = parse(source).unwrap_or_else(|e| panic!("{source:?}: {e}"));
        assert_eq!(docs.len(), 1, "{source:?}");
        docs[0].value.clone()
    }

    fn error(source: &str) -> YamlError {
        match parse(source) {
            Ok(docs) => {
                panic!("{source:?} parsed: {:?}", docs.iter().map(|d| &d.value).collect::<Vec<_>>())
            }
            Err(e) => e,
        }
    }

    #[test]
    fn yaml_1_1_words_stay_strings() {
        let value = one("a: no\nb: on\nc: off\nd: yes\ne: true\nf: False\ng: y\nh: NULL\ni:\n");
        let expected = json!({
            "a": "no", "b": "on", "c": "off", "d": "yes", "e": true, "f": false, "g": "y",
            "h": null, "i": null
        });
        assert_eq!(value, expected);
    }

    #[test]
    fn numbers_follow_the_core_schema_and_leading_zeros_stay_strings() {
        let value = one("a: 0755\nb: 0o755\nc: 0x1F\nd: 1_000\ne: 1e3\nf: -012\ng: 0\nh: .inf\n");
        let expected = json!({"a": "0755", "b": 493, "c": 31, "d": "1_000", "e": 1000.0, "f": "-012", "g": 0, "h": ".inf"});
        assert_eq!(value, expected);
        let docs = parse("a: 0x1F\nb: 7\n").unwrap();
        assert_eq!(docs[0].spans.written("/a"), Some("0x1F"), "the text as written is kept");
        assert_eq!(docs[0].spans.written("/b"), None, "and only when it reads differently");
    }

    #[test]
    fn positions_point_at_values_and_keys() {
        let docs = parse("schedule:\n  cron: \"0 4 * * *\"\n  zone: x\n").unwrap();
        assert_eq!(docs[0].spans.value("/schedule/cron"), Pos { line: 2, column: 9 });
        assert_eq!(docs[0].spans.key("/schedule/zone"), Pos { line: 3, column: 3 });
        assert_eq!(docs[0].spans.key("/schedule"), Pos { line: 1, column: 1 });
        // An absent member falls back to its parent.
        assert_eq!(docs[0].spans.value("/schedule/missing").line, 2);
    }

    #[test]
    fn a_duplicate_key_names_both_places_and_keeps_the_first_value() {
        let docs = load("x:\n  a: 1\n  b: 2\n  a: [3]\n").unwrap();
        assert_eq!(docs[0].value, json!({"x": {"a": 1, "b": 2}}));
        let problem = &docs[0].problems[0];
        assert_eq!((problem.pos, problem.code), (Pos { line: 4, column: 3 }, "duplicate-key"));
        assert_eq!(
            problem.message,
            "duplicate key `a`: it is first set at line 2, column 3; a key may appear once in a \
             mapping"
        );
        assert_eq!(docs[0].spans.value("/x/a"), Pos { line: 2, column: 6 }, "{:?}", docs[0].spans);
        assert_eq!(error("{a: 1, a: 2}\n").pos, Pos { line: 1, column: 8 });
    }

    #[test]
    fn several_documents_are_several_values() {
        let docs = parse("a: 1\n---\na: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].start.line, 3);
    }

    #[test]
    fn empty_streams_have_no_documents_and_empty_documents_are_null() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# only a comment\n\n# and another\n").unwrap().is_empty());
        let docs = parse("a: 1\n---\n# nothing\n---\nb: 2\n").unwrap();
        assert_eq!(docs[1].start, Pos { line: 2, column: 1 }, "an empty document is at its `---`");
        assert_eq!(
            docs.iter().map(|d| d.value.clone()).collect::<Vec<_>>(),
            [json!({"a": 1}), Value::Null, json!({"b": 2})]
        );
    }

    #[test]
    fn anchors_and_aliases_copy_values() {
        let value = one("a: &groups [ratings, status]\nb: *groups\nc: &n 3\nd: *n\n");
        assert_eq!(
            value,
            json!({"a": ["ratings", "status"], "b": ["ratings", "status"], "c": 3, "d": 3})
        );
        assert_eq!(error("a: *nowhere\n").pos, Pos { line: 1, column: 4 });
    }

    #[test]
    fn an_alias_bomb_is_refused_quickly() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut previous = 'a';
        for name in 'b'..='j' {
            let items = vec![format!("*{previous}"); 10].join(", ");
            bomb.push_str(&format!("{name}: &{name} [{items}]\n"));
            previous = name;
        }
        let started = std::time::Instant::now();
        let e = error(&bomb);
        assert_eq!(e.code, "alias");
        assert!(e.message.contains("alias bomb"), "{e}");
        assert!(started.elapsed().as_millis() < 500, "took {:?}", started.elapsed());
    }

    #[test]
    fn nesting_past_the_parsers_limit_is_an_error_not_a_crash() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(error(&deep).code, "yaml");
    }

    #[test]
    fn tabs_in_indentation_are_refused_where_they_are() {
        let e = error("a: 1\nb:\n\tc: 2\n\td: 3\n");
        assert_eq!((e.pos, e.code), (Pos { line: 3, column: 1 }, "tab"));
        assert_eq!(
            e.message,
            "a tab in indentation (and on 1 more line): YAML indents with spaces, never tabs"
        );
        assert_eq!(error("\ta: 1\n").pos, Pos { line: 1, column: 1 });
        assert_eq!(error("a:\n  - 1\n  \t- 2\n").pos, Pos { line: 3, column: 3 });
        // Inside a block scalar a tab is text, and after a value it is spacing.
        assert_eq!(one("a: |\n  x\n  \ty\nb: 1\t# note\n"), json!({"a": "x\n\ty\n", "b": 1}));
    }

    #[test]
    fn a_lone_carriage_return_is_refused_and_crlf_is_fine() {
        let e = error("a: 1\nb: 2\rc: 3\n");
        assert_eq!((e.pos, e.code), (Pos { line: 2, column: 5 }, "line-ending"));
        assert_eq!(one("a: 1\r\nb: \"x\"\r\n"), json!({"a": 1, "b": "x"}));
    }

    #[test]
    fn bytes_are_checked_before_parsing() {
        let e = decode(b"\xEF\xBB\xBFa: 1\n").unwrap_err();
        assert_eq!((e.pos, e.code), (Pos::START, "bom"));
        let e = decode(b"a: 1\nb: caf\xE9\n").unwrap_err();
        assert_eq!((e.pos, e.code), (Pos { line: 2, column: 7 }, "encoding"));
        assert_eq!(e.message, "the file is not valid UTF-8 (byte `0xe9`): save it as UTF-8");
        let e = decode(b"\xFF\xFEa\x00").unwrap_err();
        assert!(e.message.contains("UTF-16"), "{e}");
        let big = vec![b'#'; MAX_FILE_BYTES + 1];
        assert_eq!(decode(&big).unwrap_err().code, "too-large");
        assert_eq!(decode(b"a: 1\n").unwrap(), "a: 1\n");
    }

    #[test]
    fn tags_other_than_the_core_schemas_are_refused() {
        assert_eq!(one("a: !!str 5\nb: !!int 7\nc: ! x\n"), json!({"a": "5", "b": 7, "c": "x"}));
        let e = error("a: !custom x\n");
        assert_eq!(
            (e.pos, e.message.as_str()),
            (Pos { line: 1, column: 4 }, "the tag `!custom` is not supported: write plain YAML")
        );
        assert_eq!(error("a: !!binary aGk=\n").code, "tag");
        assert_eq!(error("a: !!int x\n").message, "`x` is not a valid `!!int`");
    }

    #[test]
    fn complex_keys_are_refused() {
        assert_eq!(error("? [1, 2]\n: x\n").code, "key");
        assert_eq!(one("1: x\ntrue: y\n"), json!({"1": "x", "true": "y"}));
    }

    #[test]
    fn pointers_read_as_paths() {
        assert_eq!(pointer_to_path("/fieldGroups/2"), "fieldGroups[2]");
        assert_eq!(pointer_to_path("/schedule/timezone"), "schedule.timezone");
        assert_eq!(escape_pointer("a/b~c"), "a~1b~0c");
    }
}
