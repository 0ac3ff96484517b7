// Compiles contracts/CocoToken.sol with solc-js (pinned in package.json) through the
// standard-JSON interface, at test time, so no build artefact is committed.
//
// evmVersion "prague", set explicitly (solc 0.8.37 defaults to osaka): Coco's revm PRAGUE
// spec runs it, and so does anvil 1.7.1 (with `--hardfork prague`, and with its default
// "latest"). The bytecode uses PUSH0, so a pre-Shanghai chain refuses the deploy
// (anvil --hardfork london answers "EVM error NotActivated").
//
// As a module:  import { compileCocoToken } from "./compile.mjs";
//               const { abi, bytecode } = compileCocoToken();
// As a script:  node tests/eth/compile.mjs [out.json]   (writes {abi, bytecode}; stdout if no path)
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import solc from "solc";

const here = dirname(fileURLToPath(import.meta.url));

/** The EVM version the tests compile for. */
export const EVM_VERSION = "prague";

/** Compiles CocoToken.sol; returns {abi, bytecode} (bytecode is 0x-prefixed creation code). */
export function compileCocoToken(evmVersion = EVM_VERSION) {
  const source = readFileSync(join(here, "contracts", "CocoToken.sol"), "utf8");
  const input = {
    language: "Solidity",
    sources: { "CocoToken.sol": { content: source } },
    settings: {
      evmVersion,
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { CocoToken: ["abi", "evm.bytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  if (errors.length > 0) {
    throw new Error("solc: " + errors.map((e) => e.formattedMessage).join("\n"));
  }
  const contract = output.contracts["CocoToken.sol"].CocoToken;
  return { abi: contract.abi, bytecode: "0x" + contract.evm.bytecode.object };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const json = JSON.stringify(compileCocoToken(), null, 1);
  if (process.argv[2]) writeFileSync(process.argv[2], json);
  else process.stdout.write(json + "\n");
}
