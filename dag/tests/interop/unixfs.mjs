// Imports files with ipfs-unixfs-importer (the reference UnixFS implementation behind Helia and
// @helia/verified-fetch) and prints, as one JSON array, each file's root CID and the CIDs of all
// the blocks the importer wrote. `dag/tests/unixfs.rs` compares them with mnode's UnixFS view.
//
//   node unixfs.mjs [--chunk BYTES --max-links N] FILE...
//
// Without options the `unixfs-v1-2025` profile is used as it is (1 MiB raw leaves, 1024 links
// per node). With them, the same profile with a smaller fixed-size chunker and balanced layout,
// to get deep trees from small files.

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

const { values, positionals } = parseArgs({
  options: {
    chunk: { type: 'string' },
    'max-links': { type: 'string' }
  },
  allowPositionals: true
})

const options = { profile: 'unixfs-v1-2025' }
if (values.chunk !== undefined || values['max-links'] !== undefined) {
  if (values.chunk === undefined || values['max-links'] === undefined) {
    throw new Error('--chunk and --max-links go together')
  }
  Object.assign(options, {
    chunker: fixedSize({ chunkSize: Number(values.chunk) }),
    layout: balanced({ maxChildrenPerNode: Number(values['max-links']) }),
    rawLeaves: true,
    cidVersion: 1,
    reduceSingleLeafToSelf: true
  })
}

/** Only what the importer uses of a blockstore: it writes each block once it is encoded. */
class MemoryBlockstore {
  blocks = new Map()
  put (cid, bytes) {
    this.blocks.set(cid.toString(), bytes)
    return cid
  }
  get (cid) {
    const bytes = this.blocks.get(cid.toString())
    if (bytes === undefined) throw new Error(`no block ${cid}`)
    return bytes
  }
  has (cid) {
    return this.blocks.has(cid.toString())
  }
}

const out = []
for (const path of positionals) {
  const blockstore = new MemoryBlockstore()
  const entries = []
  for await (const entry of importer([{ content: readFileSync(path) }], blockstore, { ...options })) {
    entries.push(entry)
  }
  if (entries.length !== 1) throw new Error(`${path}: expected one entry, got ${entries.length}`)
  out.push({
    path,
    root: entries[0].cid.toString(),
    size: Number(entries[0].size),
    blocks: [...blockstore.blocks.keys()].sort()
  })
}
process.stdout.write(JSON.stringify(out) + '\n')
