//! Authentication: who is calling, proved by a bearer token (SPEC §7), and what their groups allow.
//!
//! Two modes ([`AuthMode`]):
//!
//! * **Development**: no token is read; every caller is [`Actor::local_developer`] with every permission. The
//!   composition root allows it only on a loopback address.
//! * **Tokens**: every endpoint but the health probes and the OpenAPI document needs `Authorization: Bearer
//!   <JWT>`. HS256 tokens are verified with the shared secret, RS256 or ES256 tokens with the configured PEM
//!   public key (RSA or EC P-256, detected). Only the algorithms for which a key is configured are accepted:
//!   `alg: none` never is, and a token whose `alg` belongs to another family than the key (algorithm confusion:
//!   an HS256 token "signed" with the public key's PEM text) is refused. Signature, `exp` (required) and `nbf`
//!   (when present) are verified with 30 seconds of clock leeway.
//!
//! Claims read: `sub`, `name`, `email`, `groups` and `cognito:groups` (both arrays of strings, merged). A service
//! token carries `consumerName` (and `consumerType`, accepted but not used): it acts as that consumer (actor
//! subject and name = `consumerName`, e-mail empty) and is also a member of the group `consumer:<consumerName>`,
//! so that configuration can grant a consumer permissions without groups in its token. The caller's
//! [`Permissions`] are the union of [`AuthConfig::group_permissions`] over its groups.
//!
//! Tokens are never logged, echoed in an error, or kept after the request: only the actor and permissions are.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use person_core::{Actor, Permission, Permissions};
use serde::{Deserialize, Serialize};

/// Clock leeway, in seconds, allowed when checking `exp` and `nbf` (clocks of issuers and servers drift).
pub(crate) const LEEWAY_SECONDS: u64 = 30;

/// Shortest accepted HS256 secret, in bytes: RFC 7518 §3.2 requires a key at least as long as the hash output.
pub(crate) const MIN_SECRET_BYTES: usize = 32;

/// Longest accepted bearer token, in bytes (real tokens are well under 4 KiB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// How callers are authenticated, and which permissions each group grants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthConfig {
    /// Development (no tokens; loopback only) or token verification.
    pub mode: AuthMode,
    /// Group name (from the token's `groups` / `cognito:groups`, or `consumer:<consumerName>` for a service
    /// token) → the permissions it grants. A caller's permissions are the union over its groups; unknown groups
    /// grant nothing.
    pub group_permissions: BTreeMap<String, Vec<Permission>>,
}

/// How callers prove who they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// No authentication: every caller is the local developer with every permission. For a loopback address
    /// only (the server enforces that).
    #[default]
    Development,
    /// `Authorization: Bearer <JWT>` required, verified with these keys.
    Tokens(TokenKeys),
}

/// The keys tokens are verified with. At least one must be given; each enables only its own algorithm.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TokenKeys {
    /// Shared secret for HS256 tokens (Hackney's user tokens); at least 32 bytes.
    pub hs256_secret: Option<Vec<u8>>,
    /// PEM public key (`-----BEGIN PUBLIC KEY-----`, or `RSA PUBLIC KEY`) for RS256 (an RSA key) or ES256 (an
    /// EC P-256 key) tokens; which one is detected from the key.
    pub public_key_pem: Option<Vec<u8>>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret itself.
        f.debug_struct("TokenKeys")
            .field("hs256_secret", &self.hs256_secret.as_ref().map(|_| "<redacted>"))
            .field("public_key_pem", &self.public_key_pem.as_ref().map(|_| "<public key>"))
            .finish()
    }
}

impl TokenKeys {
    /// Parses the keys as the server will, so that a bad configuration fails at start rather than on the first
    /// request.
    ///
    /// # Errors
    /// [`AuthError::NoKeys`], [`AuthError::WeakSecret`], [`AuthError::InvalidPem`] or
    /// [`AuthError::UnsupportedKeyType`].
    pub fn validate(&self) -> Result<(), AuthError> {
        VerifyingKeys::load(self).map(|_| ())
    }
}

/// The claims of a token minted by [`mint_hs256`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MintClaims {
    /// `sub`: the caller's stable identifier.
    pub sub: String,
    /// `name`: display name.
    pub name: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `groups`: mapped to permissions by the server's configuration.
    pub groups: Vec<String>,
}

/// A configuration or minting failure (never a per-request failure: those are 401 problems).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Token mode without any key.
    #[error("token authentication needs an HS256 secret, a PEM public key, or both")]
    NoKeys,
    /// The HS256 secret is too short.
    #[error("the HS256 secret is {len} bytes long; at least {MIN_SECRET_BYTES} are required (RFC 7518 §3.2)")]
    WeakSecret {
        /// Its length in bytes.
        len: usize,
    },
    /// The public key is not a PEM public key that can be read.
    #[error("the public key is not a readable PEM public key (expected an RSA or EC P-256 public key)")]
    InvalidPem,
    /// The PEM holds a public key that is neither RSA nor EC P-256 (e.g. Ed25519 or P-384).
    #[error("the public key is neither an RSA nor an EC P-256 key; only RS256 and ES256 are supported")]
    UnsupportedKeyType,
    /// The token lifetime is under one second or too large.
    #[error("the token lifetime must be at least one second")]
    InvalidTtl,
    /// Signing failed.
    #[error("the token could not be signed: {0}")]
    Signing(String),
}

/// Mints an HS256 token for `claims`, valid from now for `ttl` (`iat` = `nbf` = now, `exp` = now + `ttl`), as
/// `person-api token` does for local use and tests.
///
/// # Errors
/// [`AuthError::WeakSecret`] for a secret under 32 bytes, [`AuthError::InvalidTtl`] for a lifetime under a
/// second, [`AuthError::Signing`] if signing fails.
pub fn mint_hs256(secret: &[u8], claims: &MintClaims, ttl: Duration) -> Result<String, AuthError> {
    check_secret(secret)?;
    let now = jsonwebtoken::get_current_timestamp();
    let exp = (ttl.as_secs() > 0).then(|| now.checked_add(ttl.as_secs())).flatten().ok_or(AuthError::InvalidTtl)?;
    let minted = MintedClaims {
        sub: &claims.sub,
        name: claims.name.as_deref(),
        email: claims.email.as_deref(),
        groups: &claims.groups,
        iat: now,
        nbf: now,
        exp,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &minted, &EncodingKey::from_secret(secret))
        .map_err(|e| AuthError::Signing(e.to_string()))
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    groups: &'a [String],
    iat: u64,
    nbf: u64,
    exp: u64,
}

fn check_secret(secret: &[u8]) -> Result<(), AuthError> {
    if secret.len() < MIN_SECRET_BYTES { Err(AuthError::WeakSecret { len: secret.len() }) } else { Ok(()) }
}

/// The keys, parsed once.
#[derive(Clone, Default)]
struct VerifyingKeys {
    /// HS256.
    secret: Option<DecodingKey>,
    /// RS256 or ES256, with the algorithm the key is for.
    public: Option<(DecodingKey, Algorithm)>,
}

impl VerifyingKeys {
    fn load(keys: &TokenKeys) -> Result<Self, AuthError> {
        if keys.hs256_secret.is_none() && keys.public_key_pem.is_none() {
            return Err(AuthError::NoKeys);
        }
        let secret = match &keys.hs256_secret {
            Some(secret) => {
                check_secret(secret)?;
                Some(DecodingKey::from_secret(secret))
            }
            None => None,
        };
        let public = keys.public_key_pem.as_deref().map(load_public_key).transpose()?;
        Ok(Self { secret, public })
    }

    /// The key for a token's algorithm: only the configured algorithms, each with its own key.
    fn for_algorithm(&self, alg: Algorithm) -> Option<&DecodingKey> {
        match (alg, &self.secret, &self.public) {
            (Algorithm::HS256, Some(secret), _) => Some(secret),
            (alg, _, Some((key, key_alg))) if alg == *key_alg => Some(key),
            _ => None,
        }
    }
}

/// An RSA public key (RS256) or an EC P-256 public key (ES256), detected from the PEM.
fn load_public_key(pem: &[u8]) -> Result<(DecodingKey, Algorithm), AuthError> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        let der = key.try_get_as_bytes().map_err(|_| AuthError::InvalidPem)?;
        // `from_rsa_pem` only unwraps the PEM; parse the key itself now rather than on the first token.
        let parse = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.key_utils.rsa_pub_components_from_public_key;
        parse(der).map_err(|_| AuthError::InvalidPem)?;
        return Ok((key, Algorithm::RS256));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        // An uncompressed P-256 point: 0x04, then 32 bytes of x and 32 of y. P-384 and P-521 points are longer.
        let point = key.try_get_as_bytes().map_err(|_| AuthError::InvalidPem)?;
        return if point.len() == 65 && point[0] == 0x04 {
            Ok((key, Algorithm::ES256))
        } else {
            Err(AuthError::UnsupportedKeyType)
        };
    }
    if DecodingKey::from_ed_pem(pem).is_ok() {
        return Err(AuthError::UnsupportedKeyType);
    }
    Err(AuthError::InvalidPem)
}

/// The claims the API reads; everything else in a token is ignored.
#[derive(Deserialize)]
struct TokenClaims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default, rename = "cognito:groups")]
    cognito_groups: Option<Vec<String>>,
    #[serde(default, rename = "consumerName")]
    consumer_name: Option<String>,
}

/// Who the caller is and what they may do.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// The caller.
    pub(crate) actor: Actor,
    /// The union of their groups' permissions.
    pub(crate) permissions: Permissions,
}

/// Why a request was not authenticated (a 401). The detail never repeats the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <one JWT>`, or not a JWT.
    Malformed,
    /// An algorithm no configured key is for (`none`, an HS token without a secret, an RS/ES token without that
    /// kind of public key).
    Algorithm,
    /// The signature does not verify.
    Signature,
    /// Past `exp` (plus leeway).
    Expired,
    /// Before `nbf` (minus leeway).
    NotYetValid,
    /// Required claims missing or of the wrong type (`exp`, `sub`, `groups` …).
    Claims,
}

impl Rejection {
    /// What is wrong, for the problem's `detail`.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            Self::Missing => "this endpoint needs a bearer token: send `Authorization: Bearer <JWT>`",
            Self::Malformed => "the Authorization header must be `Bearer <JWT>`: one well-formed, signed JWT",
            Self::Algorithm => "the token's signing algorithm is not accepted by this service",
            Self::Signature => "the token's signature is not valid",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet (nbf)",
            Self::Claims => {
                "the token's claims are incomplete or malformed (exp, and sub or consumerName, are required; groups \
                 are arrays of strings)"
            }
        }
    }

    /// A short code for the log.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Claims => "claims",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3: no error code when no credentials were sent).
    pub(crate) fn challenge(self) -> &'static str {
        match self {
            Self::Missing => "Bearer",
            _ => "Bearer error=\"invalid_token\"",
        }
    }
}

/// Authenticates requests as configured: built once per router.
pub(crate) struct Authenticator {
    mode: Mode,
    group_permissions: BTreeMap<String, Vec<Permission>>,
}

enum Mode {
    Development,
    Tokens(VerifyingKeys),
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Development => "development",
            Mode::Tokens(_) => "tokens",
        };
        f.debug_struct("Authenticator").field("mode", &mode).finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Parses the keys. Invalid keys (which [`TokenKeys::validate`] reports at start) fail closed: every token
    /// is refused, and the error is logged; token mode never falls back to development mode.
    pub(crate) fn new(config: &AuthConfig) -> Self {
        let mode = match &config.mode {
            AuthMode::Development => Mode::Development,
            AuthMode::Tokens(keys) => Mode::Tokens(VerifyingKeys::load(keys).unwrap_or_else(|error| {
                tracing::error!(%error, "the token keys are invalid: every token will be refused");
                VerifyingKeys::default()
            })),
        };
        Self { mode, group_permissions: config.group_permissions.clone() }
    }

    /// The caller of a request with these headers.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, Rejection> {
        match &self.mode {
            Mode::Development => Ok(Identity { actor: Actor::local_developer(), permissions: Permissions::all() }),
            Mode::Tokens(keys) => {
                let token = bearer_token(headers)?;
                let claims = verify(keys, token)?;
                self.identity(claims)
            }
        }
    }

    fn identity(&self, claims: TokenClaims) -> Result<Identity, Rejection> {
        let mut groups: Vec<String> = claims.groups.into_iter().chain(claims.cognito_groups).flatten().collect();
        let consumer = claims.consumer_name.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
        let actor = match consumer {
            Some(consumer) => {
                groups.push(format!("consumer:{consumer}"));
                Actor { subject: consumer.clone(), name: consumer, email: String::new() }
            }
            None => {
                let subject = claims.sub.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
                Actor {
                    subject: subject.ok_or(Rejection::Claims)?,
                    name: claims.name.unwrap_or_default(),
                    email: claims.email.unwrap_or_default(),
                }
            }
        };
        let permissions = groups
            .iter()
            .filter_map(|group| self.group_permissions.get(group))
            .flat_map(|granted| granted.iter().cloned())
            .collect();
        Ok(Identity { actor, permissions })
    }
}

/// The token of the one `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(Rejection::Missing),
        (Some(value), None) => value,
        (Some(_), Some(_)) => return Err(Rejection::Malformed),
    };
    let text = value.to_str().map_err(|_| Rejection::Malformed)?;
    let (scheme, token) = text.trim().split_once(' ').ok_or(Rejection::Malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(Rejection::Malformed);
    }
    Ok(token)
}

/// Verifies signature, `exp` and `nbf` with the key for the token's algorithm, and reads the claims.
fn verify(keys: &VerifyingKeys, token: &str) -> Result<TokenClaims, Rejection> {
    // The header is read unverified only to choose the key; `decode` then checks that the algorithm is the one
    // allowed for that key (and only that one) before verifying the signature with it.
    // `alg: none` (or any algorithm name the library does not know) already fails here: such a header is not one
    // of a signed JWT.
    let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
    let key = keys.for_algorithm(header.alg).ok_or(Rejection::Algorithm)?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    // No audience is configured: Hackney's tokens are issued for many services. `aud` is therefore not checked
    // (the library would otherwise refuse every token that carries one).
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp"]);
    jsonwebtoken::decode::<TokenClaims>(token, key, &validation).map(|data| data.claims).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => Rejection::Signature,
        ErrorKind::ExpiredSignature => Rejection::Expired,
        ErrorKind::ImmatureSignature => Rejection::NotYetValid,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => Rejection::Algorithm,
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) | ErrorKind::Json(_) => Rejection::Claims,
        _ => Rejection::Malformed,
    })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const SECRET: &[u8] = b"a test secret that is long enough for HS256";
    const RSA_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/rsa-public.pem");
    const EC_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/ec-public.pem");
    const EC_P384_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/ec-p384-public.pem");
    const ED25519_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/ed25519-public.pem");
    const RSA_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/rsa-private.pem");

    fn keys(secret: Option<&[u8]>, pem: Option<&[u8]>) -> TokenKeys {
        TokenKeys { hs256_secret: secret.map(<[u8]>::to_vec), public_key_pem: pem.map(<[u8]>::to_vec) }
    }

    fn authenticator(keys: TokenKeys, groups: &[(&str, &[Permission])]) -> Authenticator {
        let group_permissions = groups.iter().map(|(g, p)| ((*g).to_owned(), p.to_vec())).collect();
        Authenticator::new(&AuthConfig { mode: AuthMode::Tokens(keys), group_permissions })
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        headers
    }

    fn sign(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(SECRET)).unwrap()
    }

    fn in_an_hour() -> u64 {
        jsonwebtoken::get_current_timestamp() + 3600
    }

    #[test]
    fn rsa_and_ec_p256_public_keys_are_detected() {
        assert_eq!(load_public_key(RSA_PUBLIC).map(|(_, alg)| alg), Ok(Algorithm::RS256));
        assert_eq!(load_public_key(EC_PUBLIC).map(|(_, alg)| alg), Ok(Algorithm::ES256));
    }

    #[test]
    fn other_public_keys_and_garbage_are_refused_at_start() {
        assert_eq!(keys(None, Some(EC_P384_PUBLIC)).validate(), Err(AuthError::UnsupportedKeyType));
        assert_eq!(keys(None, Some(ED25519_PUBLIC)).validate(), Err(AuthError::UnsupportedKeyType));
        assert_eq!(keys(None, Some(b"not a key")).validate(), Err(AuthError::InvalidPem));
        assert_eq!(keys(None, None).validate(), Err(AuthError::NoKeys));
        assert_eq!(keys(Some(b"short"), None).validate(), Err(AuthError::WeakSecret { len: 5 }));
        assert_eq!(keys(Some(SECRET), Some(RSA_PUBLIC)).validate(), Ok(()));
    }

    #[test]
    fn a_private_key_is_not_accepted_as_the_public_key() {
        assert!(keys(None, Some(RSA_PRIVATE)).validate().is_err());
    }

    #[test]
    fn the_secret_is_never_shown_by_debug() {
        let text = format!("{:?}", keys(Some(SECRET), None));
        assert!(!text.contains("secret that"), "{text}");
    }

    #[test]
    fn a_minted_token_authenticates_with_its_groups_permissions() {
        let claims = MintClaims {
            sub: "u-1".into(),
            name: Some("Una".into()),
            email: Some("una@example.org".into()),
            groups: vec!["readers".into(), "unknown".into()],
        };
        let token = mint_hs256(SECRET, &claims, Duration::from_secs(60)).unwrap();
        let auth = authenticator(keys(Some(SECRET), None), &[("readers", &[Permission::PersonsRead])]);

        let identity = auth.authenticate(&bearer(&token)).unwrap();

        assert_eq!(
            identity.actor,
            Actor { subject: "u-1".into(), name: "Una".into(), email: "una@example.org".into() }
        );
        assert!(identity.permissions.allows(&Permission::PersonsRead));
        assert!(!identity.permissions.allows(&Permission::PersonsWrite));
    }

    #[test]
    fn minting_refuses_weak_secrets_and_empty_lifetimes() {
        let claims = MintClaims { sub: "u".into(), ..MintClaims::default() };
        assert_eq!(mint_hs256(b"short", &claims, Duration::from_secs(60)), Err(AuthError::WeakSecret { len: 5 }));
        assert_eq!(mint_hs256(SECRET, &claims, Duration::from_millis(10)), Err(AuthError::InvalidTtl));
    }

    #[test]
    fn cognito_groups_and_groups_are_merged() {
        let token = sign(&serde_json::json!({
            "sub": "u-2", "exp": in_an_hour(), "groups": ["a"], "cognito:groups": ["b"],
        }));
        let auth = authenticator(
            keys(Some(SECRET), None),
            &[("a", &[Permission::PersonsRead]), ("b", &[Permission::AuditRead])],
        );

        let identity = auth.authenticate(&bearer(&token)).unwrap();

        assert!(identity.permissions.allows(&Permission::PersonsRead));
        assert!(identity.permissions.allows(&Permission::AuditRead));
    }

    #[test]
    fn a_service_token_acts_as_its_consumer() {
        let token = sign(&serde_json::json!({
            "consumerName": "repairs-hub", "consumerType": 1, "exp": in_an_hour(),
        }));
        let auth = authenticator(keys(Some(SECRET), None), &[("consumer:repairs-hub", &[Permission::EventsRead])]);

        let identity = auth.authenticate(&bearer(&token)).unwrap();

        assert_eq!(identity.actor.subject, "repairs-hub");
        assert_eq!(identity.actor.name, "repairs-hub");
        assert_eq!(identity.actor.email, "");
        assert!(identity.permissions.allows(&Permission::EventsRead));
    }

    #[test]
    fn tokens_without_exp_or_subject_or_with_bad_groups_are_refused() {
        let auth = authenticator(keys(Some(SECRET), None), &[]);
        for claims in [
            serde_json::json!({ "sub": "u" }),
            serde_json::json!({ "exp": in_an_hour() }),
            serde_json::json!({ "sub": "u", "exp": in_an_hour(), "groups": "admin" }),
            serde_json::json!({ "sub": "u", "exp": "tomorrow" }),
        ] {
            assert_eq!(auth.authenticate(&bearer(&sign(&claims))).err(), Some(Rejection::Claims), "{claims}");
        }
    }

    #[test]
    fn authorization_headers_other_than_one_bearer_token_are_refused() {
        let auth = authenticator(keys(Some(SECRET), None), &[]);
        assert_eq!(auth.authenticate(&HeaderMap::new()).err(), Some(Rejection::Missing));
        for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "token", "Bearer a.b"] {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(auth.authenticate(&headers).err(), Some(Rejection::Malformed), "{value}");
        }
    }

    #[test]
    fn development_mode_is_the_local_developer_with_every_permission() {
        let identity = Authenticator::new(&AuthConfig::default()).authenticate(&HeaderMap::new()).unwrap();
        assert_eq!(identity.actor, Actor::local_developer());
        assert!(identity.permissions.is_admin());
    }

    #[test]
    fn invalid_keys_fail_closed() {
        let token = sign(&serde_json::json!({ "sub": "u", "exp": in_an_hour() }));
        let auth = authenticator(keys(Some(b"short"), None), &[]);
        assert_eq!(auth.authenticate(&bearer(&token)).err(), Some(Rejection::Algorithm));
    }
}
