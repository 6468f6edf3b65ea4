#!/usr/bin/env python3
"""Independent check of docs/format.md: unseal every vector with Python `cryptography` only.

Usage: check.py VECTOR_DIR. Exits non-zero and names the vector on any mismatch.
"""
import hashlib
import hmac
import struct
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VECTORS = {
    "empty": 0,
    "one-byte": 1,
    "segment-minus-one": 65535,
    "one-segment": 65536,
    "segment-plus-one": 65537,
    "two-segments-plus-five": 131077,
}
KEY = bytes(range(32))
SEG = 65536


def hkdf(salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(KEY)


def unseal(data: bytes) -> bytes:
    assert data[0:8] == b"SEALROOM", "magic"
    version, cipher, reserved, seg_size, length = struct.unpack(">BBHIQ", data[8:24])
    assert (version, cipher, reserved, seg_size) == (1, 1, 0, SEG), "fixed fields"
    key_id, salt = data[24:40], data[40:72]
    assert key_id == hashlib.sha256(b"sealroom key id v1" + KEY).digest()[:16], "key id"
    assert data[72:80] == hashlib.sha256(data[:72]).digest()[:8], "check"
    mac = hmac.new(hkdf(salt, b"sealroom v1 header key"), data[:72], "sha256").digest()
    assert hmac.compare_digest(mac, data[80:112]), "header MAC"
    aead = AESGCM(hkdf(salt, b"sealroom v1 payload key"))
    count = max(1, -(-length // SEG))
    body, out, pos = data[112:], [], 0
    for i in range(count):
        n = min(SEG, length - i * SEG) + 16
        nonce = i.to_bytes(11, "big") + (b"\x01" if i == count - 1 else b"\x00")
        out.append(aead.decrypt(nonce, body[pos : pos + n], None))
        pos += n
    assert pos == len(body), "length"
    return b"".join(out)


def main() -> int:
    folder = Path(sys.argv[1])
    for name, length in VECTORS.items():
        want = bytes((i * 31 + 7) % 251 for i in range(length))
        got = unseal((folder / f"{name}.sealed").read_bytes())
        if got != want:
            print(f"vector {name}: plaintext mismatch", file=sys.stderr)
            return 1
    print(f"{len(VECTORS)} vectors verified independently")
    return 0


if __name__ == "__main__":
    sys.exit(main())
