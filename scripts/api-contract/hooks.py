"""Schemathesis hooks for the node's API contract (loaded through scripts/api-contract/schemathesis.toml).

1. Addresses. The document marks them with the custom string format `ldg-address`: bech32m with
   the prefix `ldg`, whose checksum no pattern can express, and schemathesis has no way to check a
   custom format. So: its generator gets a strategy that makes real addresses (of random 20-byte
   account ids, with the bech32m encoder of the Python client, written from docs/WIRE.md alone),
   and a positive test case carrying a string that fits the address pattern but not the format
   (the coverage phase builds those from the pattern alone) is dropped, as the format's checker
   would. Negative cases are kept whole: a bad address must be refused.
2. Integers. schemathesis also spells integers of JSON bodies as whole floats (`2.0`), which JSON
   Schema counts as integers; the node reads amounts, nonces and heights only in integer spelling
   (a float spelling invites rounding: above 2^53 a double cannot hold every integer), and its
   document says so. Whole floats in generated bodies are written back as the integers they are.
"""

import os
import re
import sys

from hypothesis import strategies as st

import schemathesis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
from ledger_client import AddressError, bech32m_encode, parse_address  # noqa: E402

ADDRESS = st.binary(min_size=20, max_size=20).map(lambda account: bech32m_encode("ldg", account))
schemathesis.openapi.format("ldg-address", ADDRESS)

# The document's address pattern (ledger_core::openapi::ADDRESS_PATTERN).
ADDRESS_LIKE = re.compile(r"^(ldg1[02-9ac-hj-np-z]{38}|LDG1[02-9AC-HJ-NP-Z]{38})$")


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _is_address(text):
    try:
        parse_address(text)
        return True
    except AddressError:
        return False


@schemathesis.hook
def filter_case(context, case):
    meta = case.meta
    if meta is None or meta.generation.mode != schemathesis.GenerationMode.POSITIVE:
        return True
    values = [case.path_parameters, case.query, case.body]
    return all(_is_address(s) for v in values for s in _strings(v) if ADDRESS_LIKE.match(s))


def _integers(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integers(v) for v in value]
    return value


@schemathesis.hook
def map_body(context, body):
    return _integers(body)
