
// Coco's default constitution, part 4 of 4: apply(proposal, proposalId) carries out every
// action of an accepted proposal, in order. A throw fails the proposal and undoes them all.
export function apply(proposal, proposalId) {
  const parsed = JSON.parse(proposal);
  for (const action of parsed.actions) {
    const definition = actions.get(action.name);
    if (definition === undefined) {
      throw new Error(`unknown action ${action.name}`);
    }
    definition.apply(action.args ?? {}, proposalId);
  }
}
