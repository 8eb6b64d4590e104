//! Positions of field paths in the original text.
//!
//! serde errors from an untyped tree (plugin configs, semantic checks) carry no span,
//! only a field path. `toml_edit::ImDocument` keeps the byte span of every key, value
//! and table header, so walking it by path gives the line of the offending value.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, TableLike, Value};

/// Maps field paths (`routes[1].service`) and byte offsets to 1-based line and column.
pub struct SpanIndex {
    text: String,
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
    /// `None` when the text is not valid TOML; `locate` then finds nothing.
    doc: Option<ImDocument<String>>,
}

impl SpanIndex {
    pub fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SpanIndex { text: text.to_string(), line_starts, doc: ImDocument::parse(text.to_string()).ok() }
    }

    /// 1-based line and column (in characters) of a byte offset; offsets past the end
    /// or inside a character are clamped.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line_index).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..)
            .map(|rest| rest.char_indices().take_while(|(i, _)| start + i < offset).count())
            .unwrap_or(0);
        (line_index + 1, column + 1)
    }

    /// Position of the value that `path` names, such as `routes[1].service` or
    /// `plugins[0].config.targets[0].model`. A path that does not exist in the file
    /// (a defaulted field, an index past the end) falls back to its nearest written
    /// parent. `None` only when the text did not parse.
    pub fn locate(&self, path: &str) -> Option<(usize, usize)> {
        self.find(path, false)
    }

    /// Like `locate`, but when `path` ends in a key written in the file, the position
    /// of that key rather than of its value: where an unknown field is misspelt.
    pub fn locate_key(&self, path: &str) -> Option<(usize, usize)> {
        self.find(path, true)
    }

    fn find(&self, path: &str, at_key: bool) -> Option<(usize, usize)> {
        let doc = self.doc.as_ref()?;
        let mut node = Node::Table(doc.as_table());
        let mut best = 0;
        let segments = parse_path(path);
        let last = segments.len().saturating_sub(1);
        for (n, segment) in segments.iter().enumerate() {
            let Some((child, key_span)) = node.child(segment) else {
                break;
            };
            // Prefer the value's own span; implicit tables (from dotted keys or
            // `[a.b]` headers skipping `a`) have none, so use their key or contents.
            let span = if at_key && n == last { key_span.or_else(|| child.span()) } else { child.span().or(key_span) };
            if let Some(span) = span.or_else(|| child.first_span()) {
                best = span.start;
            }
            node = child;
        }
        Some(self.position(best))
    }
}

#[derive(Debug, PartialEq)]
enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

/// Splits `a.b[1][2].c` into keys and indices. Keys containing `.` or `[` cannot be
/// told apart from structure; none of the schema's keys do.
fn parse_path(path: &str) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            segments.push(Segment::Key(key));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else { break };
            match inner[..end].parse() {
                Ok(index) => segments.push(Segment::Index(index)),
                Err(_) => return segments,
            }
            rest = &inner[end + 1..];
        }
    }
    segments
}

/// A position in the document: toml_edit stores tables of arrays of tables, values in
/// arrays and items under keys as different types.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(item) => item.span(),
            Node::Table(table) => table.span(),
            Node::Value(value) => value.span(),
        }
    }

    fn table_like(self) -> Option<&'a dyn TableLike> {
        match self {
            Node::Item(item) => item.as_table_like(),
            Node::Table(table) => Some(table),
            Node::Value(value) => value.as_inline_table().map(|t| t as &dyn TableLike),
        }
    }

    /// The child at `segment`, with the span of its key when it has one.
    fn child(self, segment: &Segment<'_>) -> Option<(Node<'a>, Option<Range<usize>>)> {
        match *segment {
            Segment::Key(key) => {
                let (key, item) = self.table_like()?.get_key_value(key)?;
                Some((Node::Item(item), key.span()))
            }
            Segment::Index(index) => {
                let child = match self {
                    Node::Item(Item::ArrayOfTables(array)) => Node::Table(array.get(index)?),
                    Node::Item(Item::Value(Value::Array(array))) | Node::Value(Value::Array(array)) => {
                        Node::Value(array.get(index)?)
                    }
                    _ => return None,
                };
                Some((child, None))
            }
        }
    }

    /// The earliest span among this node's descendants (for nodes without their own).
    fn first_span(self) -> Option<Range<usize>> {
        let table = self.table_like()?;
        table
            .iter()
            .filter_map(|(key, item)| {
                let node = Node::Item(item);
                table.key(key).and_then(|k| k.span()).or_else(|| node.span()).or_else(|| node.first_span())
            })
            .min_by_key(|span| span.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# comment
[server]
listen = ["0.0.0.0:8000", "bad"]

[[routes]]
name = "a"
service = "s"

[[routes]]
name = "b"
  service = "nope"

[[plugins]]
name = "key-auth"
config.key_names = ["apikey"]

[[plugins]]
name = "ai-proxy-advanced"
[plugins.config.balancer]
algorithm = "round-robin"
[[plugins.config.targets]]
model = { provider = "openai", options = { max_tokens = 0 } }
"#;

    #[test]
    fn parses_paths() {
        assert_eq!(
            parse_path("plugins[2].config.targets[0].model"),
            vec![
                Segment::Key("plugins"),
                Segment::Index(2),
                Segment::Key("config"),
                Segment::Key("targets"),
                Segment::Index(0),
                Segment::Key("model"),
            ]
        );
        assert_eq!(parse_path(""), vec![]);
    }

    #[test]
    fn locates_values_tables_and_arrays() {
        let index = SpanIndex::new(TEXT);
        assert_eq!(index.locate("server.listen[1]"), Some((3, 27)));
        assert_eq!(index.locate("routes[1]"), Some((9, 1)));
        assert_eq!(index.locate("routes[1].service"), Some((11, 13)));
        assert_eq!(index.locate("plugins[0].config.key_names"), Some((15, 20)));
        // `config` exists only through a dotted key: its key's line.
        assert_eq!(index.locate("plugins[0].config").map(|p| p.0), Some(15));
        assert_eq!(index.locate("plugins[1].config.balancer.algorithm"), Some((20, 13)));
        assert_eq!(index.locate("plugins[1].config.targets[0].model.options.max_tokens"), Some((22, 57)));
        // `plugins[1].config` is implicit (only `[plugins.config.balancer]` is written).
        assert_eq!(index.locate("plugins[1].config").map(|p| p.0), Some(19));
    }

    #[test]
    fn locates_keys_of_fields() {
        let index = SpanIndex::new(TEXT);
        assert_eq!(index.locate_key("routes[1].service"), Some((11, 3)));
        assert_eq!(index.locate_key("plugins[0].config.key_names"), Some((15, 8)));
        assert_eq!(index.locate_key("plugins[1].config.targets[0].model.options.max_tokens"), Some((22, 44)));
        // Not a key at the end, or not written: as `locate`.
        assert_eq!(index.locate_key("server.listen[1]"), Some((3, 27)));
        assert_eq!(index.locate_key("routes[1].strip_path"), Some((9, 1)));
    }

    #[test]
    fn falls_back_to_nearest_parent() {
        let index = SpanIndex::new(TEXT);
        assert_eq!(index.locate("routes[1].strip_path"), Some((9, 1)));
        assert_eq!(index.locate("routes[7].service"), Some((5, 1)));
        assert_eq!(index.locate("server.admin_listen"), Some((2, 1)));
        assert_eq!(index.locate("nothing.here"), Some((1, 1)));
    }

    #[test]
    fn positions_count_characters() {
        let index = SpanIndex::new("a = \"é\"\nb = 1\n");
        assert_eq!(index.position(0), (1, 1));
        assert_eq!(index.position(9), (2, 1));
        assert_eq!(index.position(11), (2, 3));
        assert_eq!(index.position(1000), (3, 1));
    }
}
