//! `art`: artists, media and releases.

use serde::{Deserialize, Serialize};

use super::{
    Link, TitleData, check,
    core::{FileData, FileKind},
};
use crate::{
    example::ExampleGen,
    keys::Did,
    registry::{Index, Model, SchemaError},
};

/// `art.artist`: an artist (a person's or a project's artistic identity).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Artist {
    /// The artist's name.
    pub name: TitleData,
    /// About the artist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    /// An `art.image` of the artist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Link>,
    /// The profile of the person behind the artist, if they have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Did>,
    /// Genre and style tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Model for Artist {
    const KIND: &'static str = "art.artist";

    fn validate(&self) -> Result<(), SchemaError> {
        self.name.check("name")?;
        check::opt_text("bio", self.bio.as_deref(), 0, check::SHORT_TEXT)?;
        self.image
            .as_ref()
            .map_or(Ok(()), |l| check::record_link("image", l))?;
        check::tags("tags", &self.tags)
    }

    fn index(&self) -> Index {
        Index {
            tags: self.tags.clone(),
            topics: vec![],
            targets: vec![],
        }
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            name: g.title(),
            bio: Some(g.sentence()),
            image: Some(g.link::<Image>()),
            profile: Some(g.person(0)),
            tags: g.tags(2),
        }
    }
}

/// `art.artist_group`: a band or collective.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArtistGroup {
    /// The group's name.
    pub name: TitleData,
    /// `art.artist` records of the members.
    pub members: Vec<Link>,
    /// About the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    /// An `art.image` of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Link>,
}

impl Model for ArtistGroup {
    const KIND: &'static str = "art.artist_group";

    fn validate(&self) -> Result<(), SchemaError> {
        self.name.check("name")?;
        check::record_links("members", &self.members, check::LINKS)?;
        check::opt_text("bio", self.bio.as_deref(), 0, check::SHORT_TEXT)?;
        self.image
            .as_ref()
            .map_or(Ok(()), |l| check::record_link("image", l))
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            name: g.title(),
            members: vec![g.link::<Artist>(), g.link::<Artist>()],
            bio: Some(g.sentence()),
            image: None,
        }
    }
}

fn check_media(file: &FileData, kind: FileKind) -> Result<(), SchemaError> {
    file.check("file")?;
    if FileKind::of_media_type(&file.media_type) != kind {
        return Err(SchemaError::new(
            "file.media_type",
            format!("{} is not {kind:?} media", file.media_type),
        ));
    }
    Ok(())
}

/// `art.image`: an image file with its dimensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Image {
    /// The file.
    pub file: FileData,
    /// Width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// A description for people who cannot see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
    /// The image's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<TitleData>,
}

impl Model for Image {
    const KIND: &'static str = "art.image";

    fn validate(&self) -> Result<(), SchemaError> {
        check_media(&self.file, FileKind::Image)?;
        check::opt_text("alt", self.alt.as_deref(), 0, 2_000)?;
        self.title.as_ref().map_or(Ok(()), |t| t.check("title"))
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            file: g.blob(FileKind::Image),
            width: Some(g.range(1, 4096) as u32),
            height: Some(g.range(1, 4096) as u32),
            alt: Some(g.sentence()),
            title: Some(g.title()),
        }
    }
}

/// `art.audio`: an audio file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Audio {
    /// The file.
    pub file: FileData,
    /// The track's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<TitleData>,
    /// `art.artist` records of who made it.
    #[serde(default)]
    pub artists: Vec<Link>,
    /// Duration in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Position on its release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<u32>,
}

impl Model for Audio {
    const KIND: &'static str = "art.audio";

    fn validate(&self) -> Result<(), SchemaError> {
        check_media(&self.file, FileKind::Audio)?;
        self.title.as_ref().map_or(Ok(()), |t| t.check("title"))?;
        check::record_links("artists", &self.artists, 100)
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            file: g.blob(FileKind::Audio),
            title: Some(g.title()),
            artists: vec![g.link::<Artist>()],
            duration_ms: Some(g.range(30_000, 600_000)),
            track: Some(g.range(1, 12) as u32),
        }
    }
}

/// `art.video`: a video file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Video {
    /// The file.
    pub file: FileData,
    /// The video's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<TitleData>,
    /// `art.artist` records of who made it.
    #[serde(default)]
    pub artists: Vec<Link>,
    /// Duration in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

impl Model for Video {
    const KIND: &'static str = "art.video";

    fn validate(&self) -> Result<(), SchemaError> {
        check_media(&self.file, FileKind::Video)?;
        self.title.as_ref().map_or(Ok(()), |t| t.check("title"))?;
        check::record_links("artists", &self.artists, 100)
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            file: g.blob(FileKind::Video),
            title: Some(g.title()),
            artists: vec![g.link::<Artist>()],
            duration_ms: Some(g.range(10_000, 3_600_000)),
            width: Some(1920),
            height: Some(1080),
        }
    }
}

/// What sort of release it is.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseKind {
    /// A set of images (an image release).
    Images,
    /// A full-length album.
    Album,
    /// An EP.
    Ep,
    /// A single.
    Single,
    /// A video or film.
    Video,
    /// A written work.
    Text,
    /// Anything else or a mix.
    #[default]
    Other,
}

/// `art.release`: a published work and the files that make it up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Release {
    /// The release's title.
    pub title: TitleData,
    /// What sort of release it is.
    #[serde(default)]
    pub kind: ReleaseKind,
    /// `art.artist` or `art.artist_group` records.
    pub artists: Vec<Link>,
    /// The content: `art.image`, `art.audio`, `art.video`, `core.file` or `core.text` records.
    pub files: Vec<Link>,
    /// An `art.image` to show for the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<Link>,
    /// Release date: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// License, as an SPDX id (`CC-BY-4.0`) or free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// About the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Genre and style tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Model for Release {
    const KIND: &'static str = "art.release";

    fn validate(&self) -> Result<(), SchemaError> {
        self.title.check("title")?;
        check::record_links("artists", &self.artists, 100)?;
        check::record_links("files", &self.files, 10_000)?;
        self.cover
            .as_ref()
            .map_or(Ok(()), |l| check::record_link("cover", l))?;
        if let Some(d) = &self.date {
            check::date("date", d)?;
        }
        check::opt_text("license", self.license.as_deref(), 1, 200)?;
        check::opt_text(
            "description",
            self.description.as_deref(),
            0,
            check::SHORT_TEXT,
        )?;
        check::tags("tags", &self.tags)
    }

    fn index(&self) -> Index {
        Index {
            tags: self.tags.clone(),
            topics: vec![],
            targets: vec![],
        }
    }

    fn example(g: &mut ExampleGen) -> Self {
        let cover = g.link::<Image>();
        Self {
            title: g.title(),
            kind: ReleaseKind::Album,
            artists: vec![g.link::<Artist>()],
            files: vec![cover, g.link::<Audio>(), g.link::<Audio>()],
            cover: Some(cover),
            date: Some(g.date()),
            license: Some("CC-BY-4.0".into()),
            description: Some(g.paragraph()),
            tags: g.tags(3),
        }
    }
}

/// `art.still`: a still image with its creators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Still {
    /// The `art.image`.
    pub image: Link,
    /// The still's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<TitleData>,
    /// `art.artist` records of who made it.
    #[serde(default)]
    pub creators: Vec<Link>,
    /// What it shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

impl Model for Still {
    const KIND: &'static str = "art.still";

    fn validate(&self) -> Result<(), SchemaError> {
        check::record_link("image", &self.image)?;
        self.title.as_ref().map_or(Ok(()), |t| t.check("title"))?;
        check::record_links("creators", &self.creators, 100)?;
        check::opt_text(
            "description",
            self.description.as_deref(),
            0,
            check::SHORT_TEXT,
        )?;
        self.date
            .as_deref()
            .map_or(Ok(()), |d| check::date("date", d))
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            image: g.link::<Image>(),
            title: Some(g.title()),
            creators: vec![g.link::<Artist>()],
            description: Some(g.sentence()),
            date: Some(g.date()),
        }
    }
}
