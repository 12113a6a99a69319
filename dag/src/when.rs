//! Times as people and programs read them: ISO 8601 (RFC 3339, UTC) for machines and exact
//! display, "4 minutes ago" for a glance. Records carry times as milliseconds since the epoch.

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// `2026-11-30T02:05:19.250Z` for a time in ms since the epoch: RFC 3339 in UTC with a
/// fixed three-digit fraction, so that times also sort as text.
pub fn iso(ms: u64) -> String {
    i64::try_from(ms / 1000)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .and_then(|t| Some(format!("{}.{:03}Z", t.strip_suffix('Z')?, ms % 1000)))
        // Beyond year 9999 RFC 3339 has no form; the raw number is still exact.
        .unwrap_or_else(|| ms.to_string())
}

/// "just now", "4 minutes ago", "1 day ago" … for an age in ms.
pub fn ago(age_ms: u64) -> String {
    let s = age_ms / 1000;
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

/// How long ago a time in ms since the epoch was, from now ([`ago`]); a time ahead of this
/// clock reads "just now".
pub fn since(ms: u64) -> String {
    ago(crate::record::now_ms().saturating_sub(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_and_ago() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_796_004_319_000), "2026-11-30T02:05:19.000Z");
        assert_eq!(iso(1_796_004_319_250), "2026-11-30T02:05:19.250Z");
        assert!(iso(1_796_004_319_250) > iso(1_796_004_319_000));
        assert_eq!(iso(u64::MAX), u64::MAX.to_string());
        assert_eq!(ago(3_000), "just now");
        assert_eq!(ago(4 * 60_000), "4 minutes ago");
        assert_eq!(ago(3_600_000), "1 hour ago");
        assert_eq!(ago(2 * 86_400_000), "2 days ago");
        assert_eq!(since(crate::record::now_ms() + 60_000), "just now");
    }
}
