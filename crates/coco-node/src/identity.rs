//! The node's and the service's identities, and the ledger secret, kept in `state_dir`.
//!
//! Platform `virtual` "seals" secrets by writing them to files readable only by the node's
//! user. That is explicitly insecure (anyone with the disk has the keys) and exists for
//! development; a TEE platform seals to a key only the measured code can derive.

use std::fs;
use std::path::{Path, PathBuf};

use coco_crypto::{Aes256GcmKey, Certificate, SigningKey};
use coco_types::{NodeId, Seqno};

use crate::secrets::{LedgerSecret, LedgerSecrets};

use crate::error::{Error, Result, crypto};

const NODE_KEY: &str = "node_privk.pem";
const NODE_CERT: &str = "node_cert.pem";
const SERVICE_KEY: &str = "service_privk.pem";
const SERVICE_CERT: &str = "service_cert.pem";
/// The ledger secrets, one `<valid_from seqno> <hex key>` line each, oldest first.
const LEDGER_SECRETS: &str = "ledger_secrets.sealed";
/// Certificates Coco issues are valid this long.
pub const CERT_VALIDITY_DAYS: u32 = 365;

/// Keys and certificates of this node and of the service it belongs to.
pub(crate) struct Identity {
    /// The node's signing key (P-384): signs Merkle roots, presents TLS.
    pub(crate) node_key: SigningKey,
    /// The node certificate, endorsed by the service key.
    pub(crate) node_cert: Certificate,
    /// SHA-256 of the node public key.
    pub(crate) node_id: NodeId,
    /// The service key (P-384): endorses node certificates, signs COSE roots.
    pub(crate) service_key: SigningKey,
    /// The self-signed service certificate clients trust.
    pub(crate) service_cert: Certificate,
    /// Every ledger secret (encrypt private maps, derive commit evidence), by seqno.
    pub(crate) ledger_secrets: LedgerSecrets,
    /// Where the identity is sealed, for rekeys.
    pub(crate) state_dir: PathBuf,
}

impl Identity {
    /// Loads the identity from `state_dir` if one exists there.
    ///
    /// # Errors
    /// IO errors, or files that exist but do not parse (a corrupt state directory is an
    /// error, never silently replaced).
    pub(crate) fn load(state_dir: &Path) -> Result<Option<Self>> {
        if !state_dir.join(SERVICE_CERT).exists() {
            return Ok(None);
        }
        let read = |name: &str| -> Result<String> {
            let path = state_dir.join(name);
            fs::read_to_string(&path).map_err(|source| Error::Io { path, source })
        };
        let node_key = SigningKey::from_pkcs8_pem(&read(NODE_KEY)?).map_err(crypto(NODE_KEY))?;
        let node_cert = Certificate::from_pem(&read(NODE_CERT)?).map_err(crypto(NODE_CERT))?;
        let service_key =
            SigningKey::from_pkcs8_pem(&read(SERVICE_KEY)?).map_err(crypto(SERVICE_KEY))?;
        let service_cert =
            Certificate::from_pem(&read(SERVICE_CERT)?).map_err(crypto(SERVICE_CERT))?;
        let ledger_secrets = parse_secrets(&read(LEDGER_SECRETS)?)?;
        let keys = (node_key, node_cert, service_key, service_cert);
        Ok(Some(Self::assemble(keys, ledger_secrets, state_dir)))
    }

    /// Creates a fresh service and node identity, with the first ledger secret valid from
    /// seqno 1, and seals it to `state_dir`.
    ///
    /// # Errors
    /// Key generation or IO failures.
    pub(crate) fn create(state_dir: &Path, sans: &[String], now_unix_s: u64) -> Result<Self> {
        let mut identity = Self::generate(state_dir, sans, now_unix_s)?;
        let ledger_secret = Aes256GcmKey::generate().map_err(crypto("ledger secret"))?;
        identity.ledger_secrets.rotate(Seqno(1), ledger_secret);
        identity.seal()?;
        Ok(identity)
    }

    /// Generates a fresh service and node identity with no ledger secret yet, unsealed: a
    /// recovering node seals it once it knows where its first secret starts.
    ///
    /// # Errors
    /// Key generation failures.
    pub(crate) fn generate(state_dir: &Path, sans: &[String], now_unix_s: u64) -> Result<Self> {
        let service_key = SigningKey::generate_p384().map_err(crypto("service key"))?;
        let service_cert =
            Certificate::service_identity(&service_key, now_unix_s, CERT_VALIDITY_DAYS)
                .map_err(crypto("service certificate"))?;
        let node_key = SigningKey::generate_p384().map_err(crypto("node key"))?;
        let node_cert = Certificate::endorse_node(
            node_key.verifying_key(),
            &service_key,
            &service_cert,
            sans,
            now_unix_s,
            CERT_VALIDITY_DAYS,
        )
        .map_err(crypto("node certificate"))?;
        let keys = (node_key, node_cert, service_key, service_cert);
        Ok(Self::assemble(keys, LedgerSecrets::default(), state_dir))
    }

    /// The identity of a node members trusted: its own key, the rest from the primary.
    ///
    /// # Errors
    /// Unusable keys, certificates or secrets; a certificate that does not certify this
    /// node's key or is not endorsed by the service; IO.
    pub(crate) fn from_join(
        state_dir: &Path,
        node_key_pem: &str,
        material: &crate::JoinMaterial,
    ) -> Result<Self> {
        let node_key = SigningKey::from_pkcs8_pem(node_key_pem).map_err(crypto(NODE_KEY))?;
        let node_cert = Certificate::from_pem(&material.node_cert).map_err(crypto(NODE_CERT))?;
        let service_key =
            SigningKey::from_pkcs8_pem(&material.service_key).map_err(crypto(SERVICE_KEY))?;
        let service_cert =
            Certificate::from_pem(&material.service_cert).map_err(crypto(SERVICE_CERT))?;
        let corrupt = |reason: &str| Error::Corrupt {
            what: "join material".to_owned(),
            reason: reason.to_owned(),
        };
        if node_cert.public_key_spki_der() != node_key.public_key_der() {
            return Err(corrupt("the endorsed certificate is for another key"));
        }
        node_cert.is_signed_by(&service_cert).map_err(crypto("node certificate endorsement"))?;
        let lines: String =
            material.ledger_secrets.iter().map(|(from, key)| format!("{from} {key}\n")).collect();
        let ledger_secrets = parse_secrets(&lines)?;
        let keys = (node_key, node_cert, service_key, service_cert);
        let identity = Self::assemble(keys, ledger_secrets, state_dir);
        if identity.node_id != material.node_id {
            return Err(corrupt("the material is for another node"));
        }
        identity.seal()?;
        Ok(identity)
    }

    /// The identity of these keys (node key, node certificate, service key, service
    /// certificate); the node id is derived from the node key.
    fn assemble(
        (node_key, node_cert, service_key, service_cert): (
            SigningKey,
            Certificate,
            SigningKey,
            Certificate,
        ),
        ledger_secrets: LedgerSecrets,
        state_dir: &Path,
    ) -> Self {
        let node_id = NodeId(coco_crypto::sha256(&node_key.public_key_der()));
        Self {
            node_key,
            node_cert,
            node_id,
            service_key,
            service_cert,
            ledger_secrets,
            state_dir: state_dir.to_owned(),
        }
    }

    /// Writes the identity to `state_dir`.
    ///
    /// # Errors
    /// IO errors.
    ///
    /// # Panics
    /// If there is no ledger secret to seal.
    pub(crate) fn seal(&self) -> Result<()> {
        assert!(self.ledger_secrets.iter().next().is_some(), "an identity seals a ledger secret");
        let state_dir = &self.state_dir;
        fs::create_dir_all(state_dir)
            .map_err(|source| Error::Io { path: state_dir.to_owned(), source })?;
        tracing::warn!(
            dir = %state_dir.display(),
            "platform virtual: sealing keys and the ledger secret to plain files (INSECURE, \
             development only)"
        );
        // The service certificate is written last: its presence marks a complete identity.
        write_private(&state_dir.join(NODE_KEY), &self.node_key.to_pkcs8_pem())?;
        write_private(&state_dir.join(NODE_CERT), &self.node_cert.to_pem())?;
        write_private(&state_dir.join(SERVICE_KEY), &self.service_key.to_pkcs8_pem())?;
        self.seal_secrets()?;
        write_private(&state_dir.join(SERVICE_CERT), &self.service_cert.to_pem())?;
        Ok(())
    }
}

impl Identity {
    /// Seals the ledger secrets (after a rekey, before any entry uses the new secret).
    ///
    /// # Errors
    /// IO errors.
    pub(crate) fn seal_secrets(&self) -> Result<()> {
        let lines: String = self
            .ledger_secrets
            .iter()
            .map(|secret| format!("{} {}\n", secret.valid_from.0, hex::encode(secret.key.raw())))
            .collect();
        write_private(&self.state_dir.join(LEDGER_SECRETS), &lines)
    }
}

fn parse_secrets(text: &str) -> Result<LedgerSecrets> {
    let corrupt = |reason: &str| Error::Corrupt {
        what: LEDGER_SECRETS.to_owned(),
        reason: reason.to_owned(),
    };
    let mut chain = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let (from, key) =
            line.split_once(' ').ok_or_else(|| corrupt("a line is not 'seqno key'"))?;
        let from: u64 = from.parse().map_err(|_| corrupt("seqno is not a number"))?;
        let key = hex::decode(key.trim()).map_err(|_| corrupt("key is not hex"))?;
        let key = Aes256GcmKey::new(&key).map_err(crypto(LEDGER_SECRETS))?;
        if chain.last().is_some_and(|last: &LedgerSecret| last.valid_from.0 >= from) {
            return Err(corrupt("secrets are not in seqno order"));
        }
        chain.push(LedgerSecret::new(Seqno(from), key));
    }
    if chain.first().is_none_or(|first| first.valid_from == Seqno(0)) {
        return Err(corrupt("no secret, or one valid from seqno 0"));
    }
    Ok(LedgerSecrets::new(chain))
}

/// Writes `contents` to `path` atomically (temp file, fsync, rename), mode 0600.
///
/// # Errors
/// IO errors, naming the path.
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let io = |source| Error::Io { path: path.to_owned(), source };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}
