// Helia talking Bitswap 1.2.0 to an mnode node, for protocols/tests/bitswap_helia.rs and
// node/tests/interop_helia.rs.
//
// The Helia node has only TCP, noise, yamux and identify: no bootstrap, no DHT, no delegated
// or HTTP routing, no gateways. Bitswap is its only block broker. Besides Helia's own hashers
// (sha2-256 and identity) it is given BLAKE3 (0x1e), which Helia 7 does not ship, so that it
// can check mnode's files named by their BLAKE3 CIDs.
//
//   node bitswap.mjs fetch <multiaddr/p2p/peer> <cid>...
//     dials the peer, fetches every CID over Bitswap (Helia verifies each block against its
//     CID; this script hashes it again) and prints one JSON line:
//     {"ok":true,"remote":"<peer>","blocks":[{"cid":"…","hex":"…"}]}
//   node bitswap.mjs cat <multiaddr/p2p/peer> <cid>...
//     dials the peer and reads each CID as a file with @helia/unixfs (a UnixFS root, dag-pb or
//     a raw leaf, or any raw block), every block fetched over Bitswap and verified by Helia,
//     and prints one JSON line with each file's size and SHA-256 (hex):
//     {"ok":true,"remote":"<peer>","files":[{"cid":"…","size":n,"sha256":"…"}]}
//   node bitswap.mjs serve <blocks.json>
//     stores the blocks of [{"cid":"…","hex":"…"}] (re-hashing each), listens on 127.0.0.1,
//     prints {"peer":"…","addrs":["…"]} and serves until stdin closes.
//
// Any failure prints {"ok":false,"error":"…"} and exits 1.

import './node20.mjs' // first: later imports need Promise.withResolvers
import { createHash } from 'node:crypto'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { blake3 as blake3Hash } from '@noble/hashes/blake3.js'
import { createHeliaLight } from 'helia'
import { equals } from 'multiformats/bytes'
import { CID } from 'multiformats/cid'
import { from } from 'multiformats/hashes/hasher'
import { sha256 } from 'multiformats/hashes/sha2'

const BLOCK_TIMEOUT_MS = 30_000
// A whole file, all its blocks, over Bitswap.
const FILE_TIMEOUT_MS = 60_000
// A hung run must not hang the Rust test that waits for it.
const RUN_TIMEOUT_MS = 120_000

// BLAKE3 with 32-byte digests, the hash of mnode's file CIDs.
const blake3 = from({
  name: 'blake3',
  code: 0x1e,
  encode: (input) => blake3Hash(input)
})
const hashers = new Map([[sha256.code, sha256], [blake3.code, blake3]])

function toHex (bytes) {
  return Buffer.from(bytes).toString('hex')
}

function fail (error) {
  console.log(JSON.stringify({ ok: false, error: String(error?.stack ?? error) }))
  process.exit(1)
}

// Re-hashes `bytes` and checks that they are the block `cid` names (sha2-256, what records
// and UnixFS blocks use, or BLAKE3, what files use).
async function verify (cid, bytes) {
  const hasher = hashers.get(cid.multihash.code)
  if (hasher == null) {
    throw new Error(`${cid}: only sha2-256 and blake3 blocks are checked here`)
  }
  const digest = await hasher.digest(bytes)
  if (!equals(digest.bytes, cid.multihash.bytes)) {
    throw new Error(`block does not hash to ${cid}`)
  }
}

async function concat (chunks) {
  const parts = []
  for await (const chunk of chunks) {
    parts.push(chunk)
  }
  return Buffer.concat(parts)
}

async function startHelia (listen) {
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ routers: [], blockBrokers: [], hashers: [blake3] }), {
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    services: { identify: identify() }
  }))
  await helia.start()
  return helia
}

async function fetch (addr, cids) {
  const helia = await startHelia([])
  try {
    const ma = multiaddr(addr)
    const connection = await helia.libp2p.dial(ma, { signal: AbortSignal.timeout(BLOCK_TIMEOUT_MS) })
    const blocks = []
    for (const text of cids) {
      const cid = CID.parse(text)
      if (await helia.blockstore.has(cid)) {
        throw new Error(`${cid} was already local`)
      }
      const bytes = await concat(helia.blockstore.get(cid, { signal: AbortSignal.timeout(BLOCK_TIMEOUT_MS) }))
      await verify(cid, bytes)
      blocks.push({ cid: cid.toString(), hex: toHex(bytes) })
    }
    console.log(JSON.stringify({ ok: true, remote: connection.remotePeer.toString(), blocks }))
  } finally {
    await helia.stop()
  }
}

async function cat (addr, cids) {
  const helia = await startHelia([])
  try {
    const connection = await helia.libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(BLOCK_TIMEOUT_MS) })
    const fs = unixfs(helia)
    const files = []
    for (const text of cids) {
      const cid = CID.parse(text)
      if (await helia.blockstore.has(cid)) {
        throw new Error(`${cid} was already local`)
      }
      const hash = createHash('sha256')
      let size = 0
      for await (const chunk of fs.cat(cid, { signal: AbortSignal.timeout(FILE_TIMEOUT_MS) })) {
        hash.update(chunk)
        size += chunk.byteLength
      }
      files.push({ cid: cid.toString(), size, sha256: hash.digest('hex') })
    }
    console.log(JSON.stringify({ ok: true, remote: connection.remotePeer.toString(), files }))
  } finally {
    await helia.stop()
  }
}

async function serve (file) {
  const { readFile } = await import('node:fs/promises')
  const list = JSON.parse(await readFile(file, 'utf8'))
  const helia = await startHelia(['/ip4/127.0.0.1/tcp/0'])
  for (const { cid: text, hex } of list) {
    const cid = CID.parse(text)
    const bytes = Uint8Array.from(Buffer.from(hex, 'hex'))
    await verify(cid, bytes)
    await helia.blockstore.put(cid, bytes)
  }
  const peer = helia.libp2p.peerId.toString()
  const addrs = helia.libp2p.getMultiaddrs().map((a) => a.toString())
  console.log(JSON.stringify({ ok: true, peer, addrs }))
  await new Promise((resolve) => {
    process.stdin.on('end', resolve)
    process.stdin.on('close', resolve)
    process.stdin.resume()
  })
  await helia.stop()
}

const timer = setTimeout(() => fail(new Error(`gave up after ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS)
timer.unref()

const [mode, ...args] = process.argv.slice(2)
try {
  if (mode === 'fetch' && args.length >= 2) {
    await fetch(args[0], args.slice(1))
  } else if (mode === 'cat' && args.length >= 2) {
    await cat(args[0], args.slice(1))
  } else if (mode === 'serve' && args.length === 1) {
    await serve(args[0])
  } else {
    throw new Error('usage: bitswap.mjs fetch|cat <multiaddr> <cid>... | bitswap.mjs serve <blocks.json>')
  }
  process.exit(0)
} catch (err) {
  fail(err)
}
