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
