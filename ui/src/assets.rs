//! The stylesheets and scripts, embedded in the binary (`ui/static/`, built from `ui/assets/`),
//! served under a path that names their content: `/assets/<hash>/<file>`, cached for a year as
//! immutable. A page links them with [`url`], so a new build is a new URL.

use std::{collections::HashMap, sync::OnceLock};

use axum::{
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

/// The first 16 hex digits of each file's SHA-256.
fn hashes() -> &'static HashMap<String, String> {
    static HASHES: OnceLock<HashMap<String, String>> = OnceLock::new();
    HASHES.get_or_init(|| {
        Static::iter()
            .filter_map(|name| {
                let file = Static::get(&name)?;
                let hash = hex::encode(file.metadata.sha256_hash());
                Some((name.into_owned(), hash[..16].to_owned()))
            })
            .collect()
    })
}

/// The URL of an embedded file.
pub(crate) fn url(name: &str) -> String {
    match hashes().get(name) {
        Some(h) => format!("/assets/{h}/{name}"),
        None => format!("/assets/missing/{name}"),
    }
}

/// `GET /assets/{hash}/{*file}`.
pub(crate) async fn serve(Path((hash, name)): Path<(String, String)>) -> Response {
    let (Some(file), Some(current)) = (Static::get(&name), hashes().get(&name)) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    // An old hash still gets the file, but not for a year: a page from before an upgrade
    // keeps working and the next one asks for the new URL.
    let cache = if *current == hash {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, file.metadata.mimetype().to_owned()),
            (header::CACHE_CONTROL, cache.to_owned()),
            (header::ETAG, format!("\"{current}\"")),
        ],
        file.data.into_owned(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_linked_asset_is_embedded() {
        for name in crate::layout::ASSETS {
            assert!(hashes().contains_key(*name), "{name} is not in ui/static");
            assert!(!url(name).contains("missing"));
        }
    }
}
