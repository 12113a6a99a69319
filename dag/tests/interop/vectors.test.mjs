// Checks mnode's golden vectors (dag/tests/vectors/*.json) with independent JavaScript
// implementations: @ipld/dag-cbor, @ipld/dag-json, multiformats and @noble/curves.
//
// Run: `npm ci && node --test vectors.test.mjs` in this directory (the Rust test
// dag/tests/js_interop.rs does exactly that). MNODE_VECTORS_DIR points it at another
// vectors directory; the default is ../vectors relative to this file.
//
// Note on strictness: @ipld/dag-cbor's decoder rejects non-minimal integers, indefinite
// lengths, duplicate keys, forbidden tags, NaN/Infinity and trailing bytes, but it does NOT
// check map key order, float width or `undefined` (it coerces that to null). So every check
// here that a block is canonical DAG-CBOR is "decode succeeds AND re-encoding gives the very
// same bytes" (`strictDecode` below), which catches all of those too.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { base58btc } from 'multiformats/bases/base58'
import { ed25519 } from '@noble/curves/ed25519.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const VECTORS_DIR = process.env.MNODE_VECTORS_DIR
  ? resolve(process.env.MNODE_VECTORS_DIR)
  : resolve(HERE, '../vectors')

const ENVELOPE_KEYS = ['author', 'body', 'created', 'origin', 'prev', 'seq', 'sig', 'type', 'updated']
const DID_KEY_PREFIX = 'did:key:z'
const ED25519_PUB_MULTICODEC = [0xed, 0x01]
const SHA2_256 = 0x12

// Chains that the generator must always produce: name -> minimum number of versions.
const REQUIRED_CHAINS = { 'chain.social.post': 3, 'tombstone.art.release': 2 }
// A key log version's proof: the granted key signs this label, the identity's public key and
// the previous version's binary CID (nothing on version 0).
const KEY_GRANT_LABEL = new TextEncoder().encode('mnode/key-grant/1')
const KEYS_KIND = 'core.keys'

// ---------------------------------------------------------------------------------------------
// helpers

function fromHex (hex) {
  assert.equal(typeof hex, 'string', 'cbor_hex must be a string')
  assert.match(hex, /^(?:[0-9a-f]{2})+$/, 'cbor_hex must be non-empty lowercase hex of whole bytes')
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return out
}

function toHex (bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

function assertBytesEqual (actual, expected, message) {
  // compare as hex so a failure shows where the bytes differ
  assert.equal(toHex(actual), toHex(expected), message)
}

/** Decode as DAG-CBOR and require the bytes to be the canonical encoding of the result. */
function strictDecode (bytes) {
  const value = dagCbor.decode(bytes)
  const again = dagCbor.encode(value)
  if (toHex(again) !== toHex(bytes)) {
    throw new Error(`non-canonical DAG-CBOR: ${toHex(bytes)} re-encodes as ${toHex(again)}`)
  }
  return value
}

/** did:key of an ed25519 key -> the 32-byte public key. */
function didKeyToPublicKey (did) {
  assert.equal(typeof did, 'string', 'author must be a string')
  assert.ok(did.startsWith(DID_KEY_PREFIX), `author ${did} must start with ${DID_KEY_PREFIX}`)
  // base58btc.decode takes the multibase form, i.e. with its leading 'z'
  const multikey = base58btc.decode(did.slice('did:key:'.length))
  assert.equal(multikey.length, 2 + 32, `did:key ${did} must hold 0xed 0x01 + 32 bytes`)
  assert.deepEqual(
    Array.from(multikey.subarray(0, 2)),
    ED25519_PUB_MULTICODEC,
    `did:key ${did} must carry the ed25519-pub multicodec prefix 0xed 0x01`
  )
  return multikey.slice(2)
}

function listVectorFiles () {
  try {
    return { files: readdirSync(VECTORS_DIR).filter((f) => f.endsWith('.json')).sort() }
  } catch (error) {
    return { files: [], error }
  }
}

const cache = new Map()

/** Parse one vector file and compute everything the tests need from it, once. */
async function load (file) {
  if (!cache.has(file)) {
    cache.set(file, (async () => {
      const path = join(VECTORS_DIR, file)
      const vector = JSON.parse(readFileSync(path, 'utf8'))
      const bytes = fromHex(vector.cbor_hex)
      const cid = CID.create(1, dagCbor.code, await sha256.digest(bytes))
      return { file, path, vector, bytes, cid }
    })())
  }
  return cache.get(file)
}

// ---------------------------------------------------------------------------------------------
// the vectors

const { files: VECTOR_FILES, error: LIST_ERROR } = listVectorFiles()

test('the vectors directory holds vectors', () => {
  assert.ifError(LIST_ERROR)
  assert.ok(VECTOR_FILES.length > 0, `no *.json vectors in ${VECTORS_DIR}`)
})

for (const file of VECTOR_FILES) {
  test(`vector ${file}`, async () => {
    const { vector, bytes, cid } = await load(file)

    assert.equal(vector.name, basename(file, '.json'), 'name must match the file name')
    assert.equal(typeof vector.type, 'string', 'type must be a string')

    // (a) strict DAG-CBOR: the JS decoder accepts it and re-encodes to the same bytes
    const decoded = dagCbor.decode(bytes)
    assertBytesEqual(dagCbor.encode(decoded), bytes, '(a) dag-cbor re-encoding differs from cbor_hex')

    // (b) the CID: CIDv1, dag-cbor, sha2-256, base32
    assert.equal(cid.toString(), vector.cid, '(b) CID computed in JS differs from cid')
    const parsed = CID.parse(vector.cid)
    assert.equal(parsed.version, 1, '(b) cid must be CIDv1')
    assert.equal(parsed.code, dagCbor.code, '(b) cid codec must be dag-cbor (0x71)')
    assert.equal(parsed.multihash.code, SHA2_256, '(b) cid hash must be sha2-256')
    assert.ok(vector.cid.startsWith('bafyrei'), '(b) cid must be base32 (bafyrei...)')

    // (c) our DAG-JSON is the same data: decode it with the JS DAG-JSON codec, re-encode as
    // DAG-CBOR, get the very same block; and the JS DAG-JSON of the block is our dag_json
    const fromJson = dagJson.decode(new TextEncoder().encode(JSON.stringify(vector.dag_json)))
    assertBytesEqual(dagCbor.encode(fromJson), bytes, '(c) dag_json re-encoded as dag-cbor differs from cbor_hex')
    assert.deepStrictEqual(
      JSON.parse(new TextDecoder().decode(dagJson.encode(decoded))),
      vector.dag_json,
      '(c) JS DAG-JSON of the block differs from dag_json'
    )

    // (e) the envelope's shape
    assert.ok(decoded !== null && typeof decoded === 'object' && !Array.isArray(decoded), '(e) block must be a map')
    assert.deepEqual(Object.keys(decoded).sort(), ENVELOPE_KEYS, '(e) envelope must have exactly the nine keys')
    assert.equal(decoded.type, vector.type, '(e) type in the block must match the vector type')
    assert.equal(typeof decoded.seq, 'number', '(e) seq must be a number')
    assert.ok(Number.isSafeInteger(decoded.seq) && decoded.seq >= 0, '(e) seq must be a non-negative integer')
    assert.ok(Number.isSafeInteger(decoded.created), '(e) created must be an integer')
    assert.ok(Number.isSafeInteger(decoded.updated), '(e) updated must be an integer')
    if (decoded.seq === 0) {
      assert.equal(decoded.origin, null, '(e) origin must be null when seq == 0')
      assert.equal(decoded.prev, null, '(e) prev must be null when seq == 0')
    } else {
      assert.ok(CID.asCID(decoded.origin), '(e) origin must be a link when seq > 0')
      assert.ok(CID.asCID(decoded.prev), '(e) prev must be a link when seq > 0')
    }
    assert.ok(decoded.sig instanceof Uint8Array, '(e) sig must be bytes')
    assert.equal(decoded.sig.length, 64, '(e) sig must be 64 bytes')

    // (d) ed25519 signature by author over the DAG-CBOR of the map without "sig"
    const publicKey = didKeyToPublicKey(decoded.author)
    const { sig, ...unsigned } = decoded
    const message = dagCbor.encode(unsigned)
    assert.equal(
      ed25519.verify(sig, message, publicKey, { zip215: false }),
      true,
      '(d) ed25519 signature does not verify'
    )
    const flipped = message.slice()
    flipped[flipped.length >> 1] ^= 0x01
    assert.equal(ed25519.verify(sig, flipped, publicKey, { zip215: false }), false, '(d) a one-bit change to the message must break the signature')
    const badSig = sig.slice()
    badSig[0] ^= 0x01
    assert.equal(ed25519.verify(badSig, message, publicKey, { zip215: false }), false, '(d) a one-bit change to the signature must break it')
  })
}

// ---------------------------------------------------------------------------------------------
// chains: NAME.v0, NAME.v1, ... link to each other by CIDs computed here

test('chains: prev, origin, seq, created, tombstones', async () => {
  const chains = new Map()
  for (const file of VECTOR_FILES) {
    const m = /^(.+)\.v(\d+)\.json$/.exec(file)
    if (!m) continue
    if (!chains.has(m[1])) chains.set(m[1], [])
    chains.get(m[1]).push({ version: Number(m[2]), file })
  }
  for (const [name, min] of Object.entries(REQUIRED_CHAINS)) {
    assert.ok((chains.get(name)?.length ?? 0) >= min, `chain ${name} must have at least ${min} versions`)
  }

  for (const [name, entries] of chains) {
    entries.sort((a, b) => a.version - b.version)
    assert.deepEqual(entries.map((e) => e.version), entries.map((_, i) => i), `chain ${name}: versions must be v0..v${entries.length - 1}`)
    const versions = []
    for (const { file } of entries) {
      const { bytes, cid } = await load(file)
      versions.push({ file, cid, record: strictDecode(bytes) })
    }
    const root = versions[0]
    for (const [i, { file, record }] of versions.entries()) {
      assert.equal(record.seq, i, `${file}: seq must be ${i}`)
      assert.equal(record.created, root.record.created, `${file}: created must equal v0's`)
      // A version signed by a rotated key names v0's author as its identity in `$signer`.
      const identity = record.body?.$signer?.identity ?? record.author
      if (record.type === KEYS_KIND) {
        // a key log's next version is signed by the previous version's key or recovery key
        const before = versions[Math.max(i - 1, 0)].record.body
        assert.ok(i === 0 || record.author === before.key || record.author === before.recovery, `${file}: a key log version is signed by the previous key or recovery key`)
      } else {
        assert.equal(identity, root.record.author, `${file}: the identity must be v0's author`)
      }
      assert.equal(record.type, root.record.type, `${file}: type must equal v0's`)
      assert.ok(record.updated >= versions[Math.max(i - 1, 0)].record.updated, `${file}: updated must not go back`)
      if (i === 0) {
        assert.equal(record.prev, null, `${file}: prev must be null`)
        assert.equal(record.origin, null, `${file}: origin must be null`)
      } else {
        assert.equal(CID.asCID(record.prev)?.toString(), versions[i - 1].cid.toString(), `${file}: prev must be the CID of v${i - 1}`)
        assert.equal(CID.asCID(record.origin)?.toString(), root.cid.toString(), `${file}: origin must be the CID of v0`)
      }
    }
    if (name.startsWith('tombstone.')) {
      const last = versions.length - 1
      for (const { file, record } of versions.slice(0, last)) {
        assert.notEqual(record.body, null, `${file}: only the last version of a tombstone chain has a null body`)
      }
      assert.equal(versions[last].record.body, null, `${versions[last].file}: a tombstone's body must be null`)
    } else {
      for (const { file, record } of versions) assert.notEqual(record.body, null, `${file}: body must not be null`)
    }
  }
})

// ---------------------------------------------------------------------------------------------
// non-canonical blocks that the Rust decoder (dag/src/cbor.rs) rejects are rejected here too

test('the JS dag-cbor decoder itself rejects non-minimal ints and indefinite lengths', () => {
  // 1 encoded with a one-byte argument
  assert.throws(() => dagCbor.decode(fromHex('1801')), /more bytes than necessary/)
  // indefinite-length array [_ 1]
  assert.throws(() => dagCbor.decode(fromHex('9f01ff')), /indefinite length/)
  // duplicate keys {"a":1,"a":2}
  assert.throws(() => dagCbor.decode(fromHex('a2616101616102')), /repeat map key/)
})

test('decode + canonical re-encode rejects everything the Rust decoder rejects', () => {
  const rejected = [
    ['a2616201616102', 'unsorted map keys {"b":1,"a":2}'],
    ['a2616101616102', 'duplicate map keys'],
    ['a262616101616202', 'longer key before shorter {"aa":1,"b":2}'],
    ['1801', 'non-minimal integer'],
    ['9f01ff', 'indefinite-length array'],
    ['c11a514b67b0', 'tag 1'],
    ['fb7ff8000000000000', 'NaN'],
    ['fb7ff0000000000000', 'Infinity'],
    ['f93c00', 'float16'],
    ['0101', 'trailing bytes'],
    ['636162', 'truncated string'],
    ['6261', 'truncated string'],
    ['f7', 'undefined']
  ]
  for (const [hex, what] of rejected) {
    assert.throws(() => strictDecode(fromHex(hex)), Error, `${what} (${hex}) must be rejected`)
  }
  // unsorted keys get through the JS decoder alone; the canonical re-encode catches them
  assert.throws(() => strictDecode(fromHex('a2616201616102')), /non-canonical DAG-CBOR/)
  // and a canonical block passes: {"a":2,"b":1}
  assert.deepEqual(strictDecode(fromHex('a2616102616201')), { a: 2, b: 1 })
})

// ---------------------------------------------------------------------------------------------
// key logs: every core.keys proof verifies, and every $signer names a key its log grants

function concat (...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

test('key logs: proofs by the granted key, $signer citations', async () => {
  const byCid = new Map()
  for (const file of VECTOR_FILES) {
    const { bytes, cid } = await load(file)
    byCid.set(cid.toString(), { file, cid, record: strictDecode(bytes) })
  }
  let logs = 0
  for (const { file, record } of byCid.values()) {
    if (record.type === KEYS_KIND) {
      logs++
      const root = record.seq === 0 ? record : byCid.get(CID.asCID(record.origin).toString())?.record
      assert.ok(root, `${file}: the log's version 0 must be among the vectors`)
      assert.equal(root.body.key, root.author, `${file}: a log's version 0 names the key that signs it`)
      const prev = record.seq === 0 ? new Uint8Array() : CID.asCID(record.prev).bytes
      const message = concat(KEY_GRANT_LABEL, didKeyToPublicKey(root.author), prev)
      assert.ok(record.body.proof instanceof Uint8Array && record.body.proof.length === 64, `${file}: proof must be 64 bytes`)
      assert.equal(
        ed25519.verify(record.body.proof, message, didKeyToPublicKey(record.body.key), { zip215: false }),
        true,
        `${file}: the proof does not verify under the granted key`
      )
    }
    const signer = record.body?.$signer
    if (signer) {
      const at = byCid.get(CID.asCID(signer.at)?.toString())
      assert.ok(at, `${file}: $signer.at must be among the vectors`)
      assert.equal(at.record.type, KEYS_KIND, `${file}: $signer.at must be a core.keys version`)
      assert.equal(at.record.body.key, record.author, `${file}: $signer.at must grant the signing key`)
      const logRoot = at.record.seq === 0 ? at.record : byCid.get(CID.asCID(at.record.origin).toString())?.record
      assert.equal(logRoot?.author, signer.identity, `${file}: $signer.at must be a version of the identity's log`)
    }
  }
  assert.ok(logs > 0, 'no core.keys vector')
})
