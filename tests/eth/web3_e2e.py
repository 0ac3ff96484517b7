#!/usr/bin/env python3
"""End-to-end check of an Ethereum JSON-RPC endpoint (Coco's POST /app/eth, or anvil) with
web3.py and eth-account, as an external Python client would use it. Every transaction is
signed locally and sent with eth_sendRawTransaction (Coco has no eth_accounts signing).

Checks: web3_clientVersion, net_version, eth_chainId 31337, eth_syncing, eth_blockNumber;
dev accounts 2 and 3 funded; the EIP-1559 cross-check vector signed offline by eth-account
(dev key 0, nonce 0 -> 0x7d4c...aea87); an EIP-1559, a legacy EIP-155 and an EIP-2930
(access list) transfer from dev 2, each accepted under the locally computed hash, with receipt,
eth_getTransactionByHash fields and balances; CocoToken deploy, eth_getCode, eth_getStorageAt
(totalSupply and balanceOf slots), transfer, balanceOf, events from the receipt and from
eth_getLogs, the revert reason on eth_call and eth_estimateGas (ContractLogicError), blocks by
number/hash/"latest", eth_getTransactionCount "pending", gas price, priority fee, fee history.
Uses dev keys 2 and 3 only (ethers_e2e.mjs uses 0 and 1), so both can run on one chain.

The token's {abi, bytecode} come from the JSON file named by COCO_TOKEN_JSON if set, else from
running `node tests/eth/compile.mjs` (needs `npm ci` in tests/eth) and reading its stdout.

Run:  pip install -r scripts/requirements-eth.txt
      COCO_ETH_URL=http://127.0.0.1:8545 python3 tests/eth/web3_e2e.py                 # anvil
      COCO_ETH_URL=https://127.0.0.1:8000/app/eth COCO_SERVICE_CERT=service_cert.pem \
        COCO_USER_CERT=user0_cert.pem COCO_USER_KEY=user0_privk.pem python3 tests/eth/web3_e2e.py
Exit 0 and "web3 e2e: ok (<n> checks)", or exit 1 with one line saying the first failure.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError

URL = os.environ.get("COCO_ETH_URL", "http://127.0.0.1:8545")
CHAIN_ID = 31337
DEV0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV2 = Account.from_key("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
DEV3 = Account.from_key("0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6")
VECTOR_TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
VECTOR_HASH = "0x7d4c13ed95c0cee830d7457ec5a5976db1fc301cfa7a23fef0039a7ccf6aea87"
REVERT_REASON = "CocoToken: transfer amount exceeds balance"
GWEI = 10**9
ETHER = 10**18
SUPPLY = 1_000_000 * ETHER

step = "setup"
checks = 0


def fail(why):
    print(f"web3 e2e: FAIL [{step}]: {why}", file=sys.stderr)
    sys.exit(1)


def check(cond, what):
    global checks
    if not cond:
        fail(what)
    checks += 1


def connect():
    files = [os.environ.get(k) for k in ("COCO_SERVICE_CERT", "COCO_USER_CERT", "COCO_USER_KEY")]
    kwargs = {"timeout": 30}
    if any(files):
        if not all(files):
            fail("set all of COCO_SERVICE_CERT, COCO_USER_CERT, COCO_USER_KEY or none")
        kwargs |= {"verify": files[0], "cert": (files[1], files[2])}
    return Web3(Web3.HTTPProvider(URL, request_kwargs=kwargs))


def token_artifact():
    path = os.environ.get("COCO_TOKEN_JSON")
    if path:
        return json.loads(Path(path).read_text())
    compile_js = Path(__file__).resolve().parent / "compile.mjs"
    out = subprocess.run(["node", str(compile_js)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        fail(f"node compile.mjs failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout)


def send(w3, tx, key=DEV2.key):
    """Signs tx locally, sends it raw, checks the node's hash; returns the receipt."""
    signed = Account.sign_transaction(tx, key)
    sent = w3.eth.send_raw_transaction(signed.raw_transaction)
    check(sent == signed.hash, f"node returned hash {sent.to_0x_hex()}, local {signed.hash.to_0x_hex()}")
    return w3.eth.wait_for_transaction_receipt(signed.hash, timeout=60, poll_latency=0.1)


def node_info(w3):
    global step
    step = "node info"
    check(w3.eth.chain_id == CHAIN_ID, f"eth_chainId {w3.eth.chain_id}")
    check(w3.net.version == str(CHAIN_ID), f"net_version {w3.net.version!r}")
    check(isinstance(w3.client_version, str) and w3.client_version, "web3_clientVersion")
    check(w3.eth.syncing is False, f"eth_syncing {w3.eth.syncing}")
    check(isinstance(w3.eth.accounts, (list, tuple)), "eth_accounts is not a list")
    check(w3.eth.block_number >= 0, "eth_blockNumber")
    for acct in (DEV2, DEV3):
        check(w3.eth.get_balance(acct.address) > 0, f"{acct.address} has no balance")


def transfers(w3):
    global step
    step = "vector"
    vector = {"type": 2, "chainId": CHAIN_ID, "nonce": 0, "to": VECTOR_TO, "value": ETHER,
              "gas": 21000, "maxFeePerGas": 2 * GWEI, "maxPriorityFeePerGas": GWEI}
    local = Account.sign_transaction(vector, DEV0_KEY).hash.to_0x_hex()
    check(local == VECTOR_HASH, f"vector hash {local} != {VECTOR_HASH}")

    nonce = w3.eth.get_transaction_count(DEV2.address)
    check(w3.eth.get_transaction_count(DEV2.address, "pending") == nonce, "pending != latest nonce")
    fees_1559 = {"maxFeePerGas": 2 * GWEI, "maxPriorityFeePerGas": GWEI}
    kinds = [  # (name, extra fields, expected type, expected gasUsed)
        ("eip1559", {"type": 2, **fees_1559, "gas": 21000}, 2, 21000),
        ("legacy", {"gasPrice": 2 * GWEI, "gas": 21000}, 0, 21000),
        ("eip2930", {"type": 1, "gasPrice": 2 * GWEI, "gas": 30000,
                     "accessList": [{"address": DEV3.address, "storageKeys": ["0x" + "00" * 32]}]},
         1, 21000 + 2400 + 1900),
    ]
    for name, extra, tx_type, gas_used in kinds:
        step = name
        before = w3.eth.get_balance(DEV3.address)
        tx = {"chainId": CHAIN_ID, "nonce": nonce, "to": DEV3.address, "value": ETHER, **extra}
        r = send(w3, tx)
        check(r.status == 1 and r.gasUsed == gas_used, f"receipt status {r.status} gasUsed {r.gasUsed}")
        check(r["from"] == DEV2.address and r.to == DEV3.address, "receipt from/to")
        check(w3.eth.get_balance(DEV3.address) - before == ETHER, "recipient balance")
        got = w3.eth.get_transaction(r.transactionHash)
        check(got.hash == r.transactionHash and got["from"] == DEV2.address and got.nonce == nonce,
              "eth_getTransactionByHash hash/from/nonce")
        check(got.type == tx_type and got.value == ETHER and got.gas == tx["gas"], f"tx type {got.type}")
        check(got.blockHash == r.blockHash and got.blockNumber == r.blockNumber
              and got.transactionIndex == r.transactionIndex, "tx block fields")
        check(got.get("chainId") == CHAIN_ID and got.r and got.s, "tx chainId/signature")
        if tx_type == 0:
            check(got.v in (CHAIN_ID * 2 + 35, CHAIN_ID * 2 + 36), f"legacy v {got.v} is not EIP-155")
        if tx_type == 1:
            check(len(got.accessList) == 1 and got.accessList[0]["address"] == DEV3.address,
                  "access list not returned")
        nonce += 1
    step = "nonce"
    check(w3.eth.get_transaction_count(DEV2.address, "pending") == nonce, "pending nonce after 3 txs")


def token_flow(w3):
    global step
    step = "deploy"
    art = token_artifact()
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    nonce = w3.eth.get_transaction_count(DEV2.address, "pending")
    r = send(w3, factory.constructor(SUPPLY).build_transaction(
        {"from": DEV2.address, "nonce": nonce, "chainId": CHAIN_ID}))
    check(r.status == 1 and r.contractAddress, "deploy receipt")
    token = w3.eth.contract(address=r.contractAddress, abi=art["abi"])
    check(len(w3.eth.get_code(token.address)) > 0, "no code at the token address")
    check(token.functions.symbol().call() == "COCO", "symbol()")
    supply_slot = int.from_bytes(w3.eth.get_storage_at(token.address, 0), "big")
    check(supply_slot == SUPPLY, f"storage slot 0 (totalSupply) = {supply_slot}")

    step = "transfer"
    amount = 321 * ETHER
    r = send(w3, token.functions.transfer(DEV3.address, amount).build_transaction(
        {"from": DEV2.address, "nonce": nonce + 1, "chainId": CHAIN_ID}))
    check(r.status == 1, "transfer receipt status")
    check(token.functions.balanceOf(DEV2.address).call() == SUPPLY - amount, "sender balanceOf")
    check(token.functions.balanceOf(DEV3.address).call() == amount, "recipient balanceOf")
    # balanceOf is the mapping at slot 1: keccak256(pad32(holder) . pad32(1)).
    slot = Web3.solidity_keccak(["uint256", "uint256"], [int(DEV3.address, 16), 1])
    check(int.from_bytes(w3.eth.get_storage_at(token.address, slot), "big") == amount, "balanceOf slot")

    step = "events"
    (ev,) = token.events.Transfer().process_receipt(r)
    check(ev.args["from"] == DEV2.address and ev.args.to == DEV3.address and ev.args.value == amount,
          "Transfer event in the receipt")
    logs = token.events.Transfer.get_logs(from_block=r.blockNumber, to_block=r.blockNumber)
    check(any(e.transactionHash == r.transactionHash and e.args.value == amount for e in logs),
          f"eth_getLogs lacks the Transfer ({len(logs)} logs)")
    raw = w3.eth.get_logs({"address": token.address, "fromBlock": 0, "toBlock": "latest",
                           "topics": [token.events.Transfer().topic]})
    check(len(raw) == 2, f"eth_getLogs over all blocks: {len(raw)} Transfer logs, want mint + 1")

    step = "revert"
    call = token.functions.transfer(DEV2.address, amount + 1)
    for name, run in (("eth_call", call.call), ("eth_estimateGas", call.estimate_gas)):
        try:
            run({"from": DEV3.address})
            fail(f"{name} of an overdraft did not revert")
        except ContractLogicError as e:
            check(REVERT_REASON in str(e.message), f"{name} revert message {e.message!r}")

    step = "blocks"
    block = w3.eth.get_block(r.blockNumber)
    check(r.transactionHash in block.transactions, "block by number lacks the transfer")
    by_hash = w3.eth.get_block(block.hash)
    check(by_hash.number == block.number and by_hash.transactions == block.transactions, "block by hash")
    full = w3.eth.get_block(r.blockNumber, full_transactions=True)
    check(any(t.hash == r.transactionHash for t in full.transactions), "full block lacks the tx")
    latest = w3.eth.get_block("latest")
    check(latest.number >= r.blockNumber and latest.baseFeePerGas is not None, "latest block")


def fees(w3):
    global step
    step = "fees"
    check(w3.eth.gas_price > 0, "eth_gasPrice")
    check(w3.eth.max_priority_fee >= 0, "eth_maxPriorityFeePerGas")
    h = w3.eth.fee_history(3, "latest", [25.0, 75.0])
    check(len(h.baseFeePerGas) == 4 and len(h.gasUsedRatio) == 3, f"fee history shape {dict(h)}")
    check(len(h.reward) == 3 and all(len(x) == 2 for x in h.reward), "fee history rewards")
    check(0 <= h.oldestBlock <= w3.eth.block_number - 2, f"fee history oldestBlock {h.oldestBlock}")


def main():
    w3 = connect()
    node_info(w3)
    transfers(w3)
    token_flow(w3)
    fees(w3)
    print(f"web3 e2e: ok ({checks} checks)")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - one line naming the first failure is the contract
        fail(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
