//! End-to-end tests of Coco through the `coco` binary: each test runs real nodes as child
//! processes in a temporary directory (port 0), talks to them over TLS with `coco-client`,
//! stops them with SIGTERM or SIGKILL, and audits what they left on disk with Coco's own
//! verifiers and with CCF's Python tools (see [`ccf`]).
//!
//! | file | what it shows |
//! |---|---|
//! | `audit.rs` | CCF's `read_ledger.py` and `ccf.receipt` accept Coco's ledgers and receipts; a flipped byte fails both verifiers |
//! | `confidentiality.rs` | a private message never reaches the disk in clear |
//! | `cluster.rs` | three nodes join by vote, commit, and survive `kill -9` of the primary |
//! | `restart.rs` | committed transactions survive SIGTERM and `kill -9`, restarts open a new view |
//! | `bad_input.rs` | bad requests get the right error and change nothing |
//! | `range.rs` | range listings paginate in id order and honour their bounds |
//! | `governance.rs` | a member acks, proposes a user over COSE-signed `/gov`, the user transacts |
//! | `gov_cli.rs` | `coco gov` acks, proposes, votes, lists and shows; refusals exit non-zero |
//! | `recovery.rs` | a destroyed service recovers from a ledger copy with 2 of 3 member shares |
//! | `limits.rs` | sessions beyond `sessions_max` wait until one closes |
//!
//! Nothing sleeps blindly: nodes are waited for through their banner, commits through
//! `/node/tx`, exits through `try_wait`, each with a deadline.
// Tests measure deadlines with the OS clock, poll a child process between short sleeps,
// and run client tasks on their own tokio runtime: the core-crate bans do not apply.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

mod audit;
mod bad_input;
mod ccf;
mod cluster;
mod confidentiality;
mod eth;
mod gov_cli;
mod governance;
mod harness;
mod limits;
mod partition;
mod range;
mod recovery;
mod restart;
mod snapshots;

/// Runs `future` on a fresh multi-threaded tokio runtime (two workers: the client tasks
/// and hyper's connection tasks).
fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}
