// Coco's default constitution, part 1 of 4: the actions. Each action checks its arguments
// (validate, run when a proposal is submitted) and has an effect (apply, run when the
// proposal is accepted). Effects that belong to the node go through ccf.node / ccf.network
// host functions; the host collects them and carries them out in the same transaction.

const MEMBERS_CERTS = "public:ccf.gov.members.certs";
const MEMBERS_INFO = "public:ccf.gov.members.info";
const MEMBERS_KEYS = "public:ccf.gov.members.encryption_public_keys";
const MEMBERS_ACKS = "public:ccf.gov.members.acks";
const USERS_CERTS = "public:ccf.gov.users.certs";
const USERS_INFO = "public:ccf.gov.users.info";
const NODES_INFO = "public:ccf.gov.nodes.info";
const NODES_PLATFORMS = "public:ccf.gov.nodes.platforms";
const SERVICE_CONFIG = "public:ccf.gov.service.config";
const VOTING_POLICY = "public:ccf.gov.voting_policy";
const CONSTITUTION = "public:ccf.gov.constitution";
const SIGNATURES = "public:ccf.internal.signatures";

// Platforms and the table of allowed measurements (code manifest) of each.
const MEASUREMENTS = {
  virtual: { table: "public:ccf.gov.nodes.virtual.measurements", hexLength: 64 },
  "sev-snp": { table: "public:ccf.gov.nodes.snp.measurements", hexLength: 96 },
  sgx: { table: "public:ccf.gov.nodes.code_ids", hexLength: 64 },
};
const RECOVERY_ROLES = ["NonParticipant", "Participant", "Owner"];
const VOTING_POLICY_KINDS = ["majority", "unanimous", "m_of_n", "one_of_n"];
const ALLOWED = "AllowedToJoin";

function singletonKey() {
  return new ArrayBuffer(8);
}

function fail(message) {
  throw new Error(message);
}

function describeType(value) {
  return value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
}

function checkType(value, type, field) {
  const ok =
    type === "integer"
      ? Number.isInteger(value)
      : type === "object"
        ? describeType(value) === "object"
        : describeType(value) === type;
  if (!ok) {
    fail(`${field} must be of type ${type}, not ${describeType(value)}`);
  }
}

function isAbsent(value) {
  return value === undefined || value === null;
}

function checkArgs(args, required, optional) {
  checkType(args, "object", "args");
  for (const name of Object.keys(args)) {
    if (!required.includes(name) && !optional.includes(name)) {
      fail(`unknown argument ${JSON.stringify(name)}`);
    }
  }
  for (const name of required) {
    if (isAbsent(args[name])) {
      fail(`missing argument ${JSON.stringify(name)}`);
    }
  }
}

function checkHex(value, field, length) {
  checkType(value, "string", field);
  if (!/^[0-9a-f]*$/.test(value) || value.length !== length) {
    fail(`${field} must be ${length} lowercase hex characters`);
  }
}

function checkEnum(value, allowed, field) {
  if (!allowed.includes(value)) {
    fail(`${field} must be one of ${allowed.join(", ")}`);
  }
}

function checkIntegerIn(value, min, max, field) {
  checkType(value, "integer", field);
  if (value < min || value > max) {
    fail(`${field} must be between ${min} and ${max}`);
  }
}

// The id of a certificate (hex SHA-256 of its DER); throws if it is not a certificate.
function certId(pem, field) {
  checkType(pem, "string", field);
  try {
    return ccf.crypto.certId(pem);
  } catch (error) {
    fail(`${field} is not a PEM certificate: ${error.message}`);
  }
}

function key(id) {
  return ccf.strToBuf(id);
}

function getJson(table, id) {
  const raw = ccf.kv[table].get(key(id));
  return raw === undefined ? undefined : ccf.bufToJsonCompatible(raw);
}

function setJson(table, id, value) {
  ccf.kv[table].set(key(id), ccf.jsonCompatibleToBuf(value));
}

function getSingleton(table) {
  const raw = ccf.kv[table].get(singletonKey());
  return raw === undefined ? undefined : ccf.bufToJsonCompatible(raw);
}

function setSingleton(table, value) {
  ccf.kv[table].set(singletonKey(), ccf.jsonCompatibleToBuf(value));
}

function memberIds(predicate) {
  const ids = [];
  ccf.kv[MEMBERS_INFO].forEach((value, rawId) => {
    const id = ccf.bufToStr(rawId);
    if (predicate(id, ccf.bufToJsonCompatible(value))) {
      ids.push(id);
    }
  });
  return ids;
}

function activeMemberIds() {
  return memberIds((_id, info) => info.status === "Active");
}

function recoveryMemberIds() {
  return memberIds((id) => ccf.kv[MEMBERS_KEYS].has(key(id)));
}

function recoveryThreshold() {
  const config = getSingleton(SERVICE_CONFIG);
  return config === undefined || isAbsent(config.recovery_threshold)
    ? 1
    : config.recovery_threshold;
}

function checkRsaKey(pem, field) {
  checkType(pem, "string", field);
  if (!ccf.crypto.isValidRsaPublicKey(pem)) {
    fail(`${field} is not a PEM RSA public key`);
  }
}

class Action {
  constructor(validate, apply) {
    this.validate = validate;
    this.apply = apply;
  }
}

const actions = new Map([
  [
    "set_member",
    new Action(
      (args) => {
        checkArgs(args, ["cert"], ["encryption_pub_key", "member_data", "recovery_role"]);
        certId(args.cert, "cert");
        if (!isAbsent(args.encryption_pub_key)) {
          checkRsaKey(args.encryption_pub_key, "encryption_pub_key");
        }
        if (!isAbsent(args.recovery_role)) {
          checkEnum(args.recovery_role, RECOVERY_ROLES, "recovery_role");
          if (args.recovery_role !== "NonParticipant" && isAbsent(args.encryption_pub_key)) {
            fail("a recovery member needs an encryption_pub_key");
          }
        }
      },
      (args) => {
        const id = certId(args.cert, "cert");
        const previous = getJson(MEMBERS_INFO, id);
        ccf.kv[MEMBERS_CERTS].set(key(id), ccf.strToBuf(args.cert));
        if (isAbsent(args.encryption_pub_key)) {
          ccf.kv[MEMBERS_KEYS].delete(key(id));
        } else {
          ccf.kv[MEMBERS_KEYS].set(key(id), ccf.strToBuf(args.encryption_pub_key));
        }
        const info = {
          status: previous === undefined ? "Accepted" : previous.status,
          member_data: isAbsent(args.member_data) ? null : args.member_data,
        };
        if (!isAbsent(args.recovery_role)) {
          info.recovery_role = args.recovery_role;
        }
        setJson(MEMBERS_INFO, id, info);
        const signature = getSingleton(SIGNATURES);
        if (signature !== undefined && typeof signature.root === "string") {
          setJson(MEMBERS_ACKS, id, { state_digest: signature.root });
        }
        ccf.node.membersChanged();
      },
    ),
  ],
  [
    "remove_member",
    new Action(
      (args) => {
        checkArgs(args, ["member_id"], []);
        checkHex(args.member_id, "member_id", 64);
      },
      (args) => {
        const id = args.member_id;
        const info = getJson(MEMBERS_INFO, id);
        if (info === undefined) {
          return;
        }
        const active = activeMemberIds().filter((other) => other !== id);
        if (active.length === 0) {
          fail("cannot remove the last active member");
        }
        const recovery = recoveryMemberIds().filter((other) => other !== id);
        if (ccf.kv[MEMBERS_KEYS].has(key(id)) && recovery.length < recoveryThreshold()) {
          fail("removing this member leaves fewer recovery members than the recovery threshold");
        }
        for (const table of [MEMBERS_CERTS, MEMBERS_INFO, MEMBERS_KEYS, MEMBERS_ACKS]) {
          ccf.kv[table].delete(key(id));
        }
        ccf.node.membersChanged();
      },
    ),
  ],
  [
    "set_member_data",
    new Action(
      (args) => {
        checkArgs(args, ["member_id"], ["member_data"]);
        checkHex(args.member_id, "member_id", 64);
      },
      (args) => {
        const info = getJson(MEMBERS_INFO, args.member_id);
        if (info === undefined) {
          fail(`member ${args.member_id} does not exist`);
        }
        info.member_data = isAbsent(args.member_data) ? null : args.member_data;
        setJson(MEMBERS_INFO, args.member_id, info);
      },
    ),
  ],
  [
    "set_user",
    new Action(
      (args) => {
        checkArgs(args, ["cert"], ["user_data"]);
        certId(args.cert, "cert");
      },
      (args) => {
        const id = certId(args.cert, "cert");
        ccf.kv[USERS_CERTS].set(key(id), ccf.strToBuf(args.cert));
        setJson(USERS_INFO, id, { user_data: isAbsent(args.user_data) ? null : args.user_data });
      },
    ),
  ],
  [
    "remove_user",
    new Action(
      (args) => {
        checkArgs(args, ["user_id"], []);
        checkHex(args.user_id, "user_id", 64);
      },
      (args) => {
        ccf.kv[USERS_CERTS].delete(key(args.user_id));
        ccf.kv[USERS_INFO].delete(key(args.user_id));
      },
    ),
  ],
  [
    "set_user_data",
    new Action(
      (args) => {
        checkArgs(args, ["user_id"], ["user_data"]);
        checkHex(args.user_id, "user_id", 64);
      },
      (args) => {
        if (!ccf.kv[USERS_CERTS].has(key(args.user_id))) {
          fail(`user ${args.user_id} does not exist`);
        }
        const data = isAbsent(args.user_data) ? null : args.user_data;
        setJson(USERS_INFO, args.user_id, { user_data: data });
      },
    ),
  ],
  [
    "set_constitution",
    new Action(
      (args) => {
        checkArgs(args, ["constitution"], []);
        checkType(args.constitution, "string", "constitution");
        if (args.constitution.length === 0) {
          fail("constitution must not be empty");
        }
      },
      (args) => setSingleton(CONSTITUTION, args.constitution),
    ),
  ],
  [
    "set_recovery_threshold",
    new Action(
      (args) => {
        checkArgs(args, ["recovery_threshold"], []);
        checkIntegerIn(args.recovery_threshold, 1, 255, "recovery_threshold");
      },
      (args) => {
        const recovery = recoveryMemberIds().length;
        if (recovery > 0 && args.recovery_threshold > recovery) {
          fail(`recovery_threshold exceeds the ${recovery} recovery members`);
        }
        const config = getSingleton(SERVICE_CONFIG) ?? {};
        config.recovery_threshold = args.recovery_threshold;
        setSingleton(SERVICE_CONFIG, config);
        ccf.network.setRecoveryThreshold(args.recovery_threshold);
      },
    ),
  ],
  [
    "trigger_ledger_rekey",
    new Action(
      (args) => checkArgs(args, [], []),
      () => ccf.node.triggerLedgerRekey(),
    ),
  ],
  [
    "trigger_recovery_shares_refresh",
    new Action(
      (args) => checkArgs(args, [], []),
      () => ccf.node.triggerRecoverySharesRefresh(),
    ),
  ],
  [
    "transition_service_to_open",
    new Action(
      (args) => {
        checkArgs(args, [], ["next_service_identity", "previous_service_identity"]);
        for (const field of ["next_service_identity", "previous_service_identity"]) {
          if (!isAbsent(args[field])) {
            checkType(args[field], "string", field);
          }
        }
      },
      (args) =>
        ccf.network.transitionServiceToOpen(
          args.previous_service_identity ?? null,
          args.next_service_identity ?? null,
        ),
    ),
  ],
  [
    "transition_node_to_trusted",
    new Action(
      (args) => {
        checkArgs(args, ["node_id"], ["valid_from", "validity_period_days"]);
        checkHex(args.node_id, "node_id", 64);
        if (!isAbsent(args.validity_period_days)) {
          checkIntegerIn(args.validity_period_days, 1, 3650, "validity_period_days");
        }
      },
      (args) => {
        const info = getJson(NODES_INFO, args.node_id);
        if (info === undefined) {
          fail(`node ${args.node_id} does not exist`);
        }
        if (info.status === "Trusted") {
          return;
        }
        if (info.status !== "Pending") {
          fail(`node ${args.node_id} is ${info.status}, not Pending`);
        }
        info.status = "Trusted";
        setJson(NODES_INFO, args.node_id, info);
        ccf.node.transitionNodeToTrusted(args.node_id);
      },
    ),
  ],
  [
    "remove_node",
    new Action(
      (args) => {
        checkArgs(args, ["node_id"], []);
        checkHex(args.node_id, "node_id", 64);
      },
      (args) => {
        const info = getJson(NODES_INFO, args.node_id);
        if (info === undefined || info.status === "Retired") {
          return;
        }
        info.status = "Retired";
        setJson(NODES_INFO, args.node_id, info);
        ccf.node.removeNode(args.node_id);
      },
    ),
  ],
  ...["add_code_measurement", "remove_code_measurement"].map((name) => [
    name,
    new Action(
      (args) => {
        checkArgs(args, ["platform", "measurement"], []);
        checkEnum(args.platform, Object.keys(MEASUREMENTS), "platform");
        checkHex(args.measurement, "measurement", MEASUREMENTS[args.platform].hexLength);
      },
      (args) => {
        const table = ccf.kv[MEASUREMENTS[args.platform].table];
        if (name === "add_code_measurement") {
          table.set(key(args.measurement), ccf.jsonCompatibleToBuf(ALLOWED));
        } else {
          table.delete(key(args.measurement));
        }
      },
    ),
  ]),
  ...["add_platform", "remove_platform"].map((name) => [
    name,
    new Action(
      (args) => {
        checkArgs(args, ["platform"], []);
        checkEnum(args.platform, Object.keys(MEASUREMENTS), "platform");
      },
      (args) => {
        const table = ccf.kv[NODES_PLATFORMS];
        if (name === "add_platform") {
          table.set(key(args.platform), ccf.jsonCompatibleToBuf(ALLOWED));
        } else {
          table.delete(key(args.platform));
        }
      },
    ),
  ]),
  [
    "set_service_configuration",
    new Action(
      (args) => {
        const fields = [
          "recovery_threshold",
          "recent_cose_proposals_window_size",
          "maximum_node_certificate_validity_days",
          "reconfiguration_type",
        ];
        checkArgs(args, [], fields);
        const ranges = {
          recovery_threshold: [1, 255],
          recent_cose_proposals_window_size: [1, 10000],
          maximum_node_certificate_validity_days: [1, 3650],
        };
        for (const [field, [min, max]] of Object.entries(ranges)) {
          if (!isAbsent(args[field])) {
            checkIntegerIn(args[field], min, max, field);
          }
        }
        if (!isAbsent(args.reconfiguration_type)) {
          checkEnum(args.reconfiguration_type, ["OneTransaction", "TwoTransaction"], "reconfiguration_type");
        }
      },
      (args) => {
        const config = getSingleton(SERVICE_CONFIG) ?? {};
        for (const [field, value] of Object.entries(args)) {
          if (!isAbsent(value)) {
            config[field] = value;
          }
        }
        setSingleton(SERVICE_CONFIG, config);
        if (!isAbsent(args.recovery_threshold)) {
          ccf.network.setRecoveryThreshold(args.recovery_threshold);
        }
      },
    ),
  ],
  [
    "set_voting_policy",
    new Action(
      (args) => {
        checkArgs(args, ["kind"], ["m"]);
        checkEnum(args.kind, VOTING_POLICY_KINDS, "kind");
        if (args.kind === "m_of_n") {
          checkIntegerIn(args.m, 1, activeMemberIds().length, "m");
        } else if (!isAbsent(args.m)) {
          fail(`m is only an argument of m_of_n`);
        }
      },
      (args) => {
        const policy = { kind: args.kind };
        if (args.kind === "m_of_n") {
          policy.m = args.m;
        }
        setSingleton(VOTING_POLICY, policy);
      },
    ),
  ],
]);
