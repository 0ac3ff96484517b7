//! Proposals and ballots: [`Governance`] runs the constitution's `validate`, `resolve` and
//! `apply` (and members' ballots) under [`JsLimits`], keeps `public:ccf.gov.proposals` and
//! `public:ccf.gov.proposals_info` as CCF does, and returns the node's effects.

use std::collections::BTreeMap;
use std::ops::Bound;

use coco_crypto::{Sha256, sha256};
use coco_js::{JsEngine, JsError, JsLimits, KvBinding};
use coco_kv::Tx;
use coco_types::Digest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::constitution::{Effects, GovEffect, constitution, host_functions};
use crate::envelope::{SignedRequest, record_recent_proposal};
use crate::error::{GovError, Result};
use crate::tables::{self, map};

/// Bounds on what members may submit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GovLimits {
    /// Open proposals at any time; one more is refused with [`GovError::LimitExceeded`].
    pub open_proposals_max: u64,
    /// Bytes of one proposal body.
    pub proposal_bytes_max: u64,
    /// Bytes of one ballot script.
    pub ballot_bytes_max: u64,
}

impl Default for GovLimits {
    fn default() -> Self {
        Self { open_proposals_max: 100, proposal_bytes_max: 1 << 20, ballot_bytes_max: 64 << 10 }
    }
}

/// A proposal's state, as CCF names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalState {
    /// Collecting ballots.
    Open,
    /// Accepted and applied.
    Accepted,
    /// Withdrawn by its proposer.
    Withdrawn,
    /// Rejected by the votes.
    Rejected,
    /// The constitution threw (or exceeded a limit) in `resolve` or `apply`.
    Failed,
    /// Invalidated by an accepted change of constitution or voting policy.
    Dropped,
}

impl ProposalState {
    /// The name, as in JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "Open",
            Self::Accepted => "Accepted",
            Self::Withdrawn => "Withdrawn",
            Self::Rejected => "Rejected",
            Self::Failed => "Failed",
            Self::Dropped => "Dropped",
        }
    }
}

/// Why a ballot or the constitution failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The error.
    pub reason: String,
    /// The JavaScript stack, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

impl Failure {
    fn from_js(error: &JsError) -> Self {
        let trace = match error {
            JsError::Exception { stack, .. } => stack.clone(),
            JsError::Syntax { .. }
            | JsError::MissingExport { .. }
            | JsError::BudgetExhausted
            | JsError::OutOfMemory
            | JsError::StackOverflow
            | JsError::WriteDenied { .. }
            | JsError::Conversion { .. }
            | JsError::Engine { .. } => None,
        };
        Self { reason: error.to_string(), trace }
    }
}

/// A proposal's record in `public:ccf.gov.proposals_info` (CCF's field names), plus its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalInfo {
    /// The proposal id (the table key; not part of the stored value).
    #[serde(skip)]
    pub proposal_id: String,
    /// The proposing member.
    pub proposer_id: String,
    /// The state.
    pub state: ProposalState,
    /// Ballot scripts by member id.
    pub ballots: BTreeMap<String, String>,
    /// The votes counted when the proposal left Open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_votes: Option<BTreeMap<String, bool>>,
    /// Ballots that failed at the last resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote_failures: Option<BTreeMap<String, Failure>>,
    /// Why `resolve` or `apply` failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl ProposalInfo {
    /// The gov API's Proposal object (`proposalId`, `proposerId`, `proposalState`,
    /// `ballotCount`, `ballotSubmitters`, and `finalVotes`, `voteFailures`, `failure` when
    /// present).
    ///
    /// # Panics
    /// Never: the fields are strings, booleans and maps of them.
    #[must_use]
    pub fn to_api_json(&self) -> Value {
        let mut object = json!({
            "proposalId": self.proposal_id,
            "proposerId": self.proposer_id,
            "proposalState": self.state.as_str(),
            "ballotCount": self.ballots.len(),
            "ballotSubmitters": self.ballots.keys().collect::<Vec<_>>(),
        });
        let fields = object.as_object_mut().expect("built as an object");
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                fields.insert(name.to_owned(), value);
            }
        };
        put("finalVotes", self.final_votes.as_ref().map(to_value));
        put("voteFailures", self.vote_failures.as_ref().map(to_value));
        put("failure", self.failure.as_ref().map(to_value));
        object
    }
}

fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("governance records serialise to JSON")
}

/// The governance runtime: a JavaScript engine for the constitution and ballots, and the
/// limits on submissions. Not `Send` (one per thread, as the engine).
#[derive(Debug)]
pub struct Governance {
    engine: JsEngine,
    limits: GovLimits,
}

/// `hex SHA-256(merkle_root ‖ SHA-256(signature))`.
#[must_use]
pub fn proposal_id(merkle_root: &Digest, signature: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(merkle_root.as_bytes());
    hasher.update(sha256(signature).as_bytes());
    hasher.finish().to_hex()
}

impl Governance {
    /// A runtime whose every constitution and ballot call runs under `js`.
    ///
    /// # Errors
    /// [`GovError::Internal`] if the engine cannot start.
    pub fn new(js: JsLimits, limits: GovLimits) -> Result<Self> {
        let engine = JsEngine::new(js).map_err(|e| GovError::internal(e.to_string()))?;
        Ok(Self { engine, limits })
    }

    /// Submits a proposal (`request` verified with [`crate::MsgType::Proposal`]) whose id
    /// binds the Merkle root the transaction reads at. Validates it, records it, resolves
    /// it at once and applies it when Accepted.
    ///
    /// # Errors
    /// [`GovError::LimitExceeded`], [`GovError::InvalidInput`],
    /// [`GovError::ProposalFailedToValidate`] (400); [`GovError::ProposalReplay`] if the
    /// same signed proposal exists; [`GovError::Internal`] for corrupt state.
    pub fn propose(
        &self,
        tx: &mut Tx,
        request: &SignedRequest,
        merkle_root: Digest,
    ) -> Result<(ProposalInfo, Vec<GovEffect>)> {
        let size = u64::try_from(request.payload.len()).unwrap_or(u64::MAX);
        if size > self.limits.proposal_bytes_max {
            return Err(GovError::LimitExceeded {
                reason: format!(
                    "proposal of {size} bytes exceeds {}",
                    self.limits.proposal_bytes_max
                ),
            });
        }
        let proposal = std::str::from_utf8(&request.payload)
            .map_err(|_| GovError::invalid("proposal is not UTF-8"))?;
        let open = all_infos(tx)?.iter().filter(|info| info.state == ProposalState::Open).count();
        if u64::try_from(open).unwrap_or(u64::MAX) >= self.limits.open_proposals_max {
            return Err(GovError::LimitExceeded {
                reason: format!("{open} proposals are already open"),
            });
        }
        let proposal_id = proposal_id(&merkle_root, &request.signature);
        if tx.get(&map(tables::PROPOSALS), proposal_id.as_bytes()).is_some() {
            return Err(GovError::ProposalReplay { key: proposal_id });
        }
        let constitution = constitution(tx)?;
        self.validate(tx, &constitution, proposal)?;
        record_recent_proposal(tx, request, &proposal_id)?;
        tx.put(&map(tables::PROPOSALS), proposal_id.as_bytes(), request.payload.clone());
        let mut info = ProposalInfo {
            proposal_id,
            proposer_id: request.member_id.to_hex(),
            state: ProposalState::Open,
            ballots: BTreeMap::new(),
            final_votes: None,
            vote_failures: None,
            failure: None,
        };
        let effects = self.settle(tx, &constitution, proposal, &mut info)?;
        Ok((info, effects))
    }

    /// Records `member_id`'s ballot (`{"ballot": "<JS module exporting vote>"}`) on an Open
    /// proposal and resolves it again with every ballot re-evaluated.
    ///
    /// # Errors
    /// [`GovError::MemberIdMismatch`] if the request is not `member_id`'s;
    /// [`GovError::ProposalNotFound`], [`GovError::ProposalNotOpen`],
    /// [`GovError::VoteAlreadyExists`], [`GovError::InvalidInput`],
    /// [`GovError::LimitExceeded`]; [`GovError::Internal`] for corrupt state.
    pub fn ballot(
        &self,
        tx: &mut Tx,
        request: &SignedRequest,
        proposal_id: &str,
        member_id: &str,
    ) -> Result<(ProposalInfo, Vec<GovEffect>)> {
        request.check_signer(member_id)?;
        let script = request.payload_str("a ballot", "ballot", r#"{"ballot": "<JavaScript>"}"#)?;
        let script = script.as_str();
        let size = u64::try_from(script.len()).unwrap_or(u64::MAX);
        if size > self.limits.ballot_bytes_max {
            return Err(GovError::LimitExceeded {
                reason: format!("ballot of {size} bytes exceeds {}", self.limits.ballot_bytes_max),
            });
        }
        let mut info = open_proposal(tx, proposal_id)?;
        if info.ballots.contains_key(member_id) {
            return Err(GovError::VoteAlreadyExists {
                proposal_id: proposal_id.to_owned(),
                member_id: member_id.to_owned(),
            });
        }
        info.ballots.insert(member_id.to_owned(), script.to_owned());
        let proposal = proposal_text(tx, proposal_id)?;
        let constitution = constitution(tx)?;
        let effects = self.settle(tx, &constitution, &proposal, &mut info)?;
        Ok((info, effects))
    }

    /// Withdraws an Open proposal; only its proposer may.
    ///
    /// # Errors
    /// [`GovError::ProposalNotFound`], [`GovError::ProposalNotOpen`],
    /// [`GovError::NotProposer`]; [`GovError::Internal`] for corrupt state.
    pub fn withdraw(
        &self,
        tx: &mut Tx,
        request: &SignedRequest,
        proposal_id: &str,
    ) -> Result<ProposalInfo> {
        let mut info = open_proposal(tx, proposal_id)?;
        if info.proposer_id != request.member_id.to_hex() {
            return Err(GovError::NotProposer { proposal_id: proposal_id.to_owned() });
        }
        info.state = ProposalState::Withdrawn;
        collect_closed(tx, proposal_id)?;
        write_info(tx, &info);
        Ok(info)
    }

    /// Runs `validate`; an invalid proposal or a failing constitution is a 400.
    fn validate(&self, tx: &mut Tx, constitution: &str, proposal: &str) -> Result<()> {
        let effects = Effects::default();
        let host = host_functions(&effects);
        let args = [Value::from(proposal)];
        let result = self
            .engine
            .call_with_host(constitution, "validate", &args, KvBinding::ReadOnly(tx), &host)
            .map_err(|e| GovError::ProposalFailedToValidate { description: e.to_string() })?;
        if result.get("valid") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        let description = match result.get("description") {
            Some(Value::String(text)) => text.clone(),
            Some(_) | None => format!("validate returned {result}"),
        };
        Err(GovError::ProposalFailedToValidate { description })
    }

    /// Resolves an Open proposal, applies it if Accepted, records the outcome and, when it
    /// leaves Open, collects closed proposals and drops those an accepted change
    /// invalidates.
    fn settle(
        &self,
        tx: &mut Tx,
        constitution: &str,
        proposal: &str,
        info: &mut ProposalInfo,
    ) -> Result<Vec<GovEffect>> {
        let votes = self.evaluate_ballots(tx, proposal, info);
        let args = [
            Value::from(proposal),
            Value::from(info.proposer_id.as_str()),
            Value::Array(
                votes.iter().map(|(id, vote)| json!({"member_id": id, "vote": vote})).collect(),
            ),
            Value::from(info.proposal_id.as_str()),
        ];
        let effects = Effects::default();
        let host = host_functions(&effects);
        let resolved = self.engine.call_with_host(
            constitution,
            "resolve",
            &args,
            KvBinding::ReadOnly(tx),
            &host,
        );
        info.state = match resolved.as_ref().map(Value::as_str) {
            Ok(Some("Open")) => ProposalState::Open,
            Ok(Some("Accepted")) => self.apply(tx, constitution, proposal, info, &effects),
            Ok(Some("Rejected")) => ProposalState::Rejected,
            Ok(_) => {
                let returned = resolved.as_ref().map_or_else(|_| Value::Null, Clone::clone);
                info.failure =
                    Some(Failure { reason: format!("resolve returned {returned}"), trace: None });
                ProposalState::Failed
            }
            Err(error) => {
                info.failure = Some(Failure::from_js(error));
                ProposalState::Failed
            }
        };
        if info.state != ProposalState::Open {
            info.final_votes = Some(votes);
            collect_closed(tx, &info.proposal_id)?;
            if info.state == ProposalState::Accepted && invalidates_open_proposals(proposal) {
                drop_open(tx, &info.proposal_id)?;
            }
        }
        write_info(tx, info);
        Ok(effects.take())
    }

    /// Runs `apply` with write access; a failure undoes its writes and effects.
    fn apply(
        &self,
        tx: &mut Tx,
        constitution: &str,
        proposal: &str,
        info: &mut ProposalInfo,
        effects: &Effects,
    ) -> ProposalState {
        effects.borrow_mut().clear();
        let before = tx.clone();
        let args = [Value::from(proposal), Value::from(info.proposal_id.as_str())];
        let host = host_functions(effects);
        match self.engine.call_with_host(
            constitution,
            "apply",
            &args,
            KvBinding::ReadWrite(tx),
            &host,
        ) {
            Ok(_) => ProposalState::Accepted,
            Err(error) => {
                *tx = before;
                effects.borrow_mut().clear();
                info.failure = Some(Failure::from_js(&error));
                ProposalState::Failed
            }
        }
    }

    /// Every ballot's `vote(proposal, proposerId)`; failures go to `vote_failures`.
    fn evaluate_ballots(
        &self,
        tx: &mut Tx,
        proposal: &str,
        info: &mut ProposalInfo,
    ) -> BTreeMap<String, bool> {
        let mut votes = BTreeMap::new();
        let mut failures = BTreeMap::new();
        let args = [Value::from(proposal), Value::from(info.proposer_id.as_str())];
        for (member, script) in &info.ballots {
            match self.engine.call(script, "vote", &args, KvBinding::ReadOnly(tx)) {
                Ok(Value::Bool(vote)) => {
                    votes.insert(member.clone(), vote);
                }
                Ok(other) => {
                    let reason = format!("vote returned {other}, not a boolean");
                    failures.insert(member.clone(), Failure { reason, trace: None });
                }
                Err(error) => {
                    failures.insert(member.clone(), Failure::from_js(&error));
                }
            }
        }
        info.vote_failures = (!failures.is_empty()).then_some(failures);
        votes
    }
}

/// Whether an accepted proposal changes the rules open proposals were submitted under.
fn invalidates_open_proposals(proposal: &str) -> bool {
    let Ok(parsed) = serde_json::from_str::<Value>(proposal) else {
        return false;
    };
    parsed.get("actions").and_then(Value::as_array).is_some_and(|actions| {
        actions.iter().any(|action| {
            matches!(
                action.get("name").and_then(Value::as_str),
                Some("set_constitution" | "set_voting_policy")
            )
        })
    })
}

fn write_info(tx: &mut Tx, info: &ProposalInfo) {
    let value = serde_json::to_vec(info).expect("proposal info serialises to JSON");
    tx.put(&map(tables::PROPOSALS_INFO), info.proposal_id.as_bytes(), value);
}

fn parse_info(proposal_id: &str, raw: &[u8]) -> Result<ProposalInfo> {
    let mut info: ProposalInfo = serde_json::from_slice(raw)
        .map_err(|e| GovError::internal(format!("proposals_info of {proposal_id}: {e}")))?;
    proposal_id.clone_into(&mut info.proposal_id);
    Ok(info)
}

/// Every proposal record. The table is bounded: closed proposals are collected whenever
/// another closes, so it holds the open ones, those dropped by the last close, and one.
fn all_infos(tx: &mut Tx) -> Result<Vec<ProposalInfo>> {
    tx.range(&map(tables::PROPOSALS_INFO), Bound::Unbounded, Bound::Unbounded, usize::MAX)
        .into_iter()
        .map(|(key, value)| parse_info(&String::from_utf8_lossy(&key), &value))
        .collect()
}

/// Removes every closed proposal but `except` (CCF collects them when another closes).
fn collect_closed(tx: &mut Tx, except: &str) -> Result<()> {
    for info in all_infos(tx)? {
        if info.state != ProposalState::Open && info.proposal_id != except {
            tx.remove(&map(tables::PROPOSALS_INFO), info.proposal_id.as_bytes());
            tx.remove(&map(tables::PROPOSALS), info.proposal_id.as_bytes());
        }
    }
    Ok(())
}

/// Marks every other Open proposal Dropped.
fn drop_open(tx: &mut Tx, except: &str) -> Result<()> {
    for mut info in all_infos(tx)? {
        if info.state == ProposalState::Open && info.proposal_id != except {
            info.state = ProposalState::Dropped;
            write_info(tx, &info);
        }
    }
    Ok(())
}

fn open_proposal(tx: &mut Tx, proposal_id: &str) -> Result<ProposalInfo> {
    let info = get(tx, proposal_id)?;
    if info.state != ProposalState::Open {
        return Err(GovError::ProposalNotOpen {
            proposal_id: proposal_id.to_owned(),
            state: info.state.as_str().to_owned(),
        });
    }
    Ok(info)
}

fn proposal_text(tx: &mut Tx, proposal_id: &str) -> Result<String> {
    let raw = tx
        .get(&map(tables::PROPOSALS), proposal_id.as_bytes())
        .ok_or_else(|| GovError::internal(format!("proposal {proposal_id} has no body")))?;
    String::from_utf8(raw.to_vec())
        .map_err(|_| GovError::internal(format!("proposal {proposal_id} is not UTF-8")))
}

/// A proposal's record (`GET /gov/members/proposals/{id}`).
///
/// # Errors
/// [`GovError::ProposalNotFound`]; [`GovError::Internal`] for a corrupt record.
pub fn get(tx: &mut Tx, proposal_id: &str) -> Result<ProposalInfo> {
    let raw = tx
        .get(&map(tables::PROPOSALS_INFO), proposal_id.as_bytes())
        .ok_or_else(|| GovError::ProposalNotFound { proposal_id: proposal_id.to_owned() })?;
    parse_info(proposal_id, raw)
}

/// The Open proposals, by id (`GET /gov/members/proposals`).
///
/// # Errors
/// [`GovError::Internal`] for a corrupt record.
pub fn list(tx: &mut Tx) -> Result<Vec<ProposalInfo>> {
    Ok(all_infos(tx)?.into_iter().filter(|info| info.state == ProposalState::Open).collect())
}

/// The proposal's body, `{"actions": [...]}` (`GET …/{id}/actions`).
///
/// # Errors
/// [`GovError::ProposalNotFound`]; [`GovError::Internal`] for a corrupt body.
pub fn actions(tx: &mut Tx, proposal_id: &str) -> Result<Value> {
    if tx.get(&map(tables::PROPOSALS), proposal_id.as_bytes()).is_none() {
        return Err(GovError::ProposalNotFound { proposal_id: proposal_id.to_owned() });
    }
    let text = proposal_text(tx, proposal_id)?;
    serde_json::from_str(&text)
        .map_err(|e| GovError::internal(format!("proposal {proposal_id}: {e}")))
}

/// A member's ballot script on a proposal (`GET …/{id}/ballots/{memberId}`).
///
/// # Errors
/// [`GovError::ProposalNotFound`], [`GovError::BallotNotFound`].
pub fn ballot_script(tx: &mut Tx, proposal_id: &str, member_id: &str) -> Result<String> {
    let info = get(tx, proposal_id)?;
    info.ballots.get(member_id).cloned().ok_or_else(|| GovError::BallotNotFound {
        proposal_id: proposal_id.to_owned(),
        member_id: member_id.to_owned(),
    })
}

#[cfg(test)]
mod tests;
