//! Configuration: one optional TOML file plus `PERSON_API_*` environment variables (which win).
//!
//! Loaded once at start into a typed [`Config`]; every problem is reported with the setting's name and where it
//! came from, and the process exits non-zero. Secrets (later: token keys) come only from the environment or
//! files, never from the TOML document itself.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use person_core::Permission;
use person_core::reference::ReferenceSystem;
use person_http::links::{LinkRegistry, LinkService, ProbeThresholds};
use serde::Deserialize;

pub use crate::store::StoreOptions;

/// Default listen address: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Default store: the embedded SQLite file under `./data`.
pub const DEFAULT_STORE: &str = "sqlite://./data/persons.db";
/// Default request timeout in seconds.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The server's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on (`PERSON_API_BIND`, `bind`).
    pub bind: SocketAddr,
    /// Storage URL (`PERSON_API_STORE`, `store`): `sqlite://path` or `postgres://user@host:port/db`.
    pub store: String,
    /// Log format (`PERSON_API_LOG_FORMAT`, `log_format`): `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter (`PERSON_API_LOG`, `log`), tracing `EnvFilter` syntax; default `info`.
    pub log_filter: String,
    /// Longest a request may take before it is answered 504 (`PERSON_API_REQUEST_TIMEOUT_SECS`).
    pub request_timeout: Duration,
    /// Externally visible base URL used in absolute links (`PERSON_API_PUBLIC_BASE_URL`).
    pub public_base_url: Option<String>,
    /// Per-caller rate limit (`PERSON_API_RATE_LIMIT_PER_SECOND`, `PERSON_API_RATE_LIMIT_BURST`;
    /// `rate_limit_per_second`, `rate_limit_burst`): `None` (the default) for none. The burst defaults to twice the
    /// rate.
    pub rate_limit: Option<person_http::RateLimitConfig>,
    /// Open connections at most (`PERSON_API_MAX_CONNECTIONS`, `max_connections`) and the longest a client may take
    /// to send a request head (`PERSON_API_HEADER_READ_TIMEOUT_SECS`, `header_read_timeout_secs`).
    pub connection_limits: crate::serving::ConnectionLimits,
    /// Token verification keys and the group → permission map.
    pub auth: AuthSettings,
    /// Settings of the storage backends (`[postgres]`, `PERSON_API_POSTGRES_*`).
    pub store_options: StoreOptions,
    /// The link registry (`[[links]]`, file only): the services person responses link to.
    pub links: Vec<LinkService>,
    /// How linked services' health is probed (`[link_probes]`, `PERSON_API_LINK_PROBE_*`).
    pub link_probes: LinkProbes,
    /// The event relay to SNS (`[relay]`, `PERSON_API_RELAY_*`).
    pub relay: RelaySettings,
}

/// The event relay (SPEC §9): publishes the event feed to an SNS topic, at least once (see `docs/operations.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySettings {
    /// Whether this instance relays (`enabled`, `PERSON_API_RELAY_ENABLED`; default false). Every instance may
    /// enable it: a lease in the store lets one relay at a time.
    pub enabled: bool,
    /// The SNS topic (`topic_arn`, `PERSON_API_RELAY_TOPIC_ARN`); required when enabled. A FIFO topic (ARN ending
    /// in `.fifo`) gets the person as message group and the event id as deduplication id.
    pub topic_arn: Option<String>,
    /// The AWS region (`region`, `PERSON_API_RELAY_REGION`); default: the topic ARN's region.
    pub region: Option<String>,
    /// Another SNS endpoint than AWS's, e.g. a VPC endpoint or a local test server (`endpoint`,
    /// `PERSON_API_RELAY_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Events per feed read (`batch_size`, `PERSON_API_RELAY_BATCH_SIZE`; default 100). SNS takes 10 per call.
    pub batch_size: u32,
    /// Feed poll interval when idle (`poll_interval_ms`, `PERSON_API_RELAY_POLL_INTERVAL_MS`; default 1000).
    pub poll_interval: Duration,
    /// Lease time to live (`lease_ttl_secs`, `PERSON_API_RELAY_LEASE_TTL_SECS`; default 30): after a crash, another
    /// instance takes over within about this long.
    pub lease_ttl: Duration,
    /// First retry delay after a failed publish (`backoff_base_ms`, `PERSON_API_RELAY_BACKOFF_BASE_MS`; default 200).
    pub backoff_base: Duration,
    /// Longest retry delay (`backoff_max_ms`, `PERSON_API_RELAY_BACKOFF_MAX_MS`; default 30000).
    pub backoff_max: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            enabled: false,
            topic_arn: None,
            region: None,
            endpoint: None,
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(30),
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// How the linked services' health URLs are probed (see `docs/links.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkProbes {
    /// Time between two probes of one service (`interval_secs`, default 10).
    pub interval: Duration,
    /// Longest a probe may take before it counts as a failure (`timeout_secs`, default 2).
    pub timeout: Duration,
    /// Consecutive successes / failures that change a service's state (`healthy_threshold` default 2,
    /// `unhealthy_threshold` default 3).
    pub thresholds: ProbeThresholds,
}

impl Default for LinkProbes {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            thresholds: ProbeThresholds::default(),
        }
    }
}

impl Config {
    /// The link registry of [`Self::links`] with the probe thresholds (already validated by [`Self::load`]).
    ///
    /// # Errors
    /// A registry entry that cannot be used (only for a `Config` built by hand).
    pub fn link_registry(&self) -> Result<LinkRegistry, person_http::links::LinkConfigError> {
        LinkRegistry::new(self.links.clone(), self.link_probes.thresholds)
    }
}

/// A secret value: compared and used, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// The secret's bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Authentication settings. With neither key configured the server runs in development mode, which it only
/// allows on a loopback address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// HS256 shared secret (`PERSON_API_JWT_SECRET`, `PERSON_API_JWT_SECRET_FILE`, `[auth] hs256_secret_file`).
    pub hs256_secret: Option<Secret>,
    /// PEM public key for RS256/ES256 (`PERSON_API_JWT_PUBLIC_KEY_FILE`, `[auth] public_key_file`).
    pub public_key_pem: Option<Vec<u8>>,
    /// Group → permissions (`[groups]` table, or `PERSON_API_GROUPS="group=perm,perm;group2=perm"`).
    pub groups: BTreeMap<String, Vec<Permission>>,
}

impl AuthSettings {
    /// True when no key is configured: development mode.
    #[must_use]
    pub fn is_development(&self) -> bool {
        self.hs256_secret.is_none() && self.public_key_pem.is_none()
    }
}

/// `[auth]` in the TOML file: key files only, never secrets inline.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    hs256_secret_file: Option<PathBuf>,
    public_key_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            store: DEFAULT_STORE.to_owned(),
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            public_base_url: None,
            rate_limit: None,
            connection_limits: crate::serving::ConnectionLimits::default(),
            auth: AuthSettings::default(),
            store_options: StoreOptions::default(),
            links: Vec::new(),
            link_probes: LinkProbes::default(),
            relay: RelaySettings::default(),
        }
    }
}

/// The TOML file's shape; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<String>,
    store: Option<String>,
    log_format: Option<String>,
    log: Option<String>,
    request_timeout_secs: Option<u64>,
    public_base_url: Option<String>,
    rate_limit_per_second: Option<u32>,
    rate_limit_burst: Option<u32>,
    max_connections: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    auth: Option<FileAuth>,
    groups: Option<BTreeMap<String, Vec<String>>>,
    postgres: Option<FilePostgres>,
    dynamodb: Option<FileDynamoDb>,
    links: Option<Vec<FileLink>>,
    link_probes: Option<FileLinkProbes>,
    relay: Option<FileRelay>,
}

/// `[relay]` in the TOML file (no secrets: AWS credentials come from the standard AWS chain).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRelay {
    enabled: Option<bool>,
    topic_arn: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    batch_size: Option<u32>,
    poll_interval_ms: Option<u64>,
    lease_ttl_secs: Option<u64>,
    backoff_base_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
}

/// One `[[links]]` entry of the TOML file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLink {
    rel: String,
    href: String,
    permission: String,
    system: Option<String>,
    #[serde(rename = "type")]
    link_type: Option<String>,
    health_url: Option<String>,
}

/// `[link_probes]` in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLinkProbes {
    interval_secs: Option<u64>,
    timeout_secs: Option<u64>,
    healthy_threshold: Option<u32>,
    unhealthy_threshold: Option<u32>,
}

/// `[dynamodb]` in the TOML file: timeouts and retries of a `dynamodb://` store.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDynamoDb {
    operation_timeout_secs: Option<u64>,
    attempt_timeout_secs: Option<u64>,
    max_attempts: Option<u32>,
}

/// `[postgres]` in the TOML file: the pool and session settings of a `postgres://` store.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePostgres {
    max_connections: Option<u32>,
    min_connections: Option<u32>,
    acquire_timeout_secs: Option<u64>,
    statement_timeout_secs: Option<u64>,
    lock_timeout_secs: Option<u64>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's explanation.
        message: String,
    },
    /// A setting has an invalid value.
    #[error("invalid value for {setting} (from {origin}): {reason}")]
    Invalid {
        /// The setting's name (`PERSON_API_BIND`, `bind` …).
        setting: String,
        /// `environment` or the file path.
        origin: String,
        /// What is wrong.
        reason: String,
    },
}

impl Config {
    /// Loads the configuration: defaults, then the TOML file (if any), then the environment.
    ///
    /// `env` is passed in (rather than read globally) so tests can load a configuration without touching the
    /// process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or setting at fault.
    pub fn load(file: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
            let parsed: FileConfig = toml::from_str(&text)
                .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.message().to_owned() })?;
            config.apply(parsed, &path.display().to_string())?;
        }
        let from_env = FileConfig {
            bind: env("PERSON_API_BIND"),
            store: env("PERSON_API_STORE"),
            log_format: env("PERSON_API_LOG_FORMAT"),
            log: env("PERSON_API_LOG"),
            request_timeout_secs: env_number(env, "PERSON_API_REQUEST_TIMEOUT_SECS")?,
            public_base_url: env("PERSON_API_PUBLIC_BASE_URL"),
            rate_limit_per_second: env_number(env, "PERSON_API_RATE_LIMIT_PER_SECOND")?,
            rate_limit_burst: env_number(env, "PERSON_API_RATE_LIMIT_BURST")?,
            max_connections: env_number(env, "PERSON_API_MAX_CONNECTIONS")?,
            header_read_timeout_secs: env_number(env, "PERSON_API_HEADER_READ_TIMEOUT_SECS")?,
            auth: Some(FileAuth {
                hs256_secret_file: env("PERSON_API_JWT_SECRET_FILE").map(PathBuf::from),
                public_key_file: env("PERSON_API_JWT_PUBLIC_KEY_FILE").map(PathBuf::from),
            }),
            groups: match env("PERSON_API_GROUPS") {
                None => None,
                Some(raw) => Some(parse_groups_env(&raw)?),
            },
            postgres: Some(FilePostgres {
                max_connections: env_number(env, "PERSON_API_POSTGRES_MAX_CONNECTIONS")?,
                min_connections: env_number(env, "PERSON_API_POSTGRES_MIN_CONNECTIONS")?,
                acquire_timeout_secs: env_number(env, "PERSON_API_POSTGRES_ACQUIRE_TIMEOUT_SECS")?,
                statement_timeout_secs: env_number(env, "PERSON_API_POSTGRES_STATEMENT_TIMEOUT_SECS")?,
                lock_timeout_secs: env_number(env, "PERSON_API_POSTGRES_LOCK_TIMEOUT_SECS")?,
            }),
            dynamodb: Some(FileDynamoDb {
                operation_timeout_secs: env_number(env, "PERSON_API_DYNAMODB_OPERATION_TIMEOUT_SECS")?,
                attempt_timeout_secs: env_number(env, "PERSON_API_DYNAMODB_ATTEMPT_TIMEOUT_SECS")?,
                max_attempts: env_number(env, "PERSON_API_DYNAMODB_MAX_ATTEMPTS")?,
            }),
            links: None,
            link_probes: Some(FileLinkProbes {
                interval_secs: env_number(env, "PERSON_API_LINK_PROBE_INTERVAL_SECS")?,
                timeout_secs: env_number(env, "PERSON_API_LINK_PROBE_TIMEOUT_SECS")?,
                healthy_threshold: env_number(env, "PERSON_API_LINK_PROBE_HEALTHY_THRESHOLD")?,
                unhealthy_threshold: env_number(env, "PERSON_API_LINK_PROBE_UNHEALTHY_THRESHOLD")?,
            }),
            relay: Some(FileRelay {
                enabled: env_bool(env, "PERSON_API_RELAY_ENABLED")?,
                topic_arn: env("PERSON_API_RELAY_TOPIC_ARN"),
                region: env("PERSON_API_RELAY_REGION"),
                endpoint: env("PERSON_API_RELAY_ENDPOINT"),
                batch_size: env_number(env, "PERSON_API_RELAY_BATCH_SIZE")?,
                poll_interval_ms: env_number(env, "PERSON_API_RELAY_POLL_INTERVAL_MS")?,
                lease_ttl_secs: env_number(env, "PERSON_API_RELAY_LEASE_TTL_SECS")?,
                backoff_base_ms: env_number(env, "PERSON_API_RELAY_BACKOFF_BASE_MS")?,
                backoff_max_ms: env_number(env, "PERSON_API_RELAY_BACKOFF_MAX_MS")?,
            }),
        };
        config.apply(from_env, "environment")?;
        config.link_registry().map_err(|e| ConfigError::Invalid {
            setting: "links".to_owned(),
            origin: file.map_or_else(|| "environment".to_owned(), |p| p.display().to_string()),
            reason: e.to_string(),
        })?;
        config.check_relay(file)?;
        if let Some(secret) = env("PERSON_API_JWT_SECRET") {
            config.auth.hs256_secret =
                Some(checked_secret(secret.into_bytes(), "PERSON_API_JWT_SECRET", "environment")?);
        }
        Ok(config)
    }

    /// Sets or changes the rate limit: a rate enables it (burst twice the rate unless given); a burst alone changes
    /// the burst of a rate set before (file, then environment).
    fn apply_rate_limit(
        &mut self,
        per_second: Option<u32>,
        burst: Option<u32>,
        origin: &str,
    ) -> Result<(), ConfigError> {
        let name = |key: &str, env_name: &str| if origin == "environment" { env_name } else { key }.to_owned();
        let invalid = |setting: String, reason: &str| ConfigError::Invalid {
            setting,
            origin: origin.to_owned(),
            reason: reason.to_owned(),
        };
        let at_least_one = |value: Option<u32>, key, variable| match value {
            Some(0) => Err(invalid(name(key, variable), "must be at least 1")),
            _ => Ok(value),
        };
        let per_second = at_least_one(per_second, "rate_limit_per_second", "PERSON_API_RATE_LIMIT_PER_SECOND")?;
        let burst = at_least_one(burst, "rate_limit_burst", "PERSON_API_RATE_LIMIT_BURST")?;
        self.rate_limit = match (per_second, burst, self.rate_limit) {
            (Some(per_second), burst, _) => Some(person_http::RateLimitConfig {
                per_second,
                burst: burst.unwrap_or_else(|| per_second.saturating_mul(2)),
            }),
            (None, Some(burst), Some(limit)) => Some(person_http::RateLimitConfig { burst, ..limit }),
            (None, Some(_), None) => {
                return Err(invalid(
                    name("rate_limit_burst", "PERSON_API_RATE_LIMIT_BURST"),
                    "needs a rate: set rate_limit_per_second (PERSON_API_RATE_LIMIT_PER_SECOND) too",
                ));
            }
            (None, None, current) => current,
        };
        Ok(())
    }

    fn apply(&mut self, values: FileConfig, origin: &str) -> Result<(), ConfigError> {
        let is_env = origin == "environment";
        let name = |key: &str, env_name: &str| if is_env { env_name.to_owned() } else { key.to_owned() };
        let invalid = |setting: String, reason: &str| ConfigError::Invalid {
            setting,
            origin: origin.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(bind) = values.bind {
            self.bind = bind.trim().parse().map_err(|_| {
                invalid(name("bind", "PERSON_API_BIND"), "expected an address and port such as 127.0.0.1:8080")
            })?;
        }
        if let Some(store) = values.store {
            let store = store.trim().to_owned();
            if !store.contains(':') {
                return Err(invalid(
                    name("store", "PERSON_API_STORE"),
                    "expected a storage URL such as sqlite://./data/persons.db",
                ));
            }
            self.store = store;
        }
        if let Some(format) = values.log_format {
            self.log_format = match format.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err(invalid(name("log_format", "PERSON_API_LOG_FORMAT"), "expected `text` or `json`")),
            };
        }
        if let Some(filter) = values.log {
            self.log_filter = filter;
        }
        if let Some(secs) = values.request_timeout_secs {
            if secs == 0 {
                return Err(invalid(
                    name("request_timeout_secs", "PERSON_API_REQUEST_TIMEOUT_SECS"),
                    "must be at least 1",
                ));
            }
            self.request_timeout = Duration::from_secs(secs);
        }
        self.apply_rate_limit(values.rate_limit_per_second, values.rate_limit_burst, origin)?;
        if let Some(max) = values.max_connections {
            if max == 0 {
                return Err(invalid(name("max_connections", "PERSON_API_MAX_CONNECTIONS"), "must be at least 1"));
            }
            self.connection_limits.max_connections = max;
        }
        if let Some(secs) = values.header_read_timeout_secs {
            if secs == 0 {
                return Err(invalid(
                    name("header_read_timeout_secs", "PERSON_API_HEADER_READ_TIMEOUT_SECS"),
                    "must be at least 1",
                ));
            }
            self.connection_limits.header_read_timeout = Duration::from_secs(secs);
        }
        if let Some(url) = values.public_base_url {
            let url = url.trim().trim_end_matches('/').to_owned();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    name("public_base_url", "PERSON_API_PUBLIC_BASE_URL"),
                    "expected an absolute http(s) URL",
                ));
            }
            self.public_base_url = Some(url);
        }
        if let Some(auth) = values.auth {
            if let Some(path) = auth.hs256_secret_file {
                let setting = name("auth.hs256_secret_file", "PERSON_API_JWT_SECRET_FILE");
                let bytes = read_key_file(&path, &setting, origin)?;
                let trimmed = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
                self.auth.hs256_secret = Some(checked_secret(trimmed, &setting, origin)?);
            }
            if let Some(path) = auth.public_key_file {
                let setting = name("auth.public_key_file", "PERSON_API_JWT_PUBLIC_KEY_FILE");
                self.auth.public_key_pem = Some(read_key_file(&path, &setting, origin)?);
            }
        }
        if let Some(postgres) = values.postgres {
            self.apply_postgres(postgres, origin)?;
        }
        if let Some(dynamodb) = values.dynamodb {
            self.apply_dynamodb(dynamodb, origin)?;
        }
        if let Some(probes) = values.link_probes {
            self.apply_link_probes(probes, origin)?;
        }
        if let Some(relay) = values.relay {
            self.apply_relay(relay, origin)?;
        }
        if let Some(links) = values.links {
            self.links = links
                .into_iter()
                .enumerate()
                .map(|(i, link)| link_service(link, i, origin))
                .collect::<Result<_, _>>()?;
        }
        if let Some(groups) = values.groups {
            let setting = name("groups", "PERSON_API_GROUPS");
            for (group, permissions) in groups {
                let parsed = permissions
                    .iter()
                    .map(|p| p.trim().parse::<Permission>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid(format!("{setting}.{group}"), &e.to_string()))?;
                self.auth.groups.insert(group, parsed);
            }
        }
        Ok(())
    }
}

/// `value` when it is at least 1; else the error naming the setting (`section.key` or `PERSON_API_SECTION_KEY`).
fn positive(value: u64, section: &str, key: &str, origin: &str) -> Result<u64, ConfigError> {
    if value > 0 {
        return Ok(value);
    }
    let setting = if origin == "environment" {
        format!("PERSON_API_{}_{}", section.to_ascii_uppercase(), key.to_ascii_uppercase())
    } else {
        format!("{section}.{key}")
    };
    Err(ConfigError::Invalid { setting, origin: origin.to_owned(), reason: "must be at least 1".to_owned() })
}

/// A `[[links]]` entry as a [`LinkService`] (the registry checks the rest when it is built).
fn link_service(link: FileLink, index: usize, origin: &str) -> Result<LinkService, ConfigError> {
    let invalid = |key: &str, reason: String| ConfigError::Invalid {
        setting: format!("links[{index}].{key}"),
        origin: origin.to_owned(),
        reason,
    };
    let permission = link.permission.trim().parse::<Permission>().map_err(|e| invalid("permission", e.to_string()))?;
    let system = match link.system.as_deref().map(str::trim) {
        None => None,
        Some(system) => Some(ReferenceSystem::parse(system).map_err(|e| invalid("system", e.to_string()))?),
    };
    Ok(LinkService {
        rel: link.rel.trim().to_owned(),
        href: link.href.trim().to_owned(),
        permission,
        system,
        link_type: link.link_type.unwrap_or_else(|| "GET".to_owned()),
        health_url: link.health_url.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()),
    })
}

impl Config {
    fn apply_link_probes(&mut self, values: FileLinkProbes, origin: &str) -> Result<(), ConfigError> {
        // The environment names are `PERSON_API_LINK_PROBE_*`; the file's section is `[link_probes]`.
        let positive = |value: u64, key: &str| {
            positive(value, "link_probe", key, origin).map_err(|e| match e {
                ConfigError::Invalid { origin: o, reason, .. } if o != "environment" => {
                    ConfigError::Invalid { setting: format!("link_probes.{key}"), origin: o, reason }
                }
                other => other,
            })
        };
        let probes = &mut self.link_probes;
        if let Some(secs) = values.interval_secs {
            probes.interval = Duration::from_secs(positive(secs, "interval_secs")?);
        }
        if let Some(secs) = values.timeout_secs {
            probes.timeout = Duration::from_secs(positive(secs, "timeout_secs")?);
        }
        if let Some(n) = values.healthy_threshold {
            probes.thresholds.healthy = u32::try_from(positive(u64::from(n), "healthy_threshold")?).unwrap_or(u32::MAX);
        }
        if let Some(n) = values.unhealthy_threshold {
            probes.thresholds.unhealthy =
                u32::try_from(positive(u64::from(n), "unhealthy_threshold")?).unwrap_or(u32::MAX);
        }
        Ok(())
    }

    fn apply_dynamodb(&mut self, values: FileDynamoDb, origin: &str) -> Result<(), ConfigError> {
        let positive = |value: u64, key: &str| positive(value, "dynamodb", key, origin);
        let options = &mut self.store_options.dynamodb;
        if let Some(secs) = values.operation_timeout_secs {
            options.operation_timeout = Duration::from_secs(positive(secs, "operation_timeout_secs")?);
        }
        if let Some(secs) = values.attempt_timeout_secs {
            options.attempt_timeout = Duration::from_secs(positive(secs, "attempt_timeout_secs")?);
        }
        if let Some(attempts) = values.max_attempts {
            options.max_attempts = u32::try_from(positive(u64::from(attempts), "max_attempts")?).unwrap_or(u32::MAX);
        }
        Ok(())
    }

    fn apply_postgres(&mut self, values: FilePostgres, origin: &str) -> Result<(), ConfigError> {
        let positive = |value: u64, key: &str| positive(value, "postgres", key, origin);
        let options = &mut self.store_options.postgres;
        if let Some(max) = values.max_connections {
            options.max_connections = u32::try_from(positive(u64::from(max), "max_connections")?).unwrap_or(u32::MAX);
        }
        if let Some(min) = values.min_connections {
            options.min_connections = min;
        }
        if let Some(secs) = values.acquire_timeout_secs {
            options.acquire_timeout = Duration::from_secs(positive(secs, "acquire_timeout_secs")?);
        }
        if let Some(secs) = values.statement_timeout_secs {
            options.statement_timeout = Duration::from_secs(positive(secs, "statement_timeout_secs")?);
        }
        if let Some(secs) = values.lock_timeout_secs {
            options.lock_timeout = Duration::from_secs(positive(secs, "lock_timeout_secs")?);
        }
        Ok(())
    }
}

impl Config {
    fn apply_relay(&mut self, values: FileRelay, origin: &str) -> Result<(), ConfigError> {
        let name = |key: &str| {
            if origin == "environment" {
                format!("PERSON_API_RELAY_{}", key.to_ascii_uppercase())
            } else {
                format!("relay.{key}")
            }
        };
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            setting: name(key),
            origin: origin.to_owned(),
            reason: reason.to_owned(),
        };
        let positive = |value: u64, key: &str| positive(value, "relay", key, origin);
        let text = |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let relay = &mut self.relay;
        if let Some(enabled) = values.enabled {
            relay.enabled = enabled;
        }
        if let Some(arn) = text(values.topic_arn) {
            if person_relay::sns_topic_region(&arn).is_none() {
                return Err(invalid(
                    "topic_arn",
                    "expected an SNS topic ARN such as arn:aws:sns:eu-west-2:123456789012:person-events",
                ));
            }
            relay.topic_arn = Some(arn);
        }
        if let Some(region) = text(values.region) {
            relay.region = Some(region);
        }
        if let Some(endpoint) = text(values.endpoint) {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(invalid("endpoint", "expected an absolute http(s) URL"));
            }
            relay.endpoint = Some(endpoint);
        }
        if let Some(size) = values.batch_size {
            relay.batch_size = u32::try_from(positive(u64::from(size), "batch_size")?).unwrap_or(u32::MAX);
        }
        if let Some(ms) = values.poll_interval_ms {
            relay.poll_interval = Duration::from_millis(positive(ms, "poll_interval_ms")?);
        }
        if let Some(secs) = values.lease_ttl_secs {
            relay.lease_ttl = Duration::from_secs(positive(secs, "lease_ttl_secs")?);
        }
        if let Some(ms) = values.backoff_base_ms {
            relay.backoff_base = Duration::from_millis(positive(ms, "backoff_base_ms")?);
        }
        if let Some(ms) = values.backoff_max_ms {
            relay.backoff_max = Duration::from_millis(positive(ms, "backoff_max_ms")?);
        }
        Ok(())
    }

    /// The relay settings as a whole, once every source is applied: an enabled relay needs a topic.
    fn check_relay(&self, file: Option<&Path>) -> Result<(), ConfigError> {
        let origin =
            || file.map_or_else(|| "environment".to_owned(), |p| format!("{} and the environment", p.display()));
        let relay = &self.relay;
        if relay.enabled && relay.topic_arn.is_none() {
            return Err(ConfigError::Invalid {
                setting: "relay.topic_arn (PERSON_API_RELAY_TOPIC_ARN)".to_owned(),
                origin: origin(),
                reason: "the relay is enabled but no SNS topic is configured".to_owned(),
            });
        }
        if relay.backoff_max < relay.backoff_base {
            return Err(ConfigError::Invalid {
                setting: "relay.backoff_max_ms (PERSON_API_RELAY_BACKOFF_MAX_MS)".to_owned(),
                origin: origin(),
                reason: "must not be less than relay.backoff_base_ms".to_owned(),
            });
        }
        Ok(())
    }
}

/// A boolean environment variable (`true`/`false`, `1`/`0`, `yes`/`no`), `None` when unset.
fn env_bool(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<bool>, ConfigError> {
    match env(name) {
        None => Ok(None),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(ConfigError::Invalid {
                setting: name.to_owned(),
                origin: "environment".to_owned(),
                reason: "expected true or false".to_owned(),
            }),
        },
    }
}

/// A whole-number environment variable, `None` when unset.
fn env_number<T: std::str::FromStr>(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, ConfigError> {
    match env(name) {
        None => Ok(None),
        Some(raw) => raw.trim().parse().map(Some).map_err(|_| ConfigError::Invalid {
            setting: name.to_owned(),
            origin: "environment".to_owned(),
            reason: "expected a whole number".to_owned(),
        }),
    }
}

/// HS256 secrets shorter than this are refused: a short shared secret can be brute-forced offline from any
/// token.
pub const MIN_HS256_SECRET_BYTES: usize = 32;

fn checked_secret(bytes: Vec<u8>, setting: &str, origin: &str) -> Result<Secret, ConfigError> {
    if bytes.len() < MIN_HS256_SECRET_BYTES {
        return Err(ConfigError::Invalid {
            setting: setting.to_owned(),
            origin: origin.to_owned(),
            reason: format!("the HS256 secret must be at least {MIN_HS256_SECRET_BYTES} bytes"),
        });
    }
    Ok(Secret(bytes))
}

fn read_key_file(path: &Path, setting: &str, origin: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::Invalid {
        setting: setting.to_owned(),
        origin: origin.to_owned(),
        reason: format!("cannot read {}: {e}", path.display()),
    })
}

/// `group=perm,perm;other=perm` → map (the environment form of `[groups]`).
fn parse_groups_env(raw: &str) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
    let mut groups = BTreeMap::new();
    for entry in raw.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((group, permissions)) = entry.split_once('=') else {
            return Err(ConfigError::Invalid {
                setting: "PERSON_API_GROUPS".to_owned(),
                origin: "environment".to_owned(),
                reason: "expected group=permission,permission;group=permission".to_owned(),
            });
        };
        let list = permissions.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
        groups.insert(group.trim().to_owned(), list);
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |key| map.get(key).cloned()
    }

    /// The complete example of `docs/operations.md` ("Configuration") loads, and says what the defaults are.
    #[test]
    fn the_documented_complete_configuration_loads_and_matches_the_defaults() {
        let doc = include_str!("../../docs/operations.md");
        let section = doc.split("## Configuration").nth(1).unwrap();
        let example = section.split("```toml\n").nth(1).unwrap().split("```").next().unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(example.as_bytes()).unwrap();
        let config = Config::load(Some(file.path()), &env_of(&[])).unwrap();
        let defaults = Config::default();
        assert_eq!(config.bind, defaults.bind);
        assert_eq!(config.store, defaults.store);
        assert_eq!(config.log_format, defaults.log_format);
        assert_eq!(config.log_filter, defaults.log_filter);
        assert_eq!(config.request_timeout, defaults.request_timeout);
        assert_eq!(config.store_options, defaults.store_options);
        assert_eq!(config.link_probes, defaults.link_probes);
        assert_eq!(config.relay, defaults.relay);
        assert_eq!(config.links.len(), 1);
        assert_eq!(config.auth.groups.len(), 3);
    }

    #[test]
    fn defaults_serve_sqlite_on_loopback_8080() {
        let config = Config::load(None, &env_of(&[])).unwrap();
        assert_eq!(config.bind.to_string(), DEFAULT_BIND);
        assert_eq!(config.store, DEFAULT_STORE);
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "bind = \"127.0.0.1:9000\"\nstore = \"sqlite://from-file.db\"\nlog_format = \"json\"").unwrap();
        let config = Config::load(Some(file.path()), &env_of(&[("PERSON_API_BIND", "127.0.0.1:9100")])).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:9100");
        assert_eq!(config.store, "sqlite://from-file.db");
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn a_rate_limit_is_off_by_default_and_set_by_file_or_environment() {
        assert_eq!(Config::load(None, &env_of(&[])).unwrap().rate_limit, None);
        let limit = |per_second, burst| Some(person_http::RateLimitConfig { per_second, burst });
        let config = Config::load(None, &env_of(&[("PERSON_API_RATE_LIMIT_PER_SECOND", "50")])).unwrap();
        assert_eq!(config.rate_limit, limit(50, 100), "the burst defaults to twice the rate");
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "rate_limit_per_second = 20\nrate_limit_burst = 30").unwrap();
        assert_eq!(Config::load(Some(file.path()), &env_of(&[])).unwrap().rate_limit, limit(20, 30));
        let burst_only = env_of(&[("PERSON_API_RATE_LIMIT_BURST", "90")]);
        assert_eq!(Config::load(Some(file.path()), &burst_only).unwrap().rate_limit, limit(20, 90));
        let err = Config::load(None, &burst_only).unwrap_err();
        assert!(err.to_string().contains("PERSON_API_RATE_LIMIT_BURST"), "{err}");
        for (key, value) in [("PERSON_API_RATE_LIMIT_PER_SECOND", "0"), ("PERSON_API_RATE_LIMIT_PER_SECOND", "many")] {
            let err = Config::load(None, &env_of(&[(key, value)])).unwrap_err();
            assert!(err.to_string().contains(key), "{key}={value}: {err}");
        }
    }

    #[test]
    fn connection_limits_have_defaults_and_refuse_zero() {
        let defaults = Config::load(None, &env_of(&[])).unwrap().connection_limits;
        assert_eq!(defaults, crate::serving::ConnectionLimits::default());
        let config = Config::load(
            None,
            &env_of(&[("PERSON_API_MAX_CONNECTIONS", "64"), ("PERSON_API_HEADER_READ_TIMEOUT_SECS", "5")]),
        )
        .unwrap();
        assert_eq!(config.connection_limits.max_connections, 64);
        assert_eq!(config.connection_limits.header_read_timeout, Duration::from_secs(5));
        for key in ["PERSON_API_MAX_CONNECTIONS", "PERSON_API_HEADER_READ_TIMEOUT_SECS"] {
            let err = Config::load(None, &env_of(&[(key, "0")])).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn a_bad_bind_address_names_the_setting() {
        let err = Config::load(None, &env_of(&[("PERSON_API_BIND", "not-an-address")])).unwrap_err();
        assert!(err.to_string().contains("PERSON_API_BIND"), "{err}");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "bindd = \"127.0.0.1:9000\"").unwrap();
        let err = Config::load(Some(file.path()), &env_of(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let err = Config::load(Some(Path::new("/nonexistent/person-api.toml")), &env_of(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
    }

    #[test]
    fn groups_and_keys_come_from_the_file_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, format!("{}\n", "s".repeat(40))).unwrap();
        let file = dir.path().join("person-api.toml");
        std::fs::write(
            &file,
            format!(
                "[auth]\nhs256_secret_file = \"{}\"\n[groups]\nhousing-officer = [\"persons:read\", \"persons:write\"]\n",
                secret.display()
            ),
        )
        .unwrap();
        let config = Config::load(
            Some(&file),
            &env_of(&[("PERSON_API_GROUPS", "social-care=extended:social-care:read,extended:social-care:write")]),
        )
        .unwrap();
        assert_eq!(config.auth.hs256_secret.as_ref().map(|s| s.expose().len()), Some(40), "file secret trimmed");
        assert_eq!(config.auth.groups["housing-officer"], vec![Permission::PersonsRead, Permission::PersonsWrite]);
        assert_eq!(config.auth.groups["social-care"].len(), 2);
        assert!(!config.auth.is_development());
        assert!(!format!("{config:?}").contains("ssss"), "secrets never appear in Debug output");
    }

    #[test]
    fn short_secrets_unknown_permissions_and_missing_key_files_are_refused() {
        let short = Config::load(None, &env_of(&[("PERSON_API_JWT_SECRET", "short")])).unwrap_err();
        assert!(short.to_string().contains("PERSON_API_JWT_SECRET"), "{short}");
        let unknown = Config::load(None, &env_of(&[("PERSON_API_GROUPS", "g=persons:fly")])).unwrap_err();
        assert!(unknown.to_string().contains("PERSON_API_GROUPS.g"), "{unknown}");
        let missing =
            Config::load(None, &env_of(&[("PERSON_API_JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem")])).unwrap_err();
        assert!(missing.to_string().contains("PERSON_API_JWT_PUBLIC_KEY_FILE"), "{missing}");
    }

    #[test]
    fn dynamodb_timeouts_and_retries_come_from_the_file_and_the_environment() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "[dynamodb]\noperation_timeout_secs = 20\nmax_attempts = 5").unwrap();
        let config =
            Config::load(Some(file.path()), &env_of(&[("PERSON_API_DYNAMODB_ATTEMPT_TIMEOUT_SECS", "7")])).unwrap();
        let dynamodb = &config.store_options.dynamodb;
        assert_eq!(dynamodb.operation_timeout, Duration::from_secs(20));
        assert_eq!(dynamodb.attempt_timeout, Duration::from_secs(7));
        assert_eq!(dynamodb.max_attempts, 5);
        let zero = Config::load(None, &env_of(&[("PERSON_API_DYNAMODB_MAX_ATTEMPTS", "0")])).unwrap_err();
        assert!(zero.to_string().contains("PERSON_API_DYNAMODB_MAX_ATTEMPTS"), "{zero}");
    }

    #[test]
    fn postgres_pool_settings_come_from_the_file_and_the_environment() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "[postgres]\nmax_connections = 25\nacquire_timeout_secs = 2\nlock_timeout_secs = 3").unwrap();
        let config = Config::load(
            Some(file.path()),
            &env_of(&[
                ("PERSON_API_POSTGRES_MAX_CONNECTIONS", "40"),
                ("PERSON_API_POSTGRES_STATEMENT_TIMEOUT_SECS", "9"),
            ]),
        )
        .unwrap();
        let postgres = &config.store_options.postgres;
        assert_eq!(postgres.max_connections, 40, "the environment wins");
        assert_eq!(postgres.acquire_timeout, Duration::from_secs(2));
        assert_eq!(postgres.lock_timeout, Duration::from_secs(3));
        assert_eq!(postgres.statement_timeout, Duration::from_secs(9));
        let zero = Config::load(None, &env_of(&[("PERSON_API_POSTGRES_MAX_CONNECTIONS", "0")])).unwrap_err();
        assert!(zero.to_string().contains("PERSON_API_POSTGRES_MAX_CONNECTIONS"), "{zero}");
        let word = Config::load(None, &env_of(&[("PERSON_API_POSTGRES_ACQUIRE_TIMEOUT_SECS", "soon")])).unwrap_err();
        assert!(word.to_string().contains("PERSON_API_POSTGRES_ACQUIRE_TIMEOUT_SECS"), "{word}");
    }

    #[test]
    fn the_relay_is_off_by_default_and_configured_from_the_file_and_the_environment() {
        assert!(!Config::load(None, &env_of(&[])).unwrap().relay.enabled);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "[relay]\nenabled = true\ntopic_arn = \"arn:aws:sns:eu-west-2:123456789012:person-events.fifo\"\nbatch_size = 50"
        )
        .unwrap();
        let config = Config::load(
            Some(file.path()),
            &env_of(&[
                ("PERSON_API_RELAY_LEASE_TTL_SECS", "10"),
                ("PERSON_API_RELAY_POLL_INTERVAL_MS", "250"),
                ("PERSON_API_RELAY_ENDPOINT", "http://127.0.0.1:5000"),
            ]),
        )
        .unwrap();
        let relay = &config.relay;
        assert!(relay.enabled);
        assert_eq!(relay.topic_arn.as_deref(), Some("arn:aws:sns:eu-west-2:123456789012:person-events.fifo"));
        assert_eq!(relay.batch_size, 50);
        assert_eq!(relay.lease_ttl, Duration::from_secs(10));
        assert_eq!(relay.poll_interval, Duration::from_millis(250));
        assert_eq!(relay.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(relay.backoff_base, Duration::from_millis(200), "defaults stay");
    }

    #[test]
    fn an_enabled_relay_without_a_topic_is_refused_at_start() {
        let err = Config::load(None, &env_of(&[("PERSON_API_RELAY_ENABLED", "true")])).unwrap_err();
        assert!(err.to_string().contains("PERSON_API_RELAY_TOPIC_ARN"), "{err}");
        assert!(err.to_string().contains("no SNS topic"), "{err}");
    }

    #[test]
    fn bad_relay_settings_name_the_setting() {
        for (key, value) in [
            ("PERSON_API_RELAY_TOPIC_ARN", "person-events"),
            ("PERSON_API_RELAY_ENABLED", "maybe"),
            ("PERSON_API_RELAY_BATCH_SIZE", "0"),
            ("PERSON_API_RELAY_ENDPOINT", "localhost:5000"),
            ("PERSON_API_RELAY_LEASE_TTL_SECS", "soon"),
        ] {
            let err = Config::load(None, &env_of(&[(key, value)])).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
        let backwards = Config::load(
            None,
            &env_of(&[("PERSON_API_RELAY_BACKOFF_BASE_MS", "5000"), ("PERSON_API_RELAY_BACKOFF_MAX_MS", "100")]),
        )
        .unwrap_err();
        assert!(backwards.to_string().contains("backoff_max_ms"), "{backwards}");
    }

    #[test]
    fn without_keys_the_server_is_in_development_mode() {
        assert!(Config::load(None, &env_of(&[])).unwrap().auth.is_development());
    }

    #[test]
    fn a_bad_log_format_and_zero_timeout_are_refused() {
        assert!(Config::load(None, &env_of(&[("PERSON_API_LOG_FORMAT", "xml")])).is_err());
        assert!(Config::load(None, &env_of(&[("PERSON_API_REQUEST_TIMEOUT_SECS", "0")])).is_err());
        assert!(Config::load(None, &env_of(&[("PERSON_API_REQUEST_TIMEOUT_SECS", "ten")])).is_err());
    }
}
