#!/usr/bin/env python3
"""A ledger client written from docs/WIRE.md alone: no project code, stdlib + `cryptography`.

It exists to prove the wire spec is enough to build a client in another language, and it is run
against a real node in CI (testnet/tests/it/python_client.rs).

    ledger_client.py vectors docs/wire-vectors.json
        Recomputes every vector of the file from its inputs and compares every field. Exit 0 when
        all match; exit 1 after printing each mismatch.

    ledger_client.py transfer --node URL (--dev-account I | --seed-hex HEX) --to ADDR --amount N
                              [--fee F] [--memo-hex HEX] [--wait] [--timeout SECS]
        Reads the chain id (GET /v1/status) and the sender's next nonce (GET /v1/accounts/{addr}),
        signs, submits (POST /v1/transactions), and with --wait polls GET /v1/transactions/{hash}
        until the transfer is final. Prints `final hash=<hex> height=<h> index=<i>` (or
        `pending hash=<hex>` without --wait). Exit 1 with the node's error code when it is refused,
        2 on bad arguments, 3 when the node cannot be reached or the wait times out, 4 when the
        mempool dropped it while waiting (status `dropped`: evicted, replaced or expired).
"""

import argparse
import hashlib
import json
import struct
import sys
import time
import urllib.error
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# --------------------------------------------------------------------------------------------
# Constants of WIRE.md.

TX_DOMAIN = b"ledger/v1/transaction\x00"
ADDRESS_DOMAIN = b"ledger/v1/address\x00"
DEV_KEY_DOMAIN = b"ledger dev key\x00"
HRP = "ldg"
U64_MAX = 2**64 - 1
MAX_MEMO_BYTES = 256
MAX_TX_BYTES = 512

# --------------------------------------------------------------------------------------------
# bech32m (BIP-350), with the ledger's parsing rules (WIRE.md, "Address text form").

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32M_CONST = 0x2BC830A3


def _polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp):
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _bytes_to_fes(data):
    acc, bits, out = 0, 0, []
    for b in data:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def _fes_to_bytes(fes):
    """Whole bytes only: trailing bits (fewer than 8) are dropped, whatever their value."""
    acc, bits, out = 0, 0, bytearray()
    for f in fes:
        acc = (acc << 5) | f
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    return bytes(out)


def bech32m_encode(hrp, data):
    fes = _bytes_to_fes(data)
    pm = _polymod(_hrp_expand(hrp) + fes + [0] * 6) ^ BECH32M_CONST
    checksum = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[f] for f in fes + checksum)


class AddressError(ValueError):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind  # "checksum" | "wrong_prefix" | "wrong_length" | "not_canonical"


def parse_address(text):
    """Text address -> 20 bytes, or AddressError with the kind the node reports."""
    # Exact, like the node: white space is not part of an address.
    s = text
    sep = s.rfind("1")
    if sep < 1:
        raise AddressError("checksum", "no separator or empty hrp")
    hrp, data = s[:sep], s[sep + 1 :]
    if any(not (33 <= ord(c) <= 126) for c in hrp) or len(hrp) > 83:
        raise AddressError("checksum", "bad hrp character")
    if s.lower() != s and s.upper() != s:
        raise AddressError("checksum", "mixed case")
    lower = data.lower()
    if any(c not in CHARSET for c in lower):
        raise AddressError("checksum", "character outside the bech32 alphabet")
    if len(lower) < 6:
        raise AddressError("checksum", "shorter than the checksum")
    fes = [CHARSET.index(c) for c in lower]
    if _polymod(_hrp_expand(hrp.lower()) + fes) != BECH32M_CONST:
        raise AddressError("checksum", "bech32m checksum does not match")
    # BIP-350: an all-upper-case address is the same address.
    if hrp.lower() != HRP:
        raise AddressError("wrong_prefix", "hrp is %r, not %r" % (hrp, HRP))
    raw = _fes_to_bytes(fes[:-6])
    if len(raw) != 20:
        raise AddressError("wrong_length", "address holds %d bytes, not 20" % len(raw))
    # One address, one text: padding bits or an extra character are refused.
    canonical = bech32m_encode(HRP, raw)
    if s.lower() != canonical:
        raise AddressError("not_canonical", "the canonical text is %s" % canonical)
    return raw


def address_of(public_key):
    return hashlib.sha256(ADDRESS_DOMAIN + public_key).digest()[:20]


# --------------------------------------------------------------------------------------------
# Keys.


def dev_seed(label, index):
    return hashlib.sha256(
        DEV_KEY_DOMAIN + label.encode() + b"\x00" + struct.pack("<I", index)
    ).digest()


class Key:
    def __init__(self, seed):
        if len(seed) != 32:
            raise ValueError("a seed is 32 bytes")
        self.seed = seed
        self._sk = Ed25519PrivateKey.from_private_bytes(seed)
        self.public = self._sk.public_key().public_bytes_raw()
        self.address = address_of(self.public)

    def sign(self, message):
        return self._sk.sign(message)


# --------------------------------------------------------------------------------------------
# Transactions: borsh encoding, signing payload, hash, JSON.


def _u64(n):
    if not 0 <= n <= U64_MAX:
        raise ValueError("%d is not a u64" % n)
    return struct.pack("<Q", n)


def _borsh_bytes(b):
    return struct.pack("<I", len(b)) + b


def tx_bytes(chain_id, from_pk, to_addr, amount, fee, nonce, memo):
    return (
        _borsh_bytes(chain_id.encode("ascii"))
        + from_pk
        + to_addr
        + _u64(amount)
        + _u64(fee)
        + _u64(nonce)
        + _borsh_bytes(memo)
    )


def signing_bytes(chain_id, payload):
    chain = chain_id.encode("ascii")
    if not 1 <= len(chain) <= 64:
        raise ValueError("chain id must be 1 to 64 bytes")
    return TX_DOMAIN + bytes([len(chain)]) + chain + payload


def tx_json(chain_id, from_pk, to_addr, amount, fee, nonce, memo, signature):
    return {
        "tx": {
            "chain_id": chain_id,
            "from": from_pk.hex(),
            "to": bech32m_encode(HRP, to_addr),
            "amount": amount,
            "fee": fee,
            "nonce": nonce,
            "memo": memo.hex(),
        },
        "signature": signature.hex(),
    }


class SignedTx:
    def __init__(self, key, chain_id, to_addr, amount, fee, nonce, memo=b""):
        self.fields = (chain_id, key.public, to_addr, amount, fee, nonce, memo)
        self.tx_bytes = tx_bytes(*self.fields)
        self.signing_bytes = signing_bytes(chain_id, self.tx_bytes)
        self.signature = key.sign(self.signing_bytes)
        self.signed_bytes = self.tx_bytes + self.signature
        self.hash = hashlib.sha256(self.signed_bytes).digest()
        self.json = tx_json(*self.fields, self.signature)
        self.sender = key.address

    def stateless_check(self):
        """The node's checks that need no state, in its order; "ok" or the error code."""
        _chain, _pk, to_addr, amount, fee, _nonce, memo = self.fields
        if len(self.signed_bytes) > MAX_TX_BYTES:
            return "too_large"
        if len(memo) > MAX_MEMO_BYTES:
            return "memo_too_long"
        if amount == 0:
            return "zero_amount"
        if amount + fee > U64_MAX:
            return "amount_overflow"
        if self.sender == to_addr:
            return "self_transfer"
        return "ok"


def merkle_root(hashes):
    def mth(d):
        if len(d) == 1:
            return hashlib.sha256(b"\x00" + d[0]).digest()
        k = 1
        while k * 2 < len(d):
            k *= 2
        return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()

    if not hashes:
        return bytes(32)
    return hashlib.sha256(b"\x02" + struct.pack("<Q", len(hashes)) + mth(hashes)).digest()


# --------------------------------------------------------------------------------------------
# `vectors`


def check_vectors(path):
    with open(path, encoding="utf-8") as f:
        v = json.load(f)
    errors = []

    def same(place, expected, got):
        if expected != got:
            errors.append("%s: computed %r, file has %r" % (place, expected, got))

    same("transaction_domain_hex", TX_DOMAIN.hex(), v.get("transaction_domain_hex"))
    same("address_domain_hex", ADDRESS_DOMAIN.hex(), v.get("address_domain_hex"))
    same("address_hrp", HRP, v.get("address_hrp"))
    counts = {}
    for i, k in enumerate(v.get("keys", [])):
        p = "keys[%d]" % i
        if "dev_label" in k:
            seed = dev_seed(k["dev_label"], k["dev_index"])
            same(p + ".seed", seed.hex(), k["seed"])
        key = Key(bytes.fromhex(k["seed"]))
        same(p + ".public_key", key.public.hex(), k["public_key"])
        same(p + ".address_hex", key.address.hex(), k["address_hex"])
        same(p + ".address", bech32m_encode(HRP, key.address), k["address"])
        counts["keys"] = counts.get("keys", 0) + 1
    for i, t in enumerate(v.get("transactions", [])):
        p = "transactions[%d]" % i
        key = Key(bytes.fromhex(t["seed"]))
        try:
            to = parse_address(t["to"])
        except AddressError as e:
            errors.append("%s.to: %s" % (p, e))
            continue
        stx = SignedTx(
            key, t["chain_id"], to, t["amount"], t["fee"], t["nonce"], bytes.fromhex(t["memo_hex"])
        )
        same(p + ".from", key.public.hex(), t["from"])
        same(p + ".from_address", bech32m_encode(HRP, key.address), t["from_address"])
        same(p + ".to_hex", to.hex(), t["to_hex"])
        same(p + ".tx_bytes", stx.tx_bytes.hex(), t["tx_bytes"])
        same(p + ".signing_bytes", stx.signing_bytes.hex(), t["signing_bytes"])
        same(p + ".signature", stx.signature.hex(), t["signature"])
        try:
            # The file's signature over the file's signing bytes, as a verifier sees it.
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(t["from"])).verify(
                bytes.fromhex(t["signature"]), bytes.fromhex(t["signing_bytes"])
            )
        except (InvalidSignature, ValueError) as e:
            errors.append("%s.signature: does not verify over signing_bytes (%r)" % (p, e))
        same(p + ".signed_tx_bytes", stx.signed_bytes.hex(), t["signed_tx_bytes"])
        same(p + ".tx_hash", stx.hash.hex(), t["tx_hash"])
        same(p + ".json", stx.json, t["json"])
        same(p + ".stateless_check", stx.stateless_check(), t["stateless_check"])
        counts["transactions"] = counts.get("transactions", 0) + 1
    for i, a in enumerate(v.get("address_texts", [])):
        p = "address_texts[%d] (%s)" % (i, a.get("why"))
        try:
            raw = parse_address(a["text"])
            got = {"accept": True, "address_hex": raw.hex()}
        except AddressError as e:
            got = {"accept": False, "error": e.kind}
        want = {k: a[k] for k in ("accept", "address_hex", "error") if k in a}
        same(p, got, want)
        counts["address_texts"] = counts.get("address_texts", 0) + 1
    m = v.get("merkle", {})
    hashes = [bytes.fromhex(h) for h in m.get("tx_hashes", [])]
    same(
        "merkle.tx_hashes",
        [t["tx_hash"] for t in v.get("transactions", [])],
        m.get("tx_hashes"),
    )
    roots = [merkle_root(hashes[:n]).hex() for n in range(len(hashes) + 1)]
    same("merkle.roots_of_prefixes", roots, m.get("roots_of_prefixes"))
    for section in ("keys", "transactions", "address_texts"):
        if not counts.get(section):
            errors.append("%s: no vectors in the file" % section)
    for e in errors:
        print("MISMATCH " + e)
    print(
        "checked %d keys, %d transactions, %d address texts, %d merkle roots: %s"
        % (
            counts.get("keys", 0),
            counts.get("transactions", 0),
            counts.get("address_texts", 0),
            len(roots),
            "%d mismatches" % len(errors) if errors else "all match",
        )
    )
    return 1 if errors else 0


# --------------------------------------------------------------------------------------------
# `transfer`


class NodeError(Exception):
    """An answer from the node that is an error: its HTTP status and its JSON body."""

    def __init__(self, status, body):
        super().__init__("%s: %s" % (body.get("code"), body.get("message")))
        self.status = status
        self.body = body


def http(method, url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {"code": "http_%d" % e.code, "message": raw.decode(errors="replace")}
        raise NodeError(e.code, parsed) from None


def transfer(args):
    node = args.node.rstrip("/")
    if args.seed_hex is not None:
        key = Key(bytes.fromhex(args.seed_hex))
    else:
        key = Key(dev_seed("account", args.dev_account))
    to = parse_address(args.to)
    chain_id = http("GET", node + "/v1/status")["chain_id"]
    sender = bech32m_encode(HRP, key.address)
    nonce = http("GET", "%s/v1/accounts/%s" % (node, sender))["next_nonce"]
    stx = SignedTx(key, chain_id, to, args.amount, args.fee, nonce, bytes.fromhex(args.memo_hex))
    print(
        "signed from=%s nonce=%d chain=%s hash=%s" % (sender, nonce, chain_id, stx.hash.hex()),
        file=sys.stderr,
    )
    r = http("POST", node + "/v1/transactions", stx.json)
    if r.get("hash") != stx.hash.hex():
        # The node hashes what it received; a different hash means the spec and the node disagree.
        print("node answered hash %s, computed %s" % (r.get("hash"), stx.hash.hex()), file=sys.stderr)
        return 1
    if not args.wait:
        print("%s hash=%s" % (r["status"], stx.hash.hex()))
        return 0
    deadline = time.monotonic() + args.timeout
    while True:
        if r["status"] == "final":
            print("final hash=%s height=%d index=%d" % (stx.hash.hex(), r["height"], r["index"]))
            return 0
        if r["status"] == "rejected":
            reason = r.get("reason", {})
            print("rejected: %s %s" % (reason.get("code"), json.dumps(reason)), file=sys.stderr)
            return 1
        if r["status"] == "dropped":
            # Valid, but the mempool let go of it (evicted, replaced or expired): not applied.
            reason = r.get("reason", {})
            print("dropped: %s %s" % (reason.get("code"), json.dumps(reason)), file=sys.stderr)
            return 4
        if time.monotonic() >= deadline:
            print("not final after %d s (status %s)" % (args.timeout, r["status"]), file=sys.stderr)
            return 3
        time.sleep(0.2)
        try:
            r = http("GET", "%s/v1/transactions/%s" % (node, stx.hash.hex()))
        except NodeError as e:
            if e.body.get("code") != "not_found":
                raise
            # Between mempool and store for an instant: keep polling until the deadline.
            r = {"status": "pending"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pv = sub.add_parser("vectors", help="check every vector of a wire-vectors.json file")
    pv.add_argument("file")
    pt = sub.add_parser("transfer", help="sign and submit a transfer")
    pt.add_argument("--node", required=True, help="the node's API, e.g. http://127.0.0.1:8080")
    who = pt.add_mutually_exclusive_group(required=True)
    who.add_argument("--dev-account", type=int, help="dev account i (DEV ONLY key)")
    who.add_argument("--seed-hex", help="the 32-byte ed25519 seed, hex")
    pt.add_argument("--to", required=True, help="recipient address, ldg1...")
    pt.add_argument("--amount", type=int, required=True)
    pt.add_argument("--fee", type=int, default=1)
    pt.add_argument("--memo-hex", default="")
    pt.add_argument("--wait", action="store_true", help="poll until final")
    pt.add_argument("--timeout", type=int, default=60, help="seconds to wait for finality")
    args = p.parse_args(argv)
    if args.cmd == "vectors":
        return check_vectors(args.file)
    try:
        return transfer(args)
    except AddressError as e:
        print("bad --to address (%s): %s" % (e.kind, e), file=sys.stderr)
        return 2
    except NodeError as e:
        # The node's typed error: code, message and its fields (e.g. have/need).
        print("refused (HTTP %d): %s" % (e.status, json.dumps(e.body)), file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as e:
        print("node unreachable: %s" % e, file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
