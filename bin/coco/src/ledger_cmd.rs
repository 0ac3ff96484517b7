//! `coco ledger …`: audit and inspect ledger directories offline.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use coco_kv::WriteSet;
use coco_ledger::{LedgerFiles, decode_entry};
use indicatif::{ProgressBar, ProgressStyle};

/// Ledger subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum LedgerCommand {
    /// Verify framing, the Merkle tree and every signature; exit non-zero at the first
    /// problem, naming the file and the offset.
    Verify {
        /// The ledger directory (chunk files `ledger_*`).
        dir: PathBuf,
        /// Print no progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Print every transaction's public content (private maps stay encrypted).
    Dump {
        /// The ledger directory.
        dir: PathBuf,
    },
}

pub(crate) fn run(command: LedgerCommand) -> Result<()> {
    match command {
        LedgerCommand::Verify { dir, quiet } => verify(&dir, quiet),
        LedgerCommand::Dump { dir } => dump(&dir),
    }
}

fn verify(dir: &std::path::Path, quiet: bool) -> Result<()> {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = coco_node::verify_ledger(dir, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = result?;
    println!(
        "ledger verified: {} chunks, {} transactions, {} signatures, last signed {}",
        report.chunks, report.transactions, report.signatures, report.last_signed
    );
    if report.unsigned_tail > 0 {
        println!(
            "  {} transactions after the last signature are not yet signed",
            report.unsigned_tail
        );
    }
    if let Some((file, offset)) = report.torn_tail {
        println!("  torn tail ignored: {} at offset {offset}", file.display());
    }
    Ok(())
}

fn dump(dir: &std::path::Path) -> Result<()> {
    let files = LedgerFiles::open(dir)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for chunk in files.chunks() {
        writeln!(out, "chunk {} ({:?})", chunk.path.display(), chunk.state)?;
        let contents = LedgerFiles::read(chunk)?;
        for (seqno, offset, raw) in contents.entries() {
            let entry = decode_entry(raw).with_context(|| format!("entry at offset {offset}"))?;
            let write_set = WriteSet::decode_domain(entry.public_maps())
                .with_context(|| format!("public domain of seqno {seqno}"))?;
            writeln!(
                out,
                "  {}.{} offset {offset} private {} bytes",
                entry.view(),
                seqno,
                entry.private_ciphertext().len()
            )?;
            for (map, writes) in write_set.iter() {
                writeln!(
                    out,
                    "    {map}: {} writes, {} removes",
                    writes.writes().len(),
                    writes.removes().len()
                )?;
            }
        }
    }
    Ok(())
}
