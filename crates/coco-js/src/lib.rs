//! Coco's JavaScript engine: QuickJS (through `rquickjs`) embedded for constitutions,
//! ballots and, later, JavaScript apps.
//!
//! [`JsEngine::call`] evaluates an ES module and calls one of its exports with JSON
//! arguments, returning JSON:
//!
//! ```
//! use coco_js::{JsEngine, JsLimits, KvBinding};
//! use serde_json::json;
//!
//! let engine = JsEngine::new(JsLimits::default())?;
//! let ballot = concat!(
//!     "export function vote(proposal, proposerId) {",
//!     " return proposal.actions.length > 0; }"
//! );
//! let proposal = json!({ "actions": [{ "name": "set_constitution" }] });
//! let yes = engine.call(ballot, "vote", &[proposal, json!("m0")], KvBinding::None)?;
//! assert_eq!(yes, json!(true));
//! # Ok::<(), coco_js::JsError>(())
//! ```
//!
//! # Limits
//!
//! One QuickJS runtime is reused; every call gets a fresh context, so nothing a script
//! defines survives into the next call. [`JsLimits`] bounds each call:
//! - **heap** (`heap_bytes_max`): the runtime's memory limit; exceeding it ends the call
//!   with [`JsError::OutOfMemory`];
//! - **stack** (`stack_bytes_max`): counted from the frame of [`JsEngine::call`];
//!   exceeding it ends the call with [`JsError::StackOverflow`];
//! - **time** (`interrupt_budget`): QuickJS calls the interrupt handler every
//!   [`POLLS_PER_STEP`] polls (backward jumps and calls); each call costs one step and the
//!   last one interrupts the script with [`JsError::BudgetExhausted`] (uncatchable).
//!
//! None of these panics or aborts the process, and the engine serves the next call.
//!
//! # Determinism
//!
//! Every node must reach the same result, so the script sees no clock, randomness or host
//! state: `Date` and `performance` are not installed (a script receives times as
//! arguments), `Math.random` throws, `WeakRef`/`FinalizationRegistry` (garbage-collection
//! timing) are absent, there is no module loader (`import` fails) and no I/O. The
//! interrupt budget counts interpreter polls, not time, so an endless loop stops at the
//! same step everywhere ([`JsEngine::steps_used`]). Promise jobs still queued when the
//! export returns never run. Two limits depend on the build rather than the script alone:
//! the exact depth at which the stack overflows and the allocation at which the heap is
//! exhausted; scripts that stay well inside the limits are unaffected.
//!
//! # KV bindings (CCF's JavaScript API shape)
//!
//! With [`KvBinding::ReadOnly`] or [`KvBinding::ReadWrite`] the global `ccf.kv["<map>"]`
//! returns a map handle (the name is checked by [`coco_kv::MapName::new`]; an invalid one
//! throws a `TypeError`). Keys and values are `ArrayBuffer`s:
//!
//! ```text
//! handle.get(key)          -> ArrayBuffer | undefined
//! handle.has(key)          -> boolean
//! handle.set(key, value)   -> handle        (throws when read-only)
//! handle.delete(key)       -> undefined     (throws when read-only)
//! handle.forEach((value, key, handle) => ...)   in key order, at most FOR_EACH_ENTRIES_MAX
//! ```
//!
//! Reads and writes go through the caller's [`coco_kv::Tx`]: reads join its read set,
//! writes its write set, and the caller commits or discards it. `forEach` reads the entries
//! first, so the callback may write to the map it iterates. A write under `ReadOnly`
//! throws; if uncaught the call ends with [`JsError::WriteDenied`]. Always present:
//! `ccf.strToBuf(string)`, `ccf.bufToStr(buf)` (UTF-8), `ccf.jsonCompatibleToBuf(value)`
//! and `ccf.bufToJsonCompatible(buf)`.
//!
//! Callers add their own functions under `ccf.<path>` with [`HostFunctions`] and
//! [`JsEngine::call_with_host`] (JSON arguments and result), for example the governance
//! effects a constitution's `apply` triggers.
//!
//! Results are converted with `JSON.stringify` semantics, except that functions, symbols,
//! `BigInt`s, non-finite numbers, promises and cycles are [`JsError::Conversion`] instead of
//! being silently dropped; `undefined` becomes `null`.

mod engine;
mod error;
mod host;
mod kv;
mod limits;

pub use engine::JsEngine;
pub use error::{JsError, Result};
pub use host::{HostFn, HostFunctions};
pub use kv::KvBinding;
pub use limits::{FOR_EACH_ENTRIES_MAX, JsLimits, POLLS_PER_STEP};
