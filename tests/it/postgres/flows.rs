//! The Okta and Entra user and group flows of tests/okta_users.rs, entra_users.rs and
//! groups.rs, run on PostgreSQL through `presets/postgres.toml`; the rows are read back with SQL.

use crate::common::postgres::Postgres;
use crate::common::scenario;

#[tokio::test]
async fn create_user_the_okta_way() {
    scenario::okta_create_user(&Postgres::start()).await;
}

#[tokio::test]
async fn profile_update_with_put_and_rename() {
    scenario::okta_put_and_rename(&Postgres::start()).await;
}

#[tokio::test]
async fn deactivate_reactivate_and_password_push() {
    scenario::okta_deactivate_and_password_push(&Postgres::start()).await;
}

#[tokio::test]
async fn import_pages_through_many_users() {
    scenario::okta_import_pages(&Postgres::start()).await;
}

#[tokio::test]
async fn projection_and_search_endpoint() {
    scenario::projection_and_search(&Postgres::start()).await;
}

#[tokio::test]
async fn entra_patch_forms_and_delete() {
    scenario::entra_patch_forms_and_delete(&Postgres::start()).await;
}

#[tokio::test]
async fn filters_through_the_mapping() {
    scenario::filters_through_the_mapping(&Postgres::start()).await;
}

#[tokio::test]
async fn okta_push_groups() {
    scenario::okta_push_groups(&Postgres::start()).await;
}

#[tokio::test]
async fn entra_group_flows() {
    scenario::entra_group_flows(&Postgres::start()).await;
}
