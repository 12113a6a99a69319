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
    let now = mnode_dag::record::now_ms();
    let exact = utc(ms);
    html! { time datetime=(exact) title=(exact) { (ago(now.saturating_sub(ms))) } }
}

fn ago(ms: u64) -> String {
    let s = ms / 1000;
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match s {
        0..=44 => "just now".to_owned(),
        45..=3599 => plural((s / 60).max(1), "minute"),
        3600..=86_399 => plural(s / 3600, "hour"),
        86_400..=2_591_999 => plural(s / 86_400, "day"),
        2_592_000..=31_535_999 => plural(s / 2_592_000, "month"),
        _ => plural(s / 31_536_000, "year"),
    }
}

/// `2026-12-06T02:05:19Z`.
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
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
    fn sizes_and_times_read_like_words() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_200_000), "1.2 MB");
        assert_eq!(ago(3_000), "just now");
        assert_eq!(ago(4 * 60_000), "4 minutes ago");
        assert_eq!(ago(3_600_000), "1 hour ago");
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_796_004_319_000), "2026-11-30T02:05:19Z");
    }
}
