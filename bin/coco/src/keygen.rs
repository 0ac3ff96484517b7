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
    /// Also generate an RSA encryption key pair for recovery shares
    /// (`<name>_enc_privk.pem`, `<name>_enc_pubk.pem`), as CCF's keygenerator does.
    #[arg(long)]
    encryption: bool,
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
    if args.encryption {
        let (public, private) = generate_encryption_key(&args.dir, &args.name)?;
        println!("{}\n{}", crate::absolute(&public).display(), crate::absolute(&private).display());
    }
    Ok(())
}

/// Writes `<name>_enc_pubk.pem` and `<name>_enc_privk.pem` (RSA 2048, OAEP-SHA256 for
/// recovery shares) in `dir`; refuses to overwrite.
pub(crate) fn generate_encryption_key(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
    let public_path = dir.join(format!("{name}_enc_pubk.pem"));
    let private_path = dir.join(format!("{name}_enc_privk.pem"));
    if public_path.exists() || private_path.exists() {
        bail!("{} already exists; not overwriting a key", private_path.display());
    }
    let key = coco_crypto::RsaPrivateKey::generate(2048).context("generating an RSA key")?;
    coco_node::write_private(&private_path, &key.to_pem())?;
    coco_node::write_private(&public_path, &key.public_key_pem())?;
    Ok((public_path, private_path))
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
