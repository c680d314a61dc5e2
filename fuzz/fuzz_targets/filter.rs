//! Any text as a SCIM filter: parsing never panics; what parses prints to text that parses
//! to the same tree; and its LDAP translation through the shipped mapping is a valid RFC 4515
//! filter.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use scim_gateway::config::Loaded;
use scim_gateway::mapping::UserMapping;
use scim_gateway::scim::filter::parse_filter;

static USERS: LazyLock<UserMapping> = LazyLock::new(|| {
    let loaded = Loaded::parse("gateway.toml", include_str!("../../gateway.toml").to_owned()).expect("shipped config");
    UserMapping::compile(&loaded.config.users).expect("shipped mapping")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(filter) = parse_filter(text) else { return };
    let printed = filter.to_string();
    assert_eq!(parse_filter(&printed).as_ref(), Ok(&filter), "{printed}");
    if let Ok(t) = USERS.ldap_filter(&filter) {
        let ldap = t.filter.to_string();
        assert!(ldap3::parse_filter(&ldap).is_ok(), "{text:?} -> {ldap}");
    }
});
