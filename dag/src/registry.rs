//! The one registry of kinds.
//!
//! Every kind is a typed struct implementing [`Model`] plus one line in [`KINDS`]. Everything
//! downstream (store indexes, API routes, CLI verbs, UI pages, tests) iterates this table
//! instead of carrying per-kind code. Kinds not in the table (from newer nodes) are still
//! stored and relayed when their envelope verifies; their bodies are kept as generic IPLD.

use std::{borrow::Cow, fmt};

use ipld_core::ipld::Ipld;
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    cids::Cid,
    example::ExampleGen,
    group::{OWNER_FIELD, OwnerCite},
    key_log::{SIGNER_FIELD, SignerCite},
    model,
    private::PRIVATE_KEY,
};

/// A kind of record: a typed body with its validation and an example.
pub trait Model:
    Serialize + DeserializeOwned + schemars::JsonSchema + Send + Sync + 'static
{
    /// `namespace.kind`, as written in the envelope's `type`.
    const KIND: &'static str;

    /// Checks the rules serde cannot express: lengths, formats, link kinds, consistency.
    fn validate(&self) -> Result<(), SchemaError>;

    /// What the store indexes this body by, besides kind, author and time.
    fn index(&self) -> Index {
        Index::default()
    }

    /// A valid example, drawn from the seeded generator (which also makes whatever it links).
    fn example(g: &mut ExampleGen) -> Self;
}

/// What a body is indexed by: hierarchical tags and the topics it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// Tag paths such as `music/jazz`.
    pub tags: Vec<String>,
    /// Topics (a forum, a branch, a thread, the record a note is about).
    pub topics: Vec<Topic>,
    /// Records this one answers or is about: a reply's parent and root, a context note's
    /// target, a fork's post, a sub-fact's parent. It is also gossiped on their topics, so
    /// that whoever follows them gets it.
    pub targets: Vec<Cid>,
}

/// A topic a record belongs to, beside its author's feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A forum (by its origin CID).
    Forum(Cid),
    /// A forum branch (by its origin CID): gossiped as `/mnode/1/branch/<cid>`.
    Branch(Cid),
    /// A thread (by its origin CID): gossiped as `/mnode/1/thread/<cid>`.
    Thread(Cid),
    /// The record a context note, reply or fact hangs under.
    About(Cid),
    /// The group that owns the item (`$owner`), by the group's id: gossiped as
    /// `/mnode/1/group/<cid>`, with the group's own versions.
    Group(Cid),
}

/// A body that breaks its kind's schema. `path` names the field, as in `title.full` or
/// `files[2]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// The offending field, empty for the body as a whole.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl SchemaError {
    /// A new error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for SchemaError {}

/// The record's own facts a body carries under reserved keys starting with `$`, beside the
/// kind's fields: no kind has a field starting with `$`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordFields {
    /// `$owner`: the group that owns the item ([`crate::group`]).
    pub owner: Option<OwnerCite>,
    /// `$signer`: the identity the record is signed for and the key log version that grants
    /// the signing key ([`crate::key_log`]); absent when the identity's first key signs.
    pub signer: Option<SignerCite>,
    /// `$private`: the kind's fields are sealed for listed recipients ([`crate::private`]).
    pub private: bool,
}

/// Splits the reserved `$` fields off a body: what they say, and the kind's own fields (the
/// body itself, borrowed, when it has no `$` key). A `$` key this node does not know is an
/// error on [`Strictness::Create`] and passed over on [`Strictness::Receive`] (a newer node
/// may have added it). `$private` is known and passed over here: [`crate::private`] reads it.
pub fn split_record_fields(
    body: &Ipld,
    strictness: Strictness,
) -> Result<(RecordFields, Cow<'_, Ipld>), SchemaError> {
    let Ipld::Map(map) = body else {
        return Ok((RecordFields::default(), Cow::Borrowed(body)));
    };
    if !map.keys().any(|k| k.starts_with('$')) {
        return Ok((RecordFields::default(), Cow::Borrowed(body)));
    }
    let mut fields = RecordFields::default();
    let mut rest = map.clone();
    rest.retain(|k, _| !k.starts_with('$'));
    for (k, v) in map.iter().filter(|(k, _)| k.starts_with('$')) {
        match k.as_str() {
            OWNER_FIELD => {
                fields.owner =
                    Some(OwnerCite::from_ipld(v).map_err(|m| SchemaError::new(OWNER_FIELD, m))?);
            }
            SIGNER_FIELD => {
                fields.signer =
                    Some(SignerCite::from_ipld(v).map_err(|m| SchemaError::new(SIGNER_FIELD, m))?);
            }
            PRIVATE_KEY => fields.private = true,
            _ if strictness == Strictness::Create => {
                return Err(SchemaError::new(
                    k.as_str(),
                    "unknown record field (fields starting with '$' are the record's own: $owner, $signer, $private)",
                ));
            }
            _ => {}
        }
    }
    Ok((fields, Cow::Owned(Ipld::Map(rest))))
}

/// How strictly a body is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Made on this node: fields the schema does not know are an error (a typo is caught).
    Create,
    /// Received from elsewhere: unknown fields are kept, so newer nodes can add fields.
    Receive,
}

/// One registered kind.
pub struct KindInfo {
    /// `namespace.kind`.
    pub name: &'static str,
    /// The plural used in widget queries: `art.releases` for `art.release`.
    pub collection: &'static str,
    /// One line for people.
    pub description: &'static str,
    validate: fn(&Ipld, Strictness) -> Result<Index, SchemaError>,
    example: fn(&mut ExampleGen) -> Result<Ipld, SchemaError>,
    schema: fn() -> schemars::Schema,
}

impl fmt::Debug for KindInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KindInfo")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl KindInfo {
    /// The entry for model `M`.
    pub const fn of<M: Model>(collection: &'static str, description: &'static str) -> Self {
        Self {
            name: M::KIND,
            collection,
            description,
            validate: validate_as::<M>,
            example: example_of::<M>,
            schema: schema_of::<M>,
        }
    }

    /// The namespace part of the name (`art` of `art.release`).
    pub fn namespace(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(ns, _)| ns)
    }

    /// Checks a body against this kind and returns what to index it by.
    pub fn validate(&self, body: &Ipld, strictness: Strictness) -> Result<Index, SchemaError> {
        (self.validate)(body, strictness)
    }

    /// An example body from the generator.
    pub fn example(&self, g: &mut ExampleGen) -> Result<Ipld, SchemaError> {
        (self.example)(g)
    }

    /// The body's JSON Schema (links shown in their DAG-JSON form `{"/": "bafy…"}`).
    pub fn schema(&self) -> schemars::Schema {
        (self.schema)()
    }
}

/// Every registered kind, in display order. Adding a kind: one struct, one line here.
pub static KINDS: &[KindInfo] = &[
    KindInfo::of::<model::core::Profile>(
        "profiles",
        "a person's public profile: handle, name, bio, avatar",
    ),
    KindInfo::of::<model::core::Group>("groups", "a group of profiles with members and roles"),
    KindInfo::of::<model::core::KeyLog>(
        "keys",
        "an identity's key log: the key that signs for it, a recovery key, what a rotation keeps",
    ),
    KindInfo::of::<model::core::File>(
        "files",
        "a file in the blob store: name, media type, size, kind",
    ),
    KindInfo::of::<model::core::Text>(
        "texts",
        "a text document in an editor's serialisation format",
    ),
    KindInfo::of::<model::art::Artist>("artists", "an artist: name, bio, image"),
    KindInfo::of::<model::art::ArtistGroup>("artist_groups", "a band or collective of artists"),
    KindInfo::of::<model::art::Image>("images", "an image file with its dimensions"),
    KindInfo::of::<model::art::Audio>("audios", "an audio file with its duration"),
    KindInfo::of::<model::art::Video>("videos", "a video file with its duration and size"),
    KindInfo::of::<model::art::Release>(
        "releases",
        "a release: title, artists, files, date, license",
    ),
    KindInfo::of::<model::art::Still>("stills", "a still image with its creators"),
    KindInfo::of::<model::social::Post>(
        "posts",
        "a post: text, media, replies, tags, branch or thread",
    ),
    KindInfo::of::<model::social::Page>("pages", "a page of blocks, including widgets"),
    KindInfo::of::<model::social::Feed>("feeds", "a named, ordered view of posts"),
    KindInfo::of::<model::social::Forum>("forums", "a forum: moderators and a tag tree"),
    KindInfo::of::<model::social::Branch>("branches", "a branch of a forum: a feed inside it"),
    KindInfo::of::<model::social::Thread>("threads", "a conversation in a branch; can fork"),
    KindInfo::of::<model::social::Moderation>(
        "moderations",
        "a forum moderator's decision: hide a post or thread, ban an author",
    ),
    KindInfo::of::<model::social::Message>(
        "messages",
        "a direct message, sealed for the people it is for",
    ),
    KindInfo::of::<model::info::Fact>("facts", "a statement with sources, in a hierarchy"),
    KindInfo::of::<model::info::Context>("contexts", "a note anyone can attach to any record"),
    KindInfo::of::<model::reserved::Opinion>("opinions", "reserved: an opinion about records"),
    KindInfo::of::<model::reserved::Theory>("theories", "reserved: a theory built on records"),
    KindInfo::of::<model::reserved::Article>("articles", "reserved: a piece of journalism"),
];

/// The registered kind called `name`.
pub fn lookup(name: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.name == name)
}

/// A word (a kind's name) with its article: "a social.post", "an art.release".
pub fn with_article(word: &str) -> String {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {word}")
    } else {
        format!("a {word}")
    }
}

/// The registered kind a mistyped name most likely meant: the kind whose collection it is
/// (`art.releases` → `art.release`), else the closest name within a few letters.
pub fn suggest(name: &str) -> Option<&'static KindInfo> {
    if let Some((ns, collection)) = name.split_once('.')
        && let Some(k) = by_collection(ns, collection)
    {
        return Some(k);
    }
    KINDS
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k.name), k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The registered kind whose query collection is `namespace.collection` (`art.releases`).
pub fn by_collection(namespace: &str, collection: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.namespace() == namespace && k.collection == collection)
}

fn validate_as<M: Model>(body: &Ipld, strictness: Strictness) -> Result<Index, SchemaError> {
    let model: M = serde_path_to_error::deserialize(body.clone()).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        SchemaError::new(path, plain_serde_message(&e.into_inner().to_string()))
    })?;
    model.validate()?;
    if strictness == Strictness::Create {
        reject_unknown_fields(body, &model)?;
    }
    Ok(model.index())
}

/// serde's messages, said the way a person writing a body would understand them.
fn plain_serde_message(m: &str) -> String {
    let m = m.trim_start_matches("serde error: ");
    if let Some(found) =
        m.strip_prefix("Only `Ipld::Link`s can be deserialized to CIDs, input was ")
    {
        let found = found_value(found.trim_matches('`'));
        return format!("expected a link {{\"/\": \"bafy…\"}}, found {found}");
    }
    if m.contains("deserialized to `enum`") {
        // An enum is written as one of its names; ipld-core asks for a map too because an
        // enum with data would be one.
        let found = m
            .split_once("input was `")
            .map(|(_, f)| format!(", found {}", found_value(f.trim_end_matches('`'))))
            .unwrap_or_default();
        return format!(
            "expected one of this field's names{found} (`mnode types --json` lists them)"
        );
    }
    // ipld-core's "Only `Ipld::List` can be deserialized to sequence, input was
    // `String(\"music\")`" says in Rust what a person says as "expected a list, found text".
    if let Some(rest) = m.strip_prefix("Only `Ipld::")
        && let Some((want, rest)) = rest.split_once('`')
        && let Some((_, found)) = rest.split_once("input was `")
    {
        let found = found_value(found.trim_end_matches('`'));
        return format!("expected {}, found {found}", ipld_kind(want));
    }
    m.replace("invalid type: ", "wrong type: ")
}

/// A person's word for an IPLD kind as ipld-core names it.
fn ipld_kind(name: &str) -> &'static str {
    match name {
        "List" => "a list",
        "Map" => "a map (an object)",
        "String" => "text",
        "Integer" => "a whole number",
        "Float" => "a number",
        "Bool" => "true or false",
        "Bytes" => "bytes",
        "Link" => "a link {\"/\": \"bafy…\"}",
        "Null" => "null",
        _ => "another type",
    }
}

/// A value as ipld-core debug-prints it (`String("music")`, `Integer(3)`, `Map({…})`), said
/// plainly.
fn found_value(debug: &str) -> String {
    let (kind, inner) = debug.split_once('(').map_or((debug, ""), |(k, rest)| {
        (k, rest.strip_suffix(')').unwrap_or(rest))
    });
    match kind {
        "String" => format!("text {inner}"),
        "Integer" | "Float" => format!("the number {inner}"),
        "Bool" => inner.to_owned(),
        "Null" => "null".to_owned(),
        "List" => "a list".to_owned(),
        "Map" => "a map".to_owned(),
        "Link" => "a link".to_owned(),
        "Bytes" => "bytes".to_owned(),
        _ => debug.to_owned(),
    }
}

/// Fields present in `body` that do not survive a typed round trip are unknown to the schema.
fn reject_unknown_fields<M: Model>(body: &Ipld, model: &M) -> Result<(), SchemaError> {
    let typed =
        ipld_core::serde::to_ipld(model).map_err(|e| SchemaError::new("", e.to_string()))?;
    first_unknown("", body, &typed).map_or(Ok(()), |path| {
        Err(SchemaError::new(
            path,
            "unknown field (check the spelling; `mnode types --json` lists the fields)",
        ))
    })
}

fn first_unknown(path: &str, given: &Ipld, typed: &Ipld) -> Option<String> {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (given, typed) {
        (Ipld::Map(g), Ipld::Map(t)) => g.iter().find_map(|(k, v)| match t.get(k) {
            None if *v != Ipld::Null => Some(join(k)),
            None => None,
            Some(tv) => first_unknown(&join(k), v, tv),
        }),
        (Ipld::List(g), Ipld::List(t)) => g
            .iter()
            .zip(t)
            .enumerate()
            .find_map(|(i, (gv, tv))| first_unknown(&format!("{path}[{i}]"), gv, tv)),
        _ => None,
    }
}

fn schema_of<M: Model>() -> schemars::Schema {
    schemars::schema_for!(M)
}

fn example_of<M: Model>(g: &mut ExampleGen) -> Result<Ipld, SchemaError> {
    let model = M::example(g);
    ipld_core::serde::to_ipld(&model).map_err(|e| SchemaError::new("", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_suggest_the_kind_meant() {
        let name = |n: &str| suggest(n).map(|k| k.name);
        assert_eq!(name("art.releases"), Some("art.release"));
        assert_eq!(name("social.psot"), Some("social.post"));
        assert_eq!(name("art.relase"), Some("art.release"));
        assert_eq!(name("something.else"), None);
    }

    #[test]
    fn wrong_types_are_said_plainly() {
        let body = |json: &str| crate::json::from_dag_json(json).unwrap();
        let e = lookup("social.post")
            .unwrap()
            .validate(
                &body(r#"{"text": "hi", "tags": "music"}"#),
                Strictness::Create,
            )
            .unwrap_err();
        assert_eq!(e.path, "tags");
        assert_eq!(e.message, r#"expected a list, found text "music""#);
        let e = lookup("social.post")
            .unwrap()
            .validate(&body(r#"{"text": 3}"#), Strictness::Create)
            .unwrap_err();
        assert_eq!(e.to_string(), "text: expected text, found the number 3");
        let e = lookup("art.release")
            .unwrap()
            .validate(&body(r#"{"title": "x"}"#), Strictness::Create)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"title: expected a map (an object), found text "x""#
        );
    }

    #[test]
    fn names_and_collections_are_unique_and_well_formed() {
        let mut names = std::collections::HashSet::new();
        let mut collections = std::collections::HashSet::new();
        for k in KINDS {
            crate::record::check_kind_name(k.name).unwrap();
            assert!(names.insert(k.name), "duplicate kind {}", k.name);
            assert!(
                collections.insert((k.namespace(), k.collection)),
                "duplicate collection {}",
                k.collection
            );
            assert_eq!(lookup(k.name).map(|k| k.name), Some(k.name));
            assert_eq!(
                by_collection(k.namespace(), k.collection).map(|k| k.name),
                Some(k.name)
            );
        }
        for ns in [
            "core",
            "art",
            "social",
            "info",
            "opinion",
            "theory",
            "journalism",
        ] {
            assert!(
                KINDS.iter().any(|k| k.namespace() == ns),
                "namespace {ns} has no kind"
            );
        }
    }

    #[test]
    fn every_kind_has_an_object_schema() {
        for k in KINDS {
            let schema = serde_json::to_value(k.schema()).unwrap();
            assert_eq!(schema["type"], "object", "{}", k.name);
        }
    }
}
