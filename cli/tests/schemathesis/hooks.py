"""Generators for the string formats mnode's OpenAPI document names (`format: cid`, …).

Their patterns say what such a text looks like, but not all of what makes one valid (a
`did:key` must be a point on the curve; a widget query must parse). These generators draw
valid values, half of them from the repo under test so that requests reach real records.
`MNODE_ST_DATA` names a JSON file with what the repo holds:
`{"cids", "record_cids", "file_cids", "dids", "peer_ids", "handles", "queries": […],
"scratch", "car", "file": "/…"}`.
"""

import base64
import hashlib
import json
import os

import schemathesis
from hypothesis import strategies as st

DATA = json.load(open(os.environ["MNODE_ST_DATA"]))

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def cid_of(prefix: bytes, digest: bytes) -> str:
    return "b" + base64.b32encode(prefix + digest).decode().lower().rstrip("=")


# dag-cbor + sha2-256 (records, blocks) and raw + blake3 (files).
PREFIXES = [b"\x01\x71\x12\x20", b"\x01\x55\x1e\x20"]
random_cid = st.builds(cid_of, st.sampled_from(PREFIXES), st.binary(min_size=32, max_size=32))
cid = st.one_of(st.sampled_from(DATA["cids"]), random_cid)
did = st.sampled_from(DATA["dids"])
# An Ed25519 peer id: the identity multihash of the protobuf-encoded public key.
random_peer = st.binary(min_size=32, max_size=32).map(lambda k: b58(b"\x00\x24\x08\x01\x12\x20" + k))
peer_id = st.one_of(st.sampled_from(DATA["peer_ids"]), random_peer)
handle = st.one_of(st.sampled_from(DATA["handles"]), st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,31}\Z"))
topic = st.one_of(
    did,
    did.map(lambda d: "/mnode/1/author/" + d),
    st.builds(
        lambda kind, c: f"/mnode/1/{kind}/{c}",
        st.sampled_from(["forum", "branch", "thread", "about"]),
        cid,
    ),
)
# Closed ports on 127.0.0.1: a dial fails at once, and nothing else is reached.
multiaddr = st.builds(
    lambda port, peer: f"/ip4/127.0.0.1/tcp/{port}" + (f"/p2p/{peer}" if peer else ""),
    st.sampled_from([1, 9]),
    st.one_of(st.none(), peer_id),
)
cursor = st.builds(lambda t, c: f"{t}-{c}", st.integers(0, 2**63), cid)
# Only inside a scratch folder the test made: export writes files there.
node_path = st.from_regex(r"\A[a-z0-9]{1,12}\Z").map(lambda name: f"{DATA['scratch']}/{name}")

schemathesis.openapi.format("cid", cid)
schemathesis.openapi.format("did-key", did)
schemathesis.openapi.format("mnode-topic", topic)
schemathesis.openapi.format("mnode-feed-id", st.one_of(did, cid))
schemathesis.openapi.format("handle", handle)
schemathesis.openapi.format("mnode-member", st.one_of(handle, did, handle.map(lambda h: "@" + h)))
schemathesis.openapi.format("mnode-people", st.lists(st.one_of(handle, did), min_size=1, max_size=3).map(",".join))
schemathesis.openapi.format("peer-id", peer_id)
schemathesis.openapi.format("multiaddr", multiaddr)
schemathesis.openapi.format("mnode-cursor", cursor)
schemathesis.openapi.format("widget-query", st.sampled_from(DATA["queries"]))
schemathesis.openapi.format("node-path", node_path)
schemathesis.openapi.format("file-cid", st.one_of(st.sampled_from(DATA["file_cids"]), st.builds(cid_of, st.just(PREFIXES[1]), st.binary(min_size=32, max_size=32))))
schemathesis.openapi.format("block-cid", st.one_of(st.sampled_from(DATA["record_cids"]), st.builds(cid_of, st.just(PREFIXES[0]), st.binary(min_size=32, max_size=32))))
schemathesis.openapi.format("mnode-email", st.from_regex(r"\A[a-z0-9.]{1,20}@example\.org\Z"))
# Hex digests score 4 of 4 with zxcvbn (random text from Hypothesis is often "aaaa…").
strong_password = st.integers().map(lambda i: hashlib.sha256(str(i).encode()).hexdigest()[:24])
schemathesis.openapi.format("strong-password", strong_password)
schemathesis.openapi.format("dag-json", st.sampled_from(['{"a": 1}', '[1, 2, 3]', '"text"', '{"link": {"/": "%s"}}' % DATA["record_cids"][0]]))
schemathesis.openapi.format("car-path", st.just(DATA["car"]))
schemathesis.openapi.format("file-path", st.just(DATA["file"]))
# Numbers in real numbering plans (the node checks them with libphonenumber): the
# fictional 555-01xx range of New Jersey's 201, and Berlin's 030 with 6 to 8 digits.
phone = st.one_of(
    st.integers(100, 199).map(lambda n: f"+1 201 555 0{n}"),
    st.integers(100000, 99999999).map(lambda n: f"+49 30 {n}"),
)
schemathesis.openapi.format("mnode-phone", phone)
schemathesis.openapi.format("session-id", st.from_regex(r"\A[0-9a-f]{64}\Z"))
schemathesis.openapi.format("mnode-recovery-key", st.from_regex(r"\Amnode-recovery-1:[0-9a-f]{64}\Z"))
