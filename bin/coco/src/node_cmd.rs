//! `coco node …`: run a node from its configuration file.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use coco_node::NodeConfig;

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
    /// Join an existing service: present this node's attestation evidence to the primary
    /// at TARGET, wait until members pass `transition_node_to_trusted` for it, then catch
    /// up and take part. Once joined, `coco node start` restarts it.
    Join {
        /// The node's TOML configuration: a fixed listen port, an empty state directory,
        /// and `service_cert_file` holding the service certificate to trust.
        #[arg(long)]
        config: PathBuf,
        /// The primary's address, `host:port`.
        #[arg(long)]
        target: String,
    },
    /// Start a new service from a copy of a lost service's ledger (disaster recovery).
    /// The public state is replayed at once; members then open the service
    /// (`transition_service_to_open` with the previous and the new service identity) and
    /// submit their recovery shares (`coco gov recovery submit-share`), which decrypts the
    /// private state.
    Recover {
        /// The new node's TOML configuration; its state directory must be empty.
        #[arg(long)]
        config: PathBuf,
        /// The old ledger directory: its chunk files are copied into the configured
        /// ledger directory (which must then be empty) and left untouched. Without it,
        /// the configured ledger directory must already hold the old ledger.
        #[arg(long)]
        ledger: Option<PathBuf>,
    },
}

/// How a node starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Startup {
    /// Create the service on empty directories, or restart on existing ones.
    Start,
    /// Recover a service from an old ledger.
    Recover,
    /// Join the service whose primary is at this address, then start.
    Join(String),
}

pub(crate) fn run(command: NodeCommand) -> Result<()> {
    match command {
        NodeCommand::Start { config } => {
            let config = NodeConfig::load(&config)?;
            serve(&config, Startup::Start, async |addr| {
                println!("node listening on https://{addr}");
                Ok(())
            })
        }
        NodeCommand::Join { config, target } => {
            let config = NodeConfig::load(&config)?;
            serve(&config, Startup::Join(target), async |addr| {
                println!("node listening on https://{addr}");
                Ok(())
            })
        }
        NodeCommand::Recover { config, ledger } => {
            let config = NodeConfig::load(&config)?;
            if let Some(old) = ledger {
                copy_ledger(&old, &config.storage.ledger_dir)?;
            }
            serve(&config, Startup::Recover, async |addr| {
                println!("recovering node listening on https://{addr}");
                println!(
                    "service certificate: {} (members: propose transition_service_to_open \
                     with previous_service_identity and next_service_identity from \
                     GET /gov/service/info, then submit shares)",
                    config.storage.service_cert_file.display()
                );
                Ok(())
            })
        }
    }
}

/// Set by `coco sandbox` on the nodes it starts: they stop when it goes, even if it was
/// killed outright and could not stop them.
pub(crate) const STOP_WITH_PARENT: &str = "COCO_STOP_WITH_PARENT";

/// Resolves once this process's parent has exited (it is then re-parented), if the parent
/// asked for that with [`STOP_WITH_PARENT`]; never otherwise.
async fn parent_gone() {
    if std::env::var_os(STOP_WITH_PARENT).is_none() {
        return std::future::pending().await;
    }
    let parent = std::os::unix::process::parent_id();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if std::os::unix::process::parent_id() != parent {
            return;
        }
    }
}

/// Copies the ledger chunk files of `from` into `to`, which must be empty or absent.
fn copy_ledger(from: &Path, to: &Path) -> Result<()> {
    let is_chunk = |name: &str| name.starts_with("ledger_") && !name.ends_with(".tmp");
    if to.exists()
        && fs::read_dir(to).with_context(|| format!("listing {}", to.display()))?.next().is_some()
    {
        bail!(
            "{} is not empty: give an empty ledger directory to copy the old ledger into",
            to.display()
        );
    }
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut copied = 0;
    for item in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let item = item.with_context(|| format!("reading {}", from.display()))?;
        let name = item.file_name();
        if name.to_str().is_some_and(is_chunk) && item.file_type()?.is_file() {
            fs::copy(item.path(), to.join(&name))
                .with_context(|| format!("copying {}", item.path().display()))?;
            copied += 1;
        }
    }
    if copied == 0 {
        bail!("{} holds no ledger chunk (ledger_*)", from.display());
    }
    println!("copied {copied} ledger chunks from {} to {}", from.display(), to.display());
    Ok(())
}

/// Runs a node until SIGTERM or Ctrl-C, then stops cleanly (final signature, flush).
/// `on_ready` runs once the node listens (the sandbox opens the service there); if it
/// fails, the node stops and the error is returned.
pub(crate) fn serve(
    config: &NodeConfig,
    startup: Startup,
    on_ready: impl AsyncFnOnce(std::net::SocketAddr) -> Result<()>,
) -> Result<()> {
    coco_host::install_crypto_provider();
    let app = crate::apps::from_config(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut node = match startup {
            Startup::Start => coco_host::start(config, app).await?,
            Startup::Recover => coco_host::recover(config, app).await?,
            Startup::Join(target) => {
                coco_host::join_service(config, &target, crate::measurement()?).await?;
                coco_host::start(config, app).await?
            }
        };
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
            () = parent_gone() => tracing::warn!("the sandbox that started this node is gone"),
            fatal = node.wait_fatal() => {
                fatal?;
            }
        }
        let committed = node.shutdown().await?;
        tracing::info!(%committed, "stopped");
        Ok(())
    })
}
