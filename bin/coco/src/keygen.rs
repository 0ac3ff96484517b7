//! `coco keygen`: member and user identities, named as CCF's keygenerator names them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use coco_crypto::{Certificate, SigningKey};

/// Arguments of `coco keygen`.
#[derive(clap::Args)]
pub(crate) struct KeygenArgs {
    /// Identity name, e.g. `member0` or `user0`.
    #[arg(long)]
    name: String,
    /// Directory to write into.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Curve of the key.
    #[arg(long, value_enum, default_value_t = Curve::Secp384r1)]
    curve: Curve,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Curve {
    Secp384r1,
    Secp256r1,
}

pub(crate) fn run(args: &KeygenArgs) -> Result<()> {
    if args.name.is_empty()
        || !args.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!("identity name {:?} must be non-empty and alphanumeric (with _ or -)", args.name);
    }
    let (cert, key) = generate_identity(&args.dir, &args.name, args.curve == Curve::Secp256r1)?;
    println!("{}\n{}", crate::absolute(&cert).display(), crate::absolute(&key).display());
    Ok(())
}

/// Writes `<name>_privk.pem` and `<name>_cert.pem` in `dir`; refuses to overwrite.
pub(crate) fn generate_identity(dir: &Path, name: &str, p256: bool) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_path = dir.join(format!("{name}_privk.pem"));
    let cert_path = dir.join(format!("{name}_cert.pem"));
    if key_path.exists() || cert_path.exists() {
        bail!("{} already exists; not overwriting an identity", key_path.display());
    }
    let key = if p256 { SigningKey::generate_p256() } else { SigningKey::generate_p384() }
        .context("generating a key")?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let cert = Certificate::self_signed_identity(&key, name, now, coco_node::CERT_VALIDITY_DAYS)
        .context("creating a certificate")?;
    coco_node::write_private(&key_path, &key.to_pkcs8_pem())?;
    coco_node::write_private(&cert_path, &cert.to_pem())?;
    Ok((cert_path, key_path))
}
