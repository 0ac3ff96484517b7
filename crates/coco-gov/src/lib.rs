//! Coco's governance: the consortium of members, not the operators, controls the service.
//!
//! Deterministic logic over a [`coco_kv::Tx`] (time and the Merkle root come in as
//! arguments; no IO), with CCF's tables and formats:
//! - [`verify_request`]: COSE Sign1 envelopes signed by members (signer, signature,
//!   message type, URL bindings, Active status, replay window), recorded in the history;
//! - the default JavaScript constitution ([`DEFAULT_CONSTITUTION`]) with configurable
//!   voting policies (majority, unanimous, M-of-N, 1-of-N; a policy change is decided
//!   under the old one);
//! - [`Governance`]: proposals, ballots, withdrawal, resolution and application, with the
//!   node's part of an action returned as [`GovEffect`]s for the caller to carry out;
//! - members' state-digest acknowledgement ([`update_state_digest`], [`ack`]), which
//!   turns an Accepted member Active.
//!
//! The HTTP layer maps [`GovError::status`] and [`GovError::code`] to responses.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod constitution;
mod envelope;
mod error;
mod members;
mod proposals;
pub mod tables;
#[cfg(test)]
mod testkit;

pub use constitution::{
    DEFAULT_CONSTITUTION, GovEffect, constitution, install_genesis, set_constitution,
};
pub use envelope::{
    CREATED_AT_MAX, Expected, MsgType, RECENT_PROPOSALS_WINDOW_DEFAULT,
    RECENT_PROPOSALS_WINDOW_RANGE, SignedRequest, verify_request,
};
pub use error::{GovError, Result};
pub use members::{ack, state_digest, update_state_digest};
pub use proposals::{
    Failure, GovLimits, Governance, ProposalInfo, ProposalState, actions, ballot_script, get, list,
    proposal_id,
};
