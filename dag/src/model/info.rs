//! `info`: facts with sources, and context anyone can attach to any record.

use serde::{Deserialize, Serialize};

use super::{Link, Source, check};
use crate::{
    example::ExampleGen,
    registry::{Index, Model, SchemaError, Topic},
};

/// `info.fact`: a statement with sources, sorted into a hierarchy by `parent`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fact {
    /// The statement.
    pub statement: String,
    /// What backs it.
    #[serde(default)]
    pub sources: Vec<Source>,
    /// The broader fact this one sits under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Link>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Model for Fact {
    const KIND: &'static str = "info.fact";

    fn validate(&self) -> Result<(), SchemaError> {
        check::text("statement", &self.statement, 1, check::SHORT_TEXT)?;
        check::list("sources", &self.sources, 100)?;
        self.sources
            .iter()
            .enumerate()
            .try_for_each(|(i, s)| s.check(&format!("sources[{i}]")))?;
        self.parent
            .as_ref()
            .map_or(Ok(()), |l| check::record_link("parent", l))?;
        check::tags("tags", &self.tags)
    }

    fn index(&self) -> Index {
        Index {
            tags: self.tags.clone(),
            topics: self.parent.iter().map(|p| Topic::About(p.0)).collect(),
            targets: self.parent.iter().map(|p| p.0).collect(),
        }
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            statement: g.sentence(),
            sources: vec![Source {
                title: g.title().full,
                url: Some("https://example.org/source".into()),
                link: None,
            }],
            parent: None,
            tags: g.tags(1),
        }
    }
}

/// `info.context`: a note that anyone can attach to any record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Context {
    /// The record the note is about.
    pub target: Link,
    /// The note.
    pub note: String,
    /// What backs it.
    #[serde(default)]
    pub sources: Vec<Source>,
}

impl Model for Context {
    const KIND: &'static str = "info.context";

    fn validate(&self) -> Result<(), SchemaError> {
        check::record_link("target", &self.target)?;
        check::text("note", &self.note, 1, check::SHORT_TEXT)?;
        check::list("sources", &self.sources, 100)?;
        self.sources
            .iter()
            .enumerate()
            .try_for_each(|(i, s)| s.check(&format!("sources[{i}]")))
    }

    fn index(&self) -> Index {
        Index {
            tags: vec![],
            topics: vec![Topic::About(self.target.0)],
            targets: vec![self.target.0],
        }
    }

    fn example(g: &mut ExampleGen) -> Self {
        let fact = g.link::<Fact>();
        Self {
            target: fact,
            note: g.sentence(),
            sources: vec![Source {
                title: g.title().full,
                url: None,
                link: Some(fact),
            }],
        }
    }
}
