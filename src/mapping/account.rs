//! Mapped values the directory would refuse with a less helpful message, or accept and make
//! unusable, refused before anything is written: Active Directory's sAMAccountName rules.

use super::Values;
use crate::dialect::{sam, Dialect};

/// Whether `dialect` can hold the user's mapped `attrs`; the error says why not.
pub fn check_user(dialect: Dialect, attrs: &Values) -> Result<(), String> {
    if dialect != Dialect::ActiveDirectory {
        return Ok(());
    }
    let sam = attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case("sAMAccountName")).and_then(|(_, v)| v.first());
    match sam {
        Some(name) if !sam::fits_user(name) => Err(format!(
            "the userName gives sAMAccountName {name:?}, which Active Directory cannot hold: at most \
             {} characters, none of {} and not ending with a dot",
            sam::MAX_USER,
            sam::FORBIDDEN
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sam_account_name_limits() {
        let check = |sam: &str| {
            let mut v = Values::new();
            v.insert("sAMAccountName".into(), vec![sam.into()]);
            check_user(Dialect::ActiveDirectory, &v)
        };
        assert!(check("jdoe").is_ok() && check("a.b-c_d").is_ok() && check(&"x".repeat(20)).is_ok());
        for bad in ["x".repeat(21), "a@b".into(), "a/b".into(), "a[b]".into(), "a,b".into(), "end.".into()] {
            let e = check(&bad).unwrap_err();
            assert!(e.contains("at most 20 characters"), "{e}");
        }
        assert!(
            check_user(Dialect::OpenLdap, &[("sAMAccountName".to_string(), vec!["a@b".to_string()])].into()).is_ok()
        );
    }
}
