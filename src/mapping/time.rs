//! LDAP generalized time (RFC 4517 §3.3.13) ⇄ SCIM dateTime (RFC 3339, RFC 7643 §2.3.5).

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const COMPACT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year][month][day][hour][minute][second]");

/// `20261122220530Z`, `20261122220530.123456Z` or AD's `20261122220530.0Z` → RFC 3339 UTC.
pub fn to_rfc3339(generalized: &str) -> Option<String> {
    let digits = generalized.get(..14)?;
    let rest = &generalized[14..];
    if !(rest.ends_with('Z')
        && rest[..rest.len() - 1].trim_start_matches(['.', ',']).chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let t = PrimitiveDateTime::parse(digits, COMPACT).ok()?.assume_utc();
    t.format(&Rfc3339).ok()
}

/// An RFC 3339 timestamp → generalized time in UTC, for ordering filters.
pub fn to_generalized(rfc3339: &str) -> Option<String> {
    let t = OffsetDateTime::parse(rfc3339, &Rfc3339).ok()?.to_offset(UtcOffset::UTC);
    Some(format!("{}Z", t.format(COMPACT).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways() {
        assert_eq!(to_rfc3339("20261122220530Z").as_deref(), Some("2026-11-22T22:05:30Z"));
        assert_eq!(to_rfc3339("20261122220530.123456Z").as_deref(), Some("2026-11-22T22:05:30Z"));
        assert_eq!(to_rfc3339("20261122220530.0Z").as_deref(), Some("2026-11-22T22:05:30Z"));
        assert_eq!(to_rfc3339("2026112222053"), None);
        assert_eq!(to_rfc3339("20261122220530+0100"), None);
        assert_eq!(to_generalized("2026-11-22T23:05:30+01:00").as_deref(), Some("20261122220530Z"));
        assert_eq!(to_generalized("yesterday"), None);
    }
}
