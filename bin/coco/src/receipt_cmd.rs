//! `coco receipt verify`: check a JSON or COSE receipt offline against a service
//! certificate.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// Receipt subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum ReceiptCommand {
    /// Verify a receipt file (JSON from `/app/receipt`, or COSE from `/app/receipt/cose`).
    Verify {
        /// The receipt file.
        file: PathBuf,
        /// The service certificate the receipt must chain to.
        #[arg(long)]
        service_cert: PathBuf,
    },
}

pub(crate) fn run(command: ReceiptCommand) -> Result<()> {
    match command {
        ReceiptCommand::Verify { file, service_cert } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let pem = std::fs::read_to_string(&service_cert)
                .with_context(|| format!("reading {}", service_cert.display()))?;
            let verified = coco_client::verify_receipt_bytes(&bytes, &pem)
                .with_context(|| format!("{} does not verify", file.display()))?;
            let tx = verified
                .txid
                .map_or_else(|| "a signature transaction".to_owned(), |tx| tx.to_string());
            println!("receipt verified: {tx} under root {}", verified.root);
            Ok(())
        }
    }
}
