
// Coco's default constitution, part 2 of 4: validate(input) checks a proposal's shape and
// every action's arguments when it is submitted. `input` is the raw proposal (JSON text).
export function validate(input) {
  let proposal;
  try {
    proposal = JSON.parse(input);
  } catch (error) {
    return { valid: false, description: `proposal is not JSON: ${error.message}` };
  }
  if (describeType(proposal) !== "object" || !Array.isArray(proposal.actions)) {
    return { valid: false, description: 'a proposal is {"actions": [{"name", "args"}, ...]}' };
  }
  if (proposal.actions.length === 0) {
    return { valid: false, description: "a proposal has at least one action" };
  }
  const errors = [];
  proposal.actions.forEach((action, index) => {
    const name = describeType(action) === "object" ? action.name : undefined;
    const definition = typeof name === "string" ? actions.get(name) : undefined;
    if (definition === undefined) {
      errors.push(`action ${index}: unknown action ${JSON.stringify(name) ?? "undefined"}`);
      return;
    }
    try {
      definition.validate(action.args ?? {});
    } catch (error) {
      errors.push(`action ${index} (${name}): ${error.message}`);
    }
  });
  if (errors.length > 0) {
    return { valid: false, description: errors.join("; ") };
  }
  return { valid: true, description: "OK" };
}
