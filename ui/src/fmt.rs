//! Numbers, times and CIDs the way people read them.

use maud::{Markup, html};
use mnode_dag::{Cid, Did, Ipld, Record};

/// `bafyrei…x7q4`: the start and the end of a long id.
pub(crate) fn short(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 16 {
        return id.to_owned();
    }
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// A CID shortened in the middle, its full value on hover, with a copy button.
pub(crate) fn cid(cid: &Cid) -> Markup {
    let full = cid.to_string();
    html! {
        span.cid {
            code title=(full) { (short(&full)) }
            " "
            button.copy.secondary.outline type="button" data-copy=(full) aria-label={ "Copy " (full) } { "Copy" }
        }
    }
}

/// A DID shortened for people.
pub(crate) fn did(did: &Did) -> String {
    let s = did.to_string();
    short(s.trim_start_matches("did:key:"))
}

/// Bytes with a unit: `1.2 MB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A time as "4 minutes ago", with the exact UTC time on hover and for machines.
pub(crate) fn time(ms: u64) -> Markup {
    let exact = utc(ms);
    html! { time datetime=(exact) title=(exact) { (mnode_dag::when::since(ms)) } }
}

/// `2026-12-06T02:05:19.000Z`, for `datetime` attributes and machines.
pub(crate) fn utc(ms: u64) -> String {
    mnode_dag::when::iso(ms)
}

/// `2026-12-06 02:05 UTC`, for people: the ISO form to the minute.
pub(crate) fn readable(ms: u64) -> String {
    let iso = utc(ms);
    match (iso.get(..10), iso.get(11..16)) {
        (Some(day), Some(minute)) => format!("{day} {minute} UTC"),
        _ => iso,
    }
}

/// What to call a record: its title, name, handle or text, else its file's name.
pub(crate) fn title(record: &Record) -> String {
    let summary = record.summary();
    if !summary.is_empty() {
        return summary;
    }
    if let Some(Ipld::Map(body)) = record.body()
        && let Some(Ipld::Map(file)) = body.get("file")
        && let Some(Ipld::String(name)) = file.get("name")
    {
        return name.clone();
    }
    if record.is_tombstone() {
        return "(deleted)".to_owned();
    }
    short(&record.id().to_string())
}

/// "display_name" → "Display name".
pub(crate) fn humanise(field: &str) -> String {
    let words = field.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_in_the_middle() {
        assert_eq!(
            short("bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"),
            "bafyreig…52zy"
        );
        assert_eq!(short("bafy"), "bafy");
    }

    #[test]
    fn sizes_and_dates_read_like_words() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_200_000), "1.2 MB");
        assert_eq!(readable(1_796_004_319_250), "2026-11-30 02:05 UTC");
    }
}
