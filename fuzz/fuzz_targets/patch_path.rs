//! Any text as a PATCH path: parsing never panics, and what parses prints to text that
//! parses to the same path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_gateway::scim::filter::parse_path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(path) = parse_path(text) else { return };
    let printed = path.to_string();
    assert_eq!(parse_path(&printed).as_ref(), Ok(&path), "{printed}");
});
