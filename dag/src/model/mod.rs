//! The model types of every namespace, and the checks they share.
//!
//! Bodies are plain serde structs. Optional fields are left out of the encoding when unset and
//! lists default to empty, so the canonical form of a body is also its smallest.

pub mod art;
pub mod core;
pub mod info;
pub mod reserved;
pub mod social;

use std::{fmt, ops::Deref};

use serde::{Deserialize, Serialize};

use crate::{
    cids::{self, Cid, LinkKind},
    registry::SchemaError,
};

/// A link to another block: a CID, encoded with tag 42 (`{"/": "bafy…"}` in DAG-JSON).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Link(pub Cid);

impl Link {
    /// What the link points at.
    pub fn kind(&self) -> LinkKind {
        cids::link_kind(&self.0)
    }
}

impl Deref for Link {
    type Target = Cid;
    fn deref(&self) -> &Cid {
        &self.0
    }
}

impl From<Cid> for Link {
    fn from(cid: Cid) -> Self {
        Self(cid)
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Link({})", self.0)
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl schemars::JsonSchema for Link {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Link".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "a CID link in DAG-JSON form",
            "properties": { "/": { "type": "string" } },
            "required": ["/"]
        })
    }
}

/// The three forms of a title, so that callers write `release.title.full`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TitleData {
    /// The complete title.
    pub full: String,
    /// A shorter form for lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<String>,
    /// An abbreviation for tight spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abbreviated: Option<String>,
}

impl TitleData {
    /// A title with only its full form.
    pub fn new(full: impl Into<String>) -> Self {
        Self {
            full: full.into(),
            short: None,
            abbreviated: None,
        }
    }

    pub(crate) fn check(&self, path: &str) -> Result<(), SchemaError> {
        check::text(&format!("{path}.full"), &self.full, 1, check::TITLE)?;
        check::opt_text(
            &format!("{path}.short"),
            self.short.as_deref(),
            1,
            check::TITLE,
        )?;
        check::opt_text(
            &format!("{path}.abbreviated"),
            self.abbreviated.as_deref(),
            1,
            32,
        )
    }
}

/// A source backing a statement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Source {
    /// What the source is called.
    pub title: String,
    /// Where it is on the web.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The record or file it is, if it is content-addressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
}

impl Source {
    pub(crate) fn check(&self, path: &str) -> Result<(), SchemaError> {
        check::text(&format!("{path}.title"), &self.title, 1, check::TITLE)?;
        if let Some(url) = &self.url {
            check::url(&format!("{path}.url"), url)?;
        }
        if let Some(link) = &self.link {
            check::any_link(&format!("{path}.link"), link)?;
        }
        Ok(())
    }
}

/// Small validation helpers shared by the models; each names the field it rejects.
pub mod check {
    use super::*;

    /// Longest title, in characters.
    pub const TITLE: usize = 300;
    /// Longest short description or bio, in characters.
    pub const SHORT_TEXT: usize = 5_000;
    /// Longest long text (a post, a note), in characters.
    pub const LONG_TEXT: usize = 100_000;
    /// Most entries in a list of links.
    pub const LINKS: usize = 1_000;
    /// Most tags on one body.
    pub const TAGS: usize = 64;

    /// A string of `min..=max` characters, with no control characters but newline and tab.
    pub fn text(path: &str, value: &str, min: usize, max: usize) -> Result<(), SchemaError> {
        let n = value.chars().count();
        if n < min || (min > 0 && value.trim().is_empty()) {
            return Err(SchemaError::new(
                path,
                if min == 1 {
                    "must not be empty".to_owned()
                } else {
                    format!("must be at least {min} characters")
                },
            ));
        }
        if n > max {
            return Err(SchemaError::new(
                path,
                format!("is {n} characters, at most {max} allowed"),
            ));
        }
        if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(SchemaError::new(path, "contains control characters"));
        }
        Ok(())
    }

    /// An optional [`text`].
    pub fn opt_text(
        path: &str,
        value: Option<&str>,
        min: usize,
        max: usize,
    ) -> Result<(), SchemaError> {
        value.map_or(Ok(()), |v| text(path, v, min, max))
    }

    /// A list of at most `max` entries.
    pub fn list<T>(path: &str, items: &[T], max: usize) -> Result<(), SchemaError> {
        if items.len() > max {
            return Err(SchemaError::new(
                path,
                format!("has {} entries, at most {max} allowed", items.len()),
            ));
        }
        Ok(())
    }

    /// A link to a record (dag-cbor, sha2-256).
    pub fn record_link(path: &str, link: &Link) -> Result<(), SchemaError> {
        match link.kind() {
            LinkKind::Record => Ok(()),
            _ => Err(SchemaError::new(
                path,
                format!("must link a record (bafyrei…), got {link}"),
            )),
        }
    }

    /// A link to a blob (raw, blake3).
    pub fn blob_link(path: &str, link: &Link) -> Result<(), SchemaError> {
        match link.kind() {
            LinkKind::Blob => Ok(()),
            _ => Err(SchemaError::new(
                path,
                format!("must link a blob (raw blake3, bafkr4i…), got {link}"),
            )),
        }
    }

    /// A link to a file's UnixFS view: a dag-pb node or a raw leaf, sha2-256.
    pub fn unixfs_link(path: &str, link: &Link) -> Result<(), SchemaError> {
        match link.kind() {
            LinkKind::UnixFs => Ok(()),
            _ => Err(SchemaError::new(
                path,
                format!(
                    "must link a UnixFS file (dag-pb or raw, sha2-256: bafybei…, bafkrei…), got {link}"
                ),
            )),
        }
    }

    /// A link to a record or a blob.
    pub fn any_link(path: &str, link: &Link) -> Result<(), SchemaError> {
        match link.kind() {
            LinkKind::Record | LinkKind::Blob => Ok(()),
            LinkKind::UnixFs | LinkKind::Other => Err(SchemaError::new(
                path,
                format!("must link a record or a blob, got {link}"),
            )),
        }
    }

    /// Every link in a list is a record link, and there are at most `max`.
    pub fn record_links(path: &str, links: &[Link], max: usize) -> Result<(), SchemaError> {
        list(path, links, max)?;
        links
            .iter()
            .enumerate()
            .try_for_each(|(i, l)| record_link(&format!("{path}[{i}]"), l))
    }

    /// A hierarchical tag: segments of lowercase letters, digits, `-` and `_`, joined by `/`
    /// (`music/jazz`), at most 100 characters.
    pub fn tag(path: &str, tag: &str) -> Result<(), SchemaError> {
        let ok_segment = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_lowercase() || c.is_numeric() || c == '-' || c == '_')
        };
        if tag.len() > 100 || !tag.split('/').all(ok_segment) {
            return Err(SchemaError::new(
                path,
                format!("{tag:?} is not a tag: lowercase words joined by '/', like \"music/jazz\""),
            ));
        }
        Ok(())
    }

    /// A list of distinct tags.
    pub fn tags(path: &str, tags: &[String]) -> Result<(), SchemaError> {
        list(path, tags, TAGS)?;
        for (i, t) in tags.iter().enumerate() {
            tag(&format!("{path}[{i}]"), t)?;
            if tags[..i].contains(t) {
                return Err(SchemaError::new(
                    format!("{path}[{i}]"),
                    format!("repeats tag {t:?}"),
                ));
            }
        }
        Ok(())
    }

    /// A media type `type/subtype` (RFC 6838 characters).
    pub fn media_type(path: &str, value: &str) -> Result<(), SchemaError> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 127
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
        };
        match value.split_once('/') {
            Some((t, s)) if ok(t) && ok(s) => Ok(()),
            _ => Err(SchemaError::new(
                path,
                format!("{value:?} is not a media type like \"image/png\""),
            )),
        }
    }

    /// A date `YYYY`, `YYYY-MM` or `YYYY-MM-DD` with a valid month and day.
    pub fn date(path: &str, value: &str) -> Result<(), SchemaError> {
        let bad = || {
            SchemaError::new(
                path,
                format!("{value:?} is not a date like 2024-11-24, 2024-11 or 2024"),
            )
        };
        let parts: Vec<&str> = value.split('-').collect();
        let num = |s: &str, len: usize| {
            (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        let year = parts.first().and_then(|y| num(y, 4)).ok_or_else(bad)?;
        if let Some(m) = parts.get(1) {
            let month = num(m, 2).filter(|m| (1..=12).contains(m)).ok_or_else(bad)?;
            if let Some(d) = parts.get(2) {
                let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
                let days = match month {
                    2 if leap => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                num(d, 2)
                    .filter(|d| (1..=days).contains(d))
                    .ok_or_else(bad)?;
            }
        }
        if parts.len() > 3 {
            return Err(bad());
        }
        Ok(())
    }

    /// An absolute URL with a scheme mnode can show (`https`, `http`, `ipfs`, `mailto`).
    pub fn url(path: &str, value: &str) -> Result<(), SchemaError> {
        let ok = ["https://", "http://", "ipfs://", "mailto:"]
            .iter()
            .any(|p| value.len() > p.len() && value.starts_with(p))
            && value.len() <= 2048
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(())
        } else {
            Err(SchemaError::new(
                path,
                format!("{value:?} is not an http(s), ipfs or mailto URL"),
            ))
        }
    }

    /// A handle: 1 to 32 characters of lowercase letters, digits, `_`, `-` and `.`,
    /// starting with a letter or digit.
    pub fn handle(path: &str, value: &str) -> Result<(), SchemaError> {
        let mut chars = value.chars();
        let ok = value.len() <= 32
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c));
        if ok {
            Ok(())
        } else {
            Err(SchemaError::new(
                path,
                format!(
                    "{value:?} is not a handle: 1-32 of a-z, 0-9, '_', '-', '.', starting with a letter or digit"
                ),
            ))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn dates() {
            for ok in ["2024", "2024-02", "2024-02-29", "2000-02-29", "1999-12-31"] {
                date("d", ok).unwrap();
            }
            for bad in [
                "24",
                "2023-02-29",
                "1900-02-29",
                "2024-13",
                "2024-1-01",
                "2024-01-32",
                "2024-01-01-01",
                "",
            ] {
                assert!(date("d", bad).is_err(), "{bad}");
            }
        }

        #[test]
        fn tags_and_handles() {
            tag("t", "music/jazz").unwrap();
            tag("t", "música").unwrap();
            for bad in ["", "Music", "music//jazz", "/music", "a b"] {
                assert!(tag("t", bad).is_err(), "{bad}");
            }
            handle("h", "alice_1.x").unwrap();
            for bad in ["", "_alice", "Alice", "a b", &"a".repeat(33)] {
                assert!(handle("h", bad).is_err(), "{bad}");
            }
        }

        #[test]
        fn text_limits_name_the_field() {
            let e = text("title.full", "", 1, 10).unwrap_err();
            assert_eq!(e.to_string(), "title.full: must not be empty");
            assert!(text("x", "   ", 1, 10).is_err());
            assert!(text("x", "a\u{0}b", 0, 10).is_err());
            assert!(text("x", "ééé", 0, 3).is_ok());
            assert!(text("x", "éééé", 0, 3).is_err());
        }
    }
}
