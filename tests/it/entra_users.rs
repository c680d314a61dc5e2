//! Microsoft Entra ID's user requests: externalId lookups, PATCH with capitalised ops,
//! value-filter paths and string booleans, extension attributes, and DELETE, against a real
//! slapd. The flows are shared with the PostgreSQL store (tests/common/scenario.rs).

use crate::common;

use common::scenario;
use common::Slapd;

#[tokio::test]
async fn entra_patch_forms_and_delete() {
    scenario::entra_patch_forms_and_delete(&Slapd::start()).await;
}

#[tokio::test]
async fn filters_through_the_mapping() {
    scenario::filters_through_the_mapping(&Slapd::start()).await;
}
