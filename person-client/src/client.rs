//! [`PersonClient`]: the [`PersonApi`] over HTTP (reqwest with rustls), and its builder.
//!
//! The protocol work happens here, once: URLs, headers (`Authorization`, `x-correlation-id`, `x-purpose`,
//! `If-Match`, `Idempotency-Key`, `Prefer`), the retry loop, response metadata, and turning responses into
//! values or [`ClientError`]s.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use person_core::api::{FeedResponse, HistoryResponse, PersonResponse};
use person_core::equality::EqualityData;
use person_core::event::{FeedEntry, HistoryEntry};
use person_core::person::PersonId;
use person_core::reference::CrossReference;
use person_core::validate::PersonDraft;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue, IF_MATCH};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::PersonApi;
use crate::auth::{AccessToken, Credentials, TokenProvider};
use crate::error::{ClientError, DecodeError, TransportError, from_response, retry_after};
use crate::model::{
    AccessLogPage, AddReferenceRequest, Document, ExtendedDocument, HousingSearchPage, HousingSearchQuery,
    HousingSearchWire, MatchQuery, MatchResult, MatchWire, MergeRequest, PersonPatch, ReferenceChange, References,
    Restriction, SearchCriteria, SearchPage, SearchResult, SubjectAccess,
};
use crate::options::{CallOptions, CreateOptions, FollowOptions, ResponseMeta, RetryPolicy, lock};

const X_CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
const X_PURPOSE: HeaderName = HeaderName::from_static("x-purpose");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
const PREFER: HeaderName = HeaderName::from_static("prefer");

const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";

/// Default time limit of one attempt (the server's own default request timeout is 30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(35);

/// Builds a [`PersonClient`]; start with [`PersonClient::builder`].
#[derive(Debug)]
pub struct PersonClientBuilder {
    base_url: String,
    credentials: Credentials,
    timeout: Duration,
    connect_timeout: Option<Duration>,
    user_agent: String,
    retry: RetryPolicy,
    options: CallOptions,
}

impl PersonClientBuilder {
    /// Sends this bearer token on every call.
    #[must_use]
    pub fn token(mut self, token: impl Into<AccessToken>) -> Self {
        self.credentials = Credentials::Static(token.into());
        self
    }

    /// Asks `provider` for a token before every attempt (and lets it refresh after a 401).
    #[must_use]
    pub fn token_provider(mut self, provider: Arc<dyn TokenProvider>) -> Self {
        self.credentials = Credentials::Provider(provider);
        self
    }

    /// Time limit of one attempt, from sending the request to reading the whole response (default
    /// [`DEFAULT_TIMEOUT`]). A call may take up to `max_attempts` times this, plus the retry delays.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time limit for establishing a connection (default: only the overall [`Self::timeout`]).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The `User-Agent` (default `person-client/<version>`); name your service so its calls can be told apart.
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// How retryable calls are retried (default [`RetryPolicy::default`]; [`RetryPolicy::none`] to never retry).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Options for every call of the client (a fixed purpose, say); [`PersonClient::with_options`] replaces
    /// them for one handle.
    #[must_use]
    pub fn options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`ClientError::Config`] when the base URL is not an absolute `http://` or `https://` URL without query
    /// or fragment, or the HTTP client cannot be built (e.g. a user agent with control characters).
    pub fn build(self) -> Result<PersonClient, ClientError> {
        let mut base = Url::parse(self.base_url.trim())
            .map_err(|e| ClientError::Config(format!("the base URL is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::Config("the base URL must be an http:// or https:// URL".to_owned()));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(ClientError::Config("the base URL must not have a query or fragment".to_owned()));
        }
        let path = base.path().trim_end_matches('/').to_owned();
        base.set_path(&path);
        let mut http = reqwest::Client::builder()
            // A merged person's 308 is surfaced as `ClientError::Moved`, never followed silently.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .user_agent(self.user_agent);
        if let Some(timeout) = self.connect_timeout {
            http = http.connect_timeout(timeout);
        }
        let http = http.build().map_err(|e| ClientError::Config(format!("the HTTP client cannot be built: {e}")))?;
        let inner = Inner { http, base, credentials: self.credentials, retry: self.retry, last_meta: Mutex::default() };
        Ok(PersonClient { inner: Arc::new(inner), options: self.options })
    }
}

struct Inner {
    http: reqwest::Client,
    /// The base URL, without a trailing slash (`http://host:8080`, or `https://host/prefix`).
    base: Url,
    credentials: Credentials,
    retry: RetryPolicy,
    last_meta: Mutex<Option<ResponseMeta>>,
}

/// The typed HTTP client of the Person API: implements [`PersonApi`].
///
/// Cheap to clone (clones share one connection pool); create one per process and share it.
///
/// ```no_run
/// # async fn run() -> Result<(), person_client::ClientError> {
/// use std::time::Duration;
/// use person_client::{PersonApi, PersonClient, RetryPolicy};
///
/// let client = PersonClient::builder("https://person-api.hackney.gov.uk")
///     .token(std::env::var("PERSON_API_TOKEN").unwrap_or_default())
///     .timeout(Duration::from_secs(10))
///     .user_agent("repairs-hub/2.3")
///     .retry(RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(5) })
///     .build()?;
/// let Ok(id) = person_client::PersonId::parse("ee665227-b493-4b3b-bd64-b4f6d9f05f32") else { return Ok(()) };
/// let person = client.get(id).await?;
/// println!("version {}", person.version_number);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PersonClient {
    inner: Arc<Inner>,
    options: CallOptions,
}

impl std::fmt::Debug for PersonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonClient")
            .field("base_url", &self.inner.base.as_str())
            .field("credentials", &self.inner.credentials)
            .field("retry", &self.inner.retry)
            .field("options", &self.options)
            .finish()
    }
}

/// One HTTP exchange to make, possibly several times.
struct Call {
    method: Method,
    url: Url,
    body: Option<(Vec<u8>, &'static str)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Safe to repeat (see [`RetryPolicy`]).
    retry: bool,
}

impl Call {
    fn new(method: Method, url: Url, retry: bool) -> Self {
        Self { method, url, body: None, headers: Vec::new(), retry }
    }

    fn json(mut self, body: &impl Serialize, content_type: &'static str) -> Result<Self, ClientError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|_| ClientError::Config("the request body cannot be serialised as JSON".to_owned()))?;
        self.body = Some((bytes, content_type));
        Ok(self)
    }

    fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    fn if_match(self, version: Option<u64>) -> Self {
        match version {
            Some(version) => self.header(IF_MATCH, version_tag(version)),
            None => self,
        }
    }
}

fn version_tag(version: u64) -> HeaderValue {
    // Digits and quotes are always a valid header value.
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A successful response, read whole.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Decode(DecodeError::body(self.status, &e)))
    }

    /// The version in the `ETag` (`"3"`, or weak `W/"3"`).
    fn version(&self) -> Result<u64, ClientError> {
        self.headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|tag| tag.trim().trim_start_matches("W/").trim_matches('"').parse().ok())
            .ok_or(ClientError::Decode(DecodeError::missing_header(self.status, "ETag")))
    }

    fn document<T: DeserializeOwned>(&self) -> Result<Document<T>, ClientError> {
        Ok(Document { body: self.json()?, version: self.version()? })
    }
}

fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

impl PersonClient {
    /// Starts building a client of the API at `base_url`: `http://127.0.0.1:8080`, or with a path prefix when
    /// the API is mounted under one (`https://host/person-api`).
    #[must_use]
    pub fn builder(base_url: impl Into<String>) -> PersonClientBuilder {
        PersonClientBuilder {
            base_url: base_url.into(),
            credentials: Credentials::None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: None,
            user_agent: concat!("person-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            retry: RetryPolicy::default(),
            options: CallOptions::default(),
        }
    }

    /// A handle on the same client (same connections, token and policy) whose calls use `options`: a
    /// correlation id of yours, an `x-purpose`, a [`MetaCapture`](crate::MetaCapture). Cheap; make one per
    /// unit of work.
    ///
    /// ```no_run
    /// # async fn run(client: person_client::PersonClient, id: person_core::PersonId) -> Result<(), person_client::ClientError> {
    /// use person_client::{CallOptions, MetaCapture, PersonApi};
    /// let meta = MetaCapture::new();
    /// let audited = client.with_options(CallOptions::new().purpose("Tenancy audit 2026").capture(&meta));
    /// let person = audited.get(id).await?;
    /// println!("correlation id {:?}", meta.get().and_then(|m| m.correlation_id));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_options(&self, options: CallOptions) -> Self {
        Self { inner: Arc::clone(&self.inner), options }
    }

    /// The metadata of the last response this client (any handle, any task) received. With concurrent calls
    /// it may belong to another call: use a [`MetaCapture`](crate::MetaCapture) to see your own.
    #[must_use]
    pub fn last_meta(&self) -> Option<ResponseMeta> {
        lock(&self.inner.last_meta).clone()
    }

    /// The base URL calls are made under.
    #[must_use]
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // Each segment is percent-encoded: an `area` like `../x` cannot change the path.
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn url_with_query(&self, segments: &[&str], pairs: &[(&str, String)]) -> Url {
        let mut url = self.url(segments);
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        url
    }

    fn person_url(&self, id: PersonId, rest: &[&str]) -> Url {
        let id = id.to_string();
        let mut segments = vec!["api", "v1", "persons", id.as_str()];
        segments.extend_from_slice(rest);
        self.url(&segments)
    }

    /// `…/persons/{id}/references?system=…&id=…&reason=…`: the values form-encoded, so that an id's `/`, `#`,
    /// `&`, `+`, `%`, `:` and spaces reach the server intact.
    fn reference_url(&self, id: PersonId, reference: &CrossReference, reason: Option<String>) -> Url {
        let mut url = self.person_url(id, &["references"]);
        let mut pairs = vec![("system", reference.system.to_string()), ("id", reference.id.to_string())];
        pairs.extend(reason.map(|reason| ("reason", reason)));
        url.query_pairs_mut().extend_pairs(&pairs);
        url
    }

    /// A `links.next` of the server: absolute when it has a public base URL, else path-relative (then taken
    /// under this client's base URL, so that a path prefix is kept).
    fn resolve(&self, link: &str) -> Option<Url> {
        if link.starts_with("http://") || link.starts_with("https://") {
            Url::parse(link).ok()
        } else {
            let base = self.inner.base.as_str().trim_end_matches('/');
            Url::parse(&format!("{base}{link}")).ok()
        }
    }

    fn record(&self, meta: &ResponseMeta) {
        *lock(&self.inner.last_meta) = Some(meta.clone());
        if let Some(capture) = &self.options.capture {
            capture.set(meta.clone());
        }
    }

    fn request(
        &self,
        call: &Call,
        correlation_id: &HeaderValue,
        purpose: Option<&HeaderValue>,
        token: Option<&AccessToken>,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let mut builder = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header(ACCEPT, JSON)
            .header(X_CORRELATION_ID, correlation_id.clone());
        if let Some(purpose) = purpose {
            builder = builder.header(X_PURPOSE, purpose.clone());
        }
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.secret()))
                .map_err(|_| ClientError::Config("the token is not a valid header value".to_owned()))?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        for (name, value) in &call.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        if let Some((body, content_type)) = &call.body {
            builder = builder.header(CONTENT_TYPE, *content_type).body(body.clone());
        }
        Ok(builder)
    }

    /// Makes the call, retrying as the policy allows; a 2xx is returned, anything else becomes its error.
    async fn execute(&self, call: Call) -> Result<Reply, ClientError> {
        let generated;
        let correlation_id = match &self.options.correlation_id {
            Some(id) => id.as_str(),
            None => {
                generated = uuid::Uuid::new_v4().to_string();
                generated.as_str()
            }
        };
        let correlation_id = HeaderValue::from_str(correlation_id)
            .map_err(|_| ClientError::Config("the correlation id must be visible ASCII".to_owned()))?;
        let purpose = match &self.options.purpose {
            Some(purpose) => Some(
                HeaderValue::from_str(purpose)
                    .map_err(|_| ClientError::Config("the purpose must be printable ASCII".to_owned()))?,
            ),
            None => None,
        };
        let policy = self.inner.retry;
        let max_attempts = if call.retry { policy.max_attempts.max(1) } else { 1 };
        let mut attempt = 0;
        let mut reauthenticated = false;
        loop {
            attempt += 1;
            let token = self.inner.credentials.token().await.map_err(ClientError::Credentials)?;
            let request = self.request(&call, &correlation_id, purpose.as_ref(), token.as_ref())?;
            let received = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    response.bytes().await.map(|body| (status, headers, body.to_vec()))
                }
                Err(error) => Err(error),
            };
            let (status, headers, body) = match received {
                Ok(received) => received,
                Err(error) => {
                    if attempt < max_attempts && !error.is_builder() {
                        tokio::time::sleep(policy.backoff(attempt)).await;
                        continue;
                    }
                    return Err(ClientError::Transport(TransportError::new(error)));
                }
            };
            let meta = ResponseMeta {
                status: status.as_u16(),
                correlation_id: header_text(&headers, &X_CORRELATION_ID),
                server_timing: header_text(&headers, &SERVER_TIMING),
                etag: header_text(&headers, &ETAG),
                idempotent_replayed: header_text(&headers, &IDEMPOTENT_REPLAYED).is_some_and(|v| v == "true"),
                attempts: attempt,
            };
            self.record(&meta);
            if status.is_success() {
                return Ok(Reply { status, headers, body });
            }
            // A 401 means the request was not processed: with a provider, one more try with a fresh token is
            // safe for every call.
            if status == StatusCode::UNAUTHORIZED && !reauthenticated && self.inner.credentials.invalidate() {
                reauthenticated = true;
                continue;
            }
            if attempt < max_attempts && retryable_status(status) {
                let asked = retry_after(&headers);
                if asked.is_none_or(|asked| asked <= policy.max_delay) {
                    let delay = policy.backoff(attempt).max(asked.unwrap_or_default());
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            return Err(from_response(status, &headers, &body));
        }
    }

    async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, ClientError> {
        self.execute(Call::new(Method::GET, url, true)).await?.json()
    }

    async fn create_at(
        &self,
        version: &str,
        person: &PersonDraft,
        options: &CreateOptions,
    ) -> Result<PersonResponse, ClientError> {
        let pairs = if options.allow_duplicate { vec![("allowDuplicate", "true".to_owned())] } else { Vec::new() };
        let url = self.url_with_query(&["api", version, "persons"], &pairs);
        let key = options.idempotency_key.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let key = HeaderValue::from_str(&key)
            .map_err(|_| ClientError::Config("the idempotency key is not a valid header value".to_owned()))?;
        // The same key on every attempt: a retry after a lost response replays the first create.
        let call = Call::new(Method::POST, url, true).json(person, JSON)?.header(IDEMPOTENCY_KEY, key);
        self.execute(call).await?.json()
    }

    async fn health(&self, segments: &[&str]) -> Result<(), ClientError> {
        self.execute(Call::new(Method::GET, self.url(segments), true)).await.map(|_| ())
    }

    async fn search_at(&self, url: Url) -> Result<SearchPage, ClientError> {
        self.get_json(url).await
    }
}

/// The state of a search stream: the next page to read and the results not yet yielded.
struct SearchState {
    client: PersonClient,
    next: Option<Url>,
    buffer: VecDeque<SearchResult>,
    /// An error to yield once the buffered results are out.
    failed: Option<ClientError>,
}

/// The state of a feed stream.
struct FeedState {
    client: PersonClient,
    after: u64,
    buffer: VecDeque<FeedEntry>,
    options: FollowOptions,
    /// Caught up (or failed): wait a poll interval before reading again.
    wait: bool,
}

#[async_trait]
impl PersonApi for PersonClient {
    async fn get(&self, id: PersonId) -> Result<PersonResponse, ClientError> {
        self.get_json(self.person_url(id, &[])).await
    }

    async fn create(&self, person: &PersonDraft, options: &CreateOptions) -> Result<PersonResponse, ClientError> {
        self.create_at("v1", person, options).await
    }

    async fn create_v2(&self, person: &PersonDraft, options: &CreateOptions) -> Result<PersonResponse, ClientError> {
        self.create_at("v2", person, options).await
    }

    async fn update(&self, id: PersonId, version: u64, patch: &PersonPatch) -> Result<PersonResponse, ClientError> {
        let call = Call::new(Method::PATCH, self.person_url(id, &[]), false)
            .json(patch, MERGE_PATCH)?
            .if_match(Some(version))
            .header(PREFER, HeaderValue::from_static("return=representation"));
        let reply = self.execute(call).await?;
        if reply.status == StatusCode::NO_CONTENT {
            // A server that does not honour `Prefer`: read the person as changed.
            return self.get(id).await;
        }
        reply.json()
    }

    async fn delete(&self, id: PersonId, version: Option<u64>, reason: Option<String>) -> Result<(), ClientError> {
        let pairs: Vec<(&str, String)> = reason.map(|r| ("reason", r)).into_iter().collect();
        let mut url = self.person_url(id, &[]);
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(&pairs);
        }
        self.execute(Call::new(Method::DELETE, url, true).if_match(version)).await.map(|_| ())
    }

    async fn history(&self, id: PersonId) -> Result<Vec<HistoryEntry>, ClientError> {
        let history: HistoryResponse = self.get_json(self.person_url(id, &["history"])).await?;
        Ok(history.results)
    }

    async fn search_page(&self, criteria: &SearchCriteria) -> Result<SearchPage, ClientError> {
        self.search_at(self.url_with_query(&["api", "v1", "persons"], &criteria.pairs())).await
    }

    fn search(&self, criteria: &SearchCriteria) -> BoxStream<'static, Result<SearchResult, ClientError>> {
        let state = SearchState {
            client: self.clone(),
            next: Some(self.url_with_query(&["api", "v1", "persons"], &criteria.pairs())),
            buffer: VecDeque::new(),
            failed: None,
        };
        stream::unfold(state, |mut state| async move {
            loop {
                if let Some(result) = state.buffer.pop_front() {
                    return Some((Ok(result), state));
                }
                if let Some(error) = state.failed.take() {
                    return Some((Err(error), state));
                }
                let url = state.next.take()?;
                match state.client.search_at(url).await {
                    // An empty page ends the stream even if it links on: nothing more can follow.
                    Ok(page) => {
                        if let (Some(link), false) = (&page.links.next, page.results.is_empty()) {
                            match state.client.resolve(link) {
                                Some(next) => state.next = Some(next),
                                // Yield what was read, then the error.
                                None => state.failed = Some(ClientError::Decode(DecodeError::bad_link(StatusCode::OK))),
                            }
                        }
                        state.buffer.extend(page.results);
                    }
                    Err(error) => return Some((Err(error), state)),
                }
            }
        })
        .boxed()
    }

    async fn housing_search(&self, query: &HousingSearchQuery) -> Result<HousingSearchPage, ClientError> {
        let wire: HousingSearchWire =
            self.get_json(self.url_with_query(&["api", "v1", "search", "persons"], &query.pairs())).await?;
        Ok(wire.into())
    }

    async fn match_person(&self, query: &MatchQuery) -> Result<Vec<MatchResult>, ClientError> {
        // A read sent as POST: safe to repeat.
        let call = Call::new(Method::POST, self.url(&["api", "v1", "persons", "match"]), true).json(query, JSON)?;
        let wire: MatchWire = self.execute(call).await?.json()?;
        Ok(wire.results)
    }

    async fn merge(
        &self,
        survivor: PersonId,
        survivor_version: u64,
        duplicate: PersonId,
        reason: &str,
    ) -> Result<PersonResponse, ClientError> {
        let body = MergeRequest { duplicate_id: duplicate, reason };
        let call = Call::new(Method::POST, self.person_url(survivor, &["merge"]), false)
            .json(&body, JSON)?
            .if_match(Some(survivor_version));
        self.execute(call).await?.json()
    }

    async fn equality(&self, id: PersonId) -> Result<Document<EqualityData>, ClientError> {
        self.execute(Call::new(Method::GET, self.person_url(id, &["equality"]), true)).await?.document()
    }

    async fn put_equality(
        &self,
        id: PersonId,
        version: Option<u64>,
        data: &EqualityData,
    ) -> Result<Document<EqualityData>, ClientError> {
        let call = Call::new(Method::PUT, self.person_url(id, &["equality"]), true).json(data, JSON)?.if_match(version);
        self.execute(call).await?.document()
    }

    async fn extended(&self, id: PersonId, area: &str) -> Result<Document<ExtendedDocument>, ClientError> {
        self.execute(Call::new(Method::GET, self.person_url(id, &["extended", area]), true)).await?.document()
    }

    async fn put_extended(
        &self,
        id: PersonId,
        area: &str,
        version: Option<u64>,
        document: &ExtendedDocument,
    ) -> Result<Document<ExtendedDocument>, ClientError> {
        let call = Call::new(Method::PUT, self.person_url(id, &["extended", area]), true)
            .json(document, JSON)?
            .if_match(version);
        self.execute(call).await?.document()
    }

    async fn delete_extended(&self, id: PersonId, area: &str, version: Option<u64>) -> Result<(), ClientError> {
        let call = Call::new(Method::DELETE, self.person_url(id, &["extended", area]), true).if_match(version);
        self.execute(call).await.map(|_| ())
    }

    async fn set_restriction(
        &self,
        id: PersonId,
        version: Option<u64>,
        restriction: &Restriction,
    ) -> Result<PersonResponse, ClientError> {
        let call = Call::new(Method::PUT, self.person_url(id, &["processing-restriction"]), true)
            .json(restriction, JSON)?
            .if_match(version);
        self.execute(call).await?.json()
    }

    async fn references(&self, id: PersonId) -> Result<References, ClientError> {
        self.get_json(self.person_url(id, &["references"])).await
    }

    async fn add_reference(
        &self,
        id: PersonId,
        version: Option<u64>,
        reference: &CrossReference,
        reason: Option<String>,
    ) -> Result<ReferenceChange, ClientError> {
        let body = AddReferenceRequest { system: &reference.system, id: &reference.id, reason: reason.as_deref() };
        // Adding a held reference changes nothing: safe to repeat (see the trait's documentation).
        let call =
            Call::new(Method::POST, self.person_url(id, &["references"]), true).json(&body, JSON)?.if_match(version);
        let reply = self.execute(call).await?;
        let held: References = reply.json()?;
        Ok(ReferenceChange {
            added: reply.status == StatusCode::CREATED,
            version_number: held.version_number,
            references: held.references,
        })
    }

    async fn remove_reference(
        &self,
        id: PersonId,
        version: Option<u64>,
        reference: &CrossReference,
        reason: Option<String>,
    ) -> Result<u64, ClientError> {
        let url = self.reference_url(id, reference, reason);
        self.execute(Call::new(Method::DELETE, url, true).if_match(version)).await?.version()
    }

    async fn find_by_reference(&self, reference: &CrossReference) -> Result<Option<PersonResponse>, ClientError> {
        let url = self.url_with_query(&["api", "v1", "persons"], &[("reference", reference.to_string())]);
        let page = self.search_at(url).await?;
        Ok(page.results.into_iter().next().map(|result| result.person))
    }

    async fn access_log(&self, id: PersonId, after: u64, limit: Option<u32>) -> Result<AccessLogPage, ClientError> {
        let mut url = self.person_url(id, &["access-log"]);
        url.query_pairs_mut().append_pair("after", &after.to_string());
        if let Some(limit) = limit {
            url.query_pairs_mut().append_pair("limit", &limit.to_string());
        }
        self.get_json(url).await
    }

    async fn subject_access(&self, id: PersonId) -> Result<SubjectAccess, ClientError> {
        self.get_json(self.person_url(id, &["subject-access"])).await
    }

    async fn feed_page(&self, after: u64, limit: Option<u32>) -> Result<FeedResponse, ClientError> {
        let mut pairs = vec![("after", after.to_string())];
        if let Some(limit) = limit {
            pairs.push(("limit", limit.to_string()));
        }
        self.get_json(self.url_with_query(&["api", "v1", "events"], &pairs)).await
    }

    fn follow_feed(&self, after: u64, options: FollowOptions) -> BoxStream<'static, Result<FeedEntry, ClientError>> {
        let state = FeedState { client: self.clone(), after, buffer: VecDeque::new(), options, wait: false };
        stream::unfold(state, |mut state| async move {
            loop {
                if let Some(entry) = state.buffer.pop_front() {
                    return Some((Ok(entry), state));
                }
                if state.wait {
                    tokio::time::sleep(state.options.poll_interval).await;
                }
                match state.client.feed_page(state.after, state.options.page_size).await {
                    Ok(page) => {
                        let last = page.results.last().map(|entry| entry.position);
                        // The cursor also moves past events this caller may not see (restricted persons).
                        let cursor = page.next_cursor.parse::<u64>().ok();
                        state.after = cursor.into_iter().chain(last).fold(state.after, u64::max);
                        state.wait = page.results.is_empty();
                        state.buffer.extend(page.results);
                    }
                    Err(error) => {
                        state.wait = true;
                        return Some((Err(error), state));
                    }
                }
            }
        })
        .boxed()
    }

    async fn ping(&self) -> Result<(), ClientError> {
        self.health(&["api", "v1", "healthcheck", "ping"]).await
    }

    async fn live(&self) -> Result<(), ClientError> {
        self.health(&["livez"]).await
    }

    async fn ready(&self) -> Result<bool, ClientError> {
        match self.execute(Call::new(Method::GET, self.url(&["readyz"]), false)).await {
            Ok(_) => Ok(true),
            Err(ClientError::Server { status: 503, .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> PersonClient {
        PersonClient::builder(base).build().unwrap()
    }

    #[test]
    fn paths_are_built_under_the_base_url_with_each_segment_encoded() {
        let id = PersonId::parse("ee665227-b493-4b3b-bd64-b4f6d9f05f32").unwrap();
        let plain = client("http://127.0.0.1:8080");
        assert_eq!(
            plain.person_url(id, &["extended", "../admin"]).as_str(),
            "http://127.0.0.1:8080/api/v1/persons/ee665227-b493-4b3b-bd64-b4f6d9f05f32/extended/..%2Fadmin"
        );
        let prefixed = client("https://example.org/person-api/");
        assert_eq!(prefixed.url(&["livez"]).as_str(), "https://example.org/person-api/livez");
    }

    #[test]
    fn reference_query_values_are_encoded_so_that_no_character_of_an_id_is_lost() {
        let plain = client("http://127.0.0.1:8080");
        let id = PersonId::parse("ee665227-b493-4b3b-bd64-b4f6d9f05f32").unwrap();
        let reference = CrossReference::parse("tenure:a/b#c d:e&f+g%h?i").unwrap();
        let url = plain.reference_url(id, &reference, Some("Tenancy ended".to_owned()));
        assert_eq!(url.path(), "/api/v1/persons/ee665227-b493-4b3b-bd64-b4f6d9f05f32/references");
        assert_eq!(url.query(), Some("system=tenure&id=a%2Fb%23c+d%3Ae%26f%2Bg%25h%3Fi&reason=Tenancy+ended"));
        assert_eq!(url.fragment(), None);
        let decoded: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        assert_eq!(decoded[1], ("id".to_owned(), "a/b#c d:e&f+g%h?i".to_owned()));
    }

    #[test]
    fn relative_links_keep_the_base_path_and_absolute_links_are_kept() {
        let prefixed = client("https://example.org/person-api");
        assert_eq!(
            prefixed.resolve("/api/v1/persons?q=ab&cursor=20").unwrap().as_str(),
            "https://example.org/person-api/api/v1/persons?q=ab&cursor=20"
        );
        assert_eq!(
            prefixed.resolve("https://public.example/api/v1/events?after=3").unwrap().as_str(),
            "https://public.example/api/v1/events?after=3"
        );
    }

    #[test]
    fn base_urls_that_cannot_be_used_are_refused() {
        for base in ["ftp://example.org", "not a url", "http://example.org/?x=1", "mailto:someone@example.org"] {
            assert!(matches!(PersonClient::builder(base).build(), Err(ClientError::Config(_))), "{base}");
        }
    }

    #[test]
    fn debug_shows_no_token() {
        let client = PersonClient::builder("http://127.0.0.1:1").token("eyJ.secret-token.sig").build().unwrap();
        assert!(!format!("{client:?}").contains("secret-token"));
    }
}
