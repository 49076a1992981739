#!/usr/bin/env python3
"""Verify a Coffer webhook delivery.

Usage: COFFER_WEBHOOK_SECRET=whsec_... COFFER_SIGNATURE='t=...,v1=...' python3 verify.py body.json
In a web handler, pass the raw request body (bytes, before any JSON parsing) and the value
of the Coffer-Signature header to verify().
"""
import hashlib
import hmac
import os
import sys
import time

TOLERANCE_SECONDS = 300  # refuse replays of old deliveries


def verify(secret: str, header: str, raw_body: bytes, now: float | None = None) -> bool:
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not timestamp.isdigit():
        return False
    if abs((now or time.time()) - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    signed = timestamp.encode() + b"." + raw_body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    # One v1 per valid secret (two while a secret is being rotated): any match is enough.
    return any(hmac.compare_digest(expected, s) for s in signatures)


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        body = f.read()
    if verify(os.environ["COFFER_WEBHOOK_SECRET"], os.environ["COFFER_SIGNATURE"], body):
        print("valid")
    else:
        print("invalid signature", file=sys.stderr)
        sys.exit(1)
