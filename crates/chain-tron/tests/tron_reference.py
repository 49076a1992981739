#!/usr/bin/env python3
"""An independent reference for the TRON address tests, Python's standard library only.

  tron_reference.py xpub "<mnemonic>"   the account xpub at m/44'/195'/0' (BIP39, BIP32)
  tron_reference.py base58 <hex>...     41-prefixed hex (or 20-byte hex) -> T... Base58Check
  tron_reference.py hex <T...>...       T... -> 41-prefixed hex, checksum verified
(one line out per argument)
"""
import hashlib
import hmac
import sys

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
     0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)


def b58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = ALPHABET[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58check_decode(s: str) -> bytes:
    n = 0
    for c in s:
        n = n * 58 + ALPHABET.index(c)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    raw = b"\0" * (len(s) - len(s.lstrip("1"))) + raw
    payload, check = raw[:-4], raw[-4:]
    assert hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == check, "checksum"
    return payload


def add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        lam = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (lam * lam - a[0] - b[0]) % P
    return (x, (lam * (a[0] - x) - a[1]) % P)


def mul(k, point=G):
    out = None
    while k:
        if k & 1:
            out = add(out, point)
        point = add(point, point)
        k >>= 1
    return out


def compressed(point) -> bytes:
    return bytes([2 + (point[1] & 1)]) + point[0].to_bytes(32, "big")


def account_xpub(mnemonic: str) -> str:
    seed = hashlib.pbkdf2_hmac("sha512", mnemonic.encode(), b"mnemonic", 2048)
    i = hmac.new(b"Bitcoin seed", seed, hashlib.sha512).digest()
    key, chain = int.from_bytes(i[:32], "big"), i[32:]
    parent = None
    for index in (44 | 1 << 31, 195 | 1 << 31, 0 | 1 << 31):
        parent = compressed(mul(key))
        i = hmac.new(chain, b"\0" + key.to_bytes(32, "big") + index.to_bytes(4, "big"),
                     hashlib.sha512).digest()
        key, chain = (int.from_bytes(i[:32], "big") + key) % N, i[32:]
    fingerprint = hashlib.new("ripemd160", hashlib.sha256(parent).digest()).digest()[:4]
    raw = (bytes.fromhex("0488B21E") + bytes([3]) + fingerprint + (1 << 31).to_bytes(4, "big")
           + chain + compressed(mul(key)))
    return b58check(raw)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    for arg in args:
        if cmd == "xpub":
            print(account_xpub(arg))
        elif cmd == "base58":
            raw = bytes.fromhex(arg.removeprefix("0x"))
            print(b58check(raw if len(raw) == 21 else b"\x41" + raw))
        elif cmd == "hex":
            print(b58check_decode(arg).hex())
        else:
            sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
