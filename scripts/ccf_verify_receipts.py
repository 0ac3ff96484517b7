#!/usr/bin/env python3
"""Verify Coco receipts with CCF's own Python package (`ccf` 7.0.22), as a CCF auditor would.

Usage: ccf_verify_receipts.py --service-cert service_cert.pem [--claims-digest HEX] FILE...

Each FILE is a receipt as a Coco node serves it: `*.json` from `GET /app/receipt` or
`*.cose` from `GET /app/receipt/cose`.

- JSON: leaf = sha256(write_set_digest || sha256(commit_evidence) || claims_digest) (or the
  `leaf` field of a signature transaction's receipt), root = ccf.receipt.root(leaf, proof),
  ccf.receipt.verify(root, signature, node cert), and
  ccf.receipt.check_endorsements(node cert, service cert, service_endorsements).
- COSE: ccf.receipt.verify_cose(receipt, service public key, claims digest).

Prints one line per receipt and exits 0 only if every receipt verifies (1 otherwise, 2 for
bad arguments). The end-to-end tests in bin/coco/tests/e2e run it with COCO_CCF_PYTHON.
"""

import argparse
import json
import sys
from hashlib import sha256

import ccf.receipt
from cryptography.x509 import load_pem_x509_certificate

ZERO_CLAIMS_DIGEST = "00" * 32


def verify_json(data: bytes, service_cert) -> str:
    receipt = json.loads(data)
    if "leaf_components" in receipt:
        components = receipt["leaf_components"]
        leaf = sha256(
            bytes.fromhex(components["write_set_digest"])
            + sha256(components["commit_evidence"].encode()).digest()
            + bytes.fromhex(components["claims_digest"])
        ).hexdigest()
        what = components["commit_evidence"].split(":")[1]
    else:
        leaf = receipt["leaf"]
        what = "signature transaction"
    root = ccf.receipt.root(leaf, receipt["proof"])
    node_cert = load_pem_x509_certificate(receipt["cert"].encode())
    ccf.receipt.verify(root, receipt["signature"], node_cert)
    endorsements = [
        load_pem_x509_certificate(pem.encode())
        for pem in receipt.get("service_endorsements", [])
    ]
    ccf.receipt.check_endorsements(node_cert, service_cert, endorsements)
    return f"JSON receipt of {what}, root {root}"


def verify_cose(data: bytes, service_cert, claims_digest: bytes) -> str:
    ccf.receipt.verify_cose(data, service_cert.public_key(), claims_digest)
    return "COSE receipt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service-cert", required=True, help="service certificate, PEM")
    parser.add_argument(
        "--claims-digest",
        default=ZERO_CLAIMS_DIGEST,
        help="claims digest (hex) COSE receipts must commit to; zeros without claims",
    )
    parser.add_argument("receipts", nargs="+", help="receipt files, *.json or *.cose")
    args = parser.parse_args()

    with open(args.service_cert, "rb") as f:
        service_cert = load_pem_x509_certificate(f.read())
    claims_digest = bytes.fromhex(args.claims_digest)

    failures = 0
    for path in args.receipts:
        with open(path, "rb") as f:
            data = f.read()
        try:
            if path.endswith(".json"):
                what = verify_json(data, service_cert)
            elif path.endswith(".cose"):
                what = verify_cose(data, service_cert, claims_digest)
            else:
                raise ValueError("receipt files must end in .json or .cose")
            print(f"OK {path}: {what}")
        except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
            failures += 1
            print(f"FAILED {path}: {type(e).__name__}: {e}")
    print(f"{len(args.receipts) - failures} of {len(args.receipts)} receipts verified")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
