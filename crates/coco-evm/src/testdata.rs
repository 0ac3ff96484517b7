//! A real contract for benchmarks: the ERC-20 the client tests compile
//! (`tests/eth/contracts/CocoToken.sol`, solc 0.8.37, Prague, optimiser on). An e2e test
//! recompiles the source with solc-js and checks these bytes are what it gives.

/// `CocoToken`'s creation code, hex without `0x` (append the ABI-encoded initial supply).
pub const COCO_TOKEN_CODE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/eth/contracts/CocoToken.bin"));

/// The selector of `transfer(address,uint256)`.
pub const TRANSFER_SELECTOR: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];

/// Calldata of `transfer(to, amount)`.
#[must_use]
pub fn transfer_input(to: &[u8; 20], amount: u128) -> Vec<u8> {
    let mut input = TRANSFER_SELECTOR.to_vec();
    input.extend_from_slice(&[0u8; 12]);
    input.extend_from_slice(to);
    input.extend_from_slice(&[0u8; 16]);
    input.extend_from_slice(&amount.to_be_bytes());
    input
}

/// `CocoToken`'s creation code as bytes, with `initial_supply` (a big-endian word)
/// appended as its constructor argument.
///
/// # Panics
/// Never: the embedded code is hex (an e2e test compares it with solc's output).
#[must_use]
pub fn coco_token_creation_code(initial_supply: [u8; 32]) -> Vec<u8> {
    let mut code = alloy_primitives::hex::decode(COCO_TOKEN_CODE.trim())
        .expect("the embedded token code is hex");
    code.extend_from_slice(&initial_supply);
    code
}

/// A node for tests and benchmarks: a fixed clock, and a commit point past everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct FixedNode;

impl crate::NodeServices for FixedNode {
    fn now_ms(&self) -> u64 {
        1_700_000_000_000
    }

    fn committed_seqno(&self) -> u64 {
        u64::MAX
    }

    fn receipt(&self, seqno: u64) -> Result<serde_json::Value, String> {
        Ok(serde_json::json!({ "seqno": seqno }))
    }
}
