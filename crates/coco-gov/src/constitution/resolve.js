
// Coco's default constitution, part 3 of 4: resolve(proposal, proposerId, votes, proposalId)
// decides under the voting policy in force *now*, before the proposal's own actions apply:
// a change of voting policy is therefore decided under the old policy (W42).
//
// Only Active members count. The proposer counts as a yes vote unless they submitted a
// ballot (which then is their vote). With N active members the policy needs:
// majority: floor(N / 2) + 1 yes; unanimous: N; m_of_n: min(m, N); one_of_n: 1.
// Accepted once enough yes votes; Rejected once the no votes make that impossible.
function votingPolicy() {
  return getSingleton(VOTING_POLICY) ?? { kind: "majority" };
}

function requiredYes(policy, n) {
  switch (policy.kind) {
    case "majority":
      return Math.floor(n / 2) + 1;
    case "unanimous":
      return n;
    case "m_of_n":
      return Math.min(policy.m, n);
    case "one_of_n":
      return 1;
    default:
      throw new Error(`unknown voting policy ${JSON.stringify(policy.kind)}`);
  }
}

export function resolve(proposal, proposerId, votes, proposalId) {
  const active = new Set(activeMemberIds());
  const decided = new Map();
  for (const vote of votes) {
    if (active.has(vote.member_id)) {
      decided.set(vote.member_id, vote.vote === true);
    }
  }
  if (active.has(proposerId) && !decided.has(proposerId)) {
    decided.set(proposerId, true);
  }
  let yes = 0;
  let no = 0;
  for (const vote of decided.values()) {
    if (vote) {
      yes++;
    } else {
      no++;
    }
  }
  const needed = Math.max(1, requiredYes(votingPolicy(), active.size));
  if (yes >= needed) {
    return "Accepted";
  }
  if (active.size - no < needed) {
    return "Rejected";
  }
  return "Open";
}
