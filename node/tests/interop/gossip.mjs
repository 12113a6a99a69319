// A js-libp2p gossipsub node talking to an mnode node, for node/tests/interop_gossip.rs.
//
// The node has only TCP, noise, yamux, identify and gossipsub: no bootstrap, no mDNS, no DHT.
// Its gossipsub speaks mnode's dialect: StrictSign, and message id = sha256(topic || 0x00 ||
// data); a message is DAG-CBOR {"blocks": [bytes…], "record": bytes}.
//
//   node gossip.mjs <multiaddr/p2p/peer> <secret hex> <time ms> <text> <feed did> <feed cid>
//
// signs as the ed25519 key whose 32-byte seed is <secret hex>, subscribes to the feed of
// <feed did>, dials the peer and waits until it has subscribed to our own feed. Then it prints
// one JSON line per step:
//   {"event":"ready","peer":"…","did":"…"}
//   {"event":"received","cid":"…","from":"…","id":"…"}  the record <feed cid> arrived and
//       checked (from: the peer that signed the message; id: its message id, in hex)
//   {"event":"published","valid":true,"cid":"…"}   a social.post {text} at <time ms>
//   {"event":"published","valid":false,"cid":"…"}  another one whose signature is broken
// and stays connected until stdin closes. Any failure prints {"event":"error","error":"…"} and
// exits 1.

import './node20.mjs' // first: later imports need Promise.withResolvers
import { createHash } from 'node:crypto'

import * as dagCbor from '@ipld/dag-cbor'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { ed25519 } from '@noble/curves/ed25519.js'
import { createLibp2p } from 'libp2p'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

// A hung run must not hang the Rust test that waits for it.
const RUN_TIMEOUT_MS = 120_000
const DIAL_TIMEOUT_MS = 30_000
const TOPIC_PREFIX = '/mnode/1/author/'
const ED25519_PUB = [0xed, 0x01]

function say (line) {
  console.log(JSON.stringify(line))
}

function fail (error) {
  say({ event: 'error', error: String(error?.stack ?? error) })
  process.exit(1)
}

function fromHex (hex) {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`secret must be 64 hex digits, got ${hex}`)
  return Uint8Array.from(Buffer.from(hex, 'hex'))
}

/** The mnode message id: sha256(topic || 0x00 || data), as protocols/src/gossip computes it. */
function messageId (msg) {
  return createHash('sha256')
    .update(msg.topic, 'utf8')
    .update(Uint8Array.of(0))
    .update(msg.data)
    .digest()
}

function didOf (publicKey) {
  return 'did:key:' + base58btc.encode(Uint8Array.from([...ED25519_PUB, ...publicKey]))
}

function publicKeyOf (did) {
  const key = base58btc.decode(did.slice('did:key:'.length))
  if (!did.startsWith('did:key:z') || key.length !== 34 || key[0] !== 0xed || key[1] !== 0x01) {
    throw new Error(`${did} is not an ed25519 did:key`)
  }
  return key.subarray(2)
}

async function recordCid (bytes) {
  return CID.create(1, dagCbor.code, await sha256.digest(bytes))
}

/** Decodes DAG-CBOR and insists the bytes are the canonical encoding (as mnode does). */
function strictDecode (bytes, what) {
  const value = dagCbor.decode(bytes)
  if (Buffer.compare(Buffer.from(dagCbor.encode(value)), Buffer.from(bytes)) !== 0) {
    throw new Error(`${what} is not canonical DAG-CBOR`)
  }
  return value
}

/**
 * Version 0 of a record, as dag/src/record.rs signs it: the ed25519 signature covers the
 * DAG-CBOR of the envelope without "sig" (dag-cbor sorts the keys canonically, length first:
 * seq, body, prev, type, author, origin, created, updated); the record is the same map with
 * "sig" added.
 */
function signRecord (secret, type, body, at, { breakSignature = false } = {}) {
  const unsigned = {
    type,
    author: didOf(ed25519.getPublicKey(secret)),
    origin: null,
    prev: null,
    seq: 0,
    created: at,
    updated: at,
    body
  }
  const sig = ed25519.sign(dagCbor.encode(unsigned), secret)
  if (breakSignature) sig[0] ^= 0x01
  return dagCbor.encode({ ...unsigned, sig })
}

/** Checks a received gossip message: canonical, the expected record, signed by its author. */
async function checkMessage (data, feedDid, feedCid) {
  const msg = strictDecode(data, 'the gossip message')
  const keys = Object.keys(msg).sort().join(',')
  if (keys !== 'blocks,record' || !Array.isArray(msg.blocks) || !(msg.record instanceof Uint8Array)) {
    throw new Error(`unexpected gossip message shape: ${keys}`)
  }
  const cid = await recordCid(msg.record)
  if (!cid.equals(feedCid)) throw new Error(`got record ${cid}, expected ${feedCid}`)
  const { sig, ...unsigned } = strictDecode(msg.record, 'the record')
  if (unsigned.author !== feedDid) throw new Error(`record by ${unsigned.author}, expected ${feedDid}`)
  const ok = ed25519.verify(sig, dagCbor.encode(unsigned), publicKeyOf(unsigned.author), { zip215: false })
  if (!ok) throw new Error(`the signature of ${cid} does not verify`)
  return cid
}

/** Resolves once `test()` holds, checking again on every event of `type` from `target`. */
function until (target, type, test) {
  return new Promise((resolve) => {
    const check = () => {
      if (test()) {
        target.removeEventListener(type, check)
        resolve()
      }
    }
    target.addEventListener(type, check)
    check()
  })
}

async function run ([addr, secretHex, atText, text, feedDid, feedCidText]) {
  const secret = fromHex(secretHex)
  const at = Number(atText)
  if (!Number.isSafeInteger(at) || at < 0) throw new Error(`bad time ${atText}`)
  const did = didOf(ed25519.getPublicKey(secret))
  const feedCid = CID.parse(feedCidText)
  const feedTopic = TOPIC_PREFIX + feedDid
  const ownTopic = TOPIC_PREFIX + did

  const libp2p = await createLibp2p({
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    services: {
      identify: identify(),
      pubsub: gossipsub({
        globalSignaturePolicy: 'StrictSign',
        msgIdFn: messageId,
        emitSelf: false,
        heartbeatInterval: 200
      })
    }
  })
  const pubsub = libp2p.services.pubsub
  try {
    const received = new Promise((resolve, reject) => {
      pubsub.addEventListener('gossipsub:message', (ev) => {
        const { msg, msgId } = ev.detail
        if (msg.topic !== feedTopic) return
        checkMessage(msg.data, feedDid, feedCid)
          .then((cid) => resolve({
            cid: cid.toString(),
            from: msg.from.toString(),
            // The id gossipsub filed the message under (base64 of msgIdFn's bytes).
            id: Buffer.from(msgId, 'base64').toString('hex')
          }))
          .catch(reject)
      })
    })
    pubsub.subscribe(feedTopic)
    const ma = multiaddr(addr)
    const connection = await libp2p.dial(ma, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
    const remote = connection.remotePeer
    await until(pubsub, 'subscription-change', () =>
      pubsub.getSubscribers(ownTopic).some((p) => p.equals(remote)))
    say({ event: 'ready', peer: libp2p.peerId.toString(), did })

    const got = await received
    say({ event: 'received', ...got })

    const body = { text, media: [], tags: [] }
    const valid = signRecord(secret, 'social.post', body, at)
    const forged = signRecord(secret, 'social.post', { ...body, text: `${text} (forged)` }, at, { breakSignature: true })
    for (const [record, isValid] of [[valid, true], [forged, false]]) {
      const data = dagCbor.encode({ blocks: [], record })
      const { recipients } = await pubsub.publish(ownTopic, data)
      if (!recipients.some((p) => p.equals(remote))) {
        throw new Error(`the message was not sent to ${remote}`)
      }
      say({ event: 'published', valid: isValid, cid: (await recordCid(record)).toString() })
    }

    await new Promise((resolve) => {
      process.stdin.on('end', resolve)
      process.stdin.on('close', resolve)
      process.stdin.resume()
    })
  } finally {
    await libp2p.stop()
  }
}

const timer = setTimeout(() => fail(new Error(`gave up after ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS)
timer.unref()

const args = process.argv.slice(2)
try {
  if (args.length !== 6) {
    throw new Error('usage: gossip.mjs <multiaddr> <secret hex> <time ms> <text> <feed did> <feed cid>')
  }
  await run(args)
  process.exit(0)
} catch (err) {
  fail(err)
}
