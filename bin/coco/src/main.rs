//! `coco`: the command line of the Coco confidential consortium ledger.
//!
//! Starts nodes and sandboxes, generates identities, audits ledgers and receipts, and
//! drives load. Every failure exits non-zero with a one-line reason.
// A binary talks to its user on stdout and reads the clock.
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the node's hot path allocates small, short-lived buffers per transaction
/// (write sets, ledger entries, persistent-tree nodes); it measured faster than glibc's
/// allocator there (docs/BENCHMARKS.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod apps;
mod bench_cmd;
mod bench_eth;
mod gov_cmd;
mod keygen;
mod ledger_cmd;
mod node_cmd;
mod receipt_cmd;
mod sandbox;

/// Coco: a confidential consortium ledger with CCF-compatible ledgers and receipts.
#[derive(Parser)]
#[command(name = "coco", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create identities and a configuration, and run a one-node service on loopback.
    Sandbox(sandbox::SandboxArgs),
    /// Run a node.
    #[command(subcommand)]
    Node(node_cmd::NodeCommand),
    /// Generate a member or user identity: `<name>_privk.pem` and `<name>_cert.pem`.
    Keygen(keygen::KeygenArgs),
    /// Audit or inspect a ledger directory offline.
    #[command(subcommand)]
    Ledger(ledger_cmd::LedgerCommand),
    /// Verify receipts offline.
    #[command(subcommand)]
    Receipt(receipt_cmd::ReceiptCommand),
    /// Load a node: many TLS connections, fixed duration, committed tx/s and latency.
    Bench(bench_cmd::BenchArgs),
    /// Govern as a member: propose, vote, withdraw, ack; list and show proposals.
    Gov(gov_cmd::GovArgs),
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// The measurement of this binary (SHA-256 of its bytes): platform `virtual`'s code id.
pub(crate) fn measurement() -> anyhow::Result<coco_types::Digest> {
    use anyhow::Context as _;
    let path = std::env::current_exe().context("locating the coco binary")?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(coco_crypto::sha256(&bytes))
}

/// Coco at `info`; openraft at `warn`, but its note that a proposer stopped listening is
/// silenced: Coco answers a transaction when it is ordered, so nobody waits for that reply.
const DEFAULT_LOG_FILTER: &str = "info,openraft=warn,openraft::raft::responder=error";

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Sandbox(args) => sandbox::run(&args),
        Command::Node(command) => node_cmd::run(command),
        Command::Keygen(args) => keygen::run(&args),
        Command::Ledger(command) => ledger_cmd::run(command),
        Command::Receipt(command) => receipt_cmd::run(command),
        Command::Bench(args) => bench_cmd::run(&args),
        Command::Gov(args) => gov_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping causes the message already quotes
/// (library errors often print their source inside their own message).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line = format!("{line}: {cause}");
        }
    }
    line.replace('\n', " ")
}

/// Absolute form of a path, for messages a user can copy.
fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
