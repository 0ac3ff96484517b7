//! Why a transaction or a request is refused. Messages follow go-ethereum's wording:
//! ethers and web3.py classify errors by these texts (`nonce too low`, `insufficient funds`,
//! …), so matching them is what makes client-side error handling work unchanged.

/// JSON-RPC's code for a transaction or call the chain refuses (go-ethereum's choice).
pub const CODE_REFUSED: i64 = -32000;
/// JSON-RPC's code for parameters that do not parse.
pub const CODE_INVALID_PARAMS: i64 = -32602;
/// JSON-RPC's code for a request that is not JSON-RPC 2.0.
pub const CODE_INVALID_REQUEST: i64 = -32600;
/// JSON-RPC's code for a method this endpoint does not serve.
pub const CODE_METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC's code for a body that is not JSON.
pub const CODE_PARSE_ERROR: i64 = -32700;
/// JSON-RPC's code for a failure on the node's side.
pub const CODE_INTERNAL: i64 = -32603;
/// go-ethereum's code for a call that reverted (`data` carries the revert data).
pub const CODE_REVERTED: i64 = 3;

/// A signed transaction the chain does not take. Nothing is written for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// More bytes than a transaction may have.
    #[error("oversized data: {bytes} bytes, the limit is {max}")]
    Oversized {
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// Not an EIP-2718 transaction.
    #[error("transaction could not be decoded: {0}")]
    Malformed(String),
    /// A blob (3) or set-code (4) transaction.
    #[error("transaction type not supported: {0}")]
    UnsupportedType(u8),
    /// A legacy transaction signed without a chain id: it could be replayed from any chain.
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    NotReplayProtected,
    /// The signature does not recover a sender (or has a malleable high `s`).
    #[error("invalid sender: the signature does not recover")]
    BadSignature,
    /// Signed for another chain.
    #[error("invalid chain id for signer")]
    WrongChainId,
    /// A transaction with this hash was already executed.
    #[error("already known")]
    AlreadyKnown,
    /// The nonce was used.
    #[error("nonce too low: next nonce {state}, tx nonce {tx}")]
    NonceTooLow {
        /// The transaction's nonce.
        tx: u64,
        /// The account's next nonce.
        state: u64,
    },
    /// The nonce leaves a gap: Coco has no pool to hold it until the gap fills.
    #[error("nonce too high: next nonce {state}, tx nonce {tx}")]
    NonceTooHigh {
        /// The transaction's nonce.
        tx: u64,
        /// The account's next nonce.
        state: u64,
    },
    /// The sender cannot pay gas × price + value.
    #[error("insufficient funds for gas * price + value: have {balance} want {cost}")]
    InsufficientFunds {
        /// What the transaction may cost, in wei.
        cost: String,
        /// What the sender has, in wei.
        balance: String,
    },
    /// The gas limit does not cover the transaction's intrinsic cost.
    #[error("intrinsic gas too low: gas {limit}, minimum needed {needed}")]
    IntrinsicGasTooLow {
        /// Gas the transaction needs before executing anything.
        needed: u64,
        /// Its gas limit.
        limit: u64,
    },
    /// The fee cap is below the chain's base fee.
    #[error("max fee per gas less than block base fee")]
    FeeBelowBaseFee,
    /// The tip exceeds the fee cap.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// More gas than a transaction may use.
    #[error("exceeds block gas limit")]
    GasLimitTooHigh,
    /// EIP-3607: the sender is a contract.
    #[error("sender not an eoa")]
    SenderHasCode,
    /// Another refusal by the EVM, in its words.
    #[error("invalid transaction: {0}")]
    Refused(String),
    /// The node's state is corrupt (never the sender's fault).
    #[error("corrupt Ethereum state: {0}")]
    State(String),
}

impl TxError {
    /// The JSON-RPC error code a client gets.
    #[must_use]
    pub fn code(&self) -> i64 {
        match self {
            Self::Malformed(_) | Self::Oversized { .. } => CODE_INVALID_PARAMS,
            Self::State(_) => CODE_INTERNAL,
            Self::UnsupportedType(_)
            | Self::NotReplayProtected
            | Self::BadSignature
            | Self::WrongChainId
            | Self::AlreadyKnown
            | Self::NonceTooLow { .. }
            | Self::NonceTooHigh { .. }
            | Self::InsufficientFunds { .. }
            | Self::IntrinsicGasTooLow { .. }
            | Self::FeeBelowBaseFee
            | Self::TipAboveFeeCap
            | Self::GasLimitTooHigh
            | Self::SenderHasCode
            | Self::Refused(_) => CODE_REFUSED,
        }
    }
}

impl From<crate::state::StateError> for TxError {
    fn from(e: crate::state::StateError) -> Self {
        Self::State(e.0)
    }
}
