// Helia talking Bitswap 1.2.0 to an mnode node, for protocols/tests/bitswap_helia.rs.
//
// The Helia node has only TCP, noise, yamux and identify: no bootstrap, no DHT, no delegated
// or HTTP routing, no gateways. Bitswap is its only block broker.
//
//   node bitswap.mjs fetch <multiaddr/p2p/peer> <cid>...
//     dials the peer, fetches every CID over Bitswap (Helia verifies each block against its
//     CID; this script hashes it again) and prints one JSON line:
//     {"ok":true,"remote":"<peer>","blocks":[{"cid":"…","hex":"…"}]}
//   node bitswap.mjs serve <blocks.json>
//     stores the blocks of [{"cid":"…","hex":"…"}] (re-hashing each), listens on 127.0.0.1,
//     prints {"peer":"…","addrs":["…"]} and serves until stdin closes.
//
// Any failure prints {"ok":false,"error":"…"} and exits 1.

import './node20.mjs' // first: later imports need Promise.withResolvers
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createHeliaLight } from 'helia'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const BLOCK_TIMEOUT_MS = 30_000
// A hung run must not hang the Rust test that waits for it.
const RUN_TIMEOUT_MS = 120_000

function toHex (bytes) {
  return Buffer.from(bytes).toString('hex')
}

function fail (error) {
  console.log(JSON.stringify({ ok: false, error: String(error?.stack ?? error) }))
  process.exit(1)
}

// Re-hashes `bytes` and checks that they are the block `cid` names (sha2-256 only, which is
// what records use).
async function verify (cid, bytes) {
  if (cid.multihash.code !== sha256.code) {
    throw new Error(`${cid}: only sha2-256 blocks are checked here`)
  }
  const digest = await sha256.digest(bytes)
  const again = CID.create(cid.version, cid.code, digest)
  if (!again.equals(cid)) {
    throw new Error(`block does not hash to ${cid} (got ${again})`)
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
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ routers: [], blockBrokers: [] }), {
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
  } else if (mode === 'serve' && args.length === 1) {
    await serve(args[0])
  } else {
    throw new Error('usage: bitswap.mjs fetch <multiaddr> <cid>... | bitswap.mjs serve <blocks.json>')
  }
  process.exit(0)
} catch (err) {
  fail(err)
}
