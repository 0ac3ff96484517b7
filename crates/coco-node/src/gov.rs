//! Governance on the node: a signed `/gov` request is verified and executed in one KV
//! transaction, under the node lock, by `coco-gov` and the constitution; the effects of an
//! accepted proposal that belong to the node are carried out in the same transaction.
//!
//! Governance is rare and its transactions small, so it runs under the node lock: no
//! conflicts, and the Merkle root a proposal id commits to is the one of the state it read.

use std::ops::Bound;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use coco_crypto::Aes256GcmKey;
use coco_gov::{Expected, GovEffect, GovError, GovLimits, Governance, MsgType, SignedRequest};
use coco_js::JsLimits;
use coco_kv::Tx;
use coco_types::{Seqno, TxId};
use serde_json::Value;

use crate::error::Error;
use crate::node::{Commit, Node, ServiceStatus};
use crate::secrets::LedgerSecret;

/// A signed governance request, as routed from its URL.
#[derive(Clone, Copy, Debug)]
pub enum GovCall<'a> {
    /// `POST /gov/members/proposals:create`.
    Propose,
    /// `POST /gov/members/proposals/{proposalId}/ballots/{memberId}:submit`.
    Ballot {
        /// From the URL.
        proposal_id: &'a str,
        /// From the URL.
        member_id: &'a str,
    },
    /// `POST /gov/members/proposals/{proposalId}:withdraw`.
    Withdraw {
        /// From the URL.
        proposal_id: &'a str,
    },
    /// `POST /gov/members/state-digests/{memberId}:update`.
    UpdateStateDigest {
        /// From the URL.
        member_id: &'a str,
    },
    /// `POST /gov/members/state-digests/{memberId}:ack`.
    Ack {
        /// From the URL.
        member_id: &'a str,
    },
    /// `POST /gov/recovery/members/{memberId}:recover`.
    RecoveryShare {
        /// From the URL.
        member_id: &'a str,
    },
}

/// A governance read.
#[derive(Clone, Copy, Debug)]
pub enum GovRead<'a> {
    /// `GET /gov/members/proposals`.
    Proposals,
    /// `GET /gov/members/proposals/{proposalId}`.
    Proposal(&'a str),
    /// `GET /gov/members/proposals/{proposalId}/actions`.
    Actions(&'a str),
    /// `GET /gov/members/proposals/{proposalId}/ballots/{memberId}`.
    Ballot(&'a str, &'a str),
    /// `GET /gov/members/state-digests/{memberId}`.
    StateDigest(&'a str),
    /// `GET /gov/service/constitution`.
    Constitution,
    /// `GET /gov/service/info`.
    ServiceInfo,
    /// `GET /gov/service/members`, or `/gov/service/members/{memberId}`.
    Members(Option<&'a str>),
    /// `GET /gov/service/users`, or `/gov/service/users/{userId}`.
    Users(Option<&'a str>),
    /// `GET /gov/service/nodes`, or `/gov/service/nodes/{nodeId}`.
    Nodes(Option<&'a str>),
    /// `GET /gov/service/transactions/commit`.
    Commit,
    /// `GET /gov/service/transactions/{transactionId}`.
    Transaction(TxId),
    /// `GET /gov/recovery/encrypted-shares/{memberId}`.
    EncryptedShare(&'a str),
}

/// What a governance request returns: a JSON body (none for 204) and the TxId it was
/// ordered at, if it wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct GovReply {
    /// The response body.
    pub body: Option<Value>,
    /// Where the request's transaction was ordered.
    pub tx: Option<TxId>,
}

/// Why a governance request failed: the request (a typed gov error with its status and
/// code) or the node.
#[derive(Debug, thiserror::Error)]
pub enum GovFailure {
    /// The request was refused; nothing changed.
    #[error(transparent)]
    Gov(#[from] GovError),
    /// The node failed.
    #[error(transparent)]
    Node(#[from] Error),
    /// What the read asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The node refused the request in its current state (CCF's status and code).
    #[error("{message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// CCF's error code.
        code: &'static str,
        /// What to do about it.
        message: String,
    },
}

impl Node {
    /// Verifies and executes a signed governance request.
    ///
    /// # Errors
    /// [`GovFailure::Gov`] for a refused request (the transaction is discarded);
    /// [`GovFailure::Node`] if committing fails.
    pub fn governance(&mut self, call: GovCall<'_>, body: &[u8]) -> Result<GovReply, GovFailure> {
        let mut tx = self.begin()?;
        let request = coco_gov::verify_request(&mut tx, body, expected(call))?;
        if let GovCall::RecoveryShare { member_id } = call {
            return self.submit_recovery_share(tx, &request, member_id);
        }
        let (body, effects) = self.execute_call(&mut tx, call, &request)?;
        let outcome = self.carry_out(&mut tx, &effects)?;
        let tx = match self.commit(tx)? {
            Commit::Ordered(tx) => Some(tx),
            Commit::ReadOnly => None,
        };
        if let Some(status) = outcome.new_status {
            self.service_status = status;
            tracing::info!(status = status.as_str(), "service status changed");
        }
        if let (Some(key), Some(tx)) = (outcome.new_secret, tx) {
            self.rotate_ledger_secret(tx.seqno.next(), key)?;
        }
        Ok(GovReply { body, tx })
    }

    /// Runs a signed governance request without ordering anything: the checks, the
    /// constitution and the node's effects on a transaction that is then dropped. The host
    /// calls this before it asks consensus for a seqno, so a refused request costs no entry.
    ///
    /// # Errors
    /// As [`Self::governance`].
    pub fn check_governance(&self, call: GovCall<'_>, body: &[u8]) -> Result<(), GovFailure> {
        let mut tx = self.begin()?;
        let request = coco_gov::verify_request(&mut tx, body, expected(call))?;
        if let GovCall::RecoveryShare { member_id } = call {
            return self.check_recovery_share(&mut tx, &request, member_id).map(drop);
        }
        let (_, effects) = self.execute_call(&mut tx, call, &request)?;
        self.carry_out(&mut tx, &effects).map(drop)
    }

    fn execute_call(
        &self,
        tx: &mut Tx,
        call: GovCall<'_>,
        request: &SignedRequest,
    ) -> Result<(Option<Value>, Vec<GovEffect>), GovFailure> {
        let root = self.merkle_root();
        let governance = || Governance::new(JsLimits::default(), GovLimits::default());
        Ok(match call {
            GovCall::Propose => {
                let (info, effects) = governance()?.propose(tx, request, root)?;
                (Some(info.to_api_json()), effects)
            }
            GovCall::Ballot { proposal_id, member_id } => {
                let (info, effects) = governance()?.ballot(tx, request, proposal_id, member_id)?;
                (Some(info.to_api_json()), effects)
            }
            GovCall::Withdraw { proposal_id } => {
                (Some(governance()?.withdraw(tx, request, proposal_id)?.to_api_json()), vec![])
            }
            GovCall::UpdateStateDigest { member_id } => {
                (Some(coco_gov::update_state_digest(tx, request, member_id, root)?), vec![])
            }
            GovCall::Ack { member_id } => (None, coco_gov::ack(tx, request, member_id)?),
            GovCall::RecoveryShare { .. } => unreachable!("recovery shares are routed apart"),
        })
    }

    /// Carries out what accepted proposals ask of the node, in the proposal's transaction.
    /// A rekey (asked for, or due to a membership change, W35) records the current secret
    /// wrapped under a new one; the new one becomes current after the commit. While a
    /// recovery is under way, rekeys and share refreshes wait: the end of the recovery
    /// does both, and until then the shares in the ledger must stay the old service's.
    /// A trusted node is endorsed here; the host then adds it to the configuration.
    fn carry_out(&self, tx: &mut Tx, effects: &[GovEffect]) -> Result<Outcome, GovFailure> {
        let mut outcome = Outcome { new_status: None, new_secret: None, refresh_shares: false };
        let recovering = matches!(
            self.service_status,
            ServiceStatus::Recovering | ServiceStatus::WaitingForRecoveryShares
        );
        for effect in effects {
            match effect {
                GovEffect::TransitionServiceToOpen {
                    previous_service_identity,
                    next_service_identity,
                } => {
                    let identities =
                        (previous_service_identity.as_deref(), next_service_identity.as_deref());
                    outcome.new_status = self.transition_to_open(tx, identities)?;
                }
                GovEffect::TriggerLedgerRekey | GovEffect::MembersChanged if recovering => {
                    tracing::info!(?effect, "deferred to the end of the recovery");
                }
                GovEffect::TriggerLedgerRekey | GovEffect::MembersChanged => {
                    if outcome.new_secret.is_none() {
                        outcome.new_secret = Some(self.record_rekey(tx, None)?);
                    }
                }
                GovEffect::TriggerRecoverySharesRefresh
                | GovEffect::SetRecoveryThreshold { .. } => {
                    outcome.refresh_shares = !recovering;
                }
                GovEffect::TransitionNodeToTrusted { node_id } => self.endorse_node(tx, node_id)?,
                GovEffect::RemoveNode { node_id } => {
                    // nodes.info says Retired; the host takes it out of the configuration.
                    tracing::info!(node = node_id.as_str(), "node retired");
                }
            }
        }
        // Shares always cover the secret that will be current after this transaction.
        match &outcome.new_secret {
            Some(next) => {
                let valid_from = Seqno(self.last_seqno().0 + 2);
                crate::recovery::issue_recovery_shares(tx, next, valid_from)?;
            }
            None if outcome.refresh_shares => {
                let current = self.identity.ledger_secrets.current();
                crate::recovery::issue_recovery_shares(tx, &current.key, current.valid_from)?;
            }
            None => {}
        }
        Ok(outcome)
    }

    /// `transition_service_to_open`: Opening → Open; after a recovery, Recovering →
    /// `WaitingForRecoveryShares` once the proposal names both service identities right.
    fn transition_to_open(
        &self,
        tx: &mut Tx,
        (previous, next): (Option<&str>, Option<&str>),
    ) -> Result<Option<ServiceStatus>, GovFailure> {
        let next_status = match self.service_status {
            ServiceStatus::Opening => ServiceStatus::Open,
            ServiceStatus::Recovering => {
                let info = read_service_info(tx)?;
                let same = |pem: Option<&str>, expected: &Value| {
                    pem.map(str::trim) == expected.as_str().map(str::trim)
                };
                if !same(next, &info["cert"]) || !same(previous, &info["previous_service_identity"])
                {
                    return Err(GovFailure::Refused {
                        status: 400,
                        code: "InvalidServiceIdentity",
                        message: "a recovered service opens only when the proposal names its \
                                  previous_service_identity and next_service_identity (PEM) \
                                  as GET /gov/service/info reports them"
                            .to_owned(),
                    });
                }
                ServiceStatus::WaitingForRecoveryShares
            }
            ServiceStatus::Open | ServiceStatus::WaitingForRecoveryShares => {
                tracing::info!(status = self.service_status.as_str(), "already opening: no-op");
                return Ok(None);
            }
        };
        write_service_status(tx, next_status)?;
        Ok(Some(next_status))
    }

    /// Writes the current ledger secret wrapped under a fresh one; returns the fresh one.
    /// At the end of a recovery, `previous_service` is the old service's last secret: it is
    /// wrapped under the fresh one too, so the chain runs from the newest secret back
    /// across the recovery to the first.
    pub(crate) fn record_rekey(
        &self,
        tx: &mut Tx,
        previous_service: Option<&LedgerSecret>,
    ) -> Result<Aes256GcmKey, GovFailure> {
        let crypto = |what: &'static str| crate::error::crypto(what);
        let next = Aes256GcmKey::generate().map_err(crypto("new ledger secret"))?;
        let previous = self.identity.ledger_secrets.current();
        let wrapped = coco_crypto::wrap_key(&next, previous.key.raw(), SECRET_CHAIN_AAD)
            .map_err(crypto("wrapping the ledger secret"))?;
        let mut record = serde_json::json!({
            "version": self.last_seqno().next().0,
            "previous_valid_from": previous.valid_from.0,
            "encrypted_ledger_secret": BASE64.encode(wrapped),
        });
        if let Some(old) = previous_service {
            let wrapped = coco_crypto::wrap_key(&next, old.key.raw(), SECRET_CHAIN_AAD)
                .map_err(crypto("wrapping the previous service's ledger secret"))?;
            record["previous_service"] = serde_json::json!({
                "valid_from": old.valid_from.0,
                "encrypted_ledger_secret": BASE64.encode(wrapped),
            });
        }
        let map = crate::node::signature::map(crate::tables::HISTORICAL_ENCRYPTED_LEDGER_SECRET);
        let bytes = serde_json::to_vec(&record).expect("JSON values serialise");
        tx.put(&map, crate::tables::SINGLETON_KEY, bytes);
        // This transaction is the next seqno; the new secret seals the one after it.
        self.share_secret_with_nodes(tx, &next, Seqno(self.last_seqno().0 + 2))?;
        Ok(next)
    }

    /// Makes `key` the ledger secret from `valid_from` on. It is sealed before it is used:
    /// if sealing fails, the node keeps the old secret and the recorded one is never used.
    pub(crate) fn rotate_ledger_secret(
        &mut self,
        valid_from: Seqno,
        key: Aes256GcmKey,
    ) -> Result<(), Error> {
        let previous = self.identity.ledger_secrets.clone();
        self.identity.ledger_secrets.rotate(valid_from, key);
        if let Err(e) = self.identity.seal_secrets() {
            self.identity.ledger_secrets = previous;
            return Err(e);
        }
        tracing::info!(%valid_from, "ledger secret rotated");
        Ok(())
    }

    /// Answers a governance read from a consistent snapshot.
    ///
    /// # Errors
    /// [`GovFailure::Gov`] for a missing proposal, ballot or digest.
    pub fn governance_read(&self, read: GovRead<'_>) -> Result<Value, GovFailure> {
        let mut tx = self.begin_read();
        Ok(match read {
            GovRead::Proposals => {
                let open: Vec<Value> = coco_gov::list(&mut tx)?
                    .iter()
                    .map(coco_gov::ProposalInfo::to_api_json)
                    .collect();
                serde_json::json!({ "value": open })
            }
            GovRead::Proposal(id) => coco_gov::get(&mut tx, id)?.to_api_json(),
            GovRead::Actions(id) => coco_gov::actions(&mut tx, id)?,
            GovRead::Ballot(id, member) => {
                serde_json::json!({ "script": coco_gov::ballot_script(&mut tx, id, member)? })
            }
            GovRead::StateDigest(member) => coco_gov::state_digest(&mut tx, member)?,
            GovRead::Constitution => {
                serde_json::json!({ "constitution": coco_gov::constitution(&mut tx)? })
            }
            GovRead::ServiceInfo => self.service_info_json(&mut tx)?,
            GovRead::Members(only) => listing(members_json(&mut tx, only), only, "member")?,
            GovRead::Users(only) => listing(users_json(&mut tx, only), only, "user")?,
            GovRead::Nodes(only) => listing(nodes_json(&mut tx, only), only, "node")?,
            GovRead::Commit => {
                let committed = self.committed();
                serde_json::json!({ "transactionId": committed.to_string(), "status": "Committed" })
            }
            GovRead::EncryptedShare(member) => {
                let map = crate::node::signature::map(crate::recovery::RECOVERY_SHARES);
                let record = tx.get(&map, member.as_bytes()).ok_or_else(|| {
                    GovFailure::NotFound(format!("no recovery share for {member}"))
                })?;
                let record: Value = serde_json::from_slice(record).unwrap_or(Value::Null);
                serde_json::json!({ "encryptedShare": record["encrypted_share"] })
            }
            GovRead::Transaction(tx_id) => serde_json::json!({
                "transactionId": tx_id.to_string(),
                "status": self.tx_status(tx_id),
            }),
        })
    }

    fn service_info_json(&self, tx: &mut Tx) -> Result<Value, GovFailure> {
        let map = crate::node::signature::map(crate::tables::SERVICE_INFO);
        let info = tx.get(&map, crate::tables::SINGLETON_KEY).unwrap_or_default();
        let info: Value = serde_json::from_slice(info).unwrap_or(Value::Null);
        Ok(serde_json::json!({
            "status": info["status"],
            "certificate": info["cert"],
            "recoveryCount": info["recovery_count"],
            "previousServiceIdentity": info["previous_service_identity"],
            "creationTransactionId": crate::node::genesis_tx().to_string(),
        }))
    }
}

/// The `(id, value)` entries of `table`, all or the one with `only` as id.
fn entries(tx: &mut Tx, table: &str, only: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let map = crate::node::signature::map(table);
    let (start, end) = match only {
        Some(id) => (Bound::Included(id.as_bytes()), Bound::Included(id.as_bytes())),
        None => (Bound::Unbounded, Bound::Unbounded),
    };
    tx.range(&map, start, end, LISTING_MAX)
        .into_iter()
        .map(|(id, value)| (String::from_utf8_lossy(&id).into_owned(), value))
        .collect()
}

/// The JSON value stored under `id` in `table` (null when absent or not JSON).
fn json_at(tx: &mut Tx, table: &str, id: &str) -> Value {
    let map = crate::node::signature::map(table);
    tx.get(&map, id.as_bytes())
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .unwrap_or_default()
}

/// Members in CCF's API shape, all or the one with `only` as id.
fn members_json(tx: &mut Tx, only: Option<&str>) -> Vec<Value> {
    use coco_gov::tables::{MEMBERS_CERTS, MEMBERS_ENCRYPTION_PUBLIC_KEYS, MEMBERS_INFO};
    let mut members = Vec::new();
    for (id, cert) in entries(tx, MEMBERS_CERTS, only) {
        let info = json_at(tx, MEMBERS_INFO, &id);
        let map = crate::node::signature::map(MEMBERS_ENCRYPTION_PUBLIC_KEYS);
        let key = tx.get(&map, id.as_bytes()).map(|k| String::from_utf8_lossy(k).into_owned());
        members.push(serde_json::json!({
            "memberId": id,
            "status": info["status"],
            "memberData": info["member_data"],
            "certificate": String::from_utf8_lossy(&cert),
            "publicEncryptionKey": key,
        }));
    }
    members
}

/// Users in the shape of members (`userId`, `certificate`, `userData`).
fn users_json(tx: &mut Tx, only: Option<&str>) -> Vec<Value> {
    let mut users = Vec::new();
    for (id, cert) in entries(tx, crate::tables::USERS_CERTS, only) {
        let info = json_at(tx, crate::tables::USERS_INFO, &id);
        users.push(serde_json::json!({
            "userId": id,
            "certificate": String::from_utf8_lossy(&cert),
            "userData": info["user_data"],
        }));
    }
    users
}

/// Nodes in CCF's API shape (`nodeId`, `status`, `certificate`, `retiredCommitted`).
fn nodes_json(tx: &mut Tx, only: Option<&str>) -> Vec<Value> {
    let mut nodes = Vec::new();
    for (id, info) in entries(tx, crate::tables::NODES_INFO, only) {
        let info: Value = serde_json::from_slice(&info).unwrap_or_default();
        let map = crate::node::signature::map(crate::tables::NODES_ENDORSED_CERTIFICATES);
        let cert = tx.get(&map, id.as_bytes()).map(|c| String::from_utf8_lossy(c).into_owned());
        nodes.push(serde_json::json!({
            "nodeId": id,
            "status": info["status"],
            "certificate": cert,
            "retiredCommitted": info["retired_committed"],
        }));
    }
    nodes
}

/// `{"value": [...]}` for a listing; the one item, or 404, for a lookup by id.
fn listing(items: Vec<Value>, only: Option<&str>, what: &str) -> Result<Value, GovFailure> {
    match only {
        None => Ok(serde_json::json!({ "value": items })),
        Some(id) => {
            items.into_iter().next().ok_or_else(|| GovFailure::NotFound(format!("no {what} {id}")))
        }
    }
}

/// Most members, users or nodes a listing returns.
const LISTING_MAX: usize = 1000;

/// Authenticated data binding a wrapped ledger secret to its purpose.
pub(crate) const SECRET_CHAIN_AAD: &[u8] = b"coco ledger secret chain";

/// What carrying out a proposal's effects changed.
struct Outcome {
    new_status: Option<ServiceStatus>,
    new_secret: Option<Aes256GcmKey>,
    refresh_shares: bool,
}

/// `public:ccf.gov.service.info` as JSON.
pub(crate) fn read_service_info(tx: &mut Tx) -> Result<Value, GovFailure> {
    let map = crate::node::signature::map(crate::tables::SERVICE_INFO);
    let corrupt = |reason: &str| Error::Corrupt {
        what: "service info".to_owned(),
        reason: reason.to_owned(),
    };
    let info = tx.get(&map, crate::tables::SINGLETON_KEY).ok_or_else(|| corrupt("missing"))?;
    Ok(serde_json::from_slice(info).map_err(|_| corrupt("not JSON"))?)
}

/// Sets `service.info`'s status.
pub(crate) fn write_service_status(tx: &mut Tx, status: ServiceStatus) -> Result<(), GovFailure> {
    let mut info = read_service_info(tx)?;
    info["status"] = Value::from(status.as_str());
    let map = crate::node::signature::map(crate::tables::SERVICE_INFO);
    let bytes = serde_json::to_vec(&info).expect("JSON values serialise");
    tx.put(&map, crate::tables::SINGLETON_KEY, bytes);
    Ok(())
}

fn expected(call: GovCall<'_>) -> Expected<'_> {
    let (msg_type, proposal_id, member_id) = match call {
        GovCall::Propose => (MsgType::Proposal, None, None),
        GovCall::Ballot { proposal_id, member_id } => {
            (MsgType::Ballot, Some(proposal_id), Some(member_id))
        }
        GovCall::Withdraw { proposal_id } => (MsgType::Withdrawal, Some(proposal_id), None),
        GovCall::UpdateStateDigest { member_id } => (MsgType::StateDigest, None, Some(member_id)),
        GovCall::Ack { member_id } => (MsgType::Ack, None, Some(member_id)),
        GovCall::RecoveryShare { member_id } => (MsgType::RecoveryShare, None, Some(member_id)),
    };
    Expected { msg_type, proposal_id, member_id }
}
