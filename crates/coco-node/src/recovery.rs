//! Recovery shares (W31, CCF's disaster recovery): the current ledger secret is wrapped
//! under a fresh wrapping key; the wrapping key is split M-of-N (Shamir) among the recovery
//! members (members with an encryption key), and each share is encrypted to its member's
//! RSA key (OAEP-SHA256, as CCF does). Any M members can later rebuild the wrapping key,
//! unwrap the secret, and from it every older secret through the chain rekeys record.
//!
//! Shares are re-issued whenever the secret changes (rekey) or the threshold or the
//! membership changes, in the same transaction.

use std::ops::Bound;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use coco_crypto::{Aes256GcmKey, RsaPublicKey};
use coco_gov::tables::{MEMBERS_ENCRYPTION_PUBLIC_KEYS, SERVICE_CONFIG};
use coco_kv::Tx;
use coco_types::Seqno;
use serde_json::{Value, json};

use crate::error::{Error, Result, crypto};
use crate::node::signature::map;
use crate::tables::SINGLETON_KEY;

/// Encrypted shares, key = member id hex, JSON `{"encrypted_share": base64}`.
pub const RECOVERY_SHARES: &str = "public:ccf.internal.recovery_shares";
/// The current ledger secret wrapped under the wrapping key the shares rebuild (singleton
/// JSON `{"valid_from", "threshold", "wrapped_secret"}`).
pub const WRAPPED_LEDGER_SECRET: &str = "public:ccf.internal.encrypted_ledger_secret";
/// Authenticated data binding a wrapped secret to recovery.
pub const RECOVERY_AAD: &[u8] = b"coco recovery wrapped ledger secret";
/// Most recovery members (Shamir over GF(2^8) has 254 share ids).
const RECOVERY_MEMBERS_MAX: usize = 254;

/// Issues shares of a fresh wrapping key of `secret` (current from `valid_from`) to every
/// recovery member, replacing earlier shares. Returns how many were issued (0 when the
/// service has no recovery member: there is then nothing to split, and no share table).
///
/// # Errors
/// A corrupt member key or threshold, or a threshold above the number of recovery members.
pub(crate) fn issue_recovery_shares(
    tx: &mut Tx,
    secret: &Aes256GcmKey,
    valid_from: Seqno,
) -> Result<usize> {
    let members = recovery_members(tx)?;
    if members.is_empty() {
        return Ok(0);
    }
    let threshold = recovery_threshold(tx)?;
    let count = u8::try_from(members.len()).expect("at most 254 recovery members");
    if u64::from(count) < threshold {
        return Err(corrupt(format!("threshold {threshold} exceeds {count} recovery members")));
    }
    let threshold = u8::try_from(threshold).expect("threshold ≤ member count ≤ 254");
    let wrapping = Aes256GcmKey::generate().map_err(crypto("recovery wrapping key"))?;
    let wrapped = coco_crypto::wrap_key(&wrapping, secret.raw(), RECOVERY_AAD)
        .map_err(crypto("wrapping the ledger secret"))?;
    let shares = coco_crypto::split_secret(wrapping.raw(), threshold, count)
        .map_err(|e| crypto("splitting the wrapping key")(e.into()))?;
    for ((member_id, key), share) in members.iter().zip(&shares) {
        let encrypted =
            key.encrypt_oaep_sha256(&share.to_bytes()).map_err(crypto("encrypting a share"))?;
        let record = json!({"encrypted_share": BASE64.encode(encrypted)});
        tx.put(&map(RECOVERY_SHARES), member_id.as_bytes(), to_vec(&record));
    }
    let record = json!({
        "valid_from": valid_from.0,
        "threshold": threshold,
        "wrapped_secret": BASE64.encode(wrapped),
    });
    tx.put(&map(WRAPPED_LEDGER_SECRET), SINGLETON_KEY, to_vec(&record));
    Ok(shares.len())
}

/// `(member id, RSA key)` of every member with an encryption key, in id order.
fn recovery_members(tx: &mut Tx) -> Result<Vec<(String, RsaPublicKey)>> {
    let keys = tx.range(
        &map(MEMBERS_ENCRYPTION_PUBLIC_KEYS),
        Bound::Unbounded,
        Bound::Unbounded,
        RECOVERY_MEMBERS_MAX + 1,
    );
    if keys.len() > RECOVERY_MEMBERS_MAX {
        return Err(corrupt(format!("more than {RECOVERY_MEMBERS_MAX} recovery members")));
    }
    keys.into_iter()
        .map(|(id, pem)| {
            let pem = String::from_utf8(pem).map_err(|_| corrupt("key is not UTF-8".into()))?;
            let key = RsaPublicKey::from_pem(&pem).map_err(crypto("member encryption key"))?;
            Ok((String::from_utf8_lossy(&id).into_owned(), key))
        })
        .collect()
}

/// The recovery threshold in `service.config` (1 when unset, as the constitution reads it).
fn recovery_threshold(tx: &mut Tx) -> Result<u64> {
    let Some(config) = tx.get(&map(SERVICE_CONFIG), SINGLETON_KEY) else { return Ok(1) };
    let config: Value =
        serde_json::from_slice(config).map_err(|_| corrupt("service config is not JSON".into()))?;
    Ok(config["recovery_threshold"].as_u64().unwrap_or(1))
}

fn corrupt(reason: String) -> Error {
    Error::Corrupt { what: "recovery configuration".to_owned(), reason }
}

fn to_vec(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialise")
}
