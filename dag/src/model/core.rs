//! `core`: profiles, groups, key logs, files and texts.

use serde::{Deserialize, Serialize};

use super::{Link, check};
use crate::{
    doc::Doc,
    example::ExampleGen,
    keys::Did,
    registry::{Model, SchemaError},
};

/// `core.profile`: a person's public profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Profile {
    /// Unique-per-node handle, like `alice`.
    pub handle: String,
    /// The name shown to people.
    pub display_name: String,
    /// About this person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    /// A `core.file` or `art.image` record to show as the avatar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<Link>,
    /// Links to elsewhere.
    #[serde(default)]
    pub links: Vec<String>,
}

impl Model for Profile {
    const KIND: &'static str = "core.profile";

    fn validate(&self) -> Result<(), SchemaError> {
        check::handle("handle", &self.handle)?;
        check::text("display_name", &self.display_name, 1, 100)?;
        check::opt_text("bio", self.bio.as_deref(), 0, check::SHORT_TEXT)?;
        if let Some(a) = &self.avatar {
            check::record_link("avatar", a)?;
        }
        check::list("links", &self.links, 16)?;
        self.links
            .iter()
            .enumerate()
            .try_for_each(|(i, u)| check::url(&format!("links[{i}]"), u))
    }

    fn example(g: &mut ExampleGen) -> Self {
        let handle = g.handle();
        Self {
            display_name: g.capitalised(&handle),
            handle,
            bio: Some(g.sentence()),
            avatar: Some(g.link::<crate::model::art::Image>()),
            links: vec![format!("https://example.org/{}", g.word())],
        }
    }
}

/// A member's role in a group.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full control, including roles.
    Owner,
    /// Manages members and content.
    Admin,
    /// Moderates content.
    Moderator,
    /// Takes part.
    Member,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Member {
    /// The member's key.
    pub did: Did,
    /// What the member may do.
    pub role: Role,
}

/// `core.group`: a group of profiles with members and roles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Group {
    /// The group's name.
    pub name: String,
    /// What the group is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Members with roles; at least one owner.
    pub members: Vec<Member>,
    /// Versions of the group's items that stay in force although their signers lost the right
    /// to make them in this version (filled when members are removed or demoted: their past
    /// work stays; see `mnode_dag::group::standing`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settled: Vec<Link>,
}

impl Model for Group {
    const KIND: &'static str = "core.group";

    fn validate(&self) -> Result<(), SchemaError> {
        check::text("name", &self.name, 1, check::TITLE)?;
        check::opt_text(
            "description",
            self.description.as_deref(),
            0,
            check::SHORT_TEXT,
        )?;
        check::list("members", &self.members, 10_000)?;
        check::list("settled", &self.settled, 2_000)?;
        for (i, l) in self.settled.iter().enumerate() {
            check::record_link(&format!("settled[{i}]"), l)?;
        }
        if !self.members.iter().any(|m| m.role == Role::Owner) {
            return Err(SchemaError::new("members", "needs at least one owner"));
        }
        for (i, m) in self.members.iter().enumerate() {
            if self.members[..i].iter().any(|o| o.did == m.did) {
                return Err(SchemaError::new(
                    format!("members[{i}]"),
                    format!("{} is listed twice", m.did),
                ));
            }
        }
        Ok(())
    }

    fn example(g: &mut ExampleGen) -> Self {
        let roles = [Role::Owner, Role::Moderator, Role::Member];
        Self {
            name: g.title().full,
            description: Some(g.sentence()),
            members: roles
                .iter()
                .enumerate()
                .map(|(i, r)| Member {
                    did: g.person(i),
                    role: *r,
                })
                .collect(),
            settled: vec![],
        }
    }
}

/// `core.keys`: an identity's key log, one item per identity. Version 0 is signed by the
/// identity's first key and names it; each later version is signed by the key or the recovery
/// key of the version before and grants a new key ([`crate::key_log`] holds the rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyLog {
    /// The identity the log is for (its first key): absent on version 0, which its first key
    /// signs; every later version names it, so that it travels on the identity's feed whoever
    /// signs it (a rotated or a recovery key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Did>,
    /// The key that signs for the identity from this version on.
    pub key: Did,
    /// A key that may sign the next version instead of `key` (its public key only; the secret is
    /// kept off the node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Did>,
    /// `key`'s signature over `"mnode/key-grant/1"`, the identity's 32-byte public key and the
    /// previous version's binary CID (nothing on version 0): the key agrees to sign for the
    /// identity.
    #[serde(with = "serde_bytes")]
    #[schemars(schema_with = "signature_schema")]
    pub proof: [u8; crate::keys::SIGNATURE_LEN],
    /// What the previous key signed that the identity keeps: the tips of the items it signed
    /// versions of, as the rotating node held them (at most 20,000).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<Link>,
}

fn signature_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "64 bytes (an ed25519 signature) in DAG-JSON form {\"/\": {\"bytes\": \"<base64>\"}}",
        "properties": {
            "/": {
                "type": "object",
                "properties": { "bytes": { "type": "string", "pattern": "^[A-Za-z0-9+/]{85}[AQgw]$" } },
                "required": ["bytes"]
            }
        },
        "required": ["/"]
    })
}

impl Model for KeyLog {
    const KIND: &'static str = "core.keys";

    fn validate(&self) -> Result<(), SchemaError> {
        if self.recovery == Some(self.key) {
            return Err(SchemaError::new(
                "recovery",
                "must differ from key: a recovery key stands in for a lost key",
            ));
        }
        check::record_links("kept", &self.kept, crate::key_log::MAX_KEPT)
    }

    fn example(g: &mut ExampleGen) -> Self {
        let first = g.key(0).clone();
        Self::root(&first, Some(*g.recovery_key(0).did()))
    }
}

/// What kind of content a file holds.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A picture.
    Image,
    /// Sound.
    Audio,
    /// Moving pictures.
    Video,
    /// Text.
    Text,
    /// Anything else.
    #[default]
    Other,
}

impl FileKind {
    /// The kind a media type belongs to.
    pub fn of_media_type(media_type: &str) -> Self {
        match media_type.split('/').next() {
            Some("image") => Self::Image,
            Some("audio") => Self::Audio,
            Some("video") => Self::Video,
            Some("text") => Self::Text,
            _ => Self::Other,
        }
    }
}

/// A file's content link and what it is; shared by `core.file` and the art media kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileData {
    /// The contents: a raw blake3 CID (the iroh-blobs hash).
    pub blob: Link,
    /// The file's name, without any folder.
    pub name: String,
    /// The media type, like `image/png`.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// For a file of a private record: how its blob is encrypted (the blob is then the
    /// sealed file, [`crate::sealed_file`]); absent for a plain file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<FileSeal>,
    /// The same file's UnixFS view ([`crate::unixfs`]: dag-pb, raw leaves, 1 MiB chunks): the
    /// CID IPFS clients (Helia, Kubo, `ipfs cat`) fetch it by. Absent for a sealed file and for
    /// files recorded before views existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unixfs: Option<Link>,
}

/// How a sealed file's blob is encrypted: its format version and key. Only ever inside a
/// private record's body, where only its readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileSeal {
    /// The format: 1 ([`crate::sealed_file`]).
    pub v: u32,
    /// The file's key: 64 lowercase hex digits.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub key: String,
}

impl FileSeal {
    /// The seal of a file encrypted under `key`, in the current format.
    pub fn new(key: &crate::sealed_file::FileKey) -> Self {
        Self {
            v: crate::sealed_file::VERSION,
            key: key.to_hex(),
        }
    }

    /// The key, once the format is one this node reads.
    pub fn key(&self) -> Result<crate::sealed_file::FileKey, SchemaError> {
        if self.v != crate::sealed_file::VERSION {
            return Err(SchemaError::new(
                "sealed.v",
                format!(
                    "sealed file format {} is not supported (this node reads {})",
                    self.v,
                    crate::sealed_file::VERSION
                ),
            ));
        }
        crate::sealed_file::FileKey::from_hex(&self.key)
            .map_err(|e| SchemaError::new("sealed.key", e.to_string()))
    }
}

impl FileData {
    pub(crate) fn check(&self, path: &str) -> Result<(), SchemaError> {
        let at = |f: &str| {
            if path.is_empty() {
                f.to_owned()
            } else {
                format!("{path}.{f}")
            }
        };
        check::blob_link(&at("blob"), &self.blob)?;
        check::text(&at("name"), &self.name, 1, 255)?;
        if self.name.contains(['/', '\\']) || self.name == "." || self.name == ".." {
            return Err(SchemaError::new(
                at("name"),
                "must be a plain file name without folders",
            ));
        }
        check::media_type(&at("media_type"), &self.media_type)?;
        if let Some(view) = &self.unixfs {
            check::unixfs_link(&at("unixfs"), view)?;
            if self.sealed.is_some() {
                return Err(SchemaError::new(
                    at("unixfs"),
                    "a sealed file has no UnixFS view: its readers fetch it by its blob",
                ));
            }
        }
        match &self.sealed {
            Some(seal) => seal
                .key()
                .map(drop)
                .map_err(|e| SchemaError::new(at(&e.path), e.message)),
            None => Ok(()),
        }
    }

    /// The size of the blob: the file's, or its sealed form's.
    pub fn blob_size(&self) -> u64 {
        match self.sealed {
            Some(_) => crate::sealed_file::sealed_size(self.size),
            None => self.size,
        }
    }
}

/// `core.file`: a file in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct File {
    /// The contents: a raw blake3 CID (the iroh-blobs hash).
    pub blob: Link,
    /// The file's name, without any folder.
    pub name: String,
    /// The media type, like `image/png`.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Image, audio, video, text or other.
    pub kind: FileKind,
    /// How the blob is encrypted, for a file of a private record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<FileSeal>,
    /// The file's UnixFS view, the CID IPFS clients fetch it by (see [`FileData::unixfs`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unixfs: Option<Link>,
}

impl File {
    /// The record for a file described by `data`.
    pub fn new(data: FileData) -> Self {
        let kind = FileKind::of_media_type(&data.media_type);
        Self {
            blob: data.blob,
            name: data.name,
            media_type: data.media_type,
            size: data.size,
            kind,
            sealed: data.sealed,
            unixfs: data.unixfs,
        }
    }
}

impl Model for File {
    const KIND: &'static str = "core.file";

    fn validate(&self) -> Result<(), SchemaError> {
        FileData {
            blob: self.blob,
            name: self.name.clone(),
            media_type: self.media_type.clone(),
            size: self.size,
            sealed: self.sealed.clone(),
            unixfs: self.unixfs,
        }
        .check("")
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self::new(g.blob(FileKind::Text))
    }
}

/// `core.text`: a rich-text document, as the editor writes it.
///
/// The document is ProseMirror JSON in the schema of `prosemirror-markdown` (see
/// [`crate::doc`]): paragraphs, headings, lists, quotes, code, links, emphasis and images by
/// CID, checked node by node on write and on receipt, and readable as Markdown both ways.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Text {
    /// The document's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The document format and its version: always `prosemirror-markdown/1` for now.
    #[schemars(extend("enum" = ["prosemirror-markdown/1"]))]
    pub format: String,
    /// The document.
    pub doc: Doc,
    /// BCP 47 language tag, like `en` or `pt-BR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl Text {
    /// The one format this node writes and reads.
    pub const FORMAT: &'static str = "prosemirror-markdown/1";

    /// A text of `doc` in the current format.
    pub fn new(title: Option<String>, doc: Doc) -> Self {
        Self {
            title,
            format: Self::FORMAT.into(),
            doc,
            language: None,
        }
    }
}

/// `doc` checked, with its errors' paths under `field`.
pub(crate) fn check_doc(field: &str, doc: &Doc) -> Result<(), SchemaError> {
    doc.validate().map_err(|e| {
        let path = if e.path.is_empty() {
            field.to_owned()
        } else {
            format!("{field}.{}", e.path)
        };
        SchemaError::new(path, e.message)
    })
}

impl Model for Text {
    const KIND: &'static str = "core.text";

    fn validate(&self) -> Result<(), SchemaError> {
        check::opt_text("title", self.title.as_deref(), 1, check::TITLE)?;
        if self.format != Self::FORMAT {
            return Err(SchemaError::new(
                "format",
                format!("must be {:?} (the only document format)", Self::FORMAT),
            ));
        }
        check_doc("doc", &self.doc)?;
        check::opt_text("language", self.language.as_deref(), 2, 35)
    }

    fn example(g: &mut ExampleGen) -> Self {
        let paragraphs: Vec<String> = (0..3).map(|_| g.paragraph()).collect();
        let md = format!(
            "# {}\n\n{}\n\n- *{}*\n- [{}](https://example.org/)",
            g.sentence(),
            paragraphs.join("\n\n"),
            g.word(),
            g.word()
        );
        Self {
            language: Some("la".into()),
            ..Self::new(Some(g.title().full), Doc::from_markdown(&md))
        }
    }
}
