//! What the record of a file says, from what a client sent: the file's first bytes, its name
//! and the media type it declared. The node's uploads and the CLI's offline `mnode add` both
//! use these, so a file gets the same record either way; they read outside input (a
//! multipart part's headers, a file's bytes), so the `upload` fuzz target drives them.

use crate::{
    Draft, Record, RecordError, TitleData,
    model::{
        art::{Audio, Image, Video},
        core::{File, FileData, FileKind},
    },
};

/// How many bytes at the start of a file [`media_type`] looks at.
pub const SNIFF_LEN: usize = 8192;

/// The media type of a file from its first bytes (at least [`SNIFF_LEN`] of them, or all of a
/// shorter file), its name, and the type the sender declared, if any.
///
/// The content decides (magic bytes, then text or binary, refined by the name's extension for
/// a few text formats); a declared type is used only where the content says no more than
/// "binary" (`application/octet-stream`) or "text" (`text/plain`, refined by a declared
/// `text/…`), so a wrong `Content-Type` cannot make a text file an `art.image`. Binary content
/// that neither its bytes nor a declared type name is known by its name's extension for common
/// audio, video and image formats (`track.flac` → `audio/flac`). A declared type that says
/// nothing about the file is ignored: `application/octet-stream`, and
/// `application/x-www-form-urlencoded`, which `curl --data-binary` sends unless told otherwise.
pub fn media_type(head: &[u8], name: &str, declared: Option<&str>) -> String {
    let head = head.get(..SNIFF_LEN).unwrap_or(head);
    if let Some(t) = infer::get(head) {
        return t.mime_type().to_owned();
    }
    let text = !head.contains(&0) && (std::str::from_utf8(head).is_ok() || head.len() >= SNIFF_LEN);
    let ext = std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let detected = match (text, ext.as_str()) {
        (true, "md" | "markdown") => "text/markdown",
        (true, "html" | "htm") => "text/html",
        (true, "svg") => "image/svg+xml",
        (true, "y4m") => "video/x-yuv4mpeg",
        (true, _) => "text/plain",
        (false, "y4m") => "video/x-yuv4mpeg",
        _ => "application/octet-stream",
    };
    let declared = declared.and_then(clean_media_type);
    match (detected, declared) {
        ("application/octet-stream", Some(d)) => d,
        ("application/octet-stream", None) => {
            media_of_extension(&ext).unwrap_or(detected).to_owned()
        }
        ("text/plain", Some(d)) if d.starts_with("text/") => d,
        _ => detected.to_owned(),
    }
}

/// The media type of a binary file by its extension, for the audio, video and image formats
/// whose files the content sniffer can miss (a WAV in RF64 form, a FLAC with an ID3 tag in
/// front, a raw AAC stream).
fn media_of_extension(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "wav" | "wave" => "audio/wav",
        "flac" => "audio/flac",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "aif" | "aiff" => "audio/aiff",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "mov" => "video/quicktime",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    })
}

/// `type/subtype` of a `Content-Type` value, lower case, without parameters; `None` if it is
/// not one a record accepts, or says nothing about the file (`application/octet-stream`, or
/// curl's default `application/x-www-form-urlencoded`).
fn clean_media_type(value: &str) -> Option<String> {
    let value = value.split(';').next()?.trim().to_ascii_lowercase();
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    let (t, s) = value.split_once('/')?;
    let says_nothing = matches!(
        value.as_str(),
        "application/octet-stream" | "application/x-www-form-urlencoded"
    );
    (ok(t) && ok(s) && !says_nothing).then_some(value)
}

/// The width and height of an image from its first bytes.
pub fn image_dims(head: &[u8]) -> Option<(u32, u32)> {
    let size = imagesize::blob_size(head).ok()?;
    Some((
        u32::try_from(size.width).ok()?,
        u32::try_from(size.height).ok()?,
    ))
}

/// The unsigned record a file gets: `art.image` (with `dims`), `art.audio`, `art.video`, or
/// `core.file`, by its media type. The media kinds get a title from the file's name (without
/// its extension), so that lists show something.
pub fn file_draft(data: FileData, dims: Option<(u32, u32)>) -> Result<Draft, RecordError> {
    let title = title_of(&data.name);
    match FileKind::of_media_type(&data.media_type) {
        FileKind::Image => Record::create(&Image {
            file: data,
            width: dims.map(|d| d.0),
            height: dims.map(|d| d.1),
            alt: None,
            title,
        }),
        FileKind::Audio => Record::create(&Audio {
            file: data,
            title,
            artists: vec![],
            duration_ms: None,
            track: None,
        }),
        FileKind::Video => Record::create(&Video {
            file: data,
            title,
            artists: vec![],
            duration_ms: None,
            width: None,
            height: None,
        }),
        _ => Record::create(&File::new(data)),
    }
}

/// A title for the record of a file named `name`: the name without its extension
/// (`01 Intro.flac` → `01 Intro`), or the whole name if that leaves nothing.
pub fn title_of(name: &str) -> Option<TitleData> {
    let stem = std::path::Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(name.trim());
    let title: String = stem
        .chars()
        .filter(|c| !c.is_control())
        .take(crate::model::check::TITLE)
        .collect();
    (!title.is_empty()).then(|| TitleData::new(title))
}

/// A name a file record accepts, from what a client sent: the last path segment, without
/// control characters, at most 255 characters.
pub fn clean_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next()?;
    let base: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let base = base.trim();
    (!base.is_empty() && base != "." && base != "..").then(|| base.to_owned())
}

/// The file a file record's body holds: its `file` field (`art.image`, `art.audio`,
/// `art.video`), or the body itself (`core.file`). `None` for any other body.
pub fn file_of(body: &crate::Ipld) -> Option<FileData> {
    let crate::Ipld::Map(map) = body else {
        return None;
    };
    let file = match map.get("file") {
        Some(f @ crate::Ipld::Map(_)) => f,
        _ => body,
    };
    crate::cbor::decode(&crate::cbor::encode(file).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_trusts_content_over_the_declared_type() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x02\0\0\0\x03\x08\x06\0\0\0";
        assert_eq!(media_type(png, "x.txt", Some("text/plain")), "image/png");
        assert_eq!(media_type(b"hello", "a.md", None), "text/markdown");
        assert_eq!(media_type(b"hello", "a", Some("image/png")), "text/plain");
        assert_eq!(
            media_type(b"a,b\n", "a", Some("text/csv; charset=utf-8")),
            "text/csv"
        );
        assert_eq!(
            media_type(b"\0\x01\x02", "a", Some("model/gltf-binary")),
            "model/gltf-binary"
        );
        assert_eq!(
            media_type(b"\0\x01\x02", "a", Some("bad type")),
            "application/octet-stream"
        );
        assert_eq!(image_dims(png), Some((2, 3)));
    }

    #[test]
    fn curls_default_type_says_nothing_and_the_name_helps_binary_content() {
        let form = Some("application/x-www-form-urlencoded");
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x02\0\0\0\x03\x08\x06\0\0\0";
        assert_eq!(media_type(png, "a.png", form), "image/png");
        let noise: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(media_type(&noise, "track1.flac", form), "audio/flac");
        assert_eq!(media_type(&noise, "take.WAV", None), "audio/wav");
        assert_eq!(media_type(&noise, "data", form), "application/octet-stream");
        assert_eq!(media_type(b"hello", "a.txt", form), "text/plain");
        assert_eq!(
            media_type(&noise, "track1.flac", Some("model/gltf-binary")),
            "model/gltf-binary",
            "a type the sender declared still beats the name"
        );
        assert_eq!(media_type(b"hello", "a.flac", None), "text/plain");
    }

    #[test]
    fn file_records_are_titled_by_the_name() {
        assert_eq!(
            title_of("01 Intro.flac").map(|t| t.full).as_deref(),
            Some("01 Intro")
        );
        assert_eq!(
            title_of(".hidden").map(|t| t.full).as_deref(),
            Some(".hidden")
        );
        assert_eq!(title_of("noext").map(|t| t.full).as_deref(), Some("noext"));
        assert!(title_of("").is_none());
    }

    #[test]
    fn names_lose_folders_and_control_characters() {
        assert_eq!(clean_name("C:\\x\\photo.jpg").as_deref(), Some("photo.jpg"));
        assert_eq!(clean_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(clean_name("a\u{0}b\n.txt").as_deref(), Some("ab.txt"));
        assert_eq!(clean_name("dir/"), None);
        assert_eq!(clean_name(".."), None);
        assert_eq!(clean_name(&"x".repeat(300)).map(|n| n.len()), Some(255));
    }
}
