//! A node's configuration: one TOML file, one validated struct.
//!
//! Every bound the node enforces is in [`Limits`]; paths are resolved relative to the
//! configuration file's directory so a sandbox directory can be moved as a whole.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use coco_types::{Limits, LimitsError};
use serde::{Deserialize, Serialize};

/// The whole configuration of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the node listens for TLS clients.
    pub network: NetworkConfig,
    /// Where the node keeps its ledger and its sealed secrets.
    pub storage: StorageConfig,
    /// Who governs and who transacts when the service is created (genesis only:
    /// a node restarting on existing state ignores it).
    pub service: ServiceConfig,
    /// Every bound the node enforces.
    #[serde(default)]
    pub limits: Limits,
    /// Each app's own settings, by name (`[apps.eth]`): the node passes them through to
    /// the apps the binary wires in, and reads none itself.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub apps: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Network settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Address of the TLS listener (`127.0.0.1:0` picks a free port).
    pub listen_address: SocketAddr,
    /// Host names and IP addresses put in the node certificate's subject alternative
    /// names, so clients can check the server name.
    #[serde(default = "default_sans")]
    pub subject_alt_names: Vec<String>,
}

fn default_sans() -> Vec<String> {
    vec!["127.0.0.1".to_owned(), "localhost".to_owned()]
}

impl NetworkConfig {
    /// Listening on loopback `port` (0 picks a free one), named `127.0.0.1` and
    /// `localhost`: the sandbox's and the tests' nodes.
    #[must_use]
    pub fn loopback(port: u16) -> Self {
        Self {
            listen_address: SocketAddr::from(([127, 0, 0, 1], port)),
            subject_alt_names: default_sans(),
        }
    }
}

impl StorageConfig {
    /// The usual layout of one node's directory `dir` (`ledger/`, `state/`,
    /// `snapshots/`), with the service certificate written to `service_cert_file`.
    #[must_use]
    pub fn under(dir: &Path, service_cert_file: PathBuf) -> Self {
        Self {
            ledger_dir: dir.join("ledger"),
            state_dir: dir.join("state"),
            service_cert_file,
            snapshots_dir: dir.join(default_snapshots_dir()),
        }
    }
}

/// Storage settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the ledger chunk files.
    pub ledger_dir: PathBuf,
    /// Directory of the node's keys and sealed secrets.
    pub state_dir: PathBuf,
    /// Where the service certificate is written once the service exists, for clients.
    pub service_cert_file: PathBuf,
    /// Directory of the snapshot files (`snapshot_<seqno>_<evidence>.committed`).
    #[serde(default = "default_snapshots_dir")]
    pub snapshots_dir: PathBuf,
}

fn default_snapshots_dir() -> PathBuf {
    PathBuf::from("snapshots")
}

/// The initial consortium, written by the genesis transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// PEM certificate files of the initial members.
    pub members: Vec<PathBuf>,
    /// PEM certificate files of the initial users.
    #[serde(default)]
    pub users: Vec<PathBuf>,
    /// RSA public keys (PEM) of the members who hold recovery shares, in the order of
    /// `members` (may be shorter: the first ones are recovery members).
    #[serde(default)]
    pub member_encryption_keys: Vec<PathBuf>,
    /// How many recovery members must submit shares to recover the service.
    #[serde(default = "one")]
    pub recovery_threshold: u64,
}

fn one() -> u64 {
    1
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this struct.
    #[error("invalid configuration {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A limit is out of range.
    #[error("invalid configuration: {0}")]
    Limits(#[from] LimitsError),
    /// A service needs at least one member to be governed at all.
    #[error("invalid configuration: service.members is empty")]
    NoMembers,
    /// The recovery configuration cannot work.
    #[error("invalid configuration: {0}")]
    Recovery(String),
}

impl NodeConfig {
    /// Reads, parses, resolves relative paths against the file's directory, and validates.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the problem.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut config: Self = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    /// Checks the configuration as a whole.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.limits.validate()?;
        if self.service.members.is_empty() {
            return Err(ConfigError::NoMembers);
        }
        let recovery = self.service.member_encryption_keys.len() as u64;
        if recovery > self.service.members.len() as u64 {
            return Err(ConfigError::Recovery("more encryption keys than members".into()));
        }
        let threshold = self.service.recovery_threshold;
        if threshold == 0 || (recovery > 0 && threshold > recovery) {
            let reason = format!("recovery_threshold {threshold} with {recovery} recovery members");
            return Err(ConfigError::Recovery(reason));
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.storage.ledger_dir);
        resolve(&mut self.storage.state_dir);
        resolve(&mut self.storage.service_cert_file);
        resolve(&mut self.storage.snapshots_dir);
        self.service.members.iter_mut().for_each(resolve);
        self.service.users.iter_mut().for_each(resolve);
        self.service.member_encryption_keys.iter_mut().for_each(resolve);
    }

    /// The TOML text of this configuration.
    ///
    /// # Panics
    /// Never: every field serialises.
    #[must_use]
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a NodeConfig always serialises to TOML")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_resolves_paths_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"
[network]
listen_address = "127.0.0.1:0"
[storage]
ledger_dir = "ledger"
state_dir = "state"
service_cert_file = "service_cert.pem"
[service]
members = ["member0_cert.pem"]
[limits]
request_body_bytes_max = 1048576
write_set_bytes_max = 8388608
sessions_max = 100
pending_txs_max = 1000
sig_tx_interval = 100
sig_ms_interval = 50
ledger_chunk_bytes = 1000000
tx_retries_max = 10
page_items_max = 100
commit_wait_ms_max = 5000
"#;
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let config = NodeConfig::load(&path).unwrap();
        assert_eq!(config.storage.ledger_dir, dir.path().join("ledger"));
        assert_eq!(config.limits.sig_tx_interval, 100);
        std::fs::write(&path, text.replace("sig_tx_interval = 100", "sig_tx_interval = 0"))
            .unwrap();
        assert!(matches!(NodeConfig::load(&path), Err(ConfigError::Limits(_))));
        std::fs::write(&path, text.replace("[limits]", "[limits]\nbogus = 1")).unwrap();
        assert!(matches!(NodeConfig::load(&path), Err(ConfigError::Parse { .. })));
    }
}
