//! Governance as a member: COSE Sign1-signed requests to `/gov/...` (API version
//! 2024-07-01) and the unsigned reads beside them.
//!
//! A [`MemberSigner`] holds a member's key and its id (hex SHA-256 of the certificate DER,
//! the `kid` the node looks the certificate up by). [`GovClient`] pairs one with a
//! [`Connection`] and a caller-given clock: every signed request carries
//! `ccf.gov.msg.created_at`, and this library never reads the time itself.
//!
//! ```text
//!   propose(actions) ──► POST /gov/members/proposals:create           (msg "proposal")
//!   vote/ballot(id)  ──► POST /gov/members/proposals/{id}/ballots/{member}:submit ("ballot")
//!   withdraw(id)     ──► POST /gov/members/proposals/{id}:withdraw    ("withdrawal")
//!   ack()            ──► POST /gov/members/state-digests/{member}:update ("state_digest")
//!                    ──► POST /gov/members/state-digests/{member}:ack    ("ack")
//!   submit_recovery_share(key)
//!                    ──► GET  /gov/recovery/encrypted-shares/{member}
//!                        (decrypted here with the member's RSA key, never sent)
//!                    ──► POST /gov/recovery/members/{member}:recover ("recovery_share")
//! ```
//!
//! Error answers become [`Error::Status`] with the node's `error.code` and `message`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use coco_crypto::{Certificate, RsaPrivateKey, SigningKey, sign_gov_envelope};
use http::Method;
use serde_json::{Value, json};

use crate::{Connection, Error, Response, Result};

/// The governance API version every `/gov` request names in its `api-version` query.
pub const GOV_API_VERSION: &str = "2024-07-01";

/// The content type of signed governance requests.
pub const COSE_CONTENT_TYPE: &str = "application/cose";

/// The `ccf.gov.msg.type` of a signed request: the node refuses an envelope whose type is
/// not the one its endpoint expects, so a ballot can never be replayed as a proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GovMessage {
    /// Creating a proposal.
    Proposal,
    /// Submitting a ballot on a proposal.
    Ballot,
    /// Withdrawing one's own proposal.
    Withdrawal,
    /// Asking for a fresh state digest to acknowledge.
    StateDigest,
    /// Acknowledging the state digest (an Accepted member becomes Active).
    Ack,
    /// Submitting a decrypted recovery share.
    RecoveryShare,
}

impl GovMessage {
    /// The header value, as CCF spells it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Proposal => "proposal",
            Self::Ballot => "ballot",
            Self::Withdrawal => "withdrawal",
            Self::StateDigest => "state_digest",
            Self::Ack => "ack",
            Self::RecoveryShare => "recovery_share",
        }
    }
}

/// The standard ballot: a constitution `vote` function that always answers `accept`.
#[must_use]
pub fn vote_script(accept: bool) -> String {
    format!("export function vote (proposal, proposerId) {{ return {accept} }}")
}

/// `path` with the governance `api-version` query appended.
#[must_use]
pub fn gov_url(path: &str) -> String {
    format!("{path}?api-version={GOV_API_VERSION}")
}

/// Percent-encodes everything but ASCII letters, digits, `-` and `_`, so an id given on a
/// command line can never add segments (`/`), a query (`?`) or `..` to a path. Real ids
/// (hex digests) pass unchanged.
#[must_use]
pub fn path_segment(id: &str) -> String {
    let mut segment = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            segment.push(char::from(byte));
        } else {
            segment.push_str(&format!("%{byte:02X}"));
        }
    }
    segment
}

/// A member's signing identity: its private key and its member id.
pub struct MemberSigner {
    key: SigningKey,
    member_id: String,
}

impl std::fmt::Debug for MemberSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberSigner").field("member_id", &self.member_id).finish_non_exhaustive()
    }
}

impl MemberSigner {
    /// Loads a member from its PKCS#8 key and its certificate (the first of the PEM); the
    /// member id is the hex SHA-256 of the certificate DER.
    ///
    /// # Errors
    /// [`Error::Identity`] if either does not parse or the key is not the certificate's.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self> {
        let cert = Certificate::from_pem(cert_pem)
            .map_err(|source| Error::Identity { what: "member certificate", source })?;
        let key = SigningKey::from_pkcs8_pem(key_pem)
            .map_err(|source| Error::Identity { what: "member private key", source })?;
        if cert.public_key_spki_der() != key.public_key_der() {
            return Err(Error::Identity {
                what: "member private key",
                source: coco_crypto::Error::InvalidKey("key does not match the member certificate"),
            });
        }
        Ok(Self { key, member_id: cert.sha256_der().to_hex() })
    }

    /// The member id (lowercase hex), the `kid` of every envelope this signer makes.
    #[must_use]
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// A COSE Sign1 envelope over `payload` with the governance headers.
    #[must_use]
    pub fn sign(
        &self,
        message: GovMessage,
        created_at: u64,
        proposal_id: Option<&str>,
        payload: &[u8],
    ) -> Vec<u8> {
        let kid = &self.member_id;
        sign_gov_envelope(&self.key, kid, message.as_str(), created_at, proposal_id, payload)
    }
}

/// A member's governance session over one connection.
pub struct GovClient {
    conn: Connection,
    signer: MemberSigner,
    clock: fn() -> u64,
}

impl std::fmt::Debug for GovClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovClient")
            .field("conn", &self.conn)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl GovClient {
    /// A client signing as the member whose key and certificate are given; `clock` returns
    /// the current unix time in seconds for `ccf.gov.msg.created_at`.
    ///
    /// # Errors
    /// As [`MemberSigner::from_pem`].
    pub fn new(
        conn: Connection,
        key_pem: &str,
        cert_pem: &str,
        clock: fn() -> u64,
    ) -> Result<Self> {
        Ok(Self::with_signer(conn, MemberSigner::from_pem(key_pem, cert_pem)?, clock))
    }

    /// A client signing with an already-loaded `signer`.
    #[must_use]
    pub const fn with_signer(conn: Connection, signer: MemberSigner, clock: fn() -> u64) -> Self {
        Self { conn, signer, clock }
    }

    /// The id of the member this client signs as.
    #[must_use]
    pub fn member_id(&self) -> &str {
        self.signer.member_id()
    }

    /// The underlying connection, for requests outside governance.
    pub const fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Signs `body` as `message` and posts it to `path` (without the query).
    ///
    /// # Errors
    /// [`Error::Status`] for an error answer, or the errors of [`Connection::request`].
    pub async fn post_signed(
        &mut self,
        path: &str,
        message: GovMessage,
        proposal_id: Option<&str>,
        body: &Value,
    ) -> Result<Response> {
        let payload = body.to_string().into_bytes();
        let envelope = self.signer.sign(message, (self.clock)(), proposal_id, &payload);
        let url = gov_url(path);
        let response = self
            .conn
            .request(Method::POST, &url, Some(COSE_CONTENT_TYPE), Bytes::from(envelope))
            .await?;
        response.error_for_status()
    }

    /// Proposes `proposal` (`{"actions": [{"name", "args"}, ...]}`); returns the proposal
    /// as the node reports it (`proposalId`, `proposalState`, ...).
    ///
    /// # Errors
    /// As [`Self::post_signed`]; [`Error::UnexpectedBody`] if the answer is not JSON.
    pub async fn propose(&mut self, proposal: &Value) -> Result<Value> {
        let path = "/gov/members/proposals:create";
        let response = self.post_signed(path, GovMessage::Proposal, None, proposal).await?;
        json_or_null(&response, path)
    }

    /// Votes with the standard ballot ([`vote_script`]).
    ///
    /// # Errors
    /// As [`Self::ballot`].
    pub async fn vote(&mut self, proposal_id: &str, accept: bool) -> Result<Value> {
        self.ballot(proposal_id, &vote_script(accept)).await
    }

    /// Submits `script` (JavaScript exporting `vote(proposal, proposerId)`) as this
    /// member's ballot; returns the proposal after the vote.
    ///
    /// # Errors
    /// As [`Self::propose`].
    pub async fn ballot(&mut self, proposal_id: &str, script: &str) -> Result<Value> {
        let path = format!(
            "/gov/members/proposals/{}/ballots/{}:submit",
            path_segment(proposal_id),
            path_segment(self.signer.member_id())
        );
        let body = json!({ "ballot": script });
        let response =
            self.post_signed(&path, GovMessage::Ballot, Some(proposal_id), &body).await?;
        json_or_null(&response, &path)
    }

    /// Withdraws a proposal this member made; returns the proposal after withdrawal.
    ///
    /// # Errors
    /// As [`Self::propose`].
    pub async fn withdraw(&mut self, proposal_id: &str) -> Result<Value> {
        let path = format!("/gov/members/proposals/{}:withdraw", path_segment(proposal_id));
        let body = json!({});
        let response =
            self.post_signed(&path, GovMessage::Withdrawal, Some(proposal_id), &body).await?;
        json_or_null(&response, &path)
    }

    /// Asks for a fresh state digest (`{"memberId", "stateDigest"}`).
    ///
    /// # Errors
    /// As [`Self::propose`].
    pub async fn update_state_digest(&mut self) -> Result<Value> {
        let path =
            format!("/gov/members/state-digests/{}:update", path_segment(self.signer.member_id()));
        let response = self.post_signed(&path, GovMessage::StateDigest, None, &json!({})).await?;
        json_or_null(&response, &path)
    }

    /// Fetches a fresh state digest and acknowledges it: an Accepted member becomes
    /// Active (acknowledging again is harmless).
    ///
    /// # Errors
    /// As [`Self::propose`]; [`Error::UnexpectedBody`] if the digest answer has no
    /// `stateDigest` string.
    pub async fn ack(&mut self) -> Result<()> {
        let digest = self.update_state_digest().await?;
        let Some(state_digest) = digest.get("stateDigest").and_then(Value::as_str) else {
            let member = path_segment(self.signer.member_id());
            return Err(Error::UnexpectedBody {
                path: format!("/gov/members/state-digests/{member}:update"),
                reason: format!("no stateDigest string in {digest}"),
            });
        };
        self.ack_state_digest(state_digest).await
    }

    /// Acknowledges `state_digest`, which must be the one the node last issued to this
    /// member ([`Self::update_state_digest`]).
    ///
    /// # Errors
    /// As [`Self::post_signed`] (`StateDigestMismatch` for any other digest).
    pub async fn ack_state_digest(&mut self, state_digest: &str) -> Result<()> {
        let member = path_segment(self.signer.member_id());
        let path = format!("/gov/members/state-digests/{member}:ack");
        let body = json!({ "stateDigest": state_digest });
        self.post_signed(&path, GovMessage::Ack, None, &body).await?;
        Ok(())
    }

    /// Fetches this member's recovery share, decrypts it with the member's encryption key
    /// (which never leaves this process) and submits it; returns the node's answer
    /// (`message`, `submittedCount`, `recoveryThreshold`).
    ///
    /// # Errors
    /// As [`Self::post_signed`] (`ServiceNotWaitingForRecoveryShares` before members
    /// accepted the recovery, `RecoveryFailed` when the shares do not rebuild the secret);
    /// [`Error::UnexpectedBody`] if the share is missing or does not decrypt with `key`.
    pub async fn submit_recovery_share(&mut self, key: &RsaPrivateKey) -> Result<Value> {
        let member = path_segment(self.signer.member_id());
        let path = format!("/gov/recovery/encrypted-shares/{member}");
        let answer = gov_get(&mut self.conn, &path).await?;
        let unexpected = |reason: String| Error::UnexpectedBody { path: path.clone(), reason };
        let encrypted = answer["encryptedShare"]
            .as_str()
            .and_then(|text| BASE64.decode(text).ok())
            .ok_or_else(|| unexpected(format!("no base64 encryptedShare in {answer}")))?;
        let share = key
            .decrypt_oaep_sha256(&encrypted)
            .map_err(|e| unexpected(format!("the share does not decrypt with this key: {e}")))?;
        let path = format!("/gov/recovery/members/{member}:recover");
        let body = json!({ "share": BASE64.encode(share) });
        let response = self.post_signed(&path, GovMessage::RecoveryShare, None, &body).await?;
        json_or_null(&response, &path)
    }

    /// Every proposal (`{"value": [...]}`).
    ///
    /// # Errors
    /// As [`list_proposals`].
    pub async fn list(&mut self) -> Result<Value> {
        list_proposals(&mut self.conn).await
    }

    /// One proposal.
    ///
    /// # Errors
    /// As [`list_proposals`].
    pub async fn show(&mut self, proposal_id: &str) -> Result<Value> {
        proposal(&mut self.conn, proposal_id).await
    }

    /// The actions of one proposal.
    ///
    /// # Errors
    /// As [`list_proposals`].
    pub async fn actions(&mut self, proposal_id: &str) -> Result<Value> {
        proposal_actions(&mut self.conn, proposal_id).await
    }

    /// The constitution (`{"constitution": "<JavaScript>"}`).
    ///
    /// # Errors
    /// As [`list_proposals`].
    pub async fn constitution(&mut self) -> Result<Value> {
        constitution(&mut self.conn).await
    }
}

/// `GET path` (with the `api-version` query) as JSON. Reads need no signature.
///
/// # Errors
/// [`Error::Status`] for an error answer, [`Error::UnexpectedBody`] for a body that is not
/// JSON, or the errors of [`Connection::request`].
pub async fn gov_get(conn: &mut Connection, path: &str) -> Result<Value> {
    let response = conn.get(&gov_url(path)).await?.error_for_status()?;
    json_or_null(&response, path)
}

/// Every proposal (`GET /gov/members/proposals`).
///
/// # Errors
/// As [`gov_get`].
pub async fn list_proposals(conn: &mut Connection) -> Result<Value> {
    gov_get(conn, "/gov/members/proposals").await
}

/// One proposal (`GET /gov/members/proposals/{id}`).
///
/// # Errors
/// As [`gov_get`].
pub async fn proposal(conn: &mut Connection, proposal_id: &str) -> Result<Value> {
    gov_get(conn, &format!("/gov/members/proposals/{}", path_segment(proposal_id))).await
}

/// The actions of one proposal (`GET /gov/members/proposals/{id}/actions`).
///
/// # Errors
/// As [`gov_get`].
pub async fn proposal_actions(conn: &mut Connection, proposal_id: &str) -> Result<Value> {
    let path = format!("/gov/members/proposals/{}/actions", path_segment(proposal_id));
    gov_get(conn, &path).await
}

/// The constitution (`GET /gov/service/constitution`).
///
/// # Errors
/// As [`gov_get`].
pub async fn constitution(conn: &mut Connection) -> Result<Value> {
    gov_get(conn, "/gov/service/constitution").await
}

/// The body as JSON, or `null` when there is none (204).
fn json_or_null(response: &Response, path: &str) -> Result<Value> {
    if response.body.is_empty() {
        return Ok(Value::Null);
    }
    response.json(path)
}

#[cfg(test)]
mod tests;
