//! JWT handling: the server's authenticator (token mode, an HS256 secret, groups mapped to permissions) given
//! an arbitrary `Authorization` header value, or a real token minted with `auth::mint_hs256` from fuzz-chosen
//! claims and then altered; the first byte chooses.
//!
//! Never panics; an arbitrary header never authenticates (it cannot carry a valid HS256 signature); every
//! refusal is a 401 problem with a `WWW-Authenticate: Bearer` challenge and one of the fixed bodies (one per
//! reason for refusing), so it never depends on, or repeats, the token; a minted token authenticates as its
//! subject with exactly its groups' permissions (or is refused for a blank subject), and is refused once one
//! character of its signature, payload or header is changed.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use person_core::Permission;
use person_http::auth::{MintClaims, mint_hs256};
use person_http::fuzzing::{Refusal, TOKEN_GROUPS, TOKEN_SECRET, TokenCheck};

const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn check() -> &'static TokenCheck {
    static CHECK: OnceLock<TokenCheck> = OnceLock::new();
    CHECK.get_or_init(TokenCheck::new)
}

fn refusal_bodies() -> &'static [Vec<u8>] {
    static BODIES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BODIES.get_or_init(TokenCheck::refusal_bodies)
}

/// A 401 problem with a `Bearer` challenge, whose body is one of the fixed bodies (one per reason): it depends on
/// why the token was refused, never on the token, so a token (a credential) is never echoed.
fn assert_unauthorised(refusal: &Refusal) {
    assert_eq!(refusal.status.as_u16(), 401, "a token refused with another status than 401");
    assert_eq!(refusal.content_type.as_deref(), Some("application/problem+json"));
    let challenge = refusal.www_authenticate.as_deref().expect("a 401 carries a challenge");
    assert!(challenge.starts_with("Bearer"), "challenge `{challenge}`");
    let problem = refusal.problem.as_ref().expect("the body of a 401 is a problem");
    assert_eq!(problem.status, 401);
    assert!(refusal_bodies().contains(&refusal.body), "a 401 body that depends on the token");
}

#[derive(Debug, Arbitrary)]
struct Minted {
    sub: String,
    name: Option<String>,
    email: Option<String>,
    groups: Vec<u8>,
    extra_groups: Vec<String>,
    scheme: u8,
    /// Which part to alter (0 header, 1 payload, 2 signature), where, and to which character.
    part: u8,
    position: u16,
    replacement: u8,
}

fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

fn minted(input: &Minted) {
    let mut groups: Vec<String> =
        input.groups.iter().take(8).map(|i| TOKEN_GROUPS[usize::from(*i) % TOKEN_GROUPS.len()].0.to_owned()).collect();
    groups.extend(input.extra_groups.iter().take(4).map(|g| clip(g)));
    let claims = MintClaims {
        sub: clip(&input.sub),
        name: input.name.as_deref().map(clip),
        email: input.email.as_deref().map(clip),
        groups: groups.clone(),
    };
    let token = mint_hs256(TOKEN_SECRET, &claims, Duration::from_secs(300)).expect("minting succeeds");
    let scheme = ["Bearer", "bearer", "BEARER"][usize::from(input.scheme % 3)];
    let header = format!("{scheme} {token}");

    let outcome = check().authorization(header.as_bytes()).expect("a token is a header value");
    let subject = claims.sub.trim();
    if subject.is_empty() {
        let refusal = outcome.expect_err("a token without a subject authenticated");
        assert_unauthorised(&refusal);
    } else {
        let (actor, permissions) = outcome.unwrap_or_else(|r| panic!("a minted token is refused: {:?}", r.problem));
        assert_eq!(actor.subject, subject);
        assert_eq!(actor.name, claims.name.clone().unwrap_or_default());
        assert_eq!(actor.email, claims.email.clone().unwrap_or_default());
        for permission in [Permission::PersonsRead, Permission::PersonsWrite, Permission::EventsRead] {
            let granted = TOKEN_GROUPS.iter().any(|(g, p)| *p == permission && groups.iter().any(|h| h == g));
            assert_eq!(permissions.allows(&permission), granted, "{permission} granted wrongly");
        }
        assert!(!permissions.is_admin(), "admin from groups that do not grant it");
    }

    // One character of one part changed: the signature no longer matches (or the token no longer parses).
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let part = usize::from(input.part % 3);
    let target = parts[part].as_bytes();
    if target.is_empty() {
        return;
    }
    let at = usize::from(input.position) % target.len();
    let replacement = BASE64URL[usize::from(input.replacement) % BASE64URL.len()];
    if replacement == target[at] {
        return;
    }
    let mut altered: Vec<Vec<u8>> = parts.iter().map(|p| p.as_bytes().to_vec()).collect();
    altered[part][at] = replacement;
    let altered = altered.join(&b'.');
    let mut header = format!("{scheme} ").into_bytes();
    header.extend_from_slice(&altered);
    match check().authorization(&header).expect("an altered token is a header value") {
        Ok(_) => {
            // Base64url without padding: the last character of a part carries spare bits, and a decoder that
            // ignored them would accept another spelling of the same bytes. jsonwebtoken refuses those (as it
            // must), so any acceptance is a finding.
            panic!("an altered token authenticated (part {part}, position {at})");
        }
        Err(refusal) => assert_unauthorised(&refusal),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode < 192 {
        if let Some(outcome) = check().authorization(rest) {
            match outcome {
                Ok(_) => panic!("an arbitrary Authorization header authenticated"),
                Err(refusal) => assert_unauthorised(&refusal),
            }
        }
    } else if let Ok(input) = Minted::arbitrary(&mut arbitrary::Unstructured::new(rest)) {
        minted(&input);
    }
});
