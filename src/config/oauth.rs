//! `[auth.oauth]` (the gateway as an OAuth 2.0 authorization server for its own SCIM API)
//! and `[[auth.jwt]]` (access tokens from an outside authorization server: Entra, Okta).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::Text;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// The `iss` of the tokens the gateway signs; its public https URL.
    pub issuer: String,
    /// PKCS#8 PEM Ed25519 private keys (`openssl genpkey -algorithm ed25519`). The first signs;
    /// all verify, so a new key is rolled out to every replica before it is put first.
    pub key_files: Vec<Text>,
    #[serde(default = "defaults::access_token")]
    pub access_token_secs: u64,
    #[serde(default = "defaults::refresh_token")]
    pub refresh_token_secs: u64,
    #[serde(default = "defaults::code")]
    pub code_secs: u64,
    /// Who may authorize a client: members of this group (its DN), and only while they are.
    pub admin_group: Option<Text>,
    /// The group attribute that holds members' DNs (`uniqueMember` for groupOfUniqueNames).
    #[serde(default = "defaults::member_attribute")]
    pub admin_group_attribute: String,
    /// The user attribute a person types as their login name.
    #[serde(default = "defaults::login_attribute")]
    pub login_attribute: String,
    #[serde(default)]
    pub login_limit: LoginLimit,
    #[serde(default, rename = "client")]
    pub clients: Vec<OAuthClient>,
}

impl OAuthConfig {
    pub fn access_token(&self) -> Duration {
        Duration::from_secs(self.access_token_secs)
    }
    pub fn refresh_token(&self) -> Duration {
        Duration::from_secs(self.refresh_token_secs)
    }
    pub fn code(&self) -> Duration {
        Duration::from_secs(self.code_secs)
    }
}

/// Failed sign-ins (and failed client authentications) allowed per window, per client
/// address and per login name, before the next attempt is refused without asking the directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginLimit {
    pub per_address: u32,
    pub per_user: u32,
    pub window_secs: u64,
}

impl Default for LoginLimit {
    fn default() -> Self {
        LoginLimit { per_address: 20, per_user: 5, window_secs: 300 }
    }
}

/// A client of the token endpoint: Okta (authorization code) or Entra (client credentials).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClient {
    pub client_id: String,
    /// An argon2 PHC string (`scim-gateway hash-secret`), never the secret itself.
    pub secret_hash: Text,
    /// Exact redirect URIs the authorization code grant may send the browser to.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// Includes `refresh_token`.
    AuthorizationCode,
    ClientCredentials,
}

/// An outside authorization server whose JWT access tokens are accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuer {
    /// Shown in logs and audit lines as the caller's prefix.
    pub name: String,
    /// The exact `iss` (Entra v2: `https://login.microsoftonline.com/<tenant>/v2.0`).
    pub issuer: String,
    /// Accepted `aud` values (one must match).
    pub audience: Vec<String>,
    pub jwks_file: Option<Text>,
    /// Fetched over https; kept, re-read hourly and when a token names an unknown key.
    pub jwks_url: Option<Text>,
    /// A token naming a key the set lacks makes the gateway fetch the set again, at most
    /// once per this many seconds.
    #[serde(default = "defaults::jwks_refetch")]
    pub jwks_min_refresh_secs: u64,
    /// PEM CAs for `jwks_url`; default: the system's.
    pub jwks_ca_file: Option<Text>,
    /// Claims that must hold exactly this string (or, for an array claim, contain it), e.g. `tid`.
    #[serde(default)]
    pub required_claims: BTreeMap<String, String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "defaults::leeway")]
    pub leeway_secs: u64,
}

mod defaults {
    pub fn access_token() -> u64 {
        600
    }
    pub fn refresh_token() -> u64 {
        30 * 24 * 3600
    }
    pub fn code() -> u64 {
        60
    }
    pub fn member_attribute() -> String {
        "member".into()
    }
    pub fn login_attribute() -> String {
        "uid".into()
    }
    pub fn jwks_refetch() -> u64 {
        60
    }
    pub fn leeway() -> u64 {
        60
    }
}
