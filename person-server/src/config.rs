//! Configuration: one optional TOML file plus `PERSON_API_*` environment variables (which win).
//!
//! Loaded once at start into a typed [`Config`]; every problem is reported with the setting's name and where it
//! came from, and the process exits non-zero. Secrets (later: token keys) come only from the environment or
//! files, never from the TOML document itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
    /// Storage URL (`PERSON_API_STORE`, `store`): `sqlite://path`.
    pub store: String,
    /// Log format (`PERSON_API_LOG_FORMAT`, `log_format`): `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter (`PERSON_API_LOG`, `log`), tracing `EnvFilter` syntax; default `info`.
    pub log_filter: String,
    /// Longest a request may take before it is answered 504 (`PERSON_API_REQUEST_TIMEOUT_SECS`).
    pub request_timeout: Duration,
    /// Externally visible base URL used in absolute links (`PERSON_API_PUBLIC_BASE_URL`).
    pub public_base_url: Option<String>,
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
            request_timeout_secs: match env("PERSON_API_REQUEST_TIMEOUT_SECS") {
                None => None,
                Some(raw) => Some(raw.trim().parse().map_err(|_| ConfigError::Invalid {
                    setting: "PERSON_API_REQUEST_TIMEOUT_SECS".to_owned(),
                    origin: "environment".to_owned(),
                    reason: "expected a whole number of seconds".to_owned(),
                })?),
            },
            public_base_url: env("PERSON_API_PUBLIC_BASE_URL"),
        };
        config.apply(from_env, "environment")?;
        Ok(config)
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
        Ok(())
    }
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
    fn a_bad_log_format_and_zero_timeout_are_refused() {
        assert!(Config::load(None, &env_of(&[("PERSON_API_LOG_FORMAT", "xml")])).is_err());
        assert!(Config::load(None, &env_of(&[("PERSON_API_REQUEST_TIMEOUT_SECS", "0")])).is_err());
        assert!(Config::load(None, &env_of(&[("PERSON_API_REQUEST_TIMEOUT_SECS", "ten")])).is_err());
    }
}
