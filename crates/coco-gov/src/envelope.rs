//! Signed requests: every state-changing gov route takes a COSE Sign1 envelope signed by a
//! member. [`verify_request`] checks it as CCF does (signer, signature, message type, URL
//! bindings, member status, replay window) and records it in the governance history.

use std::ops::Bound;
use std::str::FromStr as _;

use coco_crypto::{Certificate, GovEnvelope, parse_gov_envelope, sha256};
use coco_kv::Tx;
use coco_types::MemberId;
use serde_json::Value;

use crate::error::{GovError, Result};
use crate::tables::{self, map};

/// Largest `ccf.gov.msg.created_at` accepted: ten decimal digits, so replay keys sort.
pub const CREATED_AT_MAX: u64 = 9_999_999_999;
/// Proposals retained in the replay window unless the service configuration says otherwise.
pub const RECENT_PROPOSALS_WINDOW_DEFAULT: u64 = 100;
/// Bounds of the configurable replay window (`recent_cose_proposals_window_size`).
pub const RECENT_PROPOSALS_WINDOW_RANGE: std::ops::RangeInclusive<u64> = 1..=10_000;

/// The `ccf.gov.msg.type` values, one per kind of signed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgType {
    /// `POST /gov/members/proposals:create`.
    Proposal,
    /// `POST /gov/members/proposals/{id}/ballots/{member}:submit`.
    Ballot,
    /// `POST /gov/members/proposals/{id}:withdraw`.
    Withdrawal,
    /// `POST /gov/members/state-digests/{member}:ack`.
    Ack,
    /// `POST /gov/members/state-digests/{member}:update`.
    StateDigest,
    /// `POST /gov/recovery/members/{member}:recover`.
    RecoveryShare,
    /// CCF's encrypted variant of a recovery share submission.
    EncryptedRecoveryShare,
}

impl MsgType {
    /// The header value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proposal => "proposal",
            Self::Ballot => "ballot",
            Self::Withdrawal => "withdrawal",
            Self::Ack => "ack",
            Self::StateDigest => "state_digest",
            Self::RecoveryShare => "recovery_share",
            Self::EncryptedRecoveryShare => "encrypted_recovery_share",
        }
    }

    /// Whether only Active members may send it (Accepted members may only fetch and ack
    /// their state digest).
    #[must_use]
    pub fn requires_active(self) -> bool {
        match self {
            Self::Proposal
            | Self::Ballot
            | Self::Withdrawal
            | Self::RecoveryShare
            | Self::EncryptedRecoveryShare => true,
            Self::Ack | Self::StateDigest => false,
        }
    }
}

/// What the endpoint expects of the envelope: its message type and the URL's bindings.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The endpoint's message type.
    pub msg_type: MsgType,
    /// The URL's `{proposalId}`, for routes that have one.
    pub proposal_id: Option<&'a str>,
    /// The URL's `{memberId}`, for routes that have one.
    pub member_id: Option<&'a str>,
}

/// A verified signed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRequest {
    /// The signing member.
    pub member_id: MemberId,
    /// `ccf.gov.msg.created_at`, unix seconds.
    pub created_at: u64,
    /// The signed payload (the request's JSON body).
    pub payload: Vec<u8>,
    /// The raw signature (proposal ids and replay keys hash it).
    pub signature: Vec<u8>,
    /// The whole envelope as received (stored in the history).
    pub envelope: Vec<u8>,
}

impl SignedRequest {
    /// Checks the request is signed by the member its URL names.
    pub(crate) fn check_signer(&self, member_id: &str) -> Result<()> {
        let signer = self.member_id.to_hex();
        if signer == member_id {
            Ok(())
        } else {
            Err(GovError::MemberIdMismatch { signer, url: member_id.chars().take(64).collect() })
        }
    }

    /// The string field `field` of the JSON payload; `shape` shows the expected body.
    ///
    /// # Errors
    /// [`GovError::InvalidInput`] when the payload is not JSON or lacks the string field.
    pub fn payload_str(&self, what: &str, field: &str, shape: &str) -> Result<String> {
        let body: Value = serde_json::from_slice(&self.payload)
            .map_err(|e| GovError::invalid(format!("{what} is not JSON: {e}")))?;
        body.get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| GovError::invalid(format!("{what} must be {shape}")))
    }
}

/// Verifies a signed request `body` for an endpoint and records it in
/// `public:ccf.gov.history`. For proposals, also checks the replay window (the proposal is
/// entered into it by [`crate::Governance::propose`]).
///
/// # Errors
/// One [`GovError`] per check, in CCF's order: [`GovError::MalformedEnvelope`],
/// [`GovError::UnknownMember`], [`GovError::BadSignature`], [`GovError::WrongMessageType`],
/// [`GovError::CreatedAtOutOfRange`], [`GovError::ProposalIdMismatch`],
/// [`GovError::MemberIdMismatch`], [`GovError::MemberNotActive`],
/// [`GovError::ProposalReplay`], [`GovError::ProposalCreatedTooLongAgo`].
pub fn verify_request(tx: &mut Tx, body: &[u8], expected: Expected<'_>) -> Result<SignedRequest> {
    let envelope = parse_gov_envelope(body)
        .map_err(|e| GovError::MalformedEnvelope { reason: e.to_string() })?;
    let member_id = MemberId::from_str(&envelope.kid).map_err(|_| GovError::UnknownMember)?;
    // The kid must be the canonical lowercase hex, the form the table is keyed by.
    let kid = member_id.to_hex();
    let pem = tx.get(&map(tables::MEMBERS_CERTS), kid.as_bytes()).ok_or(GovError::UnknownMember)?;
    verify_signature(&envelope, pem)?;
    if envelope.msg_type != expected.msg_type.as_str() {
        return Err(GovError::WrongMessageType {
            expected: expected.msg_type.as_str(),
            found: envelope.msg_type.chars().take(64).collect(),
        });
    }
    if envelope.created_at > CREATED_AT_MAX {
        return Err(GovError::CreatedAtOutOfRange { created_at: envelope.created_at });
    }
    if let Some(url) = expected.proposal_id
        && envelope.proposal_id.as_deref() != Some(url)
    {
        return Err(GovError::ProposalIdMismatch {
            signed: envelope.proposal_id.map(|id| id.chars().take(64).collect()),
            url: url.chars().take(64).collect(),
        });
    }
    if let Some(url) = expected.member_id
        && url != kid
    {
        return Err(GovError::MemberIdMismatch {
            signer: kid,
            url: url.chars().take(64).collect(),
        });
    }
    if expected.msg_type.requires_active() {
        let status = member_status(tx, &kid)?;
        if status != "Active" {
            return Err(GovError::MemberNotActive { member_id: kid, status });
        }
    }
    if expected.msg_type == MsgType::Proposal {
        check_replay(tx, &replay_key(envelope.created_at, &envelope.signature))?;
    }
    tx.put(&map(tables::HISTORY), kid.as_bytes(), body.to_vec());
    Ok(SignedRequest {
        member_id,
        created_at: envelope.created_at,
        payload: envelope.payload,
        signature: envelope.signature,
        envelope: body.to_vec(),
    })
}

fn verify_signature(envelope: &GovEnvelope, pem: &[u8]) -> Result<()> {
    let pem = std::str::from_utf8(pem)
        .map_err(|_| GovError::internal("member certificate is not UTF-8 PEM"))?;
    let cert = Certificate::from_pem(pem)
        .map_err(|e| GovError::internal(format!("member certificate: {e}")))?;
    let key = cert.verifying_key().map_err(|e| GovError::BadSignature { reason: e.to_string() })?;
    envelope.verify(&key).map_err(|e| GovError::BadSignature { reason: e.to_string() })
}

/// The `status` of a member in `members.info` (`Accepted`, `Active`).
pub(crate) fn member_status(tx: &mut Tx, member_id: &str) -> Result<String> {
    let info = tx
        .get(&map(tables::MEMBERS_INFO), member_id.as_bytes())
        .ok_or_else(|| GovError::internal(format!("member {member_id} has a cert but no info")))?;
    let info: Value = serde_json::from_slice(info)
        .map_err(|e| GovError::internal(format!("members.info of {member_id}: {e}")))?;
    info.get("status")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| GovError::internal(format!("members.info of {member_id} has no status")))
}

/// `"<10-digit created_at>:<hex sha256(signature)>"`.
pub(crate) fn replay_key(created_at: u64, signature: &[u8]) -> String {
    format!("{created_at:010}:{}", sha256(signature).to_hex())
}

/// The retained replay keys, oldest first (the table is ordered and keys sort by time).
fn recent_keys(tx: &mut Tx) -> Vec<Vec<u8>> {
    let limit = usize::try_from(*RECENT_PROPOSALS_WINDOW_RANGE.end()).unwrap_or(usize::MAX);
    let recent = map(tables::COSE_RECENT_PROPOSALS);
    // One more than any window can retain: a longer table is corrupt, and reading more
    // would not change the oldest half much; the bound keeps the read finite.
    tx.range(&recent, Bound::Unbounded, Bound::Unbounded, limit.saturating_add(1))
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

fn time_part(key: &[u8]) -> &[u8] {
    key.split(|byte| *byte == b':').next().unwrap_or(key)
}

/// Refuses a duplicate, or a proposal older than the median of the retained window.
fn check_replay(tx: &mut Tx, key: &str) -> Result<()> {
    let recent = map(tables::COSE_RECENT_PROPOSALS);
    if tx.get(&recent, key.as_bytes()).is_some() {
        return Err(GovError::ProposalReplay { key: key.to_owned() });
    }
    let keys = recent_keys(tx);
    if let Some(median) = keys.get(keys.len() / 2) {
        let median = time_part(median);
        let created_at = time_part(key.as_bytes());
        if created_at < median {
            return Err(GovError::ProposalCreatedTooLongAgo {
                created_at: String::from_utf8_lossy(created_at).into_owned(),
                median: String::from_utf8_lossy(median).into_owned(),
            });
        }
    }
    Ok(())
}

/// Enters an accepted proposal into the replay window, evicting the oldest entries so at
/// most the configured window is retained.
pub(crate) fn record_recent_proposal(
    tx: &mut Tx,
    request: &SignedRequest,
    proposal_id: &str,
) -> Result<()> {
    let window = recent_proposals_window(tx)?;
    let keys = recent_keys(tx);
    let recent = map(tables::COSE_RECENT_PROPOSALS);
    let keep = usize::try_from(window.saturating_sub(1)).unwrap_or(usize::MAX);
    let evict = keys.len().saturating_sub(keep);
    for key in keys.into_iter().take(evict) {
        tx.remove(&recent, key);
    }
    let value = serde_json::to_vec(proposal_id).expect("a string serialises to JSON");
    tx.put(&recent, replay_key(request.created_at, &request.signature).into_bytes(), value);
    Ok(())
}

/// `recent_cose_proposals_window_size` from the service configuration, or the default.
fn recent_proposals_window(tx: &mut Tx) -> Result<u64> {
    let Some(config) = tx.get(&map(tables::SERVICE_CONFIG), tables::SINGLETON_KEY) else {
        return Ok(RECENT_PROPOSALS_WINDOW_DEFAULT);
    };
    let config: Value = serde_json::from_slice(config)
        .map_err(|e| GovError::internal(format!("service configuration: {e}")))?;
    match config.get("recent_cose_proposals_window_size") {
        None | Some(Value::Null) => Ok(RECENT_PROPOSALS_WINDOW_DEFAULT),
        Some(value) => value
            .as_u64()
            .filter(|size| RECENT_PROPOSALS_WINDOW_RANGE.contains(size))
            .ok_or_else(|| GovError::internal("recent_cose_proposals_window_size out of range")),
    }
}

#[cfg(test)]
mod tests;
