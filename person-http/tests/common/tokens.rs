//! Tokens for the authentication tests: a test secret, the test key pairs under `tests/fixtures/`, a group per
//! permission, and tokens that are valid, expired, premature, tampered with, unsigned or signed with the wrong
//! key. Everything is built at test time from fixed inputs (no clock assertions: only "an hour ago" / "in an
//! hour", far outside the 30 s leeway).

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use person_core::{Permission, PersonService, ServiceArea};
use person_http::HttpConfig;
use person_http::auth::{AuthConfig, AuthMode, MintClaims, TokenKeys, mint_hs256};
use serde_json::{Value, json};

use super::{Api, spawn_with};

/// The HS256 secret of the test servers.
pub(crate) const SECRET: &[u8] = b"person-api test secret, 32 bytes or more, never used elsewhere";
/// Test RSA key pair.
pub(crate) const RSA_PRIVATE: &[u8] = include_bytes!("../fixtures/rsa-private.pem");
/// Test RSA public key.
pub(crate) const RSA_PUBLIC: &[u8] = include_bytes!("../fixtures/rsa-public.pem");
/// Test EC P-256 private key.
pub(crate) const EC_PRIVATE: &[u8] = include_bytes!("../fixtures/ec-private.pem");
/// Test EC P-256 public key.
pub(crate) const EC_PUBLIC: &[u8] = include_bytes!("../fixtures/ec-public.pem");

/// `social-care`.
pub(crate) fn social_care() -> ServiceArea {
    ServiceArea::parse("social-care").unwrap()
}

/// Every permission the API checks, with the extended ones for `social-care`.
pub(crate) fn every_permission() -> Vec<Permission> {
    vec![
        Permission::PersonsRead,
        Permission::PersonsWrite,
        Permission::PersonsDelete,
        Permission::PersonsMerge,
        Permission::EqualityRead,
        Permission::EqualityWrite,
        Permission::ExtendedRead(social_care()),
        Permission::ExtendedWrite(social_care()),
        Permission::ReferencesWrite,
        Permission::AuditRead,
        Permission::EventsRead,
        Permission::Admin,
    ]
}

/// The groups of the test configuration: one group per permission, named like it (`persons:read` grants
/// `persons:read`), and the roles of the scenarios.
pub(crate) fn group_permissions() -> BTreeMap<String, Vec<Permission>> {
    let mut groups: BTreeMap<String, Vec<Permission>> =
        every_permission().into_iter().map(|p| (p.to_string(), vec![p])).collect();
    let housing_needs = ServiceArea::parse("housing-needs").unwrap();
    groups.insert("housing-officer".into(), vec![Permission::PersonsRead, Permission::PersonsWrite]);
    groups.insert(
        "social-care".into(),
        vec![
            Permission::PersonsRead,
            Permission::ExtendedRead(social_care()),
            Permission::ExtendedWrite(social_care()),
        ],
    );
    groups.insert(
        "housing-needs".into(),
        vec![Permission::ExtendedRead(housing_needs.clone()), Permission::ExtendedWrite(housing_needs)],
    );
    groups.insert("equality-officer".into(), vec![Permission::EqualityRead, Permission::EqualityWrite]);
    groups.insert("auditor".into(), vec![Permission::AuditRead]);
    groups.insert("feed-reader".into(), vec![Permission::PersonsRead, Permission::EventsRead]);
    groups.insert("consumer:repairs-hub".into(), vec![Permission::EventsRead]);
    groups
}

/// HTTP configuration in token mode with `keys` and [`group_permissions`].
pub(crate) fn token_config(keys: TokenKeys) -> HttpConfig {
    HttpConfig {
        auth: AuthConfig { mode: AuthMode::Tokens(keys), group_permissions: group_permissions() },
        ..HttpConfig::default()
    }
}

/// Keys with only the test secret.
pub(crate) fn secret_only() -> TokenKeys {
    TokenKeys { hs256_secret: Some(SECRET.to_vec()), public_key_pem: None }
}

/// Keys with only a public key.
pub(crate) fn public_key_only(pem: &[u8]) -> TokenKeys {
    TokenKeys { hs256_secret: None, public_key_pem: Some(pem.to_vec()) }
}

/// A server over `service` that verifies HS256 tokens signed with [`SECRET`].
pub(crate) async fn spawn_with_tokens(service: PersonService) -> Api {
    spawn_with(service, token_config(secret_only())).await
}

/// A valid HS256 user token (one hour) for `sub` in `groups`, named and mailed after `sub`.
pub(crate) fn token(sub: &str, groups: &[&str]) -> String {
    let claims = MintClaims {
        sub: sub.to_owned(),
        name: Some(format!("{sub} (test user)")),
        email: Some(format!("{sub}@example.gov.uk")),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    };
    mint_hs256(SECRET, &claims, Duration::from_secs(3600)).unwrap()
}

/// An admin token.
pub(crate) fn admin_token() -> String {
    token("admin-user", &["admin"])
}

/// A server in token mode over a fresh in-memory store, driven with an admin token (for the shared suite).
pub(crate) async fn spawn_in_memory_as_admin() -> Api {
    let (service, metrics) = super::timed_in_memory_service();
    let state = person_http::AppState::new(service, token_config(secret_only())).with_store_metrics(metrics);
    super::spawn_state(state).await.with_token(&admin_token())
}

/// Now, in seconds since the epoch.
pub(crate) fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims of an admin user with the given times.
pub(crate) fn admin_claims(exp: u64, nbf: Option<u64>) -> Value {
    let mut claims = json!({ "sub": "admin-user", "groups": ["admin"], "iat": now(), "exp": exp });
    if let Some(nbf) = nbf {
        claims["nbf"] = json!(nbf);
    }
    claims
}

/// `claims` signed with `alg` and `key`.
pub(crate) fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

/// `claims` signed with HS256 and [`SECRET`].
pub(crate) fn sign_hs256(claims: &Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET), claims)
}

/// An admin token that expired an hour ago.
pub(crate) fn expired_token() -> String {
    sign_hs256(&admin_claims(now() - 3600, None))
}

/// An admin token valid only from an hour from now.
pub(crate) fn premature_token() -> String {
    sign_hs256(&admin_claims(now() + 7200, Some(now() + 3600)))
}

/// An admin token whose signature was altered.
pub(crate) fn bad_signature_token() -> String {
    let token = admin_token();
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut signature: Vec<char> = signature.chars().collect();
    signature[4] = if signature[4] == 'A' { 'B' } else { 'A' };
    format!("{message}.{}", signature.into_iter().collect::<String>())
}

/// A reader's token whose payload was replaced by an admin's, keeping the reader's signature.
pub(crate) fn tampered_payload_token() -> String {
    let reader = token("reader", &["persons:read"]);
    let admin = admin_token();
    let parts: Vec<&str> = reader.split('.').collect();
    let admin_payload = admin.split('.').nth(1).unwrap();
    format!("{}.{admin_payload}.{}", parts[0], parts[2])
}

/// An unsigned admin token: `alg: none`, empty signature.
pub(crate) fn alg_none_token() -> String {
    let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = base64url(admin_claims(now() + 3600, None).to_string().as_bytes());
    format!("{header}.{claims}.")
}

/// An admin token claiming HS256 with its signature removed.
pub(crate) fn stripped_signature_token() -> String {
    let token = admin_token();
    let (message, _) = token.rsplit_once('.').unwrap();
    format!("{message}.")
}

/// An admin token signed with another secret.
pub(crate) fn wrong_secret_token() -> String {
    let key = EncodingKey::from_secret(b"another secret, also at least 32 bytes long");
    sign(Algorithm::HS256, &key, &admin_claims(now() + 3600, None))
}

/// `claims` for `sub` in `groups`, valid for an hour.
pub(crate) fn claims(sub: &str, groups: &[&str]) -> Value {
    json!({ "sub": sub, "name": sub, "email": format!("{sub}@example.gov.uk"), "groups": groups, "iat": now(), "exp": now() + 3600 })
}

/// RFC 4648 §5 base64url without padding.
pub(crate) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}
