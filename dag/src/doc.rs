//! Rich text: a ProseMirror document in the schema of `prosemirror-markdown`.
//!
//! The browser edits documents with ProseMirror and that package's `schema`, and round-trips
//! them through Markdown; the node stores the editor's `toJSON()` form unchanged inside DAG-CBOR
//! records. The schema is frozen: its nodes are `doc`, `paragraph`, `blockquote`,
//! `horizontal_rule`, `heading`, `code_block`, `ordered_list`, `bullet_list`, `list_item`,
//! `text`, `image` and `hard_break`, its marks `em`, `strong`, `link` and `code`.
//!
//! Decoding is strict: an unknown node type, mark, attribute or field is an error, and so is a
//! node in a place the schema does not allow it (a paragraph inside a paragraph, a list item
//! outside a list). [`Doc::validate`] checks what the types cannot: sizes, nesting, heading
//! levels, and that links and images point only where they may.
//!
//! [`Doc::from_markdown`] reads CommonMark (raw HTML is kept as literal text, never markup) and
//! [`Doc::to_markdown`] writes it back so that reading it again gives the same document.

use std::{collections::BTreeMap, fmt};

use ipld_core::ipld::Ipld;
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor},
    ser::SerializeMap,
};

use crate::{Cid, registry::SchemaError};

/// How deeply nodes may nest: the doc is at depth 0, its blocks at 1, and so on.
pub const MAX_DEPTH: usize = 16;
/// How many nodes a document may have, the doc itself not counted.
pub const MAX_NODES: usize = 100_000;
/// How many characters of text (text nodes, including code) a document may hold.
pub const MAX_TEXT: usize = 500_000;
/// The longest link `href` or image `src`.
pub const MAX_URL: usize = 2048;
/// The longest attribute text: image `alt` and `title`, link `title`, code block `params`.
pub const MAX_ATTR: usize = 1000;
/// The highest start number of an ordered list (Markdown allows nine digits).
pub const MAX_ORDER: u32 = 999_999_999;

/// A rich-text document: ProseMirror's `doc` node, `{"type": "doc", "content": [...]}`.
///
/// A document holds at least one block; the empty document is one empty paragraph, which is
/// what an empty editor holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// The top-level blocks.
    pub content: Vec<Block>,
}

/// A block node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// `paragraph`: inline content.
    Paragraph {
        /// Text, images and hard breaks.
        content: Vec<Inline>,
    },
    /// `heading`, attribute `level` (1 to 6).
    Heading {
        /// 1 for the largest.
        level: u8,
        /// Text and images (no hard breaks).
        content: Vec<Inline>,
    },
    /// `blockquote`: quoted blocks.
    Blockquote {
        /// At least one block.
        content: Vec<Block>,
    },
    /// `horizontal_rule`: a thematic break.
    HorizontalRule,
    /// `code_block`, attribute `params` (the info string, usually a language); its content is
    /// one unmarked text node, or none when the code is empty.
    CodeBlock {
        /// The info string, may be empty.
        params: String,
        /// The code, without a final newline.
        text: String,
    },
    /// `ordered_list`, attributes `order` (the first number) and `tight`.
    OrderedList {
        /// The number of the first item.
        order: u32,
        /// Items not separated by blank lines in Markdown.
        tight: bool,
        /// At least one item.
        content: Vec<ListItem>,
    },
    /// `bullet_list`, attribute `tight`.
    BulletList {
        /// Items not separated by blank lines in Markdown.
        tight: bool,
        /// At least one item.
        content: Vec<ListItem>,
    },
}

/// A `list_item`: the blocks of one item of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    /// At least one block.
    pub content: Vec<Block>,
}

/// An inline node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    /// `text`: a non-empty run of characters.
    Text {
        /// The characters.
        text: String,
        /// Its marks.
        marks: Marks,
    },
    /// `image`, attributes `src`, `alt` and `title`.
    Image {
        /// `ipfs://<cid>` or `/ipfs/<cid>`: images are shown from the node's own gateway.
        src: String,
        /// The text shown instead of the image.
        alt: Option<String>,
        /// A tooltip.
        title: Option<String>,
        /// Its marks (a link around the image, for example).
        marks: Marks,
    },
    /// `hard_break`: a line break inside a paragraph.
    HardBreak {
        /// Its marks.
        marks: Marks,
    },
}

/// The marks on an inline node, in the schema's order: `em`, `strong`, `link`, `code`.
///
/// ProseMirror keeps at most one mark of each type, sorted by that order; a struct makes any
/// other set unrepresentable. Serialized as ProseMirror's array of mark objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    /// `em`: emphasis.
    pub em: bool,
    /// `strong`: strong emphasis.
    pub strong: bool,
    /// `link`.
    pub link: Option<LinkMark>,
    /// `code`: inline code.
    pub code: bool,
}

/// The attributes of a `link` mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkMark {
    /// Where it points: `http:`, `https:`, `mailto:`, `ipfs://`, a path or a `#fragment`.
    pub href: String,
    /// A tooltip.
    pub title: Option<String>,
}

impl Default for Doc {
    fn default() -> Self {
        Self {
            content: vec![Block::Paragraph { content: vec![] }],
        }
    }
}

impl Inline {
    /// An unmarked text node.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text {
            text: text.into(),
            marks: Marks::default(),
        }
    }

    /// This node's marks.
    pub fn marks(&self) -> &Marks {
        match self {
            Self::Text { marks, .. } | Self::Image { marks, .. } | Self::HardBreak { marks } => {
                marks
            }
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::HardBreak { .. } => "hard_break",
        }
    }
}

impl Marks {
    /// No marks.
    pub fn none() -> Self {
        Self::default()
    }

    /// True when there are no marks.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Block {
    fn type_name(&self) -> &'static str {
        match self {
            Self::Paragraph { .. } => "paragraph",
            Self::Heading { .. } => "heading",
            Self::Blockquote { .. } => "blockquote",
            Self::HorizontalRule => "horizontal_rule",
            Self::CodeBlock { .. } => "code_block",
            Self::OrderedList { .. } => "ordered_list",
            Self::BulletList { .. } => "bullet_list",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Serialization: exactly ProseMirror's `toJSON()`. Every attribute is written, defaults and
// nulls included; `content` and `marks` are left out when empty.

struct Content<'a, T>(&'a [T]);

impl<T: Serialize> Serialize for Content<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0)
    }
}

/// Writes `{"type": ty, "attrs": attrs?, "content": content?}`.
fn node<S: Serializer, A: Serialize, T: Serialize>(
    s: S,
    ty: &str,
    attrs: Option<A>,
    content: &[T],
) -> Result<S::Ok, S::Error> {
    let len = 1 + usize::from(attrs.is_some()) + usize::from(!content.is_empty());
    let mut m = s.serialize_map(Some(len))?;
    m.serialize_entry("type", ty)?;
    if let Some(a) = attrs {
        m.serialize_entry("attrs", &a)?;
    }
    if !content.is_empty() {
        m.serialize_entry("content", &Content(content))?;
    }
    m.end()
}

/// Nodes without attributes.
const NO_ATTRS: Option<()> = None;

impl Serialize for Doc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        node(s, "doc", NO_ATTRS, &self.content)
    }
}

impl Serialize for ListItem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        node(s, "list_item", NO_ATTRS, &self.content)
    }
}

#[derive(Serialize)]
struct HeadingAttrs {
    level: u8,
}

#[derive(Serialize)]
struct CodeBlockAttrs<'a> {
    params: &'a str,
}

#[derive(Serialize)]
struct OrderedListAttrs {
    order: u32,
    tight: bool,
}

#[derive(Serialize)]
struct BulletListAttrs {
    tight: bool,
}

#[derive(Serialize)]
struct ImageAttrs<'a> {
    src: &'a str,
    alt: Option<&'a str>,
    title: Option<&'a str>,
}

#[derive(Serialize)]
struct LinkAttrs<'a> {
    href: &'a str,
    title: Option<&'a str>,
}

impl Serialize for Block {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Paragraph { content } => node(s, "paragraph", NO_ATTRS, content),
            Self::Heading { level, content } => {
                node(s, "heading", Some(HeadingAttrs { level: *level }), content)
            }
            Self::Blockquote { content } => node(s, "blockquote", NO_ATTRS, content),
            Self::HorizontalRule => node::<_, (), Inline>(s, "horizontal_rule", None, &[]),
            Self::CodeBlock { params, text } => {
                let content = if text.is_empty() {
                    vec![]
                } else {
                    vec![Inline::text(text.as_str())]
                };
                node(s, "code_block", Some(CodeBlockAttrs { params }), &content)
            }
            Self::OrderedList {
                order,
                tight,
                content,
            } => node(
                s,
                "ordered_list",
                Some(OrderedListAttrs {
                    order: *order,
                    tight: *tight,
                }),
                content,
            ),
            Self::BulletList { tight, content } => node(
                s,
                "bullet_list",
                Some(BulletListAttrs { tight: *tight }),
                content,
            ),
        }
    }
}

impl Serialize for Inline {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let marks = self.marks();
        let has_marks = !marks.is_empty();
        let len = match self {
            Self::Text { .. } | Self::Image { .. } => 2,
            Self::HardBreak { .. } => 1,
        } + usize::from(has_marks);
        let mut m = s.serialize_map(Some(len))?;
        m.serialize_entry("type", self.type_name())?;
        match self {
            Self::Text { text, .. } => m.serialize_entry("text", text)?,
            Self::Image {
                src, alt, title, ..
            } => m.serialize_entry(
                "attrs",
                &ImageAttrs {
                    src,
                    alt: alt.as_deref(),
                    title: title.as_deref(),
                },
            )?,
            Self::HardBreak { .. } => {}
        }
        if has_marks {
            m.serialize_entry("marks", marks)?;
        }
        m.end()
    }
}

struct MarkOut<'a> {
    ty: &'static str,
    link: Option<&'a LinkMark>,
}

impl Serialize for MarkOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1 + usize::from(self.link.is_some())))?;
        m.serialize_entry("type", self.ty)?;
        if let Some(l) = self.link {
            m.serialize_entry(
                "attrs",
                &LinkAttrs {
                    href: &l.href,
                    title: l.title.as_deref(),
                },
            )?;
        }
        m.end()
    }
}

impl Serialize for Marks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = Vec::with_capacity(4);
        let plain = |ty| MarkOut { ty, link: None };
        if self.em {
            out.push(plain("em"));
        }
        if self.strong {
            out.push(plain("strong"));
        }
        if let Some(l) = &self.link {
            out.push(MarkOut {
                ty: "link",
                link: Some(l),
            });
        }
        if self.code {
            out.push(plain("code"));
        }
        s.collect_seq(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Deserialization. Hand-written rather than `#[serde(tag = "type")]`: an internally tagged enum
// buffers its input and cannot reject unknown fields, and `type` need not come first (DAG-CBOR
// sorts `text` before it, DAG-JSON sorts it last). Each node is read field by field, then built
// once its type is known; children are built first, so an error names the deepest path.

const NODE_FIELDS: &[&str] = &["type", "attrs", "content", "text", "marks"];
const NODE_TYPES: &str = "doc, paragraph, blockquote, horizontal_rule, heading, code_block, \
                          ordered_list, bullet_list, list_item, text, image, hard_break";

/// Any node, before its parent checks that it belongs there.
enum AnyNode {
    Doc(Doc),
    Block(Block),
    Item(ListItem),
    Inline(Inline),
}

impl AnyNode {
    fn type_name(&self) -> &'static str {
        match self {
            Self::Doc(_) => "doc",
            Self::Block(b) => b.type_name(),
            Self::Item(_) => "list_item",
            Self::Inline(i) => i.type_name(),
        }
    }
}

/// Reads one node at `depth`, refusing to go deeper than [`MAX_DEPTH`].
#[derive(Clone, Copy)]
struct NodeSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for NodeSeed {
    type Value = AnyNode;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AnyNode, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom(format!(
                "nodes nested more than {MAX_DEPTH} deep"
            )));
        }
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed {
    type Value = AnyNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ProseMirror node {\"type\": …}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyNode, A::Error> {
        let mut fields = RawNode::default();
        while let Some(key) = map.next_key::<String>()? {
            let dup = || de::Error::custom(format!("field `{key}` given twice"));
            match key.as_str() {
                "type" if fields.ty.is_none() => fields.ty = Some(map.next_value()?),
                "attrs" if fields.attrs.is_none() => fields.attrs = Some(map.next_value()?),
                "content" if fields.content.is_none() => {
                    fields.content = Some(map.next_value_seed(ContentSeed {
                        depth: self.depth + 1,
                    })?);
                }
                "text" if fields.text.is_none() => fields.text = Some(map.next_value()?),
                "marks" if fields.marks.is_none() => fields.marks = Some(map.next_value()?),
                "type" | "attrs" | "content" | "text" | "marks" => return Err(dup()),
                other => return Err(de::Error::unknown_field(other, NODE_FIELDS)),
            }
        }
        fields.build().map_err(de::Error::custom)
    }
}

struct ContentSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ContentSeed {
    type Value = Vec<AnyNode>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<AnyNode>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ContentSeed {
    type Value = Vec<AnyNode>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of nodes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<AnyNode>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(n) = seq.next_element_seed(NodeSeed { depth: self.depth })? {
            out.push(n);
        }
        Ok(out)
    }
}

#[derive(Default)]
struct RawNode {
    ty: Option<String>,
    attrs: Option<BTreeMap<String, Ipld>>,
    content: Option<Vec<AnyNode>>,
    text: Option<String>,
    marks: Option<Marks>,
}

/// Takes typed attributes out of a node's `attrs`; whatever is left over is unknown.
struct Attrs {
    owner: &'static str,
    map: BTreeMap<String, Ipld>,
}

impl Attrs {
    fn new(owner: &'static str, map: Option<BTreeMap<String, Ipld>>) -> Self {
        Self {
            owner,
            map: map.unwrap_or_default(),
        }
    }

    fn take(&mut self, name: &str) -> Option<Ipld> {
        self.map.remove(name)
    }

    fn wrong(&self, name: &str, what: &str, found: &Ipld) -> String {
        format!(
            "attribute `{name}` of {} must be {what}, found {found:?}",
            self.owner
        )
    }

    fn string(&mut self, name: &str, default: Option<&str>) -> Result<String, String> {
        match (self.take(name), default) {
            (Some(Ipld::String(s)), _) => Ok(s),
            (None, Some(d)) => Ok(d.to_owned()),
            (None, None) => Err(format!(
                "{} needs the attribute `{name}`",
                crate::registry::with_article(self.owner)
            )),
            (Some(other), _) => Err(self.wrong(name, "a string", &other)),
        }
    }

    fn nullable_string(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.take(name) {
            Some(Ipld::String(s)) => Ok(Some(s)),
            None | Some(Ipld::Null) => Ok(None),
            Some(other) => Err(self.wrong(name, "a string or null", &other)),
        }
    }

    fn bool(&mut self, name: &str, default: bool) -> Result<bool, String> {
        match self.take(name) {
            Some(Ipld::Bool(b)) => Ok(b),
            None => Ok(default),
            Some(other) => Err(self.wrong(name, "true or false", &other)),
        }
    }

    fn int<T: TryFrom<i128>>(&mut self, name: &str, default: T) -> Result<T, String> {
        match self.take(name) {
            None => Ok(default),
            Some(Ipld::Integer(n)) => T::try_from(n)
                .map_err(|_| format!("attribute `{name}` of {}: {n} is out of range", self.owner)),
            Some(other) => Err(self.wrong(name, "an integer", &other)),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(format!("unknown attribute `{k}` of {}", self.owner)),
        }
    }
}

fn blocks_of(owner: &str, content: Vec<AnyNode>) -> Result<Vec<Block>, String> {
    content
        .into_iter()
        .enumerate()
        .map(|(i, n)| match n {
            AnyNode::Block(b) => Ok(b),
            other => Err(format!(
                "content[{i}]: {} holds blocks, not {}",
                crate::registry::with_article(owner),
                other.type_name()
            )),
        })
        .collect()
}

fn inlines_of(owner: &str, content: Vec<AnyNode>, breaks: bool) -> Result<Vec<Inline>, String> {
    content
        .into_iter()
        .enumerate()
        .map(|(i, n)| match n {
            AnyNode::Inline(Inline::HardBreak { .. }) if !breaks => Err(format!(
                "content[{i}]: {} holds text and images, not hard_break",
                crate::registry::with_article(owner)
            )),
            AnyNode::Inline(x) => Ok(x),
            other => Err(format!(
                "content[{i}]: {} holds inline nodes (text, image, hard_break), not {}",
                crate::registry::with_article(owner),
                other.type_name()
            )),
        })
        .collect()
}

fn items_of(owner: &str, content: Vec<AnyNode>) -> Result<Vec<ListItem>, String> {
    content
        .into_iter()
        .enumerate()
        .map(|(i, n)| match n {
            AnyNode::Item(x) => Ok(x),
            other => Err(format!(
                "content[{i}]: {} holds list_item nodes, not {}",
                crate::registry::with_article(owner),
                other.type_name()
            )),
        })
        .collect()
}

fn code_text(content: Vec<AnyNode>) -> Result<String, String> {
    let mut nodes = content.into_iter();
    let text = match nodes.next() {
        None => String::new(),
        Some(AnyNode::Inline(Inline::Text { text, marks })) if marks.is_empty() => text,
        Some(other) => {
            return Err(format!(
                "content[0]: a code_block holds one text node without marks, not {}",
                match other {
                    AnyNode::Inline(Inline::Text { .. }) => "marked text",
                    other => other.type_name(),
                }
            ));
        }
    };
    if nodes.next().is_some() {
        return Err("content[1]: a code_block holds one text node at most".into());
    }
    Ok(text)
}

impl RawNode {
    fn build(self) -> Result<AnyNode, String> {
        let Self {
            ty,
            attrs,
            content,
            text,
            marks,
        } = self;
        let ty = ty.ok_or("missing field `type`")?;
        let owner: &'static str = match ty.as_str() {
            "doc" => "doc",
            "paragraph" => "paragraph",
            "blockquote" => "blockquote",
            "horizontal_rule" => "horizontal_rule",
            "heading" => "heading",
            "code_block" => "code_block",
            "ordered_list" => "ordered_list",
            "bullet_list" => "bullet_list",
            "list_item" => "list_item",
            "text" => "text",
            "image" => "image",
            "hard_break" => "hard_break",
            other => {
                return Err(format!(
                    "unknown node type `{other}`, expected one of {NODE_TYPES}"
                ));
            }
        };
        let inline = matches!(owner, "text" | "image" | "hard_break");
        if text.is_some() && owner != "text" {
            return Err(format!(
                "{} has no field `text`",
                crate::registry::with_article(owner)
            ));
        }
        if marks.is_some() && !inline {
            return Err(format!(
                "{} has no marks (only text, image and hard_break do)",
                crate::registry::with_article(owner)
            ));
        }
        if content.is_some() && (inline || owner == "horizontal_rule") {
            return Err(format!(
                "{} has no content",
                crate::registry::with_article(owner)
            ));
        }
        let mut a = Attrs::new(owner, attrs);
        let content = content.unwrap_or_default();
        let marks = marks.unwrap_or_default();
        let node = match owner {
            "doc" => AnyNode::Doc(Doc {
                content: blocks_of(owner, content)?,
            }),
            "paragraph" => AnyNode::Block(Block::Paragraph {
                content: inlines_of(owner, content, true)?,
            }),
            "blockquote" => AnyNode::Block(Block::Blockquote {
                content: blocks_of(owner, content)?,
            }),
            "horizontal_rule" => AnyNode::Block(Block::HorizontalRule),
            "heading" => AnyNode::Block(Block::Heading {
                level: a.int("level", 1u8)?,
                content: inlines_of(owner, content, false)?,
            }),
            "code_block" => AnyNode::Block(Block::CodeBlock {
                params: a.string("params", Some(""))?,
                text: code_text(content)?,
            }),
            "ordered_list" => AnyNode::Block(Block::OrderedList {
                order: a.int("order", 1u32)?,
                tight: a.bool("tight", false)?,
                content: items_of(owner, content)?,
            }),
            "bullet_list" => AnyNode::Block(Block::BulletList {
                tight: a.bool("tight", false)?,
                content: items_of(owner, content)?,
            }),
            "list_item" => AnyNode::Item(ListItem {
                content: blocks_of(owner, content)?,
            }),
            "text" => {
                let text = text.ok_or("a text node needs the field `text`")?;
                if text.is_empty() {
                    return Err("a text node must not be empty".into());
                }
                AnyNode::Inline(Inline::Text { text, marks })
            }
            "image" => AnyNode::Inline(Inline::Image {
                src: a.string("src", None)?,
                alt: a.nullable_string("alt")?,
                title: a.nullable_string("title")?,
                marks,
            }),
            _ => AnyNode::Inline(Inline::HardBreak { marks }),
        };
        a.finish()?;
        Ok(node)
    }
}

fn expect<'de, D: Deserializer<'de>, T>(
    d: D,
    depth: usize,
    want: &str,
    pick: impl FnOnce(AnyNode) -> Result<T, AnyNode>,
) -> Result<T, D::Error> {
    pick(NodeSeed { depth }.deserialize(d)?)
        .map_err(|other| de::Error::custom(format!("expected {want}, found {}", other.type_name())))
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        expect(d, 0, "a doc", |n| match n {
            AnyNode::Doc(x) => Ok(x),
            other => Err(other),
        })
    }
}

impl<'de> Deserialize<'de> for Block {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        expect(d, 1, "a block node", |n| match n {
            AnyNode::Block(x) => Ok(x),
            other => Err(other),
        })
    }
}

impl<'de> Deserialize<'de> for ListItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        expect(d, 1, "a list_item", |n| match n {
            AnyNode::Item(x) => Ok(x),
            other => Err(other),
        })
    }
}

impl<'de> Deserialize<'de> for Inline {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        expect(d, 1, "an inline node", |n| match n {
            AnyNode::Inline(x) => Ok(x),
            other => Err(other),
        })
    }
}

/// One mark as written: `{"type": "link", "attrs": {…}}`.
enum RawMark {
    Em,
    Strong,
    Link(LinkMark),
    Code,
}

impl RawMark {
    fn rank(&self) -> u8 {
        match self {
            Self::Em => 0,
            Self::Strong => 1,
            Self::Link(_) => 2,
            Self::Code => 3,
        }
    }
}

const MARK_NAMES: [&str; 4] = ["em", "strong", "link", "code"];

impl<'de> Deserialize<'de> for RawMark {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMark;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mark {\"type\": \"em\" | \"strong\" | \"link\" | \"code\"}")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMark, A::Error> {
                let mut ty: Option<String> = None;
                let mut attrs: Option<BTreeMap<String, Ipld>> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "type" if ty.is_none() => ty = Some(map.next_value()?),
                        "attrs" if attrs.is_none() => attrs = Some(map.next_value()?),
                        "type" | "attrs" => {
                            return Err(de::Error::custom(format!("field `{key}` given twice")));
                        }
                        other => return Err(de::Error::unknown_field(other, &["type", "attrs"])),
                    }
                }
                let ty = ty.ok_or_else(|| de::Error::missing_field("type"))?;
                let build = || -> Result<RawMark, String> {
                    let (mark, a) = match ty.as_str() {
                        "em" => (RawMark::Em, Attrs::new("em", attrs)),
                        "strong" => (RawMark::Strong, Attrs::new("strong", attrs)),
                        "code" => (RawMark::Code, Attrs::new("code", attrs)),
                        "link" => {
                            let mut a = Attrs::new("link", attrs);
                            let link = LinkMark {
                                href: a.string("href", None)?,
                                title: a.nullable_string("title")?,
                            };
                            (RawMark::Link(link), a)
                        }
                        other => {
                            return Err(format!(
                                "unknown mark `{other}`, expected one of em, strong, link, code"
                            ));
                        }
                    };
                    a.finish()?;
                    Ok(mark)
                };
                build().map_err(de::Error::custom)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Marks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<RawMark>::deserialize(d)?;
        let mut marks = Marks::default();
        let mut last: Option<u8> = None;
        for m in raw {
            let rank = m.rank();
            if last.is_some_and(|l| l >= rank) {
                let name = MARK_NAMES[usize::from(rank)];
                return Err(de::Error::custom(if last == Some(rank) {
                    format!("mark `{name}` given twice")
                } else {
                    format!("mark `{name}` out of order: marks go em, strong, link, code")
                }));
            }
            last = Some(rank);
            match m {
                RawMark::Em => marks.em = true,
                RawMark::Strong => marks.strong = true,
                RawMark::Link(l) => marks.link = Some(l),
                RawMark::Code => marks.code = true,
            }
        }
        Ok(marks)
    }
}

// ---------------------------------------------------------------------------------------------
// JSON Schema, written by hand since the Rust shapes are not the JSON shapes.

fn node_schema(
    ty: &str,
    attrs: Option<serde_json::Value>,
    content: Option<schemars::Schema>,
) -> serde_json::Value {
    let mut props = serde_json::Map::new();
    props.insert("type".into(), serde_json::json!({ "const": ty }));
    if let Some(a) = attrs {
        props.insert(
            "attrs".into(),
            serde_json::json!({ "type": "object", "properties": a, "additionalProperties": false }),
        );
    }
    if let Some(c) = content {
        props.insert(
            "content".into(),
            serde_json::json!({ "type": "array", "items": c }),
        );
    }
    serde_json::json!({
        "type": "object",
        "properties": props,
        "required": ["type"],
        "additionalProperties": false,
    })
}

impl schemars::JsonSchema for Doc {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Doc".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut s = node_schema("doc", None, Some(g.subschema_for::<Block>()));
        s["description"] = "a ProseMirror document in the prosemirror-markdown schema".into();
        schemars::Schema::try_from(s).unwrap_or_default()
    }
}

impl schemars::JsonSchema for Block {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DocBlock".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let blocks = g.subschema_for::<Block>();
        let inlines = g.subschema_for::<Inline>();
        let items = g.subschema_for::<ListItem>();
        let int = |min: u32, max: u32| serde_json::json!({ "type": "integer", "minimum": min, "maximum": max });
        let tight = serde_json::json!({ "type": "boolean" });
        schemars::json_schema!({
            "description": "a block node",
            "oneOf": [
                node_schema("paragraph", None, Some(inlines.clone())),
                node_schema("heading", Some(serde_json::json!({ "level": int(1, 6) })), Some(inlines)),
                node_schema("blockquote", None, Some(blocks)),
                node_schema("horizontal_rule", None, None),
                node_schema(
                    "code_block",
                    Some(serde_json::json!({ "params": { "type": "string" } })),
                    Some(g.subschema_for::<Inline>()),
                ),
                node_schema(
                    "ordered_list",
                    Some(serde_json::json!({ "order": int(0, MAX_ORDER), "tight": tight })),
                    Some(items.clone()),
                ),
                node_schema("bullet_list", Some(serde_json::json!({ "tight": tight })), Some(items)),
            ]
        })
    }
}

impl schemars::JsonSchema for ListItem {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DocListItem".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let s = node_schema("list_item", None, Some(g.subschema_for::<Block>()));
        schemars::Schema::try_from(s).unwrap_or_default()
    }
}

impl schemars::JsonSchema for Inline {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DocInline".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let marks = g.subschema_for::<Marks>();
        let nullable = serde_json::json!({ "type": ["string", "null"] });
        let mut text = node_schema("text", None, None);
        text["properties"]["text"] = serde_json::json!({ "type": "string", "minLength": 1 });
        text["properties"]["marks"] = serde_json::to_value(&marks).unwrap_or_default();
        text["required"] = serde_json::json!(["type", "text"]);
        let mut image = node_schema(
            "image",
            Some(serde_json::json!({
                "src": { "type": "string" }, "alt": nullable, "title": nullable,
            })),
            None,
        );
        image["properties"]["attrs"]["required"] = serde_json::json!(["src"]);
        image["properties"]["marks"] = serde_json::to_value(&marks).unwrap_or_default();
        image["required"] = serde_json::json!(["type", "attrs"]);
        let mut hard_break = node_schema("hard_break", None, None);
        hard_break["properties"]["marks"] = serde_json::to_value(&marks).unwrap_or_default();
        schemars::json_schema!({ "description": "an inline node", "oneOf": [text, image, hard_break] })
    }
}

impl schemars::JsonSchema for Marks {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DocMarks".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let plain = |ty: &str| node_schema(ty, None, None);
        let mut link = node_schema(
            "link",
            Some(serde_json::json!({
                "href": { "type": "string" }, "title": { "type": ["string", "null"] },
            })),
            None,
        );
        link["properties"]["attrs"]["required"] = serde_json::json!(["href"]);
        link["required"] = serde_json::json!(["type", "attrs"]);
        schemars::json_schema!({
            "description": "marks, at most one of each, in the order em, strong, link, code",
            "type": "array",
            "maxItems": 4,
            "items": { "oneOf": [plain("em"), plain("strong"), link, plain("code")] },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// Where `validate` is in the tree and what it has counted so far.
struct Walk {
    nodes: usize,
    text: usize,
}

fn at(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// Text the schema accepts: no control characters other than newline and tab.
fn check_chars(path: &str, s: &str) -> Result<(), SchemaError> {
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(SchemaError::new(path, "contains control characters"));
    }
    Ok(())
}

fn check_attr(path: &str, s: &str, newlines: bool) -> Result<(), SchemaError> {
    let n = s.chars().count();
    if n > MAX_ATTR {
        return Err(SchemaError::new(
            path,
            format!("is {n} characters, at most {MAX_ATTR} allowed"),
        ));
    }
    if !newlines && s.contains('\n') {
        return Err(SchemaError::new(path, "must be one line"));
    }
    check_chars(path, s)
}

/// Why `href` is not a link target mnode lets people follow, if it is not.
pub fn href_error(href: &str) -> Option<String> {
    if href.is_empty() {
        return Some("must not be empty".into());
    }
    if href.len() > MAX_URL {
        return Some(format!("is longer than {MAX_URL} bytes"));
    }
    if href.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain spaces or control characters".into());
    }
    // A scheme is letters, digits, `+`, `-` and `.` up to the first `:`, before any `/?#`.
    let end = href.find(['/', '?', '#']).unwrap_or(href.len());
    let Some(colon) = href[..end].find(':') else {
        return None; // a path, a query or a fragment
    };
    let scheme = href[..colon].to_ascii_lowercase();
    let rest = &href[colon + 1..];
    match scheme.as_str() {
        "http" | "https" if rest.starts_with("//") && rest.len() > 2 => None,
        "ipfs" if rest.starts_with("//") && rest.len() > 2 => None,
        "mailto" if !rest.is_empty() => None,
        _ => Some(format!(
            "{href:?} is not an http(s), mailto or ipfs:// URL, a path or a #fragment"
        )),
    }
}

/// Why `src` is not an image mnode shows (`ipfs://<cid>` or `/ipfs/<cid>`), if it is not.
pub fn image_src_error(src: &str) -> Option<String> {
    let cid = src
        .strip_prefix("ipfs://")
        .or_else(|| src.strip_prefix("/ipfs/"));
    match cid {
        None => Some(format!(
            "{src:?} is not ipfs://<cid> or /ipfs/<cid>: images are shown by CID from this node"
        )),
        Some(c) if c.parse::<Cid>().is_err() => Some(format!("{c:?} is not a valid CID")),
        Some(_) => None,
    }
}

impl Walk {
    fn count(&mut self, path: &str) -> Result<(), SchemaError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SchemaError::new(
                path,
                format!("the document has more than {MAX_NODES} nodes"),
            ));
        }
        Ok(())
    }

    fn add_text(&mut self, path: &str, s: &str) -> Result<(), SchemaError> {
        self.text += s.chars().count();
        if self.text > MAX_TEXT {
            return Err(SchemaError::new(
                path,
                format!("the document has more than {MAX_TEXT} characters of text"),
            ));
        }
        check_chars(path, s)
    }

    fn depth(path: &str, depth: usize) -> Result<(), SchemaError> {
        if depth > MAX_DEPTH {
            return Err(SchemaError::new(
                path,
                format!("nodes nested more than {MAX_DEPTH} deep"),
            ));
        }
        Ok(())
    }

    fn blocks(
        &mut self,
        path: &str,
        owner: &str,
        blocks: &[Block],
        depth: usize,
    ) -> Result<(), SchemaError> {
        if blocks.is_empty() {
            return Err(SchemaError::new(
                at(path, "content"),
                format!(
                    "{} holds at least one block",
                    crate::registry::with_article(owner)
                ),
            ));
        }
        for (i, b) in blocks.iter().enumerate() {
            self.block(&at(path, &format!("content[{i}]")), b, depth)?;
        }
        Ok(())
    }

    fn block(&mut self, path: &str, block: &Block, depth: usize) -> Result<(), SchemaError> {
        Self::depth(path, depth)?;
        self.count(path)?;
        match block {
            Block::Paragraph { content } => self.inlines(path, content, depth + 1),
            Block::Heading { level, content } => {
                if !(1..=6).contains(level) {
                    return Err(SchemaError::new(
                        at(path, "attrs.level"),
                        format!("heading level {level} is not between 1 and 6"),
                    ));
                }
                if let Some(i) = content
                    .iter()
                    .position(|n| matches!(n, Inline::HardBreak { .. }))
                {
                    return Err(SchemaError::new(
                        at(path, &format!("content[{i}]")),
                        "a heading holds text and images, not hard_break",
                    ));
                }
                self.inlines(path, content, depth + 1)
            }
            Block::Blockquote { content } => self.blocks(path, "blockquote", content, depth + 1),
            Block::HorizontalRule => Ok(()),
            Block::CodeBlock { params, text } => {
                check_attr(&at(path, "attrs.params"), params, false)?;
                if !text.is_empty() {
                    let p = at(path, "content[0]");
                    Self::depth(&p, depth + 1)?;
                    self.count(&p)?;
                    self.add_text(&at(&p, "text"), text)?;
                }
                Ok(())
            }
            Block::OrderedList { order, content, .. } => {
                if *order > MAX_ORDER {
                    return Err(SchemaError::new(
                        at(path, "attrs.order"),
                        format!("a list starts at {MAX_ORDER} at most"),
                    ));
                }
                self.items(path, content, depth + 1)
            }
            Block::BulletList { content, .. } => self.items(path, content, depth + 1),
        }
    }

    fn items(&mut self, path: &str, items: &[ListItem], depth: usize) -> Result<(), SchemaError> {
        if items.is_empty() {
            return Err(SchemaError::new(
                at(path, "content"),
                "a list holds at least one list_item",
            ));
        }
        for (i, item) in items.iter().enumerate() {
            let p = at(path, &format!("content[{i}]"));
            Self::depth(&p, depth)?;
            self.count(&p)?;
            self.blocks(&p, "list_item", &item.content, depth + 1)?;
        }
        Ok(())
    }

    fn inlines(&mut self, path: &str, nodes: &[Inline], depth: usize) -> Result<(), SchemaError> {
        for (i, n) in nodes.iter().enumerate() {
            let p = at(path, &format!("content[{i}]"));
            Self::depth(&p, depth)?;
            self.count(&p)?;
            match n {
                Inline::Text { text, .. } => {
                    if text.is_empty() {
                        return Err(SchemaError::new(at(&p, "text"), "must not be empty"));
                    }
                    self.add_text(&at(&p, "text"), text)?;
                }
                Inline::Image {
                    src, alt, title, ..
                } => {
                    if let Some(e) = image_src_error(src) {
                        return Err(SchemaError::new(at(&p, "attrs.src"), e));
                    }
                    if let Some(alt) = alt {
                        check_attr(&at(&p, "attrs.alt"), alt, true)?;
                    }
                    if let Some(title) = title {
                        check_attr(&at(&p, "attrs.title"), title, true)?;
                    }
                }
                Inline::HardBreak { .. } => {}
            }
            let marks = n.marks();
            if let Some(link) = &marks.link {
                let m = at(
                    &p,
                    &format!(
                        "marks[{}]",
                        usize::from(marks.em) + usize::from(marks.strong)
                    ),
                );
                if let Some(e) = href_error(&link.href) {
                    return Err(SchemaError::new(at(&m, "attrs.href"), e));
                }
                if let Some(title) = &link.title {
                    check_attr(&at(&m, "attrs.title"), title, true)?;
                }
            }
        }
        Ok(())
    }
}

impl Doc {
    /// A document of plain-text paragraphs: blank lines separate paragraphs, other line breaks
    /// become hard breaks. Empty text gives the empty document.
    pub fn paragraphs(text: &str) -> Self {
        let text = text.replace("\r\n", "\n");
        let mut content = Vec::new();
        for para in text.split("\n\n") {
            let lines: Vec<&str> = para.split('\n').filter(|l| !l.trim().is_empty()).collect();
            if lines.is_empty() {
                continue;
            }
            let mut inlines = Vec::new();
            for (i, line) in lines.into_iter().enumerate() {
                if i > 0 {
                    inlines.push(Inline::HardBreak {
                        marks: Marks::none(),
                    });
                }
                inlines.push(Inline::text(line));
            }
            content.push(Block::Paragraph { content: inlines });
        }
        if content.is_empty() {
            Self::default()
        } else {
            Self { content }
        }
    }

    /// Checks the limits and rules the types do not: at least one block in a doc, blockquote
    /// and list item and one item in a list, nesting depth, node count, text size, heading
    /// levels, link targets and image sources.
    pub fn validate(&self) -> Result<(), SchemaError> {
        let mut walk = Walk { nodes: 0, text: 0 };
        walk.blocks("", "doc", &self.content, 1)
    }

    /// The text alone, blocks separated by blank lines: for previews and search.
    pub fn plain_text(&self) -> String {
        let mut out = Vec::new();
        plain_blocks(&self.content, &mut out);
        out.join("\n\n")
    }

    /// Reads CommonMark. Raw HTML becomes literal text; a link whose target is not allowed
    /// (see [`href_error`]) becomes plain text, and an image whose source is not on IPFS a
    /// link to it (or its alt text). Soft line breaks become spaces, as in prosemirror-markdown.
    pub fn from_markdown(md: &str) -> Self {
        markdown::parse(md)
    }

    /// Writes CommonMark that [`Doc::from_markdown`] reads back as this document, for every
    /// valid document in the normal form that reading produces (see the tests' generator).
    pub fn to_markdown(&self) -> String {
        markdown::print(self)
    }
}

fn plain_inlines(nodes: &[Inline]) -> String {
    let mut s = String::new();
    for n in nodes {
        match n {
            Inline::Text { text, .. } => s.push_str(text),
            Inline::Image { alt, .. } => s.push_str(alt.as_deref().unwrap_or("")),
            Inline::HardBreak { .. } => s.push('\n'),
        }
    }
    s
}

fn plain_blocks(blocks: &[Block], out: &mut Vec<String>) {
    for b in blocks {
        match b {
            Block::Paragraph { content } | Block::Heading { content, .. } => {
                let s = plain_inlines(content);
                if !s.is_empty() {
                    out.push(s);
                }
            }
            Block::Blockquote { content } => plain_blocks(content, out),
            Block::HorizontalRule => {}
            Block::CodeBlock { text, .. } => {
                if !text.is_empty() {
                    out.push(text.clone());
                }
            }
            Block::OrderedList { content, .. } | Block::BulletList { content, .. } => {
                for item in content {
                    plain_blocks(&item.content, out);
                }
            }
        }
    }
}

mod markdown {
    //! CommonMark in and out.

    use super::*;

    // -----------------------------------------------------------------------------------------
    // Reading.

    enum Frame {
        Root(Vec<Block>),
        Quote(Vec<Block>),
        List {
            order: Option<u32>,
            tight: bool,
            items: Vec<ListItem>,
        },
        Item(Vec<Block>),
        /// A paragraph; `implicit` when it is a tight list item's text, which has no tags.
        Para {
            inlines: Vec<Inline>,
            implicit: bool,
        },
        Heading(u8, Vec<Inline>),
        Code(String, String),
        Html(String),
        Image {
            src: String,
            title: String,
            alt: String,
            marks: Marks,
        },
    }

    #[derive(Default)]
    struct Reader {
        stack: Vec<Frame>,
        em: usize,
        strong: usize,
        /// One entry per open link: its mark, or none when its target is not allowed.
        links: Vec<Option<LinkMark>>,
        /// One entry per open blockquote, list and item: whether it was flattened away.
        containers: Vec<bool>,
    }

    /// Containers nest at most this deep, so that what is read keeps within [`MAX_DEPTH`]
    /// (a paragraph inside them, and its text, still fit) and printing never recurses far.
    const MAX_CONTAINERS: usize = MAX_DEPTH - 2;

    pub(super) fn parse(md: &str) -> Doc {
        let mut r = Reader {
            stack: vec![Frame::Root(Vec::new())],
            ..Reader::default()
        };
        for event in Parser::new_ext(md, Options::empty()) {
            r.event(event);
        }
        while r.stack.len() > 1 {
            r.close();
        }
        match r.stack.pop() {
            Some(Frame::Root(content)) if !content.is_empty() => Doc { content },
            _ => Doc::default(),
        }
    }

    fn non_empty(s: &str) -> Option<String> {
        (!s.is_empty()).then(|| s.to_owned())
    }

    impl Reader {
        fn marks(&self, code: bool) -> Marks {
            Marks {
                em: self.em > 0,
                strong: self.strong > 0,
                link: self.links.iter().rev().find_map(|l| l.clone()),
                code,
            }
        }

        /// Closes an implicit paragraph before a block starts or its item ends.
        fn end_implicit(&mut self) {
            if matches!(self.stack.last(), Some(Frame::Para { implicit: true, .. })) {
                self.close();
            }
        }

        fn open(&mut self, frame: Frame) {
            self.end_implicit();
            if matches!(frame, Frame::Para { .. })
                && matches!(self.stack.last(), Some(Frame::Item(_)))
            {
                // A tagged paragraph directly in an item: the list is loose.
                let n = self.stack.len();
                if let Some(Frame::List { tight, .. }) = self.stack.get_mut(n.wrapping_sub(2)) {
                    *tight = false;
                }
            }
            self.stack.push(frame);
        }

        /// Opens a blockquote (`levels` 1) or list (2, with its items), or flattens it into
        /// its parent when that would nest containers deeper than [`MAX_CONTAINERS`].
        fn container(&mut self, levels: usize, frame: Frame) {
            self.end_implicit();
            let open = self
                .stack
                .iter()
                .filter(|f| matches!(f, Frame::Quote(_) | Frame::List { .. } | Frame::Item(_)))
                .count();
            let flatten = open + levels > MAX_CONTAINERS;
            self.containers.push(flatten);
            if !flatten {
                self.open(frame);
            }
        }

        fn push_block(&mut self, block: Block) {
            if let Some(Frame::Root(v) | Frame::Quote(v) | Frame::Item(v)) = self.stack.last_mut() {
                v.push(block);
            }
        }

        /// Closes the innermost frame and adds what it made to its parent.
        fn close(&mut self) {
            let Some(frame) = self.stack.pop() else {
                return;
            };
            let filled = |mut v: Vec<Block>| {
                if v.is_empty() {
                    v.push(Block::Paragraph { content: vec![] });
                }
                v
            };
            match frame {
                Frame::Root(v) => self.stack.push(Frame::Root(v)),
                Frame::Quote(v) => self.push_block(Block::Blockquote { content: filled(v) }),
                Frame::List {
                    order,
                    tight,
                    items,
                } => {
                    if items.is_empty() {
                        return;
                    }
                    self.push_block(match order {
                        Some(order) => Block::OrderedList {
                            order,
                            tight,
                            content: items,
                        },
                        None => Block::BulletList {
                            tight,
                            content: items,
                        },
                    });
                }
                Frame::Item(v) => {
                    if let Some(Frame::List { items, .. }) = self.stack.last_mut() {
                        items.push(ListItem { content: filled(v) });
                    }
                }
                Frame::Para { inlines, .. } => {
                    if !inlines.is_empty() {
                        self.push_block(Block::Paragraph { content: inlines });
                    }
                }
                Frame::Heading(level, content) => {
                    self.push_block(Block::Heading { level, content });
                }
                Frame::Code(params, mut text) => {
                    if text.ends_with('\n') {
                        text.pop();
                    }
                    self.push_block(Block::CodeBlock { params, text });
                }
                Frame::Html(html) => {
                    let mut content = Vec::new();
                    for (i, line) in html.trim_end_matches('\n').split('\n').enumerate() {
                        if i > 0 {
                            content.push(Inline::HardBreak {
                                marks: Marks::none(),
                            });
                        }
                        if !line.is_empty() {
                            content.push(Inline::text(line));
                        }
                    }
                    if content.iter().any(|n| matches!(n, Inline::Text { .. })) {
                        self.push_block(Block::Paragraph { content });
                    }
                }
                Frame::Image {
                    src,
                    title,
                    alt,
                    mut marks,
                } => {
                    if image_src_error(&src).is_none() {
                        self.push_inline(Inline::Image {
                            src,
                            alt: non_empty(&alt),
                            title: non_empty(&title),
                            marks,
                        });
                    } else {
                        if marks.link.is_none() && href_error(&src).is_none() {
                            marks.link = Some(LinkMark {
                                href: src.clone(),
                                title: non_empty(&title),
                            });
                        }
                        let text = if alt.is_empty() && marks.link.is_some() {
                            src
                        } else {
                            alt
                        };
                        self.push_text(&text, marks);
                    }
                }
            }
        }

        /// The inline container to add to, opening an implicit paragraph in a tight item.
        fn inline_target(&mut self) -> Option<&mut Frame> {
            if matches!(
                self.stack.last(),
                Some(Frame::Item(_) | Frame::Root(_) | Frame::Quote(_))
            ) {
                self.stack.push(Frame::Para {
                    inlines: Vec::new(),
                    implicit: true,
                });
            }
            self.stack.last_mut()
        }

        fn push_inline(&mut self, node: Inline) {
            if let Inline::HardBreak { marks } = &node
                && let Some(Frame::Heading(..)) = self.stack.last()
            {
                // A heading holds no breaks.
                self.push_text(" ", marks.clone());
                return;
            }
            match self.inline_target() {
                Some(Frame::Para { inlines: v, .. } | Frame::Heading(_, v)) => v.push(node),
                Some(Frame::Image { alt, .. }) => match &node {
                    Inline::Text { text, .. } => alt.push_str(text),
                    Inline::Image { alt: Some(a), .. } => alt.push_str(a),
                    _ => {}
                },
                _ => {}
            }
        }

        fn push_text(&mut self, text: &str, marks: Marks) {
            if text.is_empty() {
                return;
            }
            match self.inline_target() {
                Some(Frame::Para { inlines: v, .. } | Frame::Heading(_, v)) => {
                    if let Some(Inline::Text {
                        text: last,
                        marks: m,
                    }) = v.last_mut()
                        && *m == marks
                    {
                        last.push_str(text);
                    } else {
                        v.push(Inline::Text {
                            text: text.to_owned(),
                            marks,
                        });
                    }
                }
                Some(Frame::Image { alt, .. }) => alt.push_str(text),
                Some(Frame::Code(_, code)) => code.push_str(text),
                Some(Frame::Html(html)) => html.push_str(text),
                _ => {}
            }
        }

        fn event(&mut self, event: Event<'_>) {
            match event {
                Event::Start(tag) => self.start(tag),
                Event::End(tag) => self.end(tag),
                Event::Text(t) => {
                    if matches!(self.stack.last(), Some(Frame::Code(..) | Frame::Html(_))) {
                        self.push_text(&t, Marks::none());
                    } else {
                        self.push_text(&t, self.marks(false));
                    }
                }
                Event::Code(t) | Event::InlineMath(t) => self.push_text(&t, self.marks(true)),
                Event::Html(t) => {
                    if matches!(self.stack.last(), Some(Frame::Html(_))) {
                        self.push_text(&t, Marks::none());
                    } else {
                        self.push_text(&t, self.marks(false));
                    }
                }
                Event::InlineHtml(t) | Event::DisplayMath(t) | Event::FootnoteReference(t) => {
                    self.push_text(&t, self.marks(false));
                }
                Event::SoftBreak => self.push_text(" ", self.marks(false)),
                Event::HardBreak => self.push_inline(Inline::HardBreak {
                    marks: self.marks(false),
                }),
                Event::Rule => {
                    self.end_implicit();
                    self.push_block(Block::HorizontalRule);
                }
                Event::TaskListMarker(done) => {
                    self.push_text(if done { "[x] " } else { "[ ] " }, self.marks(false));
                }
            }
        }

        fn start(&mut self, tag: Tag<'_>) {
            match tag {
                Tag::Paragraph => self.open(Frame::Para {
                    inlines: Vec::new(),
                    implicit: false,
                }),
                Tag::Heading { level, .. } => self.open(Frame::Heading(level as u8, Vec::new())),
                Tag::BlockQuote(_) => self.container(1, Frame::Quote(Vec::new())),
                Tag::CodeBlock(kind) => {
                    let params = match kind {
                        CodeBlockKind::Fenced(info) => info.trim().to_owned(),
                        CodeBlockKind::Indented => String::new(),
                    };
                    self.open(Frame::Code(params, String::new()));
                }
                Tag::HtmlBlock => self.open(Frame::Html(String::new())),
                Tag::List(start) => self.container(
                    2,
                    Frame::List {
                        order: start.map(|n| u32::try_from(n).unwrap_or(MAX_ORDER).min(MAX_ORDER)),
                        tight: true,
                        items: Vec::new(),
                    },
                ),
                Tag::Item => {
                    self.end_implicit();
                    // An item of a flattened list is flattened too.
                    let keep = matches!(self.stack.last(), Some(Frame::List { .. }));
                    self.containers.push(!keep);
                    if keep {
                        self.stack.push(Frame::Item(Vec::new()));
                    }
                }
                Tag::Emphasis => self.em += 1,
                Tag::Strong => self.strong += 1,
                Tag::Link {
                    dest_url, title, ..
                } => self
                    .links
                    .push(href_error(&dest_url).is_none().then(|| LinkMark {
                        href: dest_url.to_string(),
                        title: non_empty(&title),
                    })),
                Tag::Image {
                    dest_url, title, ..
                } => {
                    let marks = self.marks(false);
                    // An image inside an image's alt text is text.
                    if !matches!(self.stack.last(), Some(Frame::Image { .. })) {
                        self.inline_target();
                    }
                    self.stack.push(Frame::Image {
                        src: dest_url.to_string(),
                        title: title.to_string(),
                        alt: String::new(),
                        marks,
                    });
                }
                // Extensions not enabled; keep their text.
                _ => {}
            }
        }

        fn end(&mut self, tag: TagEnd) {
            match tag {
                TagEnd::Emphasis => self.em = self.em.saturating_sub(1),
                TagEnd::Strong => self.strong = self.strong.saturating_sub(1),
                TagEnd::Link => {
                    self.links.pop();
                }
                TagEnd::Image => {
                    if matches!(self.stack.last(), Some(Frame::Image { .. })) {
                        self.close();
                    }
                }
                TagEnd::BlockQuote(_) | TagEnd::List(_) | TagEnd::Item => {
                    self.end_implicit();
                    if self.containers.pop() == Some(false) {
                        self.close();
                    }
                }
                TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::CodeBlock | TagEnd::HtmlBlock => {
                    self.end_implicit();
                    self.close();
                }
                _ => {}
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Writing.
    //
    // Blocks are printed to lines and containers prefix them. Inline text escapes what could
    // be markup and writes a character as a numeric reference (`&#32;`) where Markdown would
    // otherwise drop or misread it: leading and trailing spaces of a line, a newline, and the
    // characters beside emphasis delimiters that would stop them from opening or closing.
    // Emphasis is `_`, strong emphasis `**`, so that two delimiter runs never merge.

    pub(super) fn print(doc: &Doc) -> String {
        blocks(&doc.content, false)
    }

    fn blocks(blocks: &[Block], tight: bool) -> String {
        let mut out = String::new();
        let mut bullet = 0usize;
        let mut ordered = 0usize;
        for (i, b) in blocks.iter().enumerate() {
            if i > 0 {
                let paras = matches!(b, Block::Paragraph { .. })
                    && matches!(blocks[i - 1], Block::Paragraph { .. });
                out.push_str(if tight && !paras { "\n" } else { "\n\n" });
            }
            // Two lists in a row stay two lists only if their markers differ.
            match b {
                Block::BulletList { .. } => {
                    out.push_str(&block(b, bullet % 2, 0));
                    bullet += 1;
                    ordered = 0;
                }
                Block::OrderedList { .. } => {
                    out.push_str(&block(b, 0, ordered % 2));
                    ordered += 1;
                    bullet = 0;
                }
                _ => {
                    out.push_str(&block(b, 0, 0));
                    bullet = 0;
                    ordered = 0;
                }
            }
        }
        out
    }

    fn prefix_lines(text: &str, first: &str, rest: &str) -> String {
        let mut out = String::new();
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let p = if i == 0 { first } else { rest };
            if line.is_empty() {
                out.push_str(p.trim_end());
            } else {
                out.push_str(p);
                out.push_str(line);
            }
        }
        out
    }

    fn block(b: &Block, bullet: usize, delim: usize) -> String {
        match b {
            Block::Paragraph { content } => inlines(content, false),
            Block::Heading { level, content } => {
                let hashes = "#".repeat(usize::from((*level).clamp(1, 6)));
                if content.is_empty() {
                    hashes
                } else {
                    format!("{hashes} {}", inlines(content, true))
                }
            }
            Block::Blockquote { content } => prefix_lines(&blocks(content, false), "> ", "> "),
            Block::HorizontalRule => "___".into(),
            Block::CodeBlock { params, text } => code_block(params, text),
            Block::BulletList { tight, content } => {
                let marker = if bullet == 0 { "-" } else { "*" };
                list(content, *tight, |_| marker.to_owned())
            }
            Block::OrderedList {
                order,
                tight,
                content,
            } => {
                let d = if delim == 0 { '.' } else { ')' };
                list(content, *tight, |i| {
                    let n = u64::from(*order)
                        .saturating_add(i as u64)
                        .min(u64::from(MAX_ORDER));
                    format!("{n}{d}")
                })
            }
        }
    }

    fn list(items: &[ListItem], tight: bool, marker: impl Fn(usize) -> String) -> String {
        let mut out = String::new();
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(if tight { "\n" } else { "\n\n" });
            }
            let m = marker(i);
            let body = blocks(&item.content, tight);
            if body.is_empty() {
                out.push_str(&m);
            } else {
                let indent = " ".repeat(m.len() + 1);
                out.push_str(&prefix_lines(&body, &format!("{m} "), &indent));
            }
        }
        out
    }

    fn longest_run(s: &str, c: char) -> usize {
        let (mut best, mut cur) = (0, 0);
        for x in s.chars() {
            if x == c {
                cur += 1;
                best = best.max(cur);
            } else {
                cur = 0;
            }
        }
        best
    }

    fn code_block(params: &str, text: &str) -> String {
        let fence = "`".repeat(3.max(longest_run(text, '`') + 1));
        let mut info = String::new();
        let n = params.chars().count();
        for (i, c) in params.chars().enumerate() {
            if c == '`' || c.is_control() || ((i == 0 || i + 1 == n) && c.is_whitespace()) {
                info.push_str(&entity(c));
            } else if c.is_ascii_punctuation() {
                info.push('\\');
                info.push(c);
            } else {
                info.push(c);
            }
        }
        if text.is_empty() {
            format!("{fence}{info}\n{fence}")
        } else {
            format!("{fence}{info}\n{text}\n{fence}")
        }
    }

    fn entity(c: char) -> String {
        format!("&#{};", u32::from(c))
    }

    /// Characters that stay literal beside a delimiter on its outer side.
    fn plain_outer(c: char) -> bool {
        c == ' ' || c == '\t' || c.is_ascii_punctuation()
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Tail {
        /// At the start of a line.
        LineStart,
        /// A character written literally at this byte offset; it may still be rewritten.
        Plain(usize, char),
        /// Markup or an escaped character: punctuation in the source.
        Markup,
    }

    #[derive(Clone, PartialEq, Eq)]
    enum Open {
        Em,
        Strong,
        Link(LinkMark),
    }

    impl Open {
        fn of(marks: &Marks) -> Vec<Open> {
            let mut v = Vec::new();
            if marks.em {
                v.push(Open::Em);
            }
            if marks.strong {
                v.push(Open::Strong);
            }
            if let Some(l) = &marks.link {
                v.push(Open::Link(l.clone()));
            }
            v
        }
    }

    struct Inlines {
        out: String,
        tail: Tail,
        heading: bool,
        /// The next character written must not be whitespace (just after an opener).
        no_space_next: bool,
        /// The next character written must be whitespace or ASCII punctuation (after a closer).
        plain_next: bool,
        stack: Vec<Open>,
    }

    fn inlines(nodes: &[Inline], heading: bool) -> String {
        let mut p = Inlines {
            out: String::new(),
            tail: Tail::LineStart,
            heading,
            no_space_next: false,
            plain_next: false,
            stack: Vec::new(),
        };
        for (i, n) in nodes.iter().enumerate() {
            let want = Open::of(n.marks());
            // Keep the open marks the node also has, up to the first it has not.
            let keep = p.stack.iter().take_while(|o| want.contains(o)).count();
            while p.stack.len() > keep {
                p.close();
            }
            // Open the rest, those that last longest first.
            let mut new: Vec<Open> = want.into_iter().filter(|o| !p.stack.contains(o)).collect();
            let lasts = |o: &Open| {
                nodes[i..]
                    .iter()
                    .take_while(|m| Open::of(m.marks()).contains(o))
                    .count()
            };
            new.sort_by_key(|o| std::cmp::Reverse(lasts(o)));
            for o in new {
                p.open(o);
            }
            p.node(n);
        }
        while !p.stack.is_empty() {
            p.close();
        }
        p.end_line();
        if heading && let Tail::Plain(_, '#') = p.tail {
            // A final `#` would read as a closing sequence.
            p.rewrite_tail();
        }
        p.out
    }

    impl Inlines {
        fn markup(&mut self, s: &str) {
            self.out.push_str(s);
            self.tail = Tail::Markup;
            self.no_space_next = false;
            self.plain_next = false;
        }

        fn rewrite_tail(&mut self) {
            if let Tail::Plain(pos, c) = self.tail {
                self.out.truncate(pos);
                self.out.push_str(&entity(c));
                self.tail = Tail::Markup;
            }
        }

        /// Trailing whitespace of a line would be dropped.
        fn end_line(&mut self) {
            if let Tail::Plain(_, c) = self.tail
                && c.is_whitespace()
            {
                self.rewrite_tail();
            }
        }

        fn open(&mut self, o: Open) {
            match &o {
                Open::Em | Open::Strong => {
                    if let Tail::Plain(_, c) = self.tail
                        && !plain_outer(c)
                    {
                        self.rewrite_tail();
                    }
                    self.markup(if o == Open::Em { "_" } else { "**" });
                    self.no_space_next = true;
                }
                Open::Link(_) => {
                    if let Tail::Plain(_, '!') = self.tail {
                        self.rewrite_tail();
                    }
                    self.markup("[");
                }
            }
            self.stack.push(o);
        }

        fn close(&mut self) {
            let Some(o) = self.stack.pop() else {
                return;
            };
            match o {
                Open::Em | Open::Strong => {
                    if let Tail::Plain(_, c) = self.tail
                        && c.is_whitespace()
                    {
                        self.rewrite_tail();
                    }
                    self.markup(if o == Open::Em { "_" } else { "**" });
                    self.plain_next = true;
                }
                Open::Link(l) => {
                    let mut s = String::from("](");
                    s.push_str(&destination(&l.href));
                    if let Some(t) = &l.title {
                        s.push(' ');
                        s.push_str(&title(t));
                    }
                    s.push(')');
                    self.markup(&s);
                }
            }
        }

        fn node(&mut self, n: &Inline) {
            match n {
                Inline::Text { text, marks } if marks.code => {
                    self.markup(&code_span(text));
                }
                Inline::Text { text, .. } => self.text(text),
                Inline::Image {
                    src, alt, title: t, ..
                } => {
                    let mut s = String::from("![");
                    s.push_str(&escape_all(alt.as_deref().unwrap_or("")));
                    s.push_str("](");
                    s.push_str(&destination(src));
                    if let Some(t) = t {
                        s.push(' ');
                        s.push_str(&title(t));
                    }
                    s.push(')');
                    self.markup(&s);
                }
                Inline::HardBreak { .. } if self.heading => self.text(" "),
                Inline::HardBreak { .. } => {
                    self.end_line();
                    self.markup("\\\n");
                    self.tail = Tail::LineStart;
                }
            }
        }

        fn text(&mut self, text: &str) {
            let chars: Vec<char> = text.chars().collect();
            for (i, &c) in chars.iter().enumerate() {
                let line_start = self.tail == Tail::LineStart;
                let as_entity = c == '\n'
                    || c == '\r'
                    || (line_start && c.is_whitespace())
                    || (self.no_space_next && c.is_whitespace())
                    || (self.plain_next && !plain_outer(c));
                self.no_space_next = false;
                self.plain_next = false;
                if as_entity {
                    self.markup(&entity(c));
                    continue;
                }
                let escape = match c {
                    '\\' | '`' | '*' | '_' | '[' | ']' | '<' => true,
                    '&' => chars
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '#'),
                    '#' | '>' | '-' | '+' | '=' | '~' => line_start,
                    '.' | ')' => {
                        // `12.` at the start of a line would begin an ordered list.
                        let digits = chars[..i]
                            .iter()
                            .rev()
                            .take_while(|d| d.is_ascii_digit())
                            .count();
                        digits > 0
                            && digits == i
                            && self.out.len() >= digits
                            && self.line_began_at(self.out.len() - digits)
                    }
                    _ => false,
                };
                if escape {
                    self.markup(&format!("\\{c}"));
                } else {
                    let pos = self.out.len();
                    self.out.push(c);
                    self.tail = Tail::Plain(pos, c);
                }
            }
        }

        /// Whether a line of output began at byte `pos`.
        fn line_began_at(&self, pos: usize) -> bool {
            pos == 0 || self.out[..pos].ends_with('\n')
        }
    }

    fn code_span(text: &str) -> String {
        let ticks = "`".repeat(longest_run(text, '`') + 1);
        let pad = text.starts_with('`')
            || text.ends_with('`')
            || (text.starts_with(' ') && text.ends_with(' ') && text.chars().any(|c| c != ' '));
        if pad {
            format!("{ticks} {text} {ticks}")
        } else {
            format!("{ticks}{text}{ticks}")
        }
    }

    /// Alt text and the like: every character that could be markup escaped.
    fn escape_all(s: &str) -> String {
        let n = s.chars().count();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if c.is_control() || ((i == 0 || i + 1 == n) && c.is_whitespace()) {
                out.push_str(&entity(c));
            } else if c.is_ascii_punctuation() {
                out.push('\\');
                out.push(c);
            } else {
                out.push(c);
            }
        }
        out
    }

    fn destination(url: &str) -> String {
        if url.is_empty() {
            return "<>".into();
        }
        let mut out = String::new();
        for c in url.chars() {
            match c {
                '\\' | '&' | '(' | ')' | '<' | '>' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_whitespace() || c.is_control() => out.push_str(&entity(c)),
                c => out.push(c),
            }
        }
        out
    }

    fn title(t: &str) -> String {
        let mut out = String::from("\"");
        for c in t.chars() {
            match c {
                '\\' | '"' | '&' => {
                    out.push('\\');
                    out.push(c);
                }
                '\n' => out.push_str(&entity(c)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn cid() -> String {
        crate::cids::blob_cid_of(b"picture").to_string()
    }

    fn t(s: &str) -> Inline {
        Inline::text(s)
    }

    fn marked(s: &str, f: impl FnOnce(&mut Marks)) -> Inline {
        let mut marks = Marks::none();
        f(&mut marks);
        Inline::Text {
            text: s.into(),
            marks,
        }
    }

    fn para(content: Vec<Inline>) -> Block {
        Block::Paragraph { content }
    }

    fn doc(content: Vec<Block>) -> Doc {
        Doc { content }
    }

    fn link(href: &str) -> Option<LinkMark> {
        Some(LinkMark {
            href: href.into(),
            title: None,
        })
    }

    /// Markdown in, the expected document, and Markdown out again.
    #[track_caller]
    fn both_ways(md: &str, expected: &Doc) {
        let parsed = Doc::from_markdown(md);
        assert_eq!(&parsed, expected, "reading {md:?}");
        expected.validate().unwrap();
        let printed = expected.to_markdown();
        assert_eq!(
            &Doc::from_markdown(&printed),
            expected,
            "reading back {printed:?}"
        );
    }

    fn decode_json(v: serde_json::Value) -> Result<Doc, String> {
        let ipld = crate::json::from_json_value(&v).unwrap();
        // As the registry reports it: path, then serde's message without its prefix.
        serde_path_to_error::deserialize::<_, Doc>(ipld)
            .map_err(|e| e.to_string().replace("serde error: ", ""))
    }

    #[test]
    fn serializes_as_prosemirror_to_json() {
        let d = doc(vec![
            Block::Heading {
                level: 2,
                content: vec![t("Title")],
            },
            para(vec![
                marked("hi", |m| m.em = true),
                Inline::HardBreak {
                    marks: Marks::none(),
                },
                marked("there", |m| {
                    m.strong = true;
                    m.link = link("https://example.org");
                }),
            ]),
            Block::CodeBlock {
                params: "rust".into(),
                text: "fn main() {}".into(),
            },
            Block::CodeBlock {
                params: String::new(),
                text: String::new(),
            },
            Block::HorizontalRule,
        ]);
        let expected = json!({"type": "doc", "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Title"}]},
            {"type": "paragraph", "content": [
                {"type": "text", "text": "hi", "marks": [{"type": "em"}]},
                {"type": "hard_break"},
                {"type": "text", "text": "there", "marks": [
                    {"type": "strong"},
                    {"type": "link", "attrs": {"href": "https://example.org", "title": null}}
                ]}
            ]},
            {"type": "code_block", "attrs": {"params": "rust"},
             "content": [{"type": "text", "text": "fn main() {}"}]},
            {"type": "code_block", "attrs": {"params": ""}},
            {"type": "horizontal_rule"}
        ]});
        assert_eq!(serde_json::to_value(&d).unwrap(), expected);
        assert_eq!(serde_json::from_value::<Doc>(expected).unwrap(), d);
        assert_eq!(
            serde_json::to_value(Doc::default()).unwrap(),
            json!({"type": "doc", "content": [{"type": "paragraph"}]})
        );
    }

    #[test]
    fn missing_attributes_take_the_schema_defaults() {
        let d = decode_json(json!({"type": "doc", "content": [
            {"type": "heading", "content": [{"type": "text", "text": "h"}]},
            {"type": "ordered_list", "content": [{"type": "list_item", "content": [{"type": "paragraph"}]}]},
            {"type": "code_block"},
            {"type": "paragraph", "content": [{"type": "image", "attrs": {"src": "/ipfs/x"}}]}
        ]}))
        .unwrap();
        let Block::OrderedList { order, tight, .. } = &d.content[1] else {
            panic!("{d:?}")
        };
        assert_eq!((*order, *tight), (1, false));
        assert!(matches!(&d.content[0], Block::Heading { level: 1, .. }));
        assert!(matches!(&d.content[3], Block::Paragraph { content }
            if matches!(&content[0], Inline::Image { alt: None, title: None, .. })));
    }

    #[test]
    fn strict_decoding_rejects_what_the_schema_does_not_know() {
        let cases = [
            (
                json!({"type": "doc", "content": [{"type": "table"}]}),
                "content[0]: unknown node type `table`",
            ),
            (
                json!({"type": "doc", "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": "x", "marks": [{"type": "strike"}]}]}]}),
                "content[0].content[0].marks[0]: unknown mark `strike`",
            ),
            (
                json!({"type": "doc", "content": [{"type": "paragraph", "align": "left"}]}),
                "content[0]: unknown field `align`",
            ),
            (
                json!({"type": "doc", "content": [{"type": "heading", "attrs": {"level": 1, "id": "x"}}]}),
                "content[0]: unknown attribute `id` of heading",
            ),
            (
                json!({"type": "doc", "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": "x", "marks": [
                        {"type": "link", "attrs": {"href": "/a", "target": "_blank"}}]}]}]}),
                "unknown attribute `target` of link",
            ),
            (
                json!({"type": "doc", "content": [{"type": "paragraph", "content": [
                    {"type": "paragraph"}]}]}),
                "content[0]: content[0]: a paragraph holds inline nodes",
            ),
            (
                json!({"type": "doc", "content": [{"type": "text", "text": "loose"}]}),
                "content[0]: a doc holds blocks, not text",
            ),
            (
                json!({"type": "doc", "content": [{"type": "bullet_list", "content": [
                    {"type": "paragraph"}]}]}),
                "a bullet_list holds list_item nodes, not paragraph",
            ),
            (
                json!({"type": "doc", "content": [{"type": "heading", "content": [
                    {"type": "hard_break"}]}]}),
                "a heading holds text and images, not hard_break",
            ),
            (
                json!({"type": "doc", "content": [{"type": "code_block", "content": [
                    {"type": "text", "text": "x", "marks": [{"type": "em"}]}]}]}),
                "a code_block holds one text node without marks, not marked text",
            ),
            (
                json!({"type": "doc", "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": ""}]}]}),
                "a text node must not be empty",
            ),
            (
                json!({"type": "doc", "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": "x", "marks": [{"type": "code"}, {"type": "em"}]}]}]}),
                "mark `em` out of order",
            ),
            (
                json!({"type": "doc", "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": "x", "marks": [{"type": "em"}, {"type": "em"}]}]}]}),
                "mark `em` given twice",
            ),
            (
                json!({"type": "doc", "content": [{"type": "heading", "attrs": {"level": "1"}}]}),
                "attribute `level` of heading must be an integer",
            ),
            (
                json!({"type": "doc", "content": [{"type": "paragraph", "marks": [{"type": "em"}]}]}),
                "a paragraph has no marks",
            ),
            (
                json!({"type": "paragraph"}),
                "expected a doc, found paragraph",
            ),
        ];
        for (value, want) in cases {
            let e = decode_json(value.clone()).unwrap_err();
            assert!(e.contains(want), "{value}: got {e:?}, want {want:?}");
            // serde_json straight, without the IPLD step, is as strict.
            serde_json::from_value::<Doc>(value).unwrap_err();
        }
    }

    fn nested_quotes(levels: usize) -> Doc {
        let mut b = para(vec![t("deep")]);
        for _ in 0..levels {
            b = Block::Blockquote { content: vec![b] };
        }
        doc(vec![b])
    }

    #[test]
    fn too_deep_is_refused_when_decoding_and_validating() {
        // Blocks at depth 1..=16 are fine: 15 quotes around a paragraph holding text at 17…
        nested_quotes(14).validate().unwrap();
        let e = nested_quotes(15).validate().unwrap_err();
        assert!(e.message.contains("nested more than 16"), "{e}");
        let json = serde_json::to_value(nested_quotes(20)).unwrap();
        let e = decode_json(json).unwrap_err();
        assert!(e.contains("nested more than 16"), "{e}");
        let bytes = crate::cbor::encode(&nested_quotes(20)).unwrap();
        let e = crate::cbor::decode::<Doc>(&bytes).unwrap_err();
        assert!(e.to_string().contains("nested more than 16"), "{e}");
    }

    #[test]
    fn validate_names_the_field() {
        let js = doc(vec![
            para(vec![t("ok")]),
            para(vec![marked("click", |m| {
                m.em = true;
                m.link = link("javascript:alert(1)");
            })]),
        ]);
        let e = js.validate().unwrap_err();
        assert_eq!(e.path, "content[1].content[0].marks[1].attrs.href");
        assert!(
            e.message
                .contains("is not an http(s), mailto or ipfs:// URL"),
            "{e}"
        );

        let img = |src: &str| {
            doc(vec![para(vec![Inline::Image {
                src: src.into(),
                alt: None,
                title: None,
                marks: Marks::none(),
            }])])
        };
        let e = img("https://example.org/x.png").validate().unwrap_err();
        assert_eq!(e.path, "content[0].content[0].attrs.src");
        assert!(img("ipfs://notacid").validate().is_err());
        img(&format!("ipfs://{}", cid())).validate().unwrap();
        img(&format!("/ipfs/{}", cid())).validate().unwrap();

        let e = doc(vec![Block::Heading {
            level: 7,
            content: vec![],
        }])
        .validate()
        .unwrap_err();
        assert_eq!(e.path, "content[0].attrs.level");
        let e = doc(vec![para(vec![t("a"), t("")])]).validate().unwrap_err();
        assert_eq!(e.path, "content[0].content[1].text");
        let e = doc(vec![Block::BulletList {
            tight: true,
            content: vec![ListItem { content: vec![] }],
        }])
        .validate()
        .unwrap_err();
        assert_eq!(e.path, "content[0].content[0].content");
        assert_eq!(doc(vec![]).validate().unwrap_err().path, "content");
        let e = doc(vec![para(vec![t("a\u{7}")])]).validate().unwrap_err();
        assert_eq!(e.message, "contains control characters");
    }

    #[test]
    fn link_targets() {
        for ok in [
            "http://a.example",
            "https://a.example/x?y#z",
            "HTTPS://A.EXAMPLE",
            "mailto:a@b.example",
            "ipfs://bafkqaaa",
            "/posts/1",
            "relative/path:with-colon",
            "./x:y",
            "#section",
            "?q=1",
        ] {
            assert_eq!(href_error(ok), None, "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "vbscript:x",
            "file:///etc/passwd",
            "http:",
            "mailto:",
            "",
            "java script:x",
            "https://a.example/\u{0}",
            "x:y",
        ] {
            assert!(href_error(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn limits_on_nodes_and_text() {
        let many = doc(vec![para(
            (0..MAX_NODES)
                .map(|i| {
                    if i % 2 == 0 {
                        t("x")
                    } else {
                        marked("y", |m| m.em = true)
                    }
                })
                .collect(),
        )]);
        let e = many.validate().unwrap_err();
        assert!(e.message.contains("more than 100000 nodes"), "{e}");
        let long = doc(vec![
            para(vec![t(&"a".repeat(MAX_TEXT))]),
            Block::CodeBlock {
                params: String::new(),
                text: "b".into(),
            },
        ]);
        let e = long.validate().unwrap_err();
        assert_eq!(e.path, "content[1].content[0].text");
        assert!(e.message.contains("more than 500000 characters"), "{e}");
    }

    #[test]
    fn markdown_paragraphs_and_marks() {
        both_ways("hello", &doc(vec![para(vec![t("hello")])]));
        both_ways(
            "a _b_ **c** `d` [e](https://e.example \"E\")",
            &doc(vec![para(vec![
                t("a "),
                marked("b", |m| m.em = true),
                t(" "),
                marked("c", |m| m.strong = true),
                t(" "),
                marked("d", |m| m.code = true),
                t(" "),
                marked("e", |m| {
                    m.link = Some(LinkMark {
                        href: "https://e.example".into(),
                        title: Some("E".into()),
                    })
                }),
            ])]),
        );
        both_ways(
            "***both*** and *[`code link`](/x)*",
            &doc(vec![para(vec![
                marked("both", |m| {
                    m.em = true;
                    m.strong = true
                }),
                t(" and "),
                marked("code link", |m| {
                    m.em = true;
                    m.link = link("/x");
                    m.code = true;
                }),
            ])]),
        );
        // A soft break is a space, as in prosemirror-markdown; a hard break is a node.
        both_ways(
            "one\ntwo\\\nthree",
            &doc(vec![para(vec![
                t("one two"),
                Inline::HardBreak {
                    marks: Marks::none(),
                },
                t("three"),
            ])]),
        );
        let d = doc(vec![para(vec![t("a"), marked("b", |m| m.em = true)])]);
        assert_eq!(d.to_markdown(), "&#97;_b_");
        assert_eq!(
            doc(vec![para(vec![marked("b", |m| m.strong = true), t(" c")])]).to_markdown(),
            "**b** c"
        );
    }

    #[test]
    fn markdown_images() {
        let src = format!("ipfs://{}", cid());
        both_ways(
            &format!("![a *cat*]({src} \"Cat\")"),
            &doc(vec![para(vec![Inline::Image {
                src: src.clone(),
                alt: Some("a cat".into()),
                title: Some("Cat".into()),
                marks: Marks::none(),
            }])]),
        );
        both_ways(
            &format!("[![](/ipfs/{})](https://x.example)", cid()),
            &doc(vec![para(vec![Inline::Image {
                src: format!("/ipfs/{}", cid()),
                alt: None,
                title: None,
                marks: Marks {
                    link: link("https://x.example"),
                    ..Marks::none()
                },
            }])]),
        );
        // An image from elsewhere becomes a link to it.
        assert_eq!(
            Doc::from_markdown("![cat](https://x.example/cat.png)"),
            doc(vec![para(vec![
                marked("cat", |m| m.link = link("https://x.example/cat.png"))
            ])])
        );
        assert_eq!(
            Doc::from_markdown("![cat](data:image/png;base64,AAAA)"),
            doc(vec![para(vec![t("cat")])])
        );
    }

    #[test]
    fn markdown_blocks() {
        for level in 1..=6u8 {
            both_ways(
                &format!("{} Title", "#".repeat(level.into())),
                &doc(vec![Block::Heading {
                    level,
                    content: vec![t("Title")],
                }]),
            );
        }
        both_ways(
            "Setext\n===",
            &doc(vec![Block::Heading {
                level: 1,
                content: vec![t("Setext")],
            }]),
        );
        both_ways(
            "```rust\nfn main() {}\n\n```",
            &doc(vec![Block::CodeBlock {
                params: "rust".into(),
                text: "fn main() {}\n".into(),
            }]),
        );
        both_ways(
            "    indented",
            &doc(vec![Block::CodeBlock {
                params: String::new(),
                text: "indented".into(),
            }]),
        );
        both_ways(
            "> quoted\n>\n> > twice",
            &doc(vec![Block::Blockquote {
                content: vec![
                    para(vec![t("quoted")]),
                    Block::Blockquote {
                        content: vec![para(vec![t("twice")])],
                    },
                ],
            }]),
        );
        both_ways(
            "a\n\n---\n\nb",
            &doc(vec![
                para(vec![t("a")]),
                Block::HorizontalRule,
                para(vec![t("b")]),
            ]),
        );
        both_ways("", &Doc::default());
        both_ways(
            ">",
            &doc(vec![Block::Blockquote {
                content: vec![para(vec![])],
            }]),
        );
    }

    #[test]
    fn markdown_lists() {
        let item = |s: &str| ListItem {
            content: vec![para(vec![t(s)])],
        };
        both_ways(
            "- a\n- b\n  - c",
            &doc(vec![Block::BulletList {
                tight: true,
                content: vec![
                    item("a"),
                    ListItem {
                        content: vec![
                            para(vec![t("b")]),
                            Block::BulletList {
                                tight: true,
                                content: vec![item("c")],
                            },
                        ],
                    },
                ],
            }]),
        );
        both_ways(
            "3. a\n\n4. b",
            &doc(vec![Block::OrderedList {
                order: 3,
                tight: false,
                content: vec![item("a"), item("b")],
            }]),
        );
        both_ways(
            "-\n- b",
            &doc(vec![Block::BulletList {
                tight: true,
                content: vec![
                    ListItem {
                        content: vec![para(vec![])],
                    },
                    item("b"),
                ],
            }]),
        );
        // Two lists in a row stay two lists.
        let two = doc(vec![
            Block::BulletList {
                tight: true,
                content: vec![item("a")],
            },
            Block::BulletList {
                tight: true,
                content: vec![item("b")],
            },
            Block::OrderedList {
                order: 1,
                tight: true,
                content: vec![item("c")],
            },
            Block::OrderedList {
                order: 1,
                tight: true,
                content: vec![item("d")],
            },
        ]);
        assert_eq!(two.to_markdown(), "- a\n\n* b\n\n1. c\n\n1) d");
        both_ways("- a\n\n* b\n\n1. c\n\n1) d", &two);
    }

    #[test]
    fn html_is_text_never_markup() {
        assert_eq!(
            Doc::from_markdown("a <b>bold</b> <script>x</script>"),
            doc(vec![para(vec![t("a <b>bold</b> <script>x</script>")])])
        );
        assert_eq!(
            Doc::from_markdown("<div>\nhi\n</div>"),
            doc(vec![para(vec![
                t("<div>"),
                Inline::HardBreak {
                    marks: Marks::none()
                },
                t("hi"),
                Inline::HardBreak {
                    marks: Marks::none()
                },
                t("</div>"),
            ])])
        );
        let d = doc(vec![para(vec![t("<img src=x onerror=alert(1)>")])]);
        assert_eq!(d.to_markdown(), "\\<img src=x onerror=alert(1)>");
        both_ways(&d.to_markdown(), &d);
        // A link to a script is its text.
        assert_eq!(
            Doc::from_markdown("[x](javascript:alert(1)) <javascript:alert(1)>"),
            doc(vec![para(vec![t("x javascript:alert(1)")])])
        );
    }

    #[test]
    fn escapes_what_would_be_markup() {
        for s in [
            "*not em*",
            "_not em_",
            "# not a heading",
            "1. not a list",
            "- not a list",
            "+ not",
            "> not a quote",
            "```not code",
            "~~~",
            "[not](a link)",
            "![not](an image)",
            "a\\b",
            "&amp; stays",
            "&#32;",
            "  leading and trailing  ",
            "\ttab",
            "line\nbreak",
            "===",
            "<http://not.autolink>",
            "    not code",
            "trailing #",
            "x #",
        ] {
            let d = doc(vec![para(vec![t(s)])]);
            let md = d.to_markdown();
            assert_eq!(Doc::from_markdown(&md), d, "{s:?} printed as {md:?}");
            let h = doc(vec![Block::Heading {
                level: 2,
                content: vec![t(s)],
            }]);
            let md = h.to_markdown();
            assert_eq!(Doc::from_markdown(&md), h, "{s:?} printed as {md:?}");
        }
    }

    #[test]
    fn deeply_nested_markdown_is_flattened() {
        // Containers deeper than the limit are flattened into their parent.
        for md in [
            format!("{} x", ">".repeat(5000)),
            format!("{} x", "- ".repeat(5000)),
            format!("{} x", "> 1. ".repeat(3000)),
        ] {
            let d = Doc::from_markdown(&md);
            d.validate().unwrap();
            assert_eq!(d.plain_text(), "x");
            assert_eq!(Doc::from_markdown(&d.to_markdown()), d);
        }
    }

    #[test]
    fn plain_text_and_paragraphs() {
        let d = Doc::from_markdown("# T\n\nsome *em* text\\\nnext\n\n- a\n- b\n\n```\ncode\n```");
        assert_eq!(d.plain_text(), "T\n\nsome em text\nnext\n\na\n\nb\n\ncode");
        let p = Doc::paragraphs("one\ntwo\n\n\nthree\r\n");
        assert_eq!(p.plain_text(), "one\ntwo\n\nthree");
        assert_eq!(Doc::paragraphs(""), Doc::default());
        p.validate().unwrap();
    }

    #[test]
    fn schema_describes_the_json() {
        let schema = schemars::schema_for!(Doc);
        let text = serde_json::to_string(&schema).unwrap();
        for word in [
            "\"doc\"",
            "\"code_block\"",
            "\"hard_break\"",
            "\"link\"",
            "DocBlock",
        ] {
            assert!(text.contains(word), "{word} missing from {text}");
        }
    }

    // ---- Property: from_markdown(to_markdown(d)) == d ----------------------------------
    //
    // The generator makes documents in the normal form that `from_markdown` produces, since
    // Markdown cannot tell apart what that form merges:
    // - adjacent text nodes never have equal marks (they would be one node);
    // - paragraphs are not empty, except as the only block of a doc, blockquote or list
    //   item (an empty container reads as one empty paragraph);
    // - a hard break is not the last inline of a paragraph, has no code mark, and carries
    //   exactly the em, strong and link marks of the node after it (Markdown cannot end an
    //   emphasis or link with a line break);
    // - code-marked text has no newline and no `]:` (`[` + code `]:` + … at the start of a
    //   block reads as a link reference definition); images have no code mark; `alt` and `title` are
    //   absent rather than empty; headings hold no hard breaks;
    // - code block `params` have no surrounding whitespace and no newline;
    // - a tight list's items are one non-empty paragraph, optionally followed by a tight
    //   bullet list (Markdown cannot hold two paragraphs in a tight item);
    // - a loose list has at least two items and a paragraph directly in one of them (else
    //   Markdown reads it as tight).

    fn text_strategy() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a",
            "b",
            "xyz",
            " ",
            "  ",
            "*",
            "**",
            "_",
            "`",
            "``",
            "\\",
            "[",
            "]",
            "(",
            ")",
            "<",
            ">",
            "&",
            "&amp;",
            "&#",
            ";",
            "#",
            "!",
            "-",
            "+",
            "=",
            "~",
            "1",
            "12",
            ".",
            "\n",
            "\t",
            "é",
            "\u{a0}",
            "“",
            ":",
            "\"",
            "'",
            "|",
            "http://x.y",
            "…",
        ]);
        prop::collection::vec(pieces, 1..6).prop_map(|v| v.concat())
    }

    fn marks_strategy() -> impl Strategy<Value = Marks> {
        let href = prop::sample::select(vec![
            "https://a.example",
            "/p(1)",
            "#f",
            "mailto:x@y.example",
            "?a=1&b=2",
            "ipfs://bafkqaaa",
        ]);
        let title = prop::option::of(prop::sample::select(vec!["T", "a \"q\" \\ &amp;"]));
        (
            prop::bool::weighted(0.3),
            prop::bool::weighted(0.3),
            prop::option::weighted(0.3, (href, title)),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(em, strong, link, code)| Marks {
                em,
                strong,
                link: link.map(|(h, t)| LinkMark {
                    href: h.into(),
                    title: t.map(Into::into),
                }),
                code,
            })
    }

    fn inline_strategy() -> impl Strategy<Value = Inline> {
        let alt = prop::option::of(text_strategy());
        let title = prop::option::of(prop::sample::select(vec!["t", "x \"y\""]));
        prop_oneof![
            6 => (text_strategy(), marks_strategy())
                .prop_map(|(text, marks)| Inline::Text { text, marks }),
            1 => (alt, title, marks_strategy(), any::<bool>()).prop_map(|(alt, title, marks, v0)| {
                Inline::Image {
                    src: if v0 { format!("/ipfs/{}", cid()) } else { format!("ipfs://{}", cid()) },
                    alt: alt.map(|a| a.replace('\n', " ")),
                    title: title.map(Into::into),
                    marks,
                }
            }),
            1 => marks_strategy().prop_map(|marks| Inline::HardBreak { marks }),
        ]
    }

    /// Puts generated inline content into the normal form described above.
    fn normal_inlines(mut v: Vec<Inline>, heading: bool) -> Vec<Inline> {
        if heading {
            v.retain(|n| !matches!(n, Inline::HardBreak { .. }));
        }
        for n in &mut v {
            match n {
                // `]:` in code could turn a link starting a paragraph into a link definition.
                Inline::Text { text, marks } if marks.code => {
                    *text = text.replace('\n', " ").replace("]:", "] :");
                }
                Inline::Image { marks, alt, .. } => {
                    marks.code = false;
                    if alt.as_deref() == Some("") {
                        *alt = None;
                    }
                }
                _ => {}
            }
        }
        while matches!(v.last(), Some(Inline::HardBreak { .. })) {
            v.pop();
        }
        for i in (0..v.len().saturating_sub(1)).rev() {
            if let Inline::HardBreak { .. } = v[i] {
                let mut next = v[i + 1].marks().clone();
                next.code = false;
                v[i] = Inline::HardBreak { marks: next };
            }
        }
        let mut out: Vec<Inline> = Vec::new();
        for n in v {
            if let (Some(Inline::Text { text: a, marks: ma }), Inline::Text { text: b, marks: mb }) =
                (out.last_mut(), &n)
                && ma == mb
            {
                a.push_str(b);
                continue;
            }
            out.push(n);
        }
        out
    }

    fn paragraph_strategy() -> impl Strategy<Value = Block> {
        prop::collection::vec(inline_strategy(), 1..6)
            .prop_map(|v| normal_inlines(v, false))
            .prop_filter_map("empty paragraph", |v| {
                (!v.is_empty()).then_some(Block::Paragraph { content: v })
            })
    }

    fn leaf_block() -> impl Strategy<Value = Block> {
        let params = prop::sample::select(vec!["", "rust", "a b", "x`y", "\\*"]);
        let code = prop::collection::vec(
            prop::sample::select(vec!["x", "  y", "\t", "```", "~~~", "", "\\", "<b>", " "]),
            0..4,
        )
        .prop_map(|v| v.join("\n"));
        prop_oneof![
            4 => paragraph_strategy(),
            1 => (1..=6u8, prop::collection::vec(inline_strategy(), 0..4)).prop_map(
                |(level, v)| Block::Heading { level, content: normal_inlines(v, true) }
            ),
            1 => Just(Block::HorizontalRule),
            1 => (params, code).prop_map(|(p, text)| Block::CodeBlock { params: p.into(), text }),
        ]
    }

    fn tight_list(depth: u32) -> BoxedStrategy<Block> {
        let item = if depth == 0 {
            paragraph_strategy()
                .prop_map(|p| ListItem { content: vec![p] })
                .boxed()
        } else {
            (
                paragraph_strategy(),
                prop::option::of(tight_list(depth - 1)),
            )
                .prop_map(|(p, sub)| ListItem {
                    content: match sub {
                        Some(Block::BulletList {
                            tight: true,
                            content,
                        }) => {
                            vec![
                                p,
                                Block::BulletList {
                                    tight: true,
                                    content,
                                },
                            ]
                        }
                        _ => vec![p],
                    },
                })
                .boxed()
        };
        prop::collection::vec(item, 1..4)
            .prop_map(|content| Block::BulletList {
                tight: true,
                content,
            })
            .boxed()
    }

    fn block_strategy() -> impl Strategy<Value = Block> {
        let leaf = prop_oneof![4 => leaf_block(), 1 => tight_list(1)];
        leaf.prop_recursive(3, 40, 4, |inner| {
            let blocks = prop::collection::vec(inner.clone(), 1..4);
            prop_oneof![
                blocks
                    .clone()
                    .prop_map(|content| Block::Blockquote { content }),
                (
                    prop::option::of(0..=MAX_ORDER),
                    paragraph_strategy(),
                    prop::collection::vec(blocks, 1..3)
                )
                    .prop_map(|(order, first, rest)| {
                        // The first item starts with a paragraph, so Markdown sees it loose.
                        let mut content = vec![ListItem {
                            content: vec![first],
                        }];
                        content.extend(rest.into_iter().map(|content| ListItem { content }));
                        match order {
                            Some(order) => Block::OrderedList {
                                order,
                                tight: false,
                                content,
                            },
                            None => Block::BulletList {
                                tight: false,
                                content,
                            },
                        }
                    }),
                tight_list(1).prop_map(|l| match l {
                    Block::BulletList { content, .. } => Block::OrderedList {
                        order: 1,
                        tight: true,
                        content,
                    },
                    other => other,
                }),
            ]
        })
    }

    fn doc_strategy() -> impl Strategy<Value = Doc> {
        prop::collection::vec(block_strategy(), 1..5).prop_map(|content| Doc { content })
    }

    proptest! {
        // 1000 cases by default; `PROPTEST_CASES` runs more.
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1000)
        ))]

        #[test]
        fn markdown_round_trips(d in doc_strategy()) {
            d.validate().unwrap();
            let md = d.to_markdown();
            prop_assert_eq!(Doc::from_markdown(&md), d, "markdown: {:?}", md);
        }

        #[test]
        fn dag_cbor_and_dag_json_round_trip(d in doc_strategy()) {
            let bytes = crate::cbor::encode(&d).unwrap();
            prop_assert_eq!(&crate::cbor::decode::<Doc>(&bytes).unwrap(), &d);
            let ipld = crate::cbor::decode_ipld(&bytes).unwrap();
            let text = crate::json::to_dag_json(&ipld).unwrap();
            let back = crate::json::from_dag_json(&text).unwrap();
            prop_assert_eq!(&back, &ipld);
            prop_assert_eq!(&ipld_core::serde::from_ipld::<Doc>(back).unwrap(), &d);
            prop_assert_eq!(&serde_json::from_str::<Doc>(&text).unwrap(), &d);
        }

        #[test]
        fn reading_any_markdown_is_stable(md in "[-*_`#>+=~!\\[\\]()<>&;:/\"'a-c19. \t\n\\\\é]{0,60}") {
            // What reading gives is in the normal form: printing and reading it changes nothing.
            let d = Doc::from_markdown(&md);
            let printed = d.to_markdown();
            prop_assert_eq!(Doc::from_markdown(&printed), d, "markdown: {:?} printed: {:?}", md, printed);
        }
    }
}
