//! The crate's error enum. Every variant maps to a stable HTTP status and error code (CCF's
//! codes where CCF has one), so the HTTP layer renders `{"error": {"code", "message"}}`
//! without knowing governance.

/// Convenience alias: every fallible function of this crate returns [`GovError`].
pub type Result<T, E = GovError> = std::result::Result<T, E>;

/// Why a governance request was refused. A refused request changes nothing: the caller
/// discards the transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovError {
    /// The body is not a tagged COSE Sign1 governance envelope with the required headers.
    #[error("malformed COSE Sign1 envelope: {reason}")]
    MalformedEnvelope {
        /// What was wrong.
        reason: String,
    },
    /// The `kid` names no member (users, nodes and strangers alike).
    #[error("Signer is not a known member")]
    UnknownMember,
    /// The signature does not verify against the member's certificate.
    #[error("signature does not verify against the member's certificate: {reason}")]
    BadSignature {
        /// Why verification failed.
        reason: String,
    },
    /// `ccf.gov.msg.type` is not the endpoint's.
    #[error("message type {found:?} does not match the endpoint's {expected:?}")]
    WrongMessageType {
        /// The endpoint's type.
        expected: &'static str,
        /// The signed type.
        found: String,
    },
    /// The signed `ccf.gov.msg.proposal_id` differs from the URL's (or is missing).
    #[error("signed proposal id {signed:?} does not match the URL's {url:?}")]
    ProposalIdMismatch {
        /// The signed id, if any.
        signed: Option<String>,
        /// The URL's id.
        url: String,
    },
    /// The signer is not the member the URL names.
    #[error("signer {signer} does not match the URL's member {url}")]
    MemberIdMismatch {
        /// The signing member.
        signer: String,
        /// The URL's member.
        url: String,
    },
    /// `ccf.gov.msg.created_at` is beyond 9,999,999,999 (ten digits).
    #[error("created_at {created_at} is beyond 9999999999")]
    CreatedAtOutOfRange {
        /// The signed value.
        created_at: u64,
    },
    /// Only Active members may do this (Accepted members must ack the state digest first).
    #[error("member {member_id} is {status}, not Active")]
    MemberNotActive {
        /// The member.
        member_id: String,
        /// Its current status.
        status: String,
    },
    /// This signed proposal was already submitted.
    #[error("proposal submission replay: already seen as {key}")]
    ProposalReplay {
        /// The replay key (`created_at:sha256(signature)`).
        key: String,
    },
    /// The proposal is older than the median of the recent proposals window.
    #[error("proposal created at {created_at} is older than the replay window's median {median}")]
    ProposalCreatedTooLongAgo {
        /// The proposal's `created_at` (ten digits).
        created_at: String,
        /// The median `created_at` of the retained proposals.
        median: String,
    },
    /// The payload is not the JSON the endpoint expects, or breaks a limit.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What was wrong.
        reason: String,
    },
    /// The constitution's `validate` refused the proposal (or failed).
    #[error("proposal failed to validate: {description}")]
    ProposalFailedToValidate {
        /// The constitution's description.
        description: String,
    },
    /// No such proposal.
    #[error("proposal {proposal_id} does not exist")]
    ProposalNotFound {
        /// The id asked for.
        proposal_id: String,
    },
    /// The proposal is no longer Open: it takes no ballot and cannot be withdrawn.
    #[error("proposal {proposal_id} is {state}, not Open")]
    ProposalNotOpen {
        /// The proposal.
        proposal_id: String,
        /// Its state.
        state: String,
    },
    /// This member already submitted a ballot for this proposal.
    #[error("member {member_id} already voted on proposal {proposal_id}")]
    VoteAlreadyExists {
        /// The proposal.
        proposal_id: String,
        /// The member.
        member_id: String,
    },
    /// No ballot of this member on this proposal.
    #[error("member {member_id} has no ballot on proposal {proposal_id}")]
    BallotNotFound {
        /// The proposal.
        proposal_id: String,
        /// The member.
        member_id: String,
    },
    /// Only the proposer may withdraw a proposal.
    #[error("only the proposer may withdraw proposal {proposal_id}")]
    NotProposer {
        /// The proposal.
        proposal_id: String,
    },
    /// Too many open proposals, or a ballot or proposal over its size limit.
    #[error("limit exceeded: {reason}")]
    LimitExceeded {
        /// Which limit.
        reason: String,
    },
    /// No state digest was issued to this member (call `:update` first).
    #[error("no state digest was issued to member {member_id}")]
    StateDigestNotFound {
        /// The member.
        member_id: String,
    },
    /// The acknowledged digest is not the one last issued to the member.
    #[error("submitted state digest is not the one issued to member {member_id}")]
    StateDigestMismatch {
        /// The member.
        member_id: String,
    },
    /// Governance state is corrupt or the engine failed: not the client's fault.
    #[error("internal governance error: {reason}")]
    Internal {
        /// What failed.
        reason: String,
    },
}

impl GovError {
    /// The HTTP status the gov API answers with.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::MalformedEnvelope { .. }
            | Self::UnknownMember
            | Self::BadSignature { .. }
            | Self::CreatedAtOutOfRange { .. } => 401,
            Self::MemberIdMismatch { .. }
            | Self::MemberNotActive { .. }
            | Self::NotProposer { .. } => 403,
            Self::ProposalNotFound { .. }
            | Self::BallotNotFound { .. }
            | Self::StateDigestNotFound { .. } => 404,
            Self::WrongMessageType { .. }
            | Self::ProposalIdMismatch { .. }
            | Self::ProposalReplay { .. }
            | Self::ProposalCreatedTooLongAgo { .. }
            | Self::InvalidInput { .. }
            | Self::ProposalFailedToValidate { .. }
            | Self::ProposalNotOpen { .. }
            | Self::VoteAlreadyExists { .. }
            | Self::LimitExceeded { .. }
            | Self::StateDigestMismatch { .. } => 400,
            Self::Internal { .. } => 500,
        }
    }

    /// The stable error code (`error.code` and `x-ms-error-code`), CCF's where it has one.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedEnvelope { .. }
            | Self::UnknownMember
            | Self::BadSignature { .. }
            | Self::CreatedAtOutOfRange { .. } => "InvalidAuthenticationInfo",
            Self::MemberIdMismatch { .. }
            | Self::MemberNotActive { .. }
            | Self::NotProposer { .. } => "AuthorizationFailed",
            Self::WrongMessageType { .. } => "InvalidCoseMessageType",
            Self::ProposalIdMismatch { .. } => "ProposalIdMismatch",
            Self::ProposalReplay { .. } => "ProposalReplay",
            Self::ProposalCreatedTooLongAgo { .. } => "ProposalCreatedTooLongAgo",
            Self::InvalidInput { .. } => "InvalidInput",
            Self::ProposalFailedToValidate { .. } => "ProposalFailedToValidate",
            Self::ProposalNotFound { .. } => "ProposalNotFound",
            Self::ProposalNotOpen { .. } => "ProposalNotOpen",
            Self::VoteAlreadyExists { .. } => "VoteAlreadyExists",
            Self::BallotNotFound { .. } => "VoteNotFound",
            Self::LimitExceeded { .. } => "LimitExceeded",
            Self::StateDigestNotFound { .. } => "ResourceNotFound",
            Self::StateDigestMismatch { .. } => "StateDigestMismatch",
            Self::Internal { .. } => "InternalError",
        }
    }

    pub(crate) fn internal(reason: impl Into<String>) -> Self {
        Self::Internal { reason: reason.into() }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidInput { reason: reason.into() }
    }
}
