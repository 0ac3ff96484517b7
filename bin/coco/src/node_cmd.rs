//! `coco node …`: run a node from its configuration file.

use std::path::PathBuf;

use anyhow::{Context, Result};
use coco_node::NodeConfig;
use coco_node::apps::logging::LoggingApp;

/// Node subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum NodeCommand {
    /// Start a node: creates the service on empty directories, otherwise restarts on
    /// them with every committed transaction.
    Start {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
}

pub(crate) fn run(command: NodeCommand) -> Result<()> {
    match command {
        NodeCommand::Start { config } => {
            let config = NodeConfig::load(&config)?;
            serve(&config, async |addr| {
                println!("node listening on https://{addr}");
                Ok(())
            })
        }
    }
}

/// Runs a node until SIGTERM or Ctrl-C, then stops cleanly (final signature, flush).
/// `on_ready` runs once the node listens (the sandbox opens the service there); if it
/// fails, the node stops and the error is returned.
pub(crate) fn serve(
    config: &NodeConfig,
    on_ready: impl AsyncFnOnce(std::net::SocketAddr) -> Result<()>,
) -> Result<()> {
    coco_host::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut node = coco_host::start(config, Box::new(LoggingApp::default())).await?;
        if let Err(e) = on_ready(node.local_addr()).await {
            node.shutdown().await?;
            return Err(e);
        }
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
            fatal = node.wait_fatal() => {
                fatal?;
            }
        }
        let committed = node.shutdown().await?;
        tracing::info!(%committed, "stopped");
        Ok(())
    })
}
