//! The default constitution (JavaScript, embedded) and what the host gives it: the
//! `ccf.crypto.*` helpers and the `ccf.node.*` / `ccf.network.*` effects, which `apply`
//! records and [`crate::Governance`] returns as [`GovEffect`]s.

use std::cell::RefCell;
use std::rc::Rc;

use coco_crypto::{Certificate, RsaPublicKey};
use coco_js::HostFunctions;
use coco_kv::Tx;
use serde_json::Value;

use crate::error::{GovError, Result};
use crate::tables::{self, map};

/// The default constitution: one ES module, the concatenation of `actions.js`,
/// `validate.js`, `resolve.js` and `apply.js` (as CCF ships its own).
pub const DEFAULT_CONSTITUTION: &str = concat!(
    include_str!("constitution/actions.js"),
    include_str!("constitution/validate.js"),
    include_str!("constitution/resolve.js"),
    include_str!("constitution/apply.js"),
);

/// What an accepted proposal asks of the node, beyond its KV writes. The node carries each
/// out in the same transaction as the proposal's application, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GovEffect {
    /// Rotate the ledger secret (`trigger_ledger_rekey`).
    TriggerLedgerRekey,
    /// Re-split and re-encrypt the recovery shares (`trigger_recovery_shares_refresh`).
    TriggerRecoverySharesRefresh,
    /// Members were added or removed: rotate the ledger secret and re-issue recovery
    /// shares (W35).
    MembersChanged,
    /// The recovery threshold changed (`set_recovery_threshold`, `set_service_configuration`).
    SetRecoveryThreshold {
        /// The new threshold.
        threshold: u64,
    },
    /// Open the service to users (`transition_service_to_open`).
    TransitionServiceToOpen {
        /// The previous service identity (PEM), after a recovery.
        previous_service_identity: Option<String>,
        /// The expected current service identity (PEM).
        next_service_identity: Option<String>,
    },
    /// A Pending node became Trusted (its `nodes.info` is already updated): add it to
    /// the consensus configuration.
    TransitionNodeToTrusted {
        /// The node id (hex).
        node_id: String,
    },
    /// A node was retired (its `nodes.info` is already updated): remove it from the
    /// consensus configuration.
    RemoveNode {
        /// The node id (hex).
        node_id: String,
    },
}

/// Writes the default constitution into `public:ccf.gov.constitution` (genesis).
pub fn install_genesis(tx: &mut Tx) {
    set_constitution(tx, DEFAULT_CONSTITUTION);
}

/// Stores `source` as the constitution (a JSON string, as CCF stores it).
///
/// # Panics
/// Never: a string always serialises to JSON.
pub fn set_constitution(tx: &mut Tx, source: &str) {
    let value = serde_json::to_vec(source).expect("a string serialises to JSON");
    tx.put(&map(tables::CONSTITUTION), tables::SINGLETON_KEY, value);
}

/// The constitution in force.
///
/// # Errors
/// [`GovError::Internal`] if there is none or it is not a JSON string.
pub fn constitution(tx: &mut Tx) -> Result<String> {
    let raw = tx
        .get(&map(tables::CONSTITUTION), tables::SINGLETON_KEY)
        .ok_or_else(|| GovError::internal("the service has no constitution"))?;
    serde_json::from_slice(raw).map_err(|e| GovError::internal(format!("constitution: {e}")))
}

/// Effects recorded by one call.
pub(crate) type Effects = Rc<RefCell<Vec<GovEffect>>>;

fn text_arg(args: &[Value], index: usize, what: &str) -> std::result::Result<String, String> {
    args.get(index)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{what} must be a string"))
}

fn optional_text(args: &[Value], index: usize) -> Option<String> {
    args.get(index).and_then(Value::as_str).map(str::to_owned)
}

/// The host functions of every constitution call; effects go into `effects`.
pub(crate) fn host_functions(effects: &Effects) -> HostFunctions {
    let mut host = HostFunctions::new();
    host.add("crypto.certId", |args| {
        let pem = text_arg(args, 0, "certificate")?;
        let cert = Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
        Ok(Value::from(cert.sha256_der().to_hex()))
    });
    host.add("crypto.isValidRsaPublicKey", |args| {
        let pem = text_arg(args, 0, "key")?;
        Ok(Value::from(RsaPublicKey::from_pem(&pem).is_ok()))
    });
    let record = |host: &mut HostFunctions,
                  path: &str,
                  effect: fn(&[Value]) -> std::result::Result<GovEffect, String>| {
        let effects = Rc::clone(effects);
        host.add(path, move |args| {
            effects.borrow_mut().push(effect(args)?);
            Ok(Value::Null)
        });
    };
    record(&mut host, "node.triggerLedgerRekey", |_| Ok(GovEffect::TriggerLedgerRekey));
    record(&mut host, "node.triggerRecoverySharesRefresh", |_| {
        Ok(GovEffect::TriggerRecoverySharesRefresh)
    });
    record(&mut host, "node.membersChanged", |_| Ok(GovEffect::MembersChanged));
    record(&mut host, "node.transitionNodeToTrusted", |args| {
        Ok(GovEffect::TransitionNodeToTrusted { node_id: text_arg(args, 0, "node id")? })
    });
    record(&mut host, "node.removeNode", |args| {
        Ok(GovEffect::RemoveNode { node_id: text_arg(args, 0, "node id")? })
    });
    record(&mut host, "network.transitionServiceToOpen", |args| {
        Ok(GovEffect::TransitionServiceToOpen {
            previous_service_identity: optional_text(args, 0),
            next_service_identity: optional_text(args, 1),
        })
    });
    record(&mut host, "network.setRecoveryThreshold", |args| {
        let threshold = args
            .first()
            .and_then(Value::as_u64)
            .ok_or_else(|| "recovery threshold must be a positive integer".to_owned())?;
        Ok(GovEffect::SetRecoveryThreshold { threshold })
    });
    host
}
