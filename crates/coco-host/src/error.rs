//! The host's error type.

use std::path::PathBuf;

/// Why the host could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node refused to open or failed.
    #[error(transparent)]
    Node(#[from] coco_node::Error),
    /// Consensus could not start or stopped.
    #[error("consensus: {0}")]
    Consensus(String),
    /// Joining a service failed.
    #[error("join: {0}")]
    Join(String),
    /// The TLS configuration is unusable.
    #[error("tls: {0}")]
    Tls(String),
    /// A background task of the host died (a panic or a cancelled runtime).
    #[error("host task failed: {0}")]
    Task(String),
    /// A socket or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
}

/// The host's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
