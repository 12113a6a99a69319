// @helia/verified-fetch against mnode's trustless gateway, for api/tests/verified_fetch.rs.
//
//   node verified_fetch.mjs <gateway url> <record cid> <linked record cid> <file cid>
//   node verified_fetch.mjs unixfs <gateway url> <unixfs root> [<first>-<last>]...
//
// Helia is built the way createVerifiedFetch({ gateways: [gateway], routers: [] }) builds it,
// minus libp2p and Bitswap: the gateway is its one trustless gateway, with no delegated
// router, no DHT and no bootstrap peers, so nothing but the gateway is contacted. mnode names files with BLAKE3 multihashes (0x1e),
// which Helia only checks with a hasher passed in. Every block verified-fetch returns has
// been checked against its CID on the way in.
//
// The first form prints one JSON line per fetch, then {"event":"done"}:
//   {"event":"raw","cid":"…","content_type":"…","hex":"…"}    a record's block (Accept raw)
//   {"event":"dag-json","cid":"…","content_type":"…","hex":"…","text":"…"}  a record fetched
//       as DAG-CBOR (Accept dag-cbor), and that decoded and written out as DAG-JSON
//   {"event":"car","source":"verified-fetch","content_type":"…","roots":[…],"blocks":[{cid,hex}]}
//       the record's DAG as a CAR that verified-fetch builds from the blocks it fetched
//   {"event":"car","source":"gateway",…}  the gateway's own CAR (?format=car), read with
//       @ipld/car and every block hashed here
//   {"event":"file","cid":"…","content_type":"…","hex":"…"}   the file
//
// The second reads a file by its UnixFS CID (ipfs://<root>: verified-fetch walks the dag-pb
// nodes and raw leaves, each fetched with ?format=raw and checked), then each byte range
// (inclusive, as in a Range header) of it, and prints
//   {"event":"unixfs","cid":"…","status":200,"content_type":"…","size":n,"sha256":"…","blake3":"…"}
//   {"event":"range","cid":"…","range":"bytes=a-b","status":206,"content_range":"…","hex":"…"}
// then {"event":"done"}.
//
// Any failure prints {"event":"error","error":"…"} and exits 1.

import './node20.mjs' // first: later imports need Promise.withResolvers

import { fallbackRouter } from '@helia/fallback-router'
import { withHTTP } from '@helia/http'
import { createVerifiedFetchWithHelia } from '@helia/verified-fetch'
import { CarBlockIterator } from '@ipld/car/iterator'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import { blake3 as blake3Hash } from '@noble/hashes/blake3.js'
import { sha256 as sha256Hash } from '@noble/hashes/sha2.js'
import { createHeliaLight } from 'helia'
import * as json from 'multiformats/codecs/json'
import { equals } from 'multiformats/bytes'
import { CID } from 'multiformats/cid'
import { from } from 'multiformats/hashes/hasher'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'

// A hung run must not hang the Rust test that waits for it.
const RUN_TIMEOUT_MS = 120_000
const FETCH_TIMEOUT_MS = 30_000
const CAR = 'application/vnd.ipld.car'

const blake3 = from({
  name: 'blake3',
  code: 0x1e,
  encode: (input) => blake3Hash(input)
})
const hashers = new Map([[sha256.code, sha256], [blake3.code, blake3], [identity.code, identity]])

function say (line) {
  console.log(JSON.stringify(line))
}

/** Exits once what was printed has gone out (a pipe is written asynchronously). */
function exit (code) {
  process.stdout.write('', () => process.exit(code))
}

function fail (error) {
  say({ event: 'error', error: String(error?.stack ?? error) })
  exit(1)
}

const hex = (bytes) => Buffer.from(bytes).toString('hex')

async function ok (res, what) {
  if (!res.ok) {
    throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`)
  }
  return res
}

/** The roots and blocks of a CAR stream, each block hashed against its CID. */
async function readCar (body) {
  const car = await CarBlockIterator.fromIterable(body)
  const roots = (await car.getRoots()).map(String)
  const blocks = []
  for await (const { cid, bytes } of car) {
    const hasher = hashers.get(cid.multihash.code)
    if (hasher == null) throw new Error(`no hasher for ${cid}`)
    const digest = await hasher.digest(bytes)
    if (!equals(digest.bytes, cid.multihash.bytes)) {
      throw new Error(`block ${cid} does not hash to its CID`)
    }
    blocks.push({ cid: cid.toString(), hex: hex(bytes) })
  }
  return { roots, blocks }
}

/** Helia with the gateway as its only source, and verified-fetch on it. */
async function start (gateway) {
  // The block broker for trustless gateways, plain HTTP on 127.0.0.1 allowed; no routers.
  const helia = withHTTP(createHeliaLight({
    hashers: [blake3],
    codecs: [dagCbor, dagJson, json]
  }), {
    delegatedRouters: [],
    recursiveGateways: [],
    allowInsecure: true,
    allowLocal: true
  })
  // The gateway as the provider of every CID. Helia 7 asks "fallback" routers (what
  // `gateways` becomes) only after the others have finished, and with no other router that
  // never happens, so the gateway is offered through a router of the ordinary kind.
  const gatewayProviders = fallbackRouter({ gateways: [gateway], shuffle: false })
  helia.addRouter({
    name: 'mnode-gateway',
    findProviders: (cid, options) => gatewayProviders.findProviders(cid, options)
  })
  await helia.start()
  const verifiedFetch = await createVerifiedFetchWithHelia(helia)
  const stop = async () => {
    await verifiedFetch.stop()
    await helia.stop()
  }
  return { verifiedFetch, stop }
}

async function records (gateway, record, linked, file) {
  for (const c of [record, linked, file]) CID.parse(c)
  const { verifiedFetch, stop } = await start(gateway)
  const vf = (cid, accept) => verifiedFetch(`ipfs://${cid}`, {
    headers: accept == null ? {} : { accept },
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS)
  })

  for (const cid of [record, linked]) {
    const res = await ok(await vf(cid, 'application/vnd.ipld.raw'), `raw ${cid}`)
    const bytes = new Uint8Array(await res.arrayBuffer())
    say({ event: 'raw', cid, content_type: res.headers.get('content-type'), hex: hex(bytes) })
  }

  // verified-fetch no longer converts between codecs (IPIP-0524), so the JSON is made here,
  // from the verified DAG-CBOR.
  const res = await ok(await vf(record, 'application/vnd.ipld.dag-cbor'), `dag-cbor ${record}`)
  const cbor = new Uint8Array(await res.arrayBuffer())
  say({
    event: 'dag-json',
    cid: record,
    content_type: res.headers.get('content-type'),
    hex: hex(cbor),
    text: new TextDecoder().decode(dagJson.encode(dagCbor.decode(cbor)))
  })

  const accept = `${CAR}; version=1; order=dfs; dups=n`
  const carRes = await ok(await vf(record, accept), `car ${record}`)
  say({
    event: 'car',
    source: 'verified-fetch',
    content_type: carRes.headers.get('content-type'),
    ...(await readCar(carRes.body))
  })

  const direct = await ok(await fetch(`${gateway}/ipfs/${record}?format=car`, {
    headers: { accept },
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS)
  }), `gateway car ${record}`)
  say({
    event: 'car',
    source: 'gateway',
    content_type: direct.headers.get('content-type'),
    ...(await readCar(direct.body))
  })

  const fileRes = await ok(await vf(file), `file ${file}`)
  const bytes = new Uint8Array(await fileRes.arrayBuffer())
  say({ event: 'file', cid: file, content_type: fileRes.headers.get('content-type'), hex: hex(bytes) })

  await stop()
  say({ event: 'done' })
}

async function unixfsFile (gateway, root, ranges) {
  const cid = CID.parse(root).toString()
  const { verifiedFetch, stop } = await start(gateway)
  const vf = (headers) => verifiedFetch(`ipfs://${cid}`, {
    headers,
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS)
  })

  // The whole file, hashed as it streams.
  const res = await ok(await vf({}), `file ${cid}`)
  const sha = sha256Hash.create()
  const b3 = blake3Hash.create()
  let size = 0
  for await (const chunk of res.body) {
    sha.update(chunk)
    b3.update(chunk)
    size += chunk.byteLength
  }
  say({
    event: 'unixfs',
    cid,
    status: res.status,
    content_type: res.headers.get('content-type'),
    size,
    sha256: hex(sha.digest()),
    blake3: hex(b3.digest())
  })

  for (const range of ranges) {
    if (!/^\d+-\d+$/.test(range)) throw new Error(`not a range: ${range}`)
    const header = `bytes=${range}`
    const part = await ok(await vf({ range: header }), `${header} of ${cid}`)
    say({
      event: 'range',
      cid,
      range: header,
      status: part.status,
      content_range: part.headers.get('content-range'),
      hex: hex(new Uint8Array(await part.arrayBuffer()))
    })
  }

  await stop()
  say({ event: 'done' })
}

async function main () {
  const args = process.argv.slice(2)
  if (args[0] === 'unixfs' && args.length >= 3) {
    await unixfsFile(args[1], args[2], args.slice(3))
  } else if (args.length === 4) {
    await records(...args)
  } else {
    throw new Error('usage: verified_fetch.mjs <gateway> <record> <linked> <file> | verified_fetch.mjs unixfs <gateway> <root> [<first>-<last>]...')
  }
}

// Not unref'd: it also keeps the process up while Helia waits only on timers it has unref'd.
setTimeout(() => fail(new Error(`timed out after ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS)
main().then(() => exit(0), fail)
