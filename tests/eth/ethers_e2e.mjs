// End-to-end check of an Ethereum JSON-RPC endpoint (Coco's POST /app/eth, or anvil) with
// ethers v6, as an external dApp would use it: every transaction is signed locally and sent
// with eth_sendRawTransaction (Coco has no eth_accounts signing and no mempool).
//
// Checks: eth_chainId 31337; dev account 0 is funded; the EIP-1559 cross-check vector (hash
// 0x7d4c…aea87 when dev 0's nonce is 0) is accepted under the locally computed hash and mined
// (receipt, recipient balance); CocoToken deploy (eth_estimateGas, fee data, eth_getCode);
// token transfer, balanceOf, eth_getLogs; revert reason on eth_estimateGas/eth_call and a
// mined revert (status 0); blocks by number/hash/"latest"; a JSON-RPC batch of two raw txs;
// a wrong-chain-id tx refused with a JSON-RPC error; eth_newFilter/getFilterChanges/uninstall.
// Uses dev keys 0 and 1 only (web3_e2e.py uses 2 and 3), so both can run on one chain.
//
// Run:  (cd tests/eth && npm ci --no-audit --no-fund)
//       COCO_ETH_URL=http://127.0.0.1:8545 node tests/eth/ethers_e2e.mjs          # anvil
//       COCO_ETH_URL=https://127.0.0.1:8000/app/eth COCO_SERVICE_CERT=service_cert.pem \
//         COCO_USER_CERT=user0_cert.pem COCO_USER_KEY=user0_privk.pem node tests/eth/ethers_e2e.mjs
// Exit 0 and "ethers e2e: ok (<n> checks)", or exit 1 with one line saying the first failure.
import { readFileSync } from "node:fs";
import https from "node:https";
import {
  ContractFactory, FetchRequest, Interface, JsonRpcProvider, Transaction, Wallet,
  parseEther, parseUnits,
} from "ethers";
import { compileCocoToken } from "./compile.mjs";

const URL = process.env.COCO_ETH_URL ?? "http://127.0.0.1:8545";
const CHAIN_ID = 31337n;
const DEV0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DEV1_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const DEV1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const VECTOR_HASH = "0x7d4c13ed95c0cee830d7457ec5a5976db1fc301cfa7a23fef0039a7ccf6aea87";
const REVERT_REASON = "CocoToken: transfer amount exceeds balance";
const SUPPLY = parseEther("1000000");

let step = "setup";
let checks = 0;
function fail(why) {
  console.error(`ethers e2e: FAIL [${step}]: ${why}`);
  process.exit(1);
}
function check(cond, what) {
  if (!cond) fail(what);
  checks += 1;
}

// TLS with the service certificate as CA and a client certificate, when all three are given.
function tlsAgent() {
  const files = ["COCO_SERVICE_CERT", "COCO_USER_CERT", "COCO_USER_KEY"].map((k) => process.env[k]);
  if (files.every((f) => !f)) return null;
  if (!files.every((f) => f)) fail("set all of COCO_SERVICE_CERT, COCO_USER_CERT, COCO_USER_KEY or none");
  const [ca, cert, key] = files.map((f) => readFileSync(f));
  return new https.Agent({ ca, cert, key, keepAlive: true });
}
const agent = tlsAgent();

// A FetchRequest for the endpoint; every request (provider's and raw ones) goes through it.
function endpoint() {
  const req = new FetchRequest(URL);
  req.timeout = 30_000;
  if (agent) req.getUrlFunc = FetchRequest.createGetUrlFunc({ agent });
  return req;
}

// POSTs a JSON-RPC payload (object or batch array) as is; returns the parsed response body.
async function rawRpc(payload) {
  const req = endpoint();
  req.body = payload;
  const resp = await req.send();
  resp.assertOk();
  return JSON.parse(resp.bodyText);
}

const provider = new JsonRpcProvider(endpoint(), CHAIN_ID, {
  staticNetwork: true, cacheTimeout: -1, pollingInterval: 250,
});
const dev0 = new Wallet(DEV0_KEY, provider);
const dev1 = new Wallet(DEV1_KEY, provider);

async function receiptOf(hash) {
  const r = await provider.waitForTransaction(hash, 1, 60_000);
  if (r == null) fail(`no receipt for ${hash}`);
  return r;
}

// Signs a plain EIP-1559 value transfer from dev 0 (fees fixed, as in the vector).
function signTransfer(nonce, value, chainId = CHAIN_ID) {
  return dev0.signTransaction({
    type: 2, chainId, nonce, to: DEV1, value, gasLimit: 21000n,
    maxFeePerGas: parseUnits("2", "gwei"), maxPriorityFeePerGas: parseUnits("1", "gwei"),
  });
}

async function crossCheckVector() {
  step = "vector";
  const nonce = await provider.getTransactionCount(dev0.address, "latest");
  check(nonce === await provider.getTransactionCount(dev0.address, "pending"), "pending nonce != latest nonce");
  const raw = await signTransfer(nonce, parseEther("1"));
  const hash = Transaction.from(raw).hash;
  if (nonce === 0) check(hash === VECTOR_HASH, `vector hash ${hash} != ${VECTOR_HASH}`);
  const before = await provider.getBalance(DEV1);
  const sent = await provider.send("eth_sendRawTransaction", [raw]);
  check(sent === hash, `node returned hash ${sent}, locally computed ${hash}`);
  const r = await receiptOf(hash);
  check(r.status === 1, `vector receipt status ${r.status}`);
  check(Number.isInteger(r.blockNumber) && /^0x[0-9a-f]{64}$/.test(r.blockHash), "receipt lacks block");
  check(r.gasUsed === 21000n, `vector gasUsed ${r.gasUsed}`);
  const after = await provider.getBalance(DEV1);
  check(after - before === parseEther("1"), `recipient balance grew by ${after - before}`);
  const tx = await provider.getTransaction(hash);
  check(tx?.hash === hash && tx.from === dev0.address && tx.nonce === nonce, "eth_getTransactionByHash fields");
}

async function tokenFlow(abi, bytecode) {
  step = "deploy";
  const iface = new Interface(abi);
  const token = await new ContractFactory(abi, bytecode, dev0).deploy(SUPPLY);
  const deployReceipt = await token.deploymentTransaction().wait();
  check(deployReceipt.status === 1, "deploy receipt status");
  const address = await token.getAddress();
  check(deployReceipt.contractAddress === address, "receipt contractAddress");
  check((await provider.getCode(address)).length > 2, "no code at the token address");
  check(await token.totalSupply() === SUPPLY, "totalSupply");

  step = "transfer";
  const amount = parseEther("250");
  const r = await (await token.transfer(DEV1, amount)).wait();
  check(r.status === 1, "transfer receipt status");
  check(await token.balanceOf(dev0.address) === SUPPLY - amount, "sender balanceOf");
  check(await token.balanceOf(DEV1) === amount, "recipient balanceOf");

  step = "getLogs";
  const topic = iface.getEvent("Transfer").topicHash;
  const logs = await provider.getLogs({ address, topics: [topic], fromBlock: r.blockNumber, toBlock: r.blockNumber });
  const log = logs.find((l) => l.transactionHash === r.hash);
  check(log !== undefined, `Transfer log of ${r.hash} not found (${logs.length} logs)`);
  const ev = iface.parseLog(log);
  check(ev.args.from === dev0.address && ev.args.to === DEV1 && ev.args.value === amount, "Transfer args");

  step = "revert";
  const tooMuch = SUPPLY * 2n;
  for (const [name, call] of [["estimateGas", token.transfer.estimateGas], ["staticCall", token.transfer.staticCall]]) {
    const err = await call(DEV1, tooMuch).then(() => null, (e) => e);
    check(err?.code === "CALL_EXCEPTION", `${name} of an overdraft: ${err?.code ?? "no error"}`);
    check(err.reason === REVERT_REASON, `${name} revert reason ${JSON.stringify(err.reason)}`);
  }
  const nonce = await provider.getTransactionCount(dev0.address, "pending");
  const bad = await token.transfer(DEV1, tooMuch, { gasLimit: 100_000n });
  const err = await bad.wait().then(() => null, (e) => e);
  check(err?.code === "CALL_EXCEPTION" && err.receipt?.status === 0, "mined overdraft: no status-0 receipt");
  check(await provider.getTransactionCount(dev0.address) === nonce + 1, "reverted tx did not consume its nonce");

  step = "blocks";
  const block = await provider.getBlock(r.blockNumber);
  check(block?.transactions.includes(r.hash), "block by number lacks the transfer");
  const byHash = await provider.getBlock(block.hash);
  check(byHash?.number === block.number && byHash.hash === block.hash, "block by hash differs");
  check(JSON.stringify(byHash.transactions) === JSON.stringify(block.transactions), "block tx lists differ");
  const latest = await provider.getBlock("latest");
  check(latest !== null && latest.number >= err.receipt.blockNumber, "latest block");
  return { token, iface, address, topic };
}

async function batchAndInvalid() {
  step = "feeData";
  const fee = await provider.getFeeData();
  check(fee.gasPrice > 0n && fee.maxFeePerGas > 0n && fee.maxPriorityFeePerGas !== null, "fee data");

  step = "batch";
  const n = await provider.getTransactionCount(dev0.address, "pending");
  const raws = [await signTransfer(n, 1n), await signTransfer(n + 1, 2n)];
  const hashes = raws.map((raw) => Transaction.from(raw).hash);
  const resp = await rawRpc(raws.map((raw, i) => ({ jsonrpc: "2.0", id: i + 1, method: "eth_sendRawTransaction", params: [raw] })));
  check(Array.isArray(resp) && resp.length === 2, `batch response ${JSON.stringify(resp)}`);
  for (const [i, hash] of hashes.entries()) {
    const item = resp.find((x) => x.id === i + 1);
    check(item?.result === hash, `batch item ${i + 1}: ${JSON.stringify(item)}`);
  }
  const [r1, r2] = [await receiptOf(hashes[0]), await receiptOf(hashes[1])];
  check(r1.status === 1 && r2.status === 1, "batch receipts status");
  check(r1.blockNumber < r2.blockNumber || (r1.blockNumber === r2.blockNumber && r1.index < r2.index), "batch mined out of order");

  step = "wrong chain id";
  const nonce = await provider.getTransactionCount(dev0.address, "latest");
  const raw = await signTransfer(nonce, 1n, 1n);
  const out = await rawRpc({ jsonrpc: "2.0", id: 7, method: "eth_sendRawTransaction", params: [raw] });
  check(out.result === undefined && out.error !== undefined, `chain-id-1 tx accepted: ${JSON.stringify(out)}`);
  check(Number.isInteger(out.error.code) && typeof out.error.message === "string", `error shape ${JSON.stringify(out.error)}`);
  check(await provider.getTransaction(Transaction.from(raw).hash) === null, "chain-id-1 tx is known to the node");
  check(await provider.getTransactionCount(dev0.address, "pending") === nonce, "nonce moved after a refused tx");
}

async function filterFlow({ token, iface, address, topic }) {
  step = "filter";
  const id = await provider.send("eth_newFilter", [{ address, topics: [topic] }]);
  check(typeof id === "string" && id.startsWith("0x"), `filter id ${id}`);
  const r = await (await token.transfer(DEV1, 5n)).wait();
  const changes = await provider.send("eth_getFilterChanges", [id]);
  const log = Array.isArray(changes) ? changes.find((l) => l.transactionHash === r.hash) : undefined;
  check(log !== undefined, `filter changes lack the transfer: ${JSON.stringify(changes)}`);
  const ev = iface.parseLog(log);
  check(ev.args.to === DEV1 && ev.args.value === 5n, "filter log args");
  check(await provider.send("eth_uninstallFilter", [id]) === true, "eth_uninstallFilter did not return true");
}

async function main() {
  step = "chainId";
  check(BigInt(await provider.send("eth_chainId", [])) === CHAIN_ID, "eth_chainId is not 31337");
  check(await provider.getBalance(dev0.address) > 0n, "dev account 0 has no balance");
  check(await provider.getBalance(dev1.address) > 0n, "dev account 1 has no balance");
  await crossCheckVector();
  step = "compile";
  const { abi, bytecode } = compileCocoToken();
  const token = await tokenFlow(abi, bytecode);
  await batchAndInvalid();
  await filterFlow(token);
  console.log(`ethers e2e: ok (${checks} checks)`);
  process.exit(0);
}

main().catch((e) => fail(`${e.code ?? "error"}: ${(e.shortMessage ?? e.message).split("\n")[0]}`));
