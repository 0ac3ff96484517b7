//! Disaster recovery (W31, CCF's recovery): a new service rises from a copy of an old
//! ledger when every node of the old one is lost.
//!
//! ```text
//!  coco node recover ─▶ public replay (no secret: public maps, Merkle leaves from the
//!                       headers' commit evidence digests, signatures)
//!                    ─▶ recovery tx: new service identity (previous one recorded), new
//!                       node, old nodes Retired, status Recovering, a new ledger secret
//!  members: transition_service_to_open(previous, next identity) ─▶ WaitingForRecoveryShares
//!  members: POST /gov/recovery/members/{id}:recover {share} (kept in a private map)
//!  threshold reached ─▶ shares ─▶ wrapping key ─▶ old service's last secret ─▶ walk the
//!                       historical chain back to seqno 1 ─▶ replay everything decrypted
//!                    ─▶ completion tx: Open, rekey linking the old chain to the new,
//!                       fresh shares for the members
//! ```
//!
//! Every step is a transaction in the ledger, and every state is restartable: a node that
//! stops mid-recovery comes back in the same state (its own secret is sealed, the old
//! ones are not known until the shares are in).

use std::ops::Bound;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use coco_crypto::{Aes256GcmKey, Share};
use coco_gov::SignedRequest;
use coco_kv::{Store, Tx};
use coco_types::{Digest, Seqno, TxId, View};
use serde_json::{Value, json};

use crate::config::NodeConfig;
use crate::error::{Error, Result, crypto};
use crate::gov::{GovFailure, GovReply, SECRET_CHAIN_AAD, read_service_info, write_service_status};
use crate::identity::Identity;
use crate::node::signature::map;
use crate::node::{Commit, Node, ServiceStatus, replay};
use crate::recovery::{RECOVERY_AAD, RECOVERY_SHARES, WRAPPED_LEDGER_SECRET};
use crate::secrets::{LedgerSecret, LedgerSecrets};
use crate::tables::{self, SINGLETON_KEY};

/// Shares members submitted, by member id (a private map: the ledger encrypts them).
pub const SUBMITTED_SHARES: &str = "ccf.internal.submitted_shares";
/// Most shares a recovery takes (Shamir over GF(2^8)).
const SHARES_MAX: usize = 255;

impl Node {
    /// Starts a new service from the ledger in `config.storage.ledger_dir`, a copy of a
    /// lost service's ledger: replays its public state, then records the new service
    /// (status Recovering, its identity endorsing none of the old nodes) and commits.
    ///
    /// # Errors
    /// [`Error::Recovery`] if the state directory already holds a node or there is no
    /// ledger; replay errors for a damaged ledger.
    pub fn recover(config: &NodeConfig, now_ms: u64) -> Result<Self> {
        config.validate().map_err(|e| Error::Recovery(e.to_string()))?;
        let state_dir = &config.storage.state_dir;
        if Identity::load(state_dir)?.is_some() {
            return Err(Error::Recovery(format!(
                "{} already holds a node: recover into an empty state directory",
                state_dir.display()
            )));
        }
        let ledger = coco_ledger::Ledger::open(
            &config.storage.ledger_dir,
            config.limits.ledger_chunk_bytes,
        )?;
        if ledger.last_seqno() == Seqno(0) {
            return Err(Error::Recovery(format!(
                "{} holds no ledger to recover",
                config.storage.ledger_dir.display()
            )));
        }
        let sans = &config.network.subject_alt_names;
        let identity = Identity::generate(state_dir, sans, now_ms / 1000)?;
        let snapshots = coco_ledger::SnapshotDir::open(&config.storage.snapshots_dir)?;
        let node = Self::assemble(identity, (ledger, snapshots), config.limits.clone(), now_ms);
        let mut node = replay::replay(node)?;
        node.start_recovery(now_ms, &config.network.listen_address.to_string())?;
        Ok(node)
    }

    /// Drops what no signature covers, then orders the recovery transaction, a consensus
    /// configuration of this node alone and a signature in a new view, made durable.
    fn start_recovery(&mut self, now_ms: u64, address: &str) -> Result<()> {
        let signed = *self.signatures.keys().next_back().expect("replay found a signature");
        self.truncate_from(signed.next())?;
        self.view = View(self.view.0 + 1);
        self.flush()?;
        let valid_from = self.last_seqno().next();
        let secret = Aes256GcmKey::generate().map_err(crypto("ledger secret"))?;
        self.identity.ledger_secrets.rotate(valid_from, secret);
        self.identity.seal()?;
        let mut tx = self.kv.begin();
        let info = read_service_info(&mut tx).map_err(into_error)?;
        let previous_count = info["recovery_count"].as_u64().unwrap_or(0);
        let info = json!({
            "cert": self.service_cert_pem,
            "status": ServiceStatus::Recovering.as_str(),
            "previous_service_identity": info["cert"],
            "recovery_count": previous_count + 1,
        });
        tx.put(&map(tables::SERVICE_INFO), SINGLETON_KEY, to_vec(&info));
        self.retire_old_nodes(&mut tx);
        let node_id = self.identity.node_id.to_hex();
        let node_info = json!({
            "status": "Trusted",
            "quote_info": {"format": "Insecure_Virtual"},
            "retired_committed": false,
            "node_to_node_address": address,
        });
        tx.put(&map(tables::NODES_INFO), node_id.as_bytes(), to_vec(&node_info));
        let cert = self.node_cert_pem.as_bytes().to_vec();
        tx.put(&map(tables::NODES_ENDORSED_CERTIFICATES), node_id.as_bytes(), cert);
        let coco_kv::CommitOutcome::Written { seqno, write_set } = self.kv.commit(tx)? else {
            unreachable!("the recovery transaction writes");
        };
        self.seal_or_undo(seqno, &write_set, false, false, Digest::ZERO)?;
        self.service_status = ServiceStatus::Recovering;
        let id = self.identity.node_id;
        let peer = coco_consensus::Peer { address: address.to_owned() };
        self.seal_membership(&coco_consensus::Membership {
            configs: vec![std::iter::once(id).collect()],
            nodes: std::iter::once((id, peer)).collect(),
        })?;
        self.emit_signature(now_ms)?;
        self.flush()?;
        self.bootstrap_consensus(address)?;
        let previous = info["recovery_count"].as_u64().unwrap_or_default();
        tracing::info!(committed = %self.committed, recovery = previous, "recovery started");
        self.check_invariants();
        Ok(())
    }

    /// Marks every node of the lost service Retired: none of them may sign again.
    fn retire_old_nodes(&self, tx: &mut Tx) {
        let nodes =
            tx.range(&map(tables::NODES_INFO), Bound::Unbounded, Bound::Unbounded, NODES_MAX);
        for (id, info) in nodes {
            let mut info: Value = serde_json::from_slice(&info).unwrap_or_else(|_| json!({}));
            info["status"] = Value::from("Retired");
            info["retired_committed"] = Value::from(true);
            tx.put(&map(tables::NODES_INFO), id, to_vec(&info));
        }
    }

    /// `POST /gov/recovery/members/{id}:recover`: records the member's share; once the
    /// shares reach the threshold, recovers the private state and opens the service.
    pub(crate) fn submit_recovery_share(
        &mut self,
        mut tx: Tx,
        request: &SignedRequest,
        member_id: &str,
    ) -> Result<GovReply, GovFailure> {
        let (wrapped, share) = self.check_recovery_share(&mut tx, request, member_id)?;
        tx.put(&map(SUBMITTED_SHARES), member_id.as_bytes(), share.to_bytes());
        let shares = submitted_shares(&mut tx);
        let submitted = shares.len();
        let threshold = usize::from(wrapped.threshold);
        let mut message =
            format!("{submitted}/{threshold}: Recovery share successfully submitted.");
        let at = if submitted < threshold {
            let Commit::Ordered(at) = self.commit(tx)? else {
                unreachable!("a share submission writes");
            };
            at
        } else {
            // The end of the recovery rebuilds the store: this transaction's snapshot is
            // gone, and the shares it held are used (and cleared) there instead.
            drop(tx);
            message.push_str(" End of recovery procedure initiated.");
            self.finish_recovery(&shares)?
        };
        let body = json!({
            "message": message,
            "submittedCount": submitted,
            "recoveryThreshold": threshold,
        });
        Ok(GovReply { body: Some(body), tx: Some(at) })
    }

    /// The checks of a share submission: the service waits for shares, the member holds
    /// one, and the payload is a share of the right split.
    pub(crate) fn check_recovery_share(
        &self,
        tx: &mut Tx,
        request: &SignedRequest,
        member_id: &str,
    ) -> Result<(WrappedSecret, Share), GovFailure> {
        if self.service_status != ServiceStatus::WaitingForRecoveryShares {
            return Err(GovFailure::Refused {
                status: 403,
                code: "ServiceNotWaitingForRecoveryShares",
                message: format!(
                    "the service is {}: shares are taken only once members accepted the \
                     recovery (transition_service_to_open)",
                    self.service_status.as_str()
                ),
            });
        }
        let wrapped = WrappedSecret::read(tx)?;
        if tx.get(&map(RECOVERY_SHARES), member_id.as_bytes()).is_none() {
            return Err(GovFailure::Refused {
                status: 403,
                code: "NotARecoveryMember",
                message: format!("member {member_id} holds no recovery share"),
            });
        }
        let share = parse_share(request, wrapped.threshold)?;
        Ok((wrapped, share))
    }

    /// Rebuilds the old secrets from `shares`, decrypts the whole ledger, and commits the
    /// end of the recovery, in one transaction. If the shares do not rebuild the secrets,
    /// the submitted shares are cleared instead (committed) so members can submit again,
    /// and the error says so.
    fn finish_recovery(&mut self, shares: &[Vec<u8>]) -> Result<TxId, GovFailure> {
        let recovered = match self.recover_secrets(shares) {
            Ok(recovered) => recovered,
            Err(e) => {
                let mut tx = self.kv.begin();
                clear_submitted_shares(&mut tx);
                self.commit(tx)?;
                tracing::warn!(error = %e, "recovery shares rejected; cleared");
                return Err(Error::Recovery(format!(
                    "{e}; the submitted shares were cleared and must be submitted again"
                ))
                .into());
            }
        };
        let (secrets, old_last) = recovered;
        let store = self.rebuild_store(&secrets)?;
        let previous = std::mem::replace(&mut self.identity.ledger_secrets, secrets);
        if let Err(e) = self.identity.seal_secrets() {
            self.identity.ledger_secrets = previous;
            return Err(e.into());
        }
        self.kv.replace(store);
        self.kv.compact(self.committed.seqno).map_err(Error::from)?;
        let mut tx = self.kv.begin();
        write_service_status(&mut tx, ServiceStatus::Open)?;
        clear_submitted_shares(&mut tx);
        let next = self.record_rekey(&mut tx, Some(&old_last))?;
        let valid_from = Seqno(self.last_seqno().0 + 2);
        crate::recovery::issue_recovery_shares(&mut tx, &next, valid_from)?;
        let Commit::Ordered(done) = self.commit(tx)? else {
            unreachable!("the end of a recovery writes");
        };
        self.rotate_ledger_secret(done.seqno.next(), next)?;
        self.service_status = ServiceStatus::Open;
        tracing::info!(%done, "recovery complete: private state restored, service open");
        Ok(done)
    }

    /// The old service's secrets from the submitted shares, merged in front of this
    /// service's own; and the old service's last secret.
    fn recover_secrets(&self, shares: &[Vec<u8>]) -> Result<(LedgerSecrets, LedgerSecret)> {
        let mut tx = self.kv.begin();
        let wrapped = WrappedSecret::read(&mut tx).map_err(|e| Error::Recovery(e.to_string()))?;
        let shares: Vec<Share> = shares
            .iter()
            .map(|bytes| Share::from_bytes(bytes))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Recovery(format!("a submitted share: {e}")))?;
        let wrapping = coco_crypto::combine_shares(&shares)
            .map_err(|e| Error::Recovery(format!("combining the shares: {e}")))?;
        let wrapping = Aes256GcmKey::new(&wrapping).map_err(crypto("wrapping key"))?;
        let last = coco_crypto::unwrap_key(&wrapping, &wrapped.secret, RECOVERY_AAD)
            .map_err(|_| Error::Recovery("the shares do not unwrap the ledger secret".into()))?;
        let last = LedgerSecret::new(
            wrapped.valid_from,
            Aes256GcmKey::new(&last).map_err(crypto("ledger secret"))?,
        );
        let mut old = self.walk_secret_chain(last.clone())?;
        let mut own: Vec<LedgerSecret> = self
            .identity
            .ledger_secrets
            .iter()
            .filter(|s| s.valid_from > last.valid_from)
            .cloned()
            .collect();
        old.append(&mut own);
        Ok((LedgerSecrets::new(old), last))
    }

    /// Every secret before `last`, walking the records rekeys left in the ledger (each
    /// wraps its predecessor under its successor), oldest first, `last` included.
    fn walk_secret_chain(&self, last: LedgerSecret) -> Result<Vec<LedgerSecret>> {
        let mut chain = vec![last];
        loop {
            let newest = chain.last().expect("starts with one");
            let valid_from = newest.valid_from;
            if valid_from == Seqno(1) {
                break;
            }
            let record = self.historical_record(Seqno(valid_from.0 - 1))?;
            let unwrap = |field: &Value, from: &Value| -> Result<LedgerSecret> {
                let from = from.as_u64().filter(|from| *from >= 1 && *from < valid_from.0);
                let from = from.ok_or_else(|| broken(valid_from, "bad valid_from"))?;
                let bytes = field.as_str().and_then(|b| BASE64.decode(b).ok());
                let bytes = bytes.ok_or_else(|| broken(valid_from, "bad wrapped secret"))?;
                let raw = coco_crypto::unwrap_key(&newest.key, &bytes, SECRET_CHAIN_AAD)
                    .map_err(|_| broken(valid_from, "the wrapped secret does not decrypt"))?;
                let key = Aes256GcmKey::new(&raw).map_err(crypto("ledger secret"))?;
                Ok(LedgerSecret::new(Seqno(from), key))
            };
            let previous =
                unwrap(&record["encrypted_ledger_secret"], &record["previous_valid_from"])?;
            let across = match record.get("previous_service") {
                Some(link) => Some(unwrap(&link["encrypted_ledger_secret"], &link["valid_from"])?),
                None => None,
            };
            chain.push(previous);
            chain.extend(across);
            let pair = &chain[chain.len() - 2..];
            if pair[0].valid_from <= pair[1].valid_from {
                return Err(broken(valid_from, "secrets do not go back in seqno order"));
            }
        }
        chain.reverse();
        Ok(chain)
    }

    /// The rekey record written at `seqno` (public, so readable with no secret).
    fn historical_record(&self, seqno: Seqno) -> Result<Value> {
        let raw = self.ledger.read_entry(seqno)?;
        let write_set =
            coco_kv::WriteSet::decode_domain(coco_ledger::decode_entry(&raw)?.public_maps())?;
        let record = write_set
            .get(&map(tables::HISTORICAL_ENCRYPTED_LEDGER_SECRET))
            .and_then(|writes| writes.writes().get(SINGLETON_KEY))
            .ok_or_else(|| broken(seqno.next(), "no rekey record before it"))?;
        let record: Value = serde_json::from_slice(record)
            .map_err(|_| broken(seqno.next(), "record is not JSON"))?;
        if record["version"].as_u64() != Some(seqno.0) {
            return Err(broken(seqno.next(), "record names another seqno"));
        }
        Ok(record)
    }

    /// The store the whole ledger gives once every secret is known, checking each
    /// entry's commit evidence against its secret.
    fn rebuild_store(&self, secrets: &LedgerSecrets) -> Result<Store> {
        let mut store = Store::new();
        store.set_history_max(crate::node::kv_history_max(&self.limits));
        let mut last_signature = Seqno(0);
        for entry in self.ledger.entries(Seqno(1)) {
            let (seqno, raw) = entry?;
            let read = replay::read_entry(secrets, seqno, &raw)
                .map_err(|e| replay::corrupt_at(&self.ledger, seqno, &e))?;
            store.apply(seqno, &read.write_set)?;
            if self.signatures.contains_key(&seqno) {
                store.compact(last_signature.min(self.committed.seqno))?;
                last_signature = seqno;
            }
        }
        assert_eq!(store.current_seqno(), self.last_seqno(), "the rebuilt store is complete");
        Ok(store)
    }
}

/// The old service's last secret, wrapped for its recovery members.
pub(crate) struct WrappedSecret {
    valid_from: Seqno,
    threshold: u8,
    secret: Vec<u8>,
}

impl WrappedSecret {
    fn read(tx: &mut Tx) -> Result<Self, GovFailure> {
        let refused = |message: &str| GovFailure::Refused {
            status: 500,
            code: "InternalError",
            message: format!("the recovered ledger's wrapped secret is unusable: {message}"),
        };
        let record = tx.get(&map(WRAPPED_LEDGER_SECRET), SINGLETON_KEY).ok_or_else(|| {
            refused("the old service had no recovery members, so it cannot be recovered")
        })?;
        let record: Value = serde_json::from_slice(record).map_err(|_| refused("not JSON"))?;
        let valid_from = record["valid_from"].as_u64().filter(|v| *v >= 1);
        let threshold = record["threshold"].as_u64().and_then(|t| u8::try_from(t).ok());
        let secret = record["wrapped_secret"].as_str().and_then(|s| BASE64.decode(s).ok());
        match (valid_from, threshold, secret) {
            (Some(valid_from), Some(threshold), Some(secret)) if threshold >= 1 => {
                Ok(Self { valid_from: Seqno(valid_from), threshold, secret })
            }
            _ => Err(refused("missing or malformed fields")),
        }
    }
}

/// The share in a `{"share": base64}` payload, checked against the threshold.
fn parse_share(request: &SignedRequest, threshold: u8) -> Result<Share, GovFailure> {
    let shape = r#"{"share": "<base64 of the decrypted share>"}"#;
    let text = request.payload_str("recovery share", "share", shape)?;
    let invalid = |reason: String| coco_gov::GovError::InvalidInput { reason };
    let bytes =
        BASE64.decode(text.trim()).map_err(|e| invalid(format!("share is not base64: {e}")))?;
    let share = Share::from_bytes(&bytes).map_err(|e| invalid(format!("share: {e}")))?;
    if share.threshold() != threshold {
        return Err(invalid(format!(
            "share is for threshold {}, the ledger's shares need {threshold}",
            share.threshold()
        ))
        .into());
    }
    Ok(share)
}

fn submitted_shares(tx: &mut Tx) -> Vec<Vec<u8>> {
    tx.range(&map(SUBMITTED_SHARES), Bound::Unbounded, Bound::Unbounded, SHARES_MAX)
        .into_iter()
        .map(|(_, share)| share)
        .collect()
}

fn clear_submitted_shares(tx: &mut Tx) {
    let ids = tx.range(&map(SUBMITTED_SHARES), Bound::Unbounded, Bound::Unbounded, SHARES_MAX);
    for (id, _) in ids {
        tx.remove(&map(SUBMITTED_SHARES), id);
    }
}

fn broken(valid_from: Seqno, reason: &str) -> Error {
    Error::Recovery(format!(
        "ledger secret chain broken at the secret valid from {valid_from}: {reason}"
    ))
}

fn into_error(failure: GovFailure) -> Error {
    match failure {
        GovFailure::Node(e) => e,
        other @ (GovFailure::Gov(_) | GovFailure::NotFound(_) | GovFailure::Refused { .. }) => {
            Error::Recovery(other.to_string())
        }
    }
}

fn to_vec(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialise")
}

/// Most nodes a recovery retires in one transaction.
const NODES_MAX: usize = 10_000;
