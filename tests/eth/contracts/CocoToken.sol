// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title CocoToken
/// @notice A minimal, self-contained ERC-20 used by Coco's external-client tests
/// (tests/eth/ethers_e2e.mjs, tests/eth/web3_e2e.py). No imports, so solc-js can compile
/// it from this one file. Storage layout (read by the tests with eth_getStorageAt):
/// slot 0 totalSupply, slot 1 balanceOf, slot 2 allowance. name/symbol/decimals are
/// constants and take no slot.
contract CocoToken {
    string public constant name = "Coco Token";
    string public constant symbol = "COCO";
    uint8 public constant decimals = 18;

    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(uint256 initialSupply) {
        totalSupply = initialSupply;
        balanceOf[msg.sender] = initialSupply;
        emit Transfer(address(0), msg.sender, initialSupply);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        require(spender != address(0), "CocoToken: approve to the zero address");
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= value, "CocoToken: insufficient allowance");
        if (allowed != type(uint256).max) {
            allowance[from][msg.sender] = allowed - value;
            emit Approval(from, msg.sender, allowed - value);
        }
        _transfer(from, to, value);
        return true;
    }

    function _transfer(address from, address to, uint256 value) internal {
        require(to != address(0), "CocoToken: transfer to the zero address");
        uint256 balance = balanceOf[from];
        require(balance >= value, "CocoToken: transfer amount exceeds balance");
        unchecked {
            balanceOf[from] = balance - value;
        }
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}
