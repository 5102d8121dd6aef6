//! Test support: the real server in-process on a temporary SQLite store (development mode, or with HS256
//! tokens and groups), the real router over a store that always fails (for genuine 500s and 503s), a
//! fault-injecting TCP proxy, and person drafts.

pub(crate) mod faulty;
pub(crate) mod proxy;

use std::time::Duration;

use person_client::{PersonClient, RetryPolicy};
use person_core::validate::{PersonDraft, TenureDraft};
use person_core::{PersonType, Title};
use person_http::auth::{MintClaims, mint_hs256};
use person_server::config::Config;

/// The HS256 secret of [`TestServer::start_with_tokens`].
pub(crate) const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

/// The group → permission map of [`TestServer::start_with_tokens`].
const GROUPS: &str = "officers=persons:read,persons:write;readers=persons:read";

/// A person-api server running in this process on a fresh SQLite file.
pub(crate) struct TestServer {
    pub(crate) base_url: String,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    /// Development mode: no tokens, every caller has every permission.
    pub(crate) async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Tokens required: HS256 with [`SECRET`]; groups `officers` (read, write) and `readers` (read).
    pub(crate) async fn start_with_tokens() -> Self {
        Self::start_with(&[("PERSON_API_JWT_SECRET", SECRET), ("PERSON_API_GROUPS", GROUPS)]).await
    }

    async fn start_with(settings: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("sqlite://{}", dir.path().join("persons.db").display());
        let env = |name: &str| settings.iter().find(|(key, _)| *key == name).map(|(_, value)| (*value).to_owned());
        let config = Config { store, ..Config::load(None, &env).unwrap() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            person_server::serve(&config, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { base_url, _dir: dir, stop: Some(stop) }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A token for `sub` in `groups`, signed with [`SECRET`], valid for ten minutes.
pub(crate) fn token(sub: &str, groups: &[&str]) -> String {
    let claims = MintClaims {
        sub: sub.to_owned(),
        name: None,
        email: None,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    };
    mint_hs256(SECRET.as_bytes(), &claims, Duration::from_secs(600)).unwrap()
}

/// Retries quickly: tests must not wait for production backoffs.
pub(crate) fn fast_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy { max_attempts, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(50) }
}

/// A client of `base_url` without a token, with fast retries.
pub(crate) fn client(base_url: &str) -> PersonClient {
    PersonClient::builder(base_url).retry(fast_retries(3)).build().unwrap()
}

/// A valid tenant draft; different names give different persons.
pub(crate) fn draft(first_name: &str, surname: &str) -> PersonDraft {
    PersonDraft {
        title: Some(Title::Mx),
        first_name: Some(first_name.to_owned()),
        surname: Some(surname.to_owned()),
        date_of_birth: Some("1986-05-17".to_owned()),
        place_of_birth: Some("Hackney".to_owned()),
        person_types: Some(vec![PersonType::Tenant]),
        tenures: Some(vec![TenureDraft {
            id: Some(uuid::Uuid::new_v4()),
            tenure_type: Some("Secure".to_owned()),
            start_date: Some("2015-03-01".to_owned()),
            asset_full_address: Some("1 Mare Street, London E8 1DY".to_owned()),
            ..TenureDraft::default()
        }]),
        reason: Some("New tenancy".to_owned()),
        ..PersonDraft::default()
    }
}
