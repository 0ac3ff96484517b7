//! COSE Sign1 (RFC 9052) in the two shapes CCF uses.
//!
//! - **Signature transactions**: the service key signs the Merkle root, payload
//!   detached, with CCF's protected header (`alg`, `kid` = hex SHA-256 of the service
//!   SPKI, `vds` = 2, CWT claims, `"ccf.v1": {"txid"}`). COSE receipts
//!   ([`crate::build_cose_receipt`]) are this message plus an unprotected proof.
//! - **Governance envelopes**: a member signs a request body (attached payload) with
//!   `kid` = member id and the `ccf.gov.msg.*` headers, as `ccf_cose_sign1` produces.
//!
//! Protected headers are encoded by hand in deterministic CBOR order (integer labels
//! ascending, then text labels shorter first), so our bytes have CCF's shape; parsing
//! goes through coset and always verifies over the bytes as received.

use base64::Engine as _;
use ciborium::Value;
use coco_types::{Digest, TxId};
use coset::{AsCborValue as _, CoseSign1, Label, RegisteredLabelWithPrivate, iana::EnumI64 as _};

use crate::ecdsa::{CoseAlgorithm, SigningKey, VerifyingKey};
use crate::{Error, Result};

/// CBOR tag of a `COSE_Sign1` message.
pub(crate) const TAG_COSE_SIGN1: u64 = 18;
const HEADER_ALG: i64 = 1;
const HEADER_KID: i64 = 4;
const HEADER_CWT_CLAIMS: i64 = 15;
/// Verifiable data structure (draft-ietf-cose-merkle-tree-proofs).
pub(crate) const HEADER_VDS: i64 = 395;
/// Verifiable data proofs, in the unprotected header of a receipt.
pub(crate) const HEADER_VDP: i64 = 396;
/// `vds` value for CCF's ledger tree (SHA-256, CCF leaf shape).
pub(crate) const VDS_CCF_LEDGER_SHA256: u64 = 2;
const HEADER_CCF_V1: &str = "ccf.v1";
const CCF_V1_TXID: &str = "txid";
const CWT_ISS: i64 = 1;
const CWT_SUB: i64 = 2;
const CWT_IAT: i64 = 6;
const HEADER_GOV_MSG_TYPE: &str = "ccf.gov.msg.type";
const HEADER_GOV_MSG_CREATED_AT: &str = "ccf.gov.msg.created_at";
const HEADER_GOV_MSG_PROPOSAL_ID: &str = "ccf.gov.msg.proposal_id";

/// What a verified CCF signature-transaction COSE Sign1 says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CcfSignatureHeaders {
    /// The signature transaction's id (`ccf.v1.txid`).
    pub txid: TxId,
    /// The `kid`: hex SHA-256 of the service key's SPKI DER.
    pub kid: String,
    /// CWT `iat`: when the primary signed, in unix seconds.
    pub iat: u64,
    /// CWT `iss`, if present.
    pub issuer: Option<String>,
    /// CWT `sub`, if present.
    pub subject: Option<String>,
}

/// Signs `root` with the service key as a CCF signature transaction's COSE Sign1:
/// tagged, detached payload, CCF's protected header, empty unprotected header.
#[must_use]
pub fn sign_ccf_root(
    service_key: &SigningKey,
    root: &Digest,
    txid: TxId,
    iat_unix_seconds: u64,
    issuer: &str,
    subject: &str,
) -> Vec<u8> {
    let kid = service_key.verifying_key().spki_sha256().to_hex();
    let claims = Value::Map(vec![
        (Value::from(CWT_ISS), Value::from(issuer)),
        (Value::from(CWT_SUB), Value::from(subject)),
        (Value::from(CWT_IAT), Value::from(iat_unix_seconds)),
    ]);
    let ccf_v1 = Value::Map(vec![(Value::from(CCF_V1_TXID), Value::from(txid.to_string()))]);
    let protected = encode(&Value::Map(vec![
        (Value::from(HEADER_ALG), Value::from(service_key.cose_alg().label())),
        (Value::from(HEADER_KID), Value::Bytes(kid.into_bytes())),
        (Value::from(HEADER_CWT_CLAIMS), claims),
        (Value::from(HEADER_VDS), Value::from(VDS_CCF_LEDGER_SHA256)),
        (Value::from(HEADER_CCF_V1), ccf_v1),
    ]));
    let signature = service_key.sign_cose(&sig_structure1(&protected, root.as_bytes()));
    encode_sign1(protected, Value::Map(vec![]), None, signature)
}

/// Verifies a CCF signature-transaction COSE Sign1 over `root` with the service key
/// and returns its headers.
///
/// # Errors
/// [`Error::Malformed`] for anything but a tagged, detached COSE Sign1 with CCF's
/// headers; [`Error::KidMismatch`] / [`Error::AlgorithmMismatch`] if it names another
/// key; [`Error::BadSignature`] if the signature over `root` does not verify.
pub fn verify_ccf_root(
    cose: &[u8],
    service_key: &VerifyingKey,
    root: &Digest,
) -> Result<CcfSignatureHeaders> {
    let sign1 = parse_sign1(cose)?;
    verify_ccf_sign1(&sign1, service_key, root)
}

/// [`verify_ccf_root`] on an already parsed message (receipts share it).
pub(crate) fn verify_ccf_sign1(
    sign1: &CoseSign1,
    service_key: &VerifyingKey,
    root: &Digest,
) -> Result<CcfSignatureHeaders> {
    if sign1.payload.is_some() {
        return Err(malformed("payload must be detached"));
    }
    let header = &sign1.protected.header;
    check_alg(header, service_key)?;
    let expected_kid = service_key.spki_sha256().to_hex();
    let kid = check_kid(header, &expected_kid)?;
    let vds = find(header, &Label::Int(HEADER_VDS)).ok_or_else(|| malformed("no vds (395)"))?;
    if as_u64(vds) != Some(VDS_CCF_LEDGER_SHA256) {
        return Err(malformed("vds (395) is not CCF_LEDGER_SHA256 (2)"));
    }
    let ccf_v1 = find(header, &Label::Text(HEADER_CCF_V1.into()))
        .ok_or_else(|| malformed("no ccf.v1 header"))?;
    let txid = map_get(ccf_v1, &Value::from(CCF_V1_TXID))
        .and_then(Value::as_text)
        .ok_or_else(|| malformed("no ccf.v1.txid"))?
        .parse::<TxId>()
        .map_err(|_| malformed("ccf.v1.txid is not <view>.<seqno>"))?;
    let claims = find(header, &Label::Int(HEADER_CWT_CLAIMS))
        .ok_or_else(|| malformed("no CWT claims (15)"))?;
    let iat = map_get(claims, &Value::from(CWT_IAT))
        .and_then(as_u64)
        .ok_or_else(|| malformed("no CWT iat"))?;
    let text_claim = |label: i64| {
        map_get(claims, &Value::from(label)).and_then(Value::as_text).map(str::to_owned)
    };
    let protected = protected_bytes(sign1);
    service_key.verify_cose(&sig_structure1(protected, root.as_bytes()), &sign1.signature)?;
    Ok(CcfSignatureHeaders {
        txid,
        kid,
        iat,
        issuer: text_claim(CWT_ISS),
        subject: text_claim(CWT_SUB),
    })
}

/// A parsed (not yet verified) governance COSE Sign1 envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GovEnvelope {
    /// The signing algorithm (header 1).
    pub alg: CoseAlgorithm,
    /// The `kid` (header 4): the member id, hex SHA-256 of the member cert DER.
    pub kid: String,
    /// `ccf.gov.msg.type`: `proposal`, `ballot`, `withdrawal`, `ack`, `state_digest`…
    pub msg_type: String,
    /// `ccf.gov.msg.created_at`, unix seconds.
    pub created_at: u64,
    /// `ccf.gov.msg.proposal_id`, required by the server for ballots and withdrawals.
    pub proposal_id: Option<String>,
    /// The attached payload (the request body).
    pub payload: Vec<u8>,
    /// The raw `r‖s` signature.
    pub signature: Vec<u8>,
    /// The protected header exactly as received (signed over).
    pub protected_bytes: Vec<u8>,
}

impl GovEnvelope {
    /// Checks the signature with the member's key over
    /// `["Signature1", protected, h'', payload]`.
    ///
    /// # Errors
    /// [`Error::AlgorithmMismatch`] if `alg` is not the key's; [`Error::BadSignature`].
    pub fn verify(&self, key: &VerifyingKey) -> Result<()> {
        if self.alg.curve() != key.curve() {
            return Err(Error::AlgorithmMismatch { alg: self.alg.label() });
        }
        key.verify_cose(&sig_structure1(&self.protected_bytes, &self.payload), &self.signature)
    }
}

/// Parses a governance envelope: tagged COSE Sign1, attached payload, protected `alg`,
/// `kid`, `ccf.gov.msg.type`, `ccf.gov.msg.created_at` and optional
/// `ccf.gov.msg.proposal_id`. Does not verify; call [`GovEnvelope::verify`].
///
/// # Errors
/// [`Error::Malformed`] if any of that is missing or mistyped;
/// [`Error::UnsupportedAlgorithm`] for algorithms other than ES256/ES384.
pub fn parse_gov_envelope(bytes: &[u8]) -> Result<GovEnvelope> {
    let sign1 = parse_sign1(bytes)?;
    let header = &sign1.protected.header;
    let alg = CoseAlgorithm::from_label(alg_label(header)?)?;
    let kid = String::from_utf8(header.key_id.clone()).map_err(|_| malformed("kid not UTF-8"))?;
    if kid.is_empty() {
        return Err(malformed("no kid"));
    }
    let text = |label: &str| find(header, &Label::Text(label.into())).map(Value::as_text);
    let msg_type = text(HEADER_GOV_MSG_TYPE)
        .flatten()
        .ok_or_else(|| malformed("no text ccf.gov.msg.type"))?
        .to_owned();
    let created_at = find(header, &Label::Text(HEADER_GOV_MSG_CREATED_AT.into()))
        .and_then(as_u64)
        .ok_or_else(|| malformed("no unsigned ccf.gov.msg.created_at"))?;
    let proposal_id = match text(HEADER_GOV_MSG_PROPOSAL_ID) {
        None => None,
        Some(Some(id)) => Some(id.to_owned()),
        Some(None) => return Err(malformed("ccf.gov.msg.proposal_id is not text")),
    };
    let protected_bytes = protected_bytes(&sign1).to_vec();
    let payload = sign1.payload.ok_or_else(|| malformed("governance payload is detached"))?;
    Ok(GovEnvelope {
        alg,
        kid,
        msg_type,
        created_at,
        proposal_id,
        payload,
        signature: sign1.signature,
        protected_bytes,
    })
}

/// Signs a governance envelope as `ccf_cose_sign1` does: same header labels, order and
/// encoding, empty unprotected header, attached payload.
#[must_use]
pub fn sign_gov_envelope(
    key: &SigningKey,
    kid: &str,
    msg_type: &str,
    created_at: u64,
    proposal_id: Option<&str>,
    payload: &[u8],
) -> Vec<u8> {
    let mut entries = vec![
        (Value::from(HEADER_ALG), Value::from(key.cose_alg().label())),
        (Value::from(HEADER_KID), Value::Bytes(kid.as_bytes().to_vec())),
        (Value::from(HEADER_GOV_MSG_TYPE), Value::from(msg_type)),
        (Value::from(HEADER_GOV_MSG_CREATED_AT), Value::from(created_at)),
    ];
    if let Some(proposal_id) = proposal_id {
        entries.push((Value::from(HEADER_GOV_MSG_PROPOSAL_ID), Value::from(proposal_id)));
    }
    let protected = encode(&Value::Map(entries));
    let signature = key.sign_cose(&sig_structure1(&protected, payload));
    encode_sign1(protected, Value::Map(vec![]), Some(payload.to_vec()), signature)
}

/// The value CCF stores in `public:ccf.internal.cose_signatures`: a JSON string holding
/// the base64 of the signature transaction's COSE Sign1.
///
/// # Panics
/// Never: a string always serialises to JSON.
#[must_use]
pub fn cose_signature_to_json(cose: &[u8]) -> Vec<u8> {
    let text = base64::engine::general_purpose::STANDARD.encode(cose);
    serde_json::to_vec(&text).expect("serialising a string to JSON cannot fail")
}

/// Reads the value of `public:ccf.internal.cose_signatures` back into COSE bytes.
///
/// # Errors
/// [`Error::Malformed`] if it is not a JSON string of base64.
pub fn cose_signature_from_json(json: &[u8]) -> Result<Vec<u8>> {
    let text: String = serde_json::from_slice(json).map_err(|error| Error::Malformed {
        what: "COSE signature JSON",
        reason: error.to_string(),
    })?;
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|error| Error::Malformed {
        what: "COSE signature base64",
        reason: error.to_string(),
    })
}

/// Parses a COSE Sign1 that must carry tag 18.
pub(crate) fn parse_sign1(bytes: &[u8]) -> Result<CoseSign1> {
    let mut rest = bytes;
    let value: Value =
        ciborium::from_reader(&mut rest).map_err(|e| malformed_owned(e.to_string()))?;
    if !rest.is_empty() {
        return Err(malformed("trailing bytes after COSE Sign1"));
    }
    // One encoding per message: definite lengths, shortest integers, and no `undefined`
    // standing in for the nil payload (ciborium reads both as Null).
    if encode(&value) != bytes {
        return Err(malformed("not in preferred CBOR serialisation"));
    }
    let Value::Tag(tag, inner) = value else {
        return Err(malformed("not tagged 18 (COSE_Sign1)"));
    };
    if tag != TAG_COSE_SIGN1 {
        return Err(malformed("tag is not 18 (COSE_Sign1)"));
    }
    CoseSign1::from_cbor_value(*inner).map_err(|e| malformed_owned(e.to_string()))
}

/// The protected header bytes as received (coset keeps them when parsing).
pub(crate) fn protected_bytes(sign1: &CoseSign1) -> &[u8] {
    sign1.protected.original_data.as_deref().unwrap_or(&[])
}

/// `Sig_structure1` = `["Signature1", protected, h'', payload]`.
pub(crate) fn sig_structure1(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    encode(&Value::Array(vec![
        Value::from("Signature1"),
        Value::Bytes(protected.to_vec()),
        Value::Bytes(vec![]),
        Value::Bytes(payload.to_vec()),
    ]))
}

/// Tagged `[protected, unprotected, payload / nil, signature]`.
pub(crate) fn encode_sign1(
    protected: Vec<u8>,
    unprotected: Value,
    payload: Option<Vec<u8>>,
    signature: Vec<u8>,
) -> Vec<u8> {
    let payload = payload.map_or(Value::Null, Value::Bytes);
    let array =
        Value::Array(vec![Value::Bytes(protected), unprotected, payload, Value::Bytes(signature)]);
    encode(&Value::Tag(TAG_COSE_SIGN1, Box::new(array)))
}

pub(crate) fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("encoding a CBOR value into a Vec cannot fail");
    out
}

pub(crate) fn malformed(reason: &'static str) -> Error {
    Error::Malformed { what: "COSE Sign1", reason: reason.into() }
}

fn malformed_owned(reason: String) -> Error {
    Error::Malformed { what: "COSE Sign1", reason }
}

fn alg_label(header: &coset::Header) -> Result<i64> {
    match &header.alg {
        Some(RegisteredLabelWithPrivate::Assigned(alg)) => Ok(alg.to_i64()),
        Some(RegisteredLabelWithPrivate::PrivateUse(alg)) => Ok(*alg),
        Some(RegisteredLabelWithPrivate::Text(_)) | None => Err(malformed("no integer alg")),
    }
}

fn check_alg(header: &coset::Header, key: &VerifyingKey) -> Result<()> {
    let label = alg_label(header)?;
    let alg = CoseAlgorithm::from_label(label)?;
    if alg.curve() != key.curve() {
        return Err(Error::AlgorithmMismatch { alg: label });
    }
    Ok(())
}

fn check_kid(header: &coset::Header, expected: &str) -> Result<String> {
    if header.key_id != expected.as_bytes() {
        let found = match std::str::from_utf8(&header.key_id) {
            Ok(text) => text.chars().take(128).collect(),
            Err(_) => hex::encode(header.key_id.get(..64).unwrap_or(&header.key_id)),
        };
        return Err(Error::KidMismatch { expected: expected.to_owned(), found });
    }
    Ok(expected.to_owned())
}

pub(crate) fn find<'h>(header: &'h coset::Header, label: &Label) -> Option<&'h Value> {
    header.rest.iter().find_map(|(found, value)| (found == label).then_some(value))
}

pub(crate) fn map_get<'v>(map: &'v Value, key: &Value) -> Option<&'v Value> {
    map.as_map()?.iter().find_map(|(found, value)| (found == key).then_some(value))
}

pub(crate) fn as_u64(value: &Value) -> Option<u64> {
    value.as_integer().and_then(|integer| u64::try_from(integer).ok())
}

#[cfg(test)]
mod tests;
