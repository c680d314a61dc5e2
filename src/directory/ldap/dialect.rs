//! What differs between directory servers, decided here and nowhere else: the attributes
//! that identify and date entries, how passwords are set, how accounts are disabled, binary
//! ids in entries and filters, page sizes, and multi-valued attributes read in ranges.
//!
//! OpenLDAP (and 389-ds with its preset's overrides) is the default. Active Directory —
//! Windows or Samba — differs: `objectGUID` (binary) instead of `entryUUID`, no RFC 3062
//! Password Modify (a `unicodePwd` write over TLS instead), `userAccountControl` bit 0x2
//! instead of ppolicy, MaxPageSize 1000, and MaxValRange (large `member` lists come in ranges).

use serde::Deserialize;

use crate::config::{Deactivation, ResourceConfig};
use crate::directory::LdapFilter;

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

    /// Entries with ACCOUNTDISABLE set (LDAP_MATCHING_RULE_BIT_AND).
    pub fn disabled_filter() -> crate::directory::LdapFilter {
        crate::directory::LdapFilter::Configured(format!("{ATTR}:1.2.840.113556.1.4.803:=2"))
    }
}

/// The attributes that hold an entry's id, its creation and modification times and its version.
struct Meta {
    id: &'static str,
    created: &'static str,
    modified: &'static str,
    version: &'static str,
    dn: &'static str,
}

/// Attributes Active Directory's schema requires that AD itself fills on every add.
pub const SERVER_FILLED: &[&str] = &["instanceType", "nTSecurityDescriptor", "objectCategory"];
/// The binary attribute that holds Active Directory's ids.
pub const OBJECT_GUID: &str = "objectGUID";
/// AD's MaxPageSize: a larger page is silently cut to this.
const AD_MAX_PAGE: i32 = 1000;
/// Characters AD refuses in sAMAccountName, and its length limit for users (MS-ADTS 3.1.1.5.2.1).
const SAM_FORBIDDEN: &str = "\"/\\[]:;|=,+*?<>@";
const SAM_MAX_USER: usize = 20;

impl Dialect {
    fn meta(self) -> Meta {
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

    /// Fills in what the file leaves to the dialect, and refuses what the server cannot do.
    pub fn complete(
        self,
        range_size: Option<u32>,
        users: &mut ResourceConfig,
        groups: Option<&mut ResourceConfig>,
    ) -> Result<(), String> {
        for r in std::iter::once(&mut *users).chain(groups) {
            let [id, created, modified, version] = self.meta_attributes(r);
            (r.id_attribute, r.created_attribute) = (Some(id), Some(created));
            (r.modified_attribute, r.version_attribute) = (Some(modified), Some(version));
        }
        if self != Dialect::ActiveDirectory && range_size.is_some() {
            return Err("[directory] range_size is for dialect = \"active_directory\"".into());
        }
        if self == Dialect::ActiveDirectory {
            if users.deactivation.is_none() {
                users.deactivation = Some(toml::Spanned::new(0..0, Deactivation::AccountControl));
            }
            if users.deactivation.as_ref().is_some_and(|d| *d.get_ref() == Deactivation::Ppolicy) {
                return Err(
                    "Active Directory has no ppolicy: use deactivation = { strategy = \"account_control\" }".into()
                );
            }
        }
        Ok(())
    }

    /// The attribute that holds an entry's own DN.
    pub fn dn_attribute(self) -> &'static str {
        self.meta().dn
    }

    /// The id, created, modified and version attributes of `r`: as configured, or this dialect's.
    pub fn meta_attributes(self, r: &ResourceConfig) -> [String; 4] {
        let meta = self.meta();
        let pick = |set: &Option<String>, default: &str| set.clone().unwrap_or_else(|| default.into());
        [
            pick(&r.id_attribute, meta.id),
            pick(&r.created_attribute, meta.created),
            pick(&r.modified_attribute, meta.modified),
            pick(&r.version_attribute, meta.version),
        ]
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

    /// `filter` as this server needs it: AD compares objectGUID with its 16 bytes, escaped.
    pub fn filter(self, filter: &LdapFilter) -> LdapFilter {
        if self != Dialect::ActiveDirectory {
            return filter.clone();
        }
        match filter {
            LdapFilter::Equal(a, v) if a.eq_ignore_ascii_case(OBJECT_GUID) => match guid::to_bytes(v) {
                Some(bytes) => LdapFilter::EqualBytes(a.clone(), bytes.to_vec()),
                None => LdapFilter::none(),
            },
            LdapFilter::And(items) => LdapFilter::And(items.iter().map(|f| self.filter(f)).collect()),
            LdapFilter::Or(items) => LdapFilter::Or(items.iter().map(|f| self.filter(f)).collect()),
            LdapFilter::Not(inner) => LdapFilter::Not(Box::new(self.filter(inner))),
            other => other.clone(),
        }
    }

    /// Whether passwords are written as an attribute (`unicodePwd`) rather than with the
    /// Password Modify extended operation, which AD does not have.
    pub fn password_attribute(self) -> Option<&'static str> {
        match self {
            Dialect::OpenLdap => None,
            Dialect::ActiveDirectory => Some("unicodePwd"),
        }
    }

    /// Refuses a user's values that AD would refuse with a less helpful message, or accept
    /// and make unusable: sAMAccountName's length and characters.
    pub fn check_user(self, attrs: &crate::mapping::Values) -> Result<(), String> {
        if self != Dialect::ActiveDirectory {
            return Ok(());
        }
        let sam = attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case("sAMAccountName")).and_then(|(_, v)| v.first());
        let Some(sam) = sam else {
            return Ok(());
        };
        let bad: String = sam.chars().filter(|c| SAM_FORBIDDEN.contains(*c) || c.is_control()).collect();
        if sam.chars().count() > SAM_MAX_USER || !bad.is_empty() || sam.ends_with('.') {
            return Err(format!(
                "the userName gives sAMAccountName {sam:?}, which Active Directory cannot hold: at most \
                 {SAM_MAX_USER} characters, none of {SAM_FORBIDDEN} and not ending with a dot"
            ));
        }
        Ok(())
    }
}

/// `unicodePwd`'s value: the password in double quotes, as UTF-16LE (MS-ADTS 3.1.1.3.1.5).
pub fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Microsoft GUIDs: the first three fields little-endian, the last two as bytes.
mod guid {
    use uuid::Uuid;

    pub fn to_string(bytes: &[u8]) -> Option<String> {
        let bytes: [u8; 16] = bytes.try_into().ok()?;
        Some(Uuid::from_bytes_le(bytes).hyphenated().to_string())
    }

    pub fn to_bytes(s: &str) -> Option<[u8; 16]> {
        Some(Uuid::try_parse(s).ok()?.to_bytes_le())
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
        let f = Dialect::ActiveDirectory.filter(&LdapFilter::eq("objectGUID", &s).and(LdapFilter::eq("cn", "x")));
        assert_eq!(f.to_string(), r"(&(objectGUID=\03\32\f7\0e\41\7f\d6\40\b7\b5\1f\a0\fb\4c\be\01)(cn=x))");
        assert!(ldap3::parse_filter(f.to_string()).is_ok());
        let bad = Dialect::ActiveDirectory.filter(&LdapFilter::eq("objectGUID", "*)(cn=*"));
        assert_eq!(bad, LdapFilter::none(), "what is not a GUID matches nothing");
        assert_eq!(Dialect::OpenLdap.filter(&LdapFilter::eq("objectGUID", &s)), LdapFilter::eq("objectGUID", &s));
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
    fn sam_account_name_limits() {
        let check = |sam: &str| {
            let mut v = crate::mapping::Values::new();
            v.insert("sAMAccountName".into(), vec![sam.into()]);
            Dialect::ActiveDirectory.check_user(&v)
        };
        assert!(check("jdoe").is_ok() && check("a.b-c_d").is_ok() && check(&"x".repeat(20)).is_ok());
        for bad in ["x".repeat(21), "a@b".into(), "a/b".into(), "a[b]".into(), "a,b".into(), "end.".into()] {
            let e = check(&bad).unwrap_err();
            assert!(e.contains("at most 20 characters"), "{e}");
        }
        assert!(Dialect::OpenLdap
            .check_user(&[("sAMAccountName".to_string(), vec!["a@b".to_string()])].into())
            .is_ok());
    }

    #[test]
    fn completes_the_configuration() {
        use crate::config::Loaded;
        let example = include_str!("../../../gateway.toml");
        let ad = example.replace("dialect = \"openldap\"", "dialect = \"active_directory\"");
        let e = Loaded::parse("g.toml", ad.clone()).err().expect("ppolicy refused").to_string();
        assert!(e.contains("no ppolicy"), "{e}");
        let ad = ad
            .replace("deactivation = { strategy = \"ppolicy\" }", "")
            .replace("id_attribute = \"entryUUID\"", "")
            .replace("created_attribute = \"createTimestamp\"", "")
            .replace("modified_attribute = \"modifyTimestamp\"", "")
            .replace("version_attribute = \"entryCSN\"", "");
        let c = Loaded::parse("g.toml", ad).unwrap().config;
        assert_eq!(c.users.deactivation.as_ref().map(|d| d.get_ref()), Some(&Deactivation::AccountControl));
        let [id, created, modified, version] = Dialect::OpenLdap.meta_attributes(&c.users);
        assert_eq!(
            [id.as_str(), &created, &modified, &version],
            [OBJECT_GUID, "whenCreated", "whenChanged", "uSNChanged"]
        );
        assert_eq!(c.directory.dn_attribute(), "distinguishedName");
        let groups = c.groups.unwrap();
        assert_eq!(groups.id_attribute.as_deref(), Some(OBJECT_GUID), "filled for groups too");
        let ranged = example.replace("page_size = 500", "page_size = 500\nrange_size = 100");
        let e = Loaded::parse("g.toml", ranged).err().expect("range_size refused").to_string();
        assert!(e.contains("range_size is for"), "{e}");
        let plain = Loaded::parse("g.toml", example.into()).unwrap().config;
        assert_eq!(plain.users.id_attribute.as_deref(), Some("entryUUID"));
        assert_eq!(plain.directory.dn_attribute(), "entryDN");
    }

    #[test]
    fn passwords_and_pages() {
        assert_eq!(unicode_pwd("ab"), [b'"', 0, b'a', 0, b'b', 0, b'"', 0]);
        assert_eq!(Dialect::ActiveDirectory.page_size(5000), 1000);
        assert_eq!(Dialect::OpenLdap.page_size(5000), 5000);
    }
}
