//! The reserved namespaces `opinion`, `theory` and `journalism`: registered and stored like the
//! others, with a deliberately plain note body until their own models are designed.

use serde::{Deserialize, Serialize};

use super::{Link, Source, check};
use crate::{
    example::ExampleGen,
    registry::{Index, Model, SchemaError, Topic},
};

macro_rules! note_kind {
    ($(#[$doc:meta])* $name:ident = $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
        pub struct $name {
            /// A title.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub title: Option<String>,
            /// The text.
            pub text: String,
            /// Records this is about.
            #[serde(default)]
            pub about: Vec<Link>,
            /// What backs it.
            #[serde(default)]
            pub sources: Vec<Source>,
            /// Tags.
            #[serde(default)]
            pub tags: Vec<String>,
        }

        impl Model for $name {
            const KIND: &'static str = $kind;

            fn validate(&self) -> Result<(), SchemaError> {
                check::opt_text("title", self.title.as_deref(), 1, check::TITLE)?;
                check::text("text", &self.text, 1, check::LONG_TEXT)?;
                check::record_links("about", &self.about, 100)?;
                check::list("sources", &self.sources, 100)?;
                self.sources.iter().enumerate().try_for_each(|(i, s)| s.check(&format!("sources[{i}]")))?;
                check::tags("tags", &self.tags)
            }

            fn index(&self) -> Index {
                Index {
                    tags: self.tags.clone(),
                    topics: self.about.iter().map(|l| Topic::About(l.0)).collect(),
                    targets: self.about.iter().map(|l| l.0).collect(),
                }
            }

            fn example(g: &mut ExampleGen) -> Self {
                Self {
                    title: Some(g.title().full),
                    text: g.paragraph(),
                    about: vec![g.link::<crate::model::info::Fact>()],
                    sources: vec![],
                    tags: g.tags(1),
                }
            }
        }
    };
}

note_kind!(
    /// `opinion.note`: an opinion about records.
    Opinion = "opinion.note"
);
note_kind!(
    /// `theory.note`: a theory built on records.
    Theory = "theory.note"
);
note_kind!(
    /// `journalism.article`: a piece of journalism.
    Article = "journalism.article"
);
