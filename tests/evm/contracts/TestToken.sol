// SPDX-License-Identifier: AGPL-3.0-only
// A minimal ERC-20 for Coffer's tests against anvil: configurable decimals (6 like USDT on
// Ethereum, 18 like USDT on BSC), open minting, and a transfer that emits its Transfer log and
// then reverts (the log must never be counted), and a batch transfer that moves tokens to many
// addresses in one transaction (one real Transfer log each; used to generate benchmark chains).
pragma solidity ^0.8.20;

contract TestToken {
    string public name;
    string public symbol;
    uint8 public decimals;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
    }

    function mint(address to, uint256 value) external {
        totalSupply += value;
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= value, "allowance");
        allowance[from][msg.sender] = allowed - value;
        _move(from, to, value);
        return true;
    }

    /// One ordinary transfer (and Transfer log) per recipient, all in one transaction.
    function transferBatch(address[] calldata to, uint256 value) external returns (bool) {
        for (uint256 i = 0; i < to.length; i++) {
            _move(msg.sender, to[i], value);
        }
        return true;
    }

    /// Moves the tokens, emits Transfer, then reverts: nothing of it survives.
    function transferThenRevert(address to, uint256 value) external {
        _move(msg.sender, to, value);
        revert("reverted on purpose");
    }

    function _move(address from, address to, uint256 value) internal {
        require(balanceOf[from] >= value, "balance");
        balanceOf[from] -= value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}
