//! What differs between directory servers, as plain domain knowledge: the attributes that
//! identify and date entries, how passwords are set, how accounts are disabled, how binary ids
//! are written, page sizes. It stands below config, mapping and directory so that each can ask
//! without reaching into the LDAP adapter; the adapter only translates (filters, binary values).
//!
//! OpenLDAP (and 389-ds with its preset's overrides) is the default. Active Directory —
//! Windows or Samba — differs: `objectGUID` (binary) instead of `entryUUID`, no RFC 3062
//! Password Modify (a `unicodePwd` write over TLS instead), `userAccountControl` bit 0x2
//! instead of ppolicy, MaxPageSize 1000, and MaxValRange (large `member` lists come in ranges).

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum Dialect {
    #[default]
    #[serde(rename = "openldap")]
    OpenLdap,
    #[serde(rename = "active_directory")]
    ActiveDirectory,
}

/// `userAccountControl` and its bits (MS-ADTS 2.2.16).
pub mod uac {
    pub const ATTR: &str = "userAccountControl";
    pub const ACCOUNTDISABLE: u32 = 0x2;
    pub const NORMAL_ACCOUNT: u32 = 0x200;

    /// A new user's value: a normal account, disabled unless `enabled`.
    pub fn initial(enabled: bool) -> u32 {
        NORMAL_ACCOUNT | if enabled { 0 } else { ACCOUNTDISABLE }
    }

    /// `current` with only ACCOUNTDISABLE changed: every other bit is the directory's business.
    pub fn with_enabled(current: u32, enabled: bool) -> u32 {
        if enabled {
            current & !ACCOUNTDISABLE
        } else {
            current | ACCOUNTDISABLE
        }
    }

    pub fn is_enabled(value: Option<&str>) -> bool {
        // AD always has the attribute on users; without it nothing says the account is off.
        value.and_then(|v| v.trim().parse::<i64>().ok()).is_none_or(|v| v as u32 & ACCOUNTDISABLE == 0)
    }

    /// Entries with ACCOUNTDISABLE set (LDAP_MATCHING_RULE_BIT_AND), as filter text.
    pub fn disabled_filter() -> String {
        format!("{ATTR}:1.2.840.113556.1.4.803:=2")
    }
}

/// The attributes that hold an entry's id, its creation and modification times, its version
/// and its own DN.
pub struct Meta {
    pub id: &'static str,
    pub created: &'static str,
    pub modified: &'static str,
    pub version: &'static str,
    pub dn: &'static str,
}

/// Attributes Active Directory's schema requires that AD itself fills on every add.
pub const SERVER_FILLED: &[&str] = &["instanceType", "nTSecurityDescriptor", "objectCategory"];
/// The binary attribute that holds Active Directory's ids.
pub const OBJECT_GUID: &str = "objectGUID";
/// AD's MaxPageSize: a larger page is silently cut to this.
const AD_MAX_PAGE: i32 = 1000;

impl Dialect {
    pub fn meta(self) -> Meta {
        match self {
            Dialect::OpenLdap => Meta {
                id: "entryUUID",
                created: "createTimestamp",
                modified: "modifyTimestamp",
                version: "entryCSN",
                dn: "entryDN",
            },
            Dialect::ActiveDirectory => Meta {
                id: OBJECT_GUID,
                created: "whenCreated",
                modified: "whenChanged",
                version: "uSNChanged",
                dn: "distinguishedName",
            },
        }
    }

    /// The attribute that holds an entry's own DN.
    pub fn dn_attribute(self) -> &'static str {
        self.meta().dn
    }

    /// The paged-results page size to ask for: AD never returns more than MaxPageSize.
    pub fn page_size(self, configured: i32) -> i32 {
        match self {
            Dialect::OpenLdap => configured.max(1),
            Dialect::ActiveDirectory => configured.clamp(1, AD_MAX_PAGE),
        }
    }

    /// A binary value as the string the gateway works with, for the attributes it knows.
    pub fn decode(self, attr: &str, value: &[u8]) -> Option<String> {
        match self {
            Dialect::ActiveDirectory if attr.eq_ignore_ascii_case(OBJECT_GUID) => guid::to_string(value),
            _ => None,
        }
    }

    /// Whether `attr` holds ids that must have the UUID form (others never reach the server).
    pub fn is_uuid_attribute(attr: &str) -> bool {
        attr.eq_ignore_ascii_case("entryUUID") || attr.eq_ignore_ascii_case(OBJECT_GUID)
    }

    /// Whether passwords are written as an attribute (`unicodePwd`) rather than with the
    /// Password Modify extended operation, which AD does not have.
    pub fn password_attribute(self) -> Option<&'static str> {
        match self {
            Dialect::OpenLdap => None,
            Dialect::ActiveDirectory => Some("unicodePwd"),
        }
    }
}

/// `unicodePwd`'s value: the password in double quotes, as UTF-16LE (MS-ADTS 3.1.1.3.1.5).
pub fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Microsoft GUIDs: the first three fields little-endian, the last two as bytes.
pub mod guid {
    use uuid::Uuid;

    pub fn to_string(bytes: &[u8]) -> Option<String> {
        let bytes: [u8; 16] = bytes.try_into().ok()?;
        Some(Uuid::from_bytes_le(bytes).hyphenated().to_string())
    }

    pub fn to_bytes(s: &str) -> Option<[u8; 16]> {
        Some(Uuid::try_parse(s).ok()?.to_bytes_le())
    }
}

/// sAMAccountName (MS-ADTS 3.1.1.5.2.1): the characters AD refuses in it, and its length
/// limit for users.
pub mod sam {
    pub const FORBIDDEN: &str = "\"/\\[]:;|=,+*?<>@";
    pub const MAX_USER: usize = 20;

    /// Whether AD can hold `name` as a user's sAMAccountName.
    pub fn fits_user(name: &str) -> bool {
        name.chars().count() <= MAX_USER
            && !name.chars().any(|c| FORBIDDEN.contains(c) || c.is_control())
            && !name.ends_with('.')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_use_the_mixed_endian_layout() {
        // objectGUID:: AzL3DkF/1kC3tR+g+0y+AQ== as Samba returned it, and as AD tools print it.
        let bytes = [0x03, 0x32, 0xf7, 0x0e, 0x41, 0x7f, 0xd6, 0x40, 0xb7, 0xb5, 0x1f, 0xa0, 0xfb, 0x4c, 0xbe, 0x01];
        let s = guid::to_string(&bytes).unwrap();
        assert_eq!(s, "0ef73203-7f41-40d6-b7b5-1fa0fb4cbe01");
        assert_eq!(guid::to_bytes(&s).unwrap(), bytes);
        assert_eq!(guid::to_string(&bytes[..15]), None);
        assert_eq!(Dialect::ActiveDirectory.decode("objectguid", &bytes), Some(s.clone()));
        assert_eq!(Dialect::OpenLdap.decode("objectGUID", &bytes), None);
    }

    #[test]
    fn account_control_keeps_other_bits() {
        // 0x10200: normal account whose password never expires.
        assert_eq!(uac::with_enabled(0x10200, false), 0x10202);
        assert_eq!(uac::with_enabled(0x10202, true), 0x10200);
        assert_eq!(uac::with_enabled(0x10202, false), 0x10202);
        assert_eq!((uac::initial(true), uac::initial(false)), (512, 514));
        assert!(uac::is_enabled(Some("512")) && !uac::is_enabled(Some("514")) && uac::is_enabled(None));
    }

    #[test]
    fn passwords_and_pages() {
        assert_eq!(unicode_pwd("ab"), [b'"', 0, b'a', 0, b'b', 0, b'"', 0]);
        assert_eq!(Dialect::ActiveDirectory.page_size(5000), 1000);
        assert_eq!(Dialect::OpenLdap.page_size(5000), 5000);
    }
}
