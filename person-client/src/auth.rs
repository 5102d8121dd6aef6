//! Bearer tokens: a static token, or a [`TokenProvider`] that fetches and refreshes them.
//!
//! Tokens never appear in `Debug` output, error messages or logs.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::BoxError;

/// A bearer token (a JWT). Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token (without the `Bearer ` prefix).
    #[must_use]
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, to put in a header.
    #[must_use]
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl From<String> for AccessToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl From<&str> for AccessToken {
    fn from(token: &str) -> Self {
        Self(token.to_owned())
    }
}

/// Supplies tokens to the client, e.g. from an identity provider, caching each until it expires.
///
/// The client asks for a token before every attempt, so a provider that refreshes ahead of expiry is never
/// caught out. When the server still refuses a token (401), the client calls [`TokenProvider::invalidate`] and
/// retries the call once with a fresh token (a 401 means the request was not processed, so this is safe for
/// every call, updates included).
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// A currently valid token.
    ///
    /// # Errors
    /// Any failure to obtain one; the call then fails with
    /// [`ClientError::Credentials`](crate::ClientError::Credentials).
    async fn token(&self) -> Result<AccessToken, BoxError>;

    /// The server refused the last token: drop any cached one so that the next [`TokenProvider::token`]
    /// fetches a new one. The default does nothing.
    fn invalidate(&self) {}
}

/// Where the client's tokens come from.
#[derive(Clone, Default)]
pub(crate) enum Credentials {
    /// No `Authorization` header (a development-mode server, or health probes only).
    #[default]
    None,
    /// The same token on every call.
    Static(AccessToken),
    /// A provider asked before every attempt.
    Provider(Arc<dyn TokenProvider>),
}

impl Credentials {
    pub(crate) async fn token(&self) -> Result<Option<AccessToken>, BoxError> {
        match self {
            Self::None => Ok(None),
            Self::Static(token) => Ok(Some(token.clone())),
            Self::Provider(provider) => provider.token().await.map(Some),
        }
    }

    /// After a 401: lets a provider refresh; true when retrying can help.
    pub(crate) fn invalidate(&self) -> bool {
        match self {
            Self::Provider(provider) => {
                provider.invalidate();
                true
            }
            Self::None | Self::Static(_) => false,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "Credentials::None",
            Self::Static(_) => "Credentials::Static(<redacted>)",
            Self::Provider(_) => "Credentials::Provider",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_never_shown_by_debug() {
        let token = AccessToken::new("eyJhbGciOiJIUzI1NiJ9.secret.signature");
        assert!(!format!("{token:?}").contains("secret"));
        assert!(!format!("{:?}", Credentials::Static(token)).contains("secret"));
    }
}
