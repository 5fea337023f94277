//! YAML text to a located node tree, and serde deserialization from that tree with located errors.
//!
//! serde stops at the first error it meets. To report every mistake in a
//! pipeline at once, the YAML is first read into a tree of [`Node`]s where
//! every key and value keeps its line and column (the only place that calls
//! serde-saphyr), and each entry of each section is then deserialized from
//! its own node. An error raised while deserializing a node is pinned to
//! the innermost node that raised it.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A 1-based line and column in a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One YAML value with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts in the YAML file.
    pub pos: Pos,
    /// The value.
    pub value: Value,
}

/// The value of a YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, keys in the order written.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// A short name of the value's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The string of a scalar node as written, for keys and plain values.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(x) => Some(x.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where the parser stopped, when it knows.
    pub pos: Option<Pos>,
    /// What went wrong.
    pub message: String,
}

/// Parses YAML text into a located node tree. This is the one place that
/// calls serde-saphyr.
pub fn parse_yaml(text: &str) -> Result<Node, SyntaxError> {
    let options = serde_saphyr::options! { with_snippet: false };
    match serde_saphyr::from_str_with_options::<serde_saphyr::Spanned<RawNode>>(text, options) {
        Ok(spanned) => Ok(spanned_to_node(spanned)),
        Err(err) => {
            let pos = err.location().map(|loc| Pos {
                line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
                col: u32::try_from(loc.column()).unwrap_or(u32::MAX),
            });
            let message = strip_location_suffix(&err.without_snippet().to_string());
            Err(SyntaxError { pos, message })
        }
    }
}

/// serde-saphyr appends ` at line L, column C` to its messages; the
/// position is reported separately, in the `file:line:col:` prefix.
fn strip_location_suffix(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) => message[..idx].to_string(),
        None => message.to_string(),
    }
}

/// The shape serde-saphyr fills in; converted to [`Node`] right after.
enum RawNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<serde_saphyr::Spanned<RawNode>>),
    Map(
        Vec<(
            serde_saphyr::Spanned<RawNode>,
            serde_saphyr::Spanned<RawNode>,
        )>,
    ),
}

fn spanned_to_node(spanned: serde_saphyr::Spanned<RawNode>) -> Node {
    let loc = spanned.referenced;
    let pos = Pos {
        line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
        col: u32::try_from(loc.column()).unwrap_or(u32::MAX),
    };
    let value = match spanned.value {
        RawNode::Null => Value::Null,
        RawNode::Bool(b) => Value::Bool(b),
        RawNode::Int(i) => Value::Int(i),
        RawNode::Float(x) => Value::Float(x),
        RawNode::Str(s) => Value::Str(s),
        RawNode::Seq(items) => Value::Seq(items.into_iter().map(spanned_to_node).collect()),
        RawNode::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (spanned_to_node(k), spanned_to_node(v)))
                .collect(),
        ),
    };
    Node { pos, value }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = RawNode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<RawNode, E> {
                Ok(RawNode::Null)
            }
            fn visit_none<E>(self) -> Result<RawNode, E> {
                Ok(RawNode::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
                RawNode::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
                Ok(RawNode::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
                Ok(RawNode::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawNode, E> {
                i64::try_from(v)
                    .map(RawNode::Int)
                    .map_err(|_| E::custom(format!("integer {v} is too large")))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
                Ok(RawNode::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
                Ok(RawNode::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
                Ok(RawNode::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(RawNode::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(RawNode::Map(entries))
            }
        }
        deserializer.deserialize_any(RawVisitor)
    }
}

/// An error raised while deserializing a node, pinned to a position.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeError {
    /// The innermost node position known for the error.
    pub pos: Option<Pos>,
    /// What went wrong, as serde words it.
    pub message: String,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NodeError {}

impl de::Error for NodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        NodeError {
            pos: None,
            message: msg.to_string(),
        }
    }
}

impl NodeError {
    fn at(mut self, pos: Pos) -> Self {
        self.pos.get_or_insert(pos);
        self
    }
}

/// Deserializes a `T` from a node, pinning any error to the node that raised it.
pub fn from_node<'a, T: Deserialize<'a>>(node: &'a Node) -> Result<T, NodeError> {
    T::deserialize(NodeDeserializer(node)).map_err(|e| refine_position(e, node))
}

/// serde's internally tagged enums buffer their content, so an unknown key
/// or an unknown `type` inside them is reported without a node. The key or
/// value the message names is looked up in the node to point at it.
fn refine_position(err: NodeError, node: &Node) -> NodeError {
    let between = |prefix: &str, close: char| {
        let start = err.message.find(prefix)? + prefix.len();
        let end = err.message[start..].find(close)? + start;
        Some(err.message[start..end].to_string())
    };
    let target = between("unknown field `", '`')
        .or_else(|| between("unknown variant `", '`'))
        .or_else(|| between("invalid type: string \"", '"'))
        .or_else(|| between("invalid value: string \"", '"'));
    let message = friendly_types(&err.message);
    match target.and_then(|name| find_scalar(node, &name)) {
        Some(pos) => NodeError {
            pos: Some(pos),
            message,
        },
        None => NodeError {
            pos: err.pos,
            message,
        },
    }
}

/// serde names Rust types (`expected i64`); users wrote YAML.
fn friendly_types(message: &str) -> String {
    static RUST_STRUCT: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"expected struct [A-Za-z]+").ok());
    let mut text = match RUST_STRUCT.as_ref() {
        Some(re) => re.replace_all(message, "expected a mapping").into_owned(),
        None => message.to_string(),
    };
    if text.starts_with("invalid type: boolean") && text.ends_with("expected a string") {
        // `y`, `n`, `yes`, `on`… are booleans in YAML: a column named `y`
        // is a classic surprise.
        text.push_str(" (YAML reads `y`, `n`, `yes`, `no`, `on`, `off`, `true` and `false` as booleans: quote the name, as in \"y\")");
    }
    for (rust, yaml) in [
        ("expected i64", "expected an integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
        ("expected a character", "expected a single character"),
        (
            "invalid type: unit value, expected field identifier",
            "a key is YAML's null (`null`, `~` or nothing): quote it or use another name",
        ),
    ] {
        text = text.replace(rust, yaml);
    }
    text
}

/// The position of the first key or scalar value equal to `text` below `node`.
fn find_scalar(node: &Node, text: &str) -> Option<Pos> {
    match &node.value {
        Value::Str(s) if s == text => Some(node.pos),
        Value::Map(entries) => entries.iter().find_map(|(k, v)| {
            if k.scalar_text().as_deref() == Some(text) {
                Some(k.pos)
            } else {
                find_scalar(v, text)
            }
        }),
        Value::Seq(items) => items.iter().find_map(|item| find_scalar(item, text)),
        _ => None,
    }
}

struct NodeDeserializer<'a>(&'a Node);

impl<'a> NodeDeserializer<'a> {
    fn pinned<T>(&self, result: Result<T, NodeError>) -> Result<T, NodeError> {
        result.map_err(|e| e.at(self.0.pos))
    }
}

macro_rules! forward_to_any {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
            self.deserialize_any(visitor)
        })*
    };
}

impl<'de> Deserializer<'de> for NodeDeserializer<'de> {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let node = self.0;
        let result = match &node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(x) => visitor.visit_f64(*x),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Seq(items) => visitor.visit_seq(NodeSeq {
                items: items.iter(),
            }),
            Value::Map(entries) => visitor.visit_map(NodeMap {
                entries: entries.iter(),
                value: None,
            }),
        };
        self.pinned(result)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match self.0.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        let result = match &self.0.value {
            Value::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            other => Err(de::Error::custom(format!(
                "expected one of the allowed names, found {}",
                other.kind()
            ))),
        };
        self.pinned(result)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32
        deserialize_f64 deserialize_char deserialize_str deserialize_string deserialize_bytes
        deserialize_byte_buf deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }
}

struct NodeSeq<'a> {
    items: std::slice::Iter<'a, Node>,
}

impl<'de> SeqAccess<'de> for NodeSeq<'de> {
    type Error = NodeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, NodeError> {
        match self.items.next() {
            Some(item) => seed.deserialize(NodeDeserializer(item)).map(Some),
            None => Ok(None),
        }
    }
}

struct NodeMap<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for NodeMap<'de> {
    type Error = NodeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(NodeDeserializer(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        match self.value.take() {
            Some(value) => seed.deserialize(NodeDeserializer(value)),
            None => Err(de::Error::custom("value requested before its key")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        k: Option<u32>,
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let node = parse_yaml("a: 1\nb:\n  c: x\n").expect("valid yaml");
        let Value::Map(entries) = &node.value else {
            panic!("expected a map")
        };
        assert_eq!(entries[1].0.pos, Pos { line: 2, col: 1 });
        let Value::Map(inner) = &entries[1].1.value else {
            panic!("expected a map")
        };
        assert_eq!(inner[0].1.pos, Pos { line: 3, col: 6 });
    }

    #[test]
    fn pins_unknown_key_to_its_line() {
        let node = parse_yaml("name: x\nkk: 3\n").expect("valid yaml");
        let err = from_node::<Sample>(&node).expect_err("unknown key");
        assert_eq!(err.pos, Some(Pos { line: 2, col: 1 }));
        assert!(
            err.message.contains("unknown field `kk`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn pins_wrong_type_to_the_value() {
        let node = parse_yaml("name: x\nk: six\n").expect("valid yaml");
        let err = from_node::<Sample>(&node).expect_err("wrong type");
        assert_eq!(err.pos, Some(Pos { line: 2, col: 4 }));
    }

    #[test]
    fn names_yaml_shapes_not_rust_types() {
        let node = parse_yaml("5").expect("valid yaml");
        let err = from_node::<Sample>(&node).expect_err("not a mapping");
        assert_eq!(err.message, "invalid type: integer `5`, expected a mapping");
    }

    #[test]
    fn reports_syntax_error_position() {
        let err = parse_yaml("name: [1\n").expect_err("bad yaml");
        assert_eq!(err.pos, Some(Pos { line: 1, col: 7 }));
        assert!(!err.message.contains(" at line "), "{}", err.message);
    }
}
