//! The iroh endpoint that moves files: serves the node's blob store and fetches from peers.
//!
//! It uses the node's key (so a libp2p peer id names the same key as an iroh endpoint id),
//! no relays, no address lookup service and no port mapping: peers' socket addresses come
//! from the blob-address exchange on libp2p.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::atomic::{AtomicU64, Ordering},
};

use futures::StreamExt;
use iroh::{
    Endpoint, EndpointAddr, EndpointId, RelayMode, RelayUrl, SecretKey,
    address_lookup::MemoryLookup,
    endpoint::{self, BindOpts, InvalidSocketAddr, PortmapperConfig, presets},
    protocol::Router,
};
use iroh_blobs::{
    BlobsProtocol, Hash,
    api::{
        downloader::{DownloadProgressItem, Downloader},
        remote::GetProgressItem,
    },
    protocol::{ChunkRanges, ChunkRangesExt as _, GetManyRequest, GetRequest},
};
use libp2p::{PeerId, multiaddr::Protocol};
use mnode_dag::{Cid, cids};

use super::{FetchProgress, Fetched, NodeError, relay::Relays};
use crate::{
    blobs::{Blobs, CHECKS_AT_ONCE},
    config::NetworkConfig,
};

/// Files at least this big are fetched in parts from several providers at once.
pub(crate) const SPLIT_MIN_BYTES: u64 = 16 << 20;
/// At most this many parts, and so providers serving one file at once.
pub(crate) const MAX_PARTS: usize = 4;
/// Files [`BlobNet::fetch_many`] fetches one by one at once (each a stream on a pooled
/// connection to its provider).
pub(crate) const MANY_AT_ONCE: usize = 32;
/// Files [`BlobNet::fetch_many`] asks one provider for in one request: a request's files come
/// one after another on one stream, so a few thousand small files cost a few round trips.
const MANY_PER_REQUEST: usize = 256;
/// Batch requests in flight at once, over all providers.
const REQUESTS_AT_ONCE: usize = 4;

/// Where a peer's iroh endpoint is reached: its socket addresses, and the relay it is
/// reached through when they cannot be dialled (it is behind a router).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EndpointAt {
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) relay: Option<RelayUrl>,
}

/// A fetch that has heard nothing from its providers for this long fails (and says so)
/// instead of waiting on: a connection can stall without closing.
const STALLED: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a connection to a provider may take to set up when relays are configured.
const RELAYED_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Peers that hold a file, each with where its iroh endpoint is reached.
pub(crate) type Holders = Vec<(PeerId, EndpointAt)>;

/// One fetch's bookkeeping across its requests.
struct Run {
    hash: Hash,
    peers: HashMap<EndpointId, PeerId>,
    from: Vec<(PeerId, u64)>,
    failed: Vec<String>,
    size_sent: bool,
}

/// The file `hash` of `size` bytes as contiguous parts, one per provider (at most
/// [`MAX_PARTS`]); part `j` asks the providers starting from the `j`th, so each starts with a
/// different one and falls back to the rest. The last part is open-ended.
fn split(hash: Hash, size: u64, ids: &[EndpointId]) -> Vec<(GetRequest, Vec<EndpointId>)> {
    let parts = ids.len().min(MAX_PARTS) as u64;
    let chunks = size.div_ceil(1024);
    let per = chunks.div_ceil(parts).max(1);
    (0..parts)
        .map(|j| {
            let from = j * per;
            let ranges = if j + 1 == parts {
                ChunkRanges::chunks(from..)
            } else {
                ChunkRanges::chunks(from..from + per)
            };
            let mut providers = ids.to_vec();
            providers.rotate_left(j as usize % ids.len());
            (GetRequest::blob_ranges(hash, ranges), providers)
        })
        .collect()
}

/// How the node builds its blob endpoint, before its key and address lookup: no relay, no
/// address lookup service, no port mapping, bound to `addr` only. Public so that a benchmark can
/// measure bare QUIC between endpoints built the same way.
pub fn endpoint_builder(addr: SocketAddr) -> Result<endpoint::Builder, InvalidSocketAddr> {
    Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .portmapper_config(PortmapperConfig::Disabled)
        .clear_ip_transports()
        .bind_addr(addr)
}

/// The socket addresses the blob endpoint binds: `network.blobs_listen` when set, else each IP
/// address `network.listen` names on a free port (a node listening on 127.0.0.1 moves files
/// on 127.0.0.1 only), or 0.0.0.0 on a free port if it names none. An unspecified address
/// covers its family: other addresses of that family are then not bound apart.
pub(crate) fn bind_addrs(config: &NetworkConfig) -> Result<Vec<SocketAddr>, NodeError> {
    let set = config.blobs_listen.trim();
    if !set.is_empty() {
        let addr = set.parse().map_err(|e| NodeError::Endpoint {
            addr: set.to_owned(),
            reason: format!(
                "network.blobs_listen is not a socket address (such as 0.0.0.0:0): {e}"
            ),
        })?;
        return Ok(vec![addr]);
    }
    let mut ips: Vec<IpAddr> = Vec::new();
    for addr in &config.listen {
        let Ok(ma) = addr.parse::<libp2p::Multiaddr>() else {
            continue;
        };
        let ip = match ma.iter().next() {
            Some(Protocol::Ip4(ip)) => IpAddr::from(ip),
            Some(Protocol::Ip6(ip)) => IpAddr::from(ip),
            _ => continue,
        };
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let any_v4 = ips.iter().any(|ip| ip.is_ipv4() && ip.is_unspecified());
    let any_v6 = ips.iter().any(|ip| ip.is_ipv6() && ip.is_unspecified());
    ips.retain(|ip| ip.is_unspecified() || !(if ip.is_ipv4() { any_v4 } else { any_v6 }));
    if ips.is_empty() {
        ips.push(Ipv4Addr::UNSPECIFIED.into());
    }
    Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
}

pub(crate) struct BlobNet {
    router: Router,
    lookup: MemoryLookup,
    downloader: Downloader,
    /// The first relay of `network.relay_urls`.
    first_relay: Option<RelayUrl>,
}

/// The iroh endpoint id of a libp2p peer: both are the same ed25519 key.
pub(crate) fn endpoint_id(peer: &PeerId) -> Option<EndpointId> {
    let mh = peer.as_ref();
    if mh.code() != 0 {
        return None;
    }
    let key = libp2p::identity::PublicKey::try_decode_protobuf(mh.digest()).ok()?;
    let bytes = key.try_into_ed25519().ok()?.to_bytes();
    EndpointId::from_bytes(&bytes).ok()
}

impl BlobNet {
    /// Binds the endpoint on `addrs` (see [`bind_addrs`]; at least one).
    /// With `relays` (see [`super::relay::relay_mode`]), it is reached through them and punches
    /// holes with the addresses they see.
    pub(crate) async fn bind(
        secret: [u8; 32],
        addrs: &[SocketAddr],
        relays: Option<Relays>,
        blobs: &Blobs,
    ) -> Result<Self, NodeError> {
        let shown = addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let err = |reason: String| NodeError::Endpoint {
            addr: shown.clone(),
            reason,
        };
        let (first, rest) = addrs
            .split_first()
            .ok_or_else(|| err("no address to bind".into()))?;
        let mut builder = endpoint_builder(*first).map_err(|e| err(e.to_string()))?;
        let mut families = vec![first.is_ipv4()];
        for addr in rest {
            // One address per family is the default route; the others serve their own subnet.
            let opts = if families.contains(&addr.is_ipv4()) {
                let host = if addr.is_ipv4() { 32 } else { 128 };
                BindOpts::default()
                    .set_prefix_len(host)
                    .set_is_default_route(false)
            } else {
                families.push(addr.is_ipv4());
                BindOpts::default()
            };
            builder = builder
                .bind_addr_with_opts(*addr, opts)
                .map_err(|e| err(e.to_string()))?;
        }
        let mut first_relay = None;
        if let Some(r) = relays {
            builder = builder.relay_mode(r.mode).ca_tls_config(r.ca);
            first_relay = Some(r.first);
        }
        let lookup = MemoryLookup::new();
        let endpoint = builder
            .secret_key(SecretKey::from_bytes(&secret))
            .address_lookup(lookup.clone())
            .bind()
            .await
            .map_err(|e| err(e.to_string()))?;
        let mut pool = iroh_blobs::util::connection_pool::Options::default();
        if first_relay.is_some() {
            // Through a relay, a connection takes a few round trips more, and the peer may
            // still be on its way to the relay: the pool's 1 s would give up on it.
            pool.connect_timeout = RELAYED_CONNECT_TIMEOUT;
        }
        let downloader = Downloader::builder(blobs.store(), &endpoint)
            .pool_options(pool)
            .build();
        let router = Router::builder(endpoint)
            .accept(iroh_blobs::ALPN, BlobsProtocol::new(blobs.store(), None))
            .spawn();
        Ok(Self {
            router,
            lookup,
            downloader,
            first_relay,
        })
    }

    pub(crate) fn endpoint_id_hex(&self) -> String {
        self.router.endpoint().id().to_string()
    }

    /// Where peers reach the endpoint, from one look at its address:
    /// - the socket addresses to try: those of the machine's interfaces it is bound on (an
    ///   endpoint bound to 0.0.0.0 is on every interface) and the public address its relay
    ///   saw, once it has one; the bound sockets if it knows none yet;
    /// - the relay (`network.relay_urls`): its home relay, or the first configured one until
    ///   it has picked one (a peer dialling then waits on the relay until the endpoint is
    ///   there).
    pub(crate) fn at(&self) -> EndpointAt {
        let endpoint = self.router.endpoint();
        let addr = endpoint.addr();
        let mut addrs: Vec<SocketAddr> = addr.ip_addrs().copied().collect();
        if addrs.is_empty() {
            addrs = endpoint.bound_sockets();
        }
        let relay = addr.relay_urls().next().cloned();
        EndpointAt {
            addrs,
            relay: relay.or_else(|| self.first_relay.clone()),
        }
    }

    /// Bytes received since the start: straight from peers, and through a relay.
    pub(crate) fn received(&self) -> (u64, u64) {
        let socket = &self.router.endpoint().metrics().socket;
        (
            socket.recv_data_ipv4.get() + socket.recv_data_ipv6.get(),
            socket.recv_data_relay.get(),
        )
    }

    /// Fetches `cid` from `providers`. A file of at least [`SPLIT_MIN_BYTES`] with several
    /// providers is fetched in parts, one per provider (up to [`MAX_PARTS`]), at once; each
    /// part, and a whole-file fetch, tries its providers in turn, and a provider that fails
    /// hands over to the next, which continues from what is already stored. Every chunk is
    /// verified against the BLAKE3 tree before it is written.
    pub(crate) async fn fetch(
        &self,
        blobs: &Blobs,
        cid: Cid,
        providers: Holders,
        mut progress: impl FnMut(FetchProgress) + Send,
    ) -> Result<Fetched, NodeError> {
        let hash = cids::blob_hash(&cid)
            .map(Hash::from_bytes)
            .ok_or_else(|| NodeError::Fetch {
                cid,
                reason: "not a file CID".into(),
            })?;
        let mut ids = Vec::new();
        let mut peers = HashMap::new();
        for (peer, at) in providers {
            if let Some(id) = self.register(peer, at) {
                peers.insert(id, peer);
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Err(NodeError::NotFound(cid));
        }
        let fail = |reason: String| NodeError::Fetch { cid, reason };
        // What an earlier, interrupted fetch left is not fetched again.
        let held_before = self.local_bytes(blobs, GetRequest::blob(hash)).await;
        let mut run = Run {
            peers,
            from: Vec::new(),
            failed: Vec::new(),
            size_sent: false,
            hash,
        };
        let whole = vec![(GetRequest::blob(hash), ids.clone())];
        let requests = if ids.len() > 1 {
            // The verified size comes with the last chunk: a small request to one provider.
            let probe = vec![(
                GetRequest::blob_ranges(hash, ChunkRanges::last_chunk()),
                ids.clone(),
            )];
            self.drive(blobs, probe, &mut run, &mut |_| {})
                .await
                .map_err(fail)?;
            let size = blobs
                .store()
                .observe(hash)
                .await
                .map(|b| b.size())
                .unwrap_or(0);
            if size >= SPLIT_MIN_BYTES {
                split(hash, size, &ids)
            } else {
                whole
            }
        } else {
            whole
        };
        let held = self
            .drive(blobs, requests, &mut run, &mut progress)
            .await
            .map_err(fail)?;
        let size = blobs.size(&cid).await?.ok_or_else(|| NodeError::Fetch {
            cid,
            reason: "the transfer ended without the file".into(),
        })?;
        if !blobs.has(&cid).await? {
            return Err(NodeError::Fetch {
                cid,
                reason: "the transfer ended before the file was complete".into(),
            });
        }
        let held = held.max(self.local_bytes(blobs, GetRequest::blob(hash)).await);
        Ok(Fetched {
            size,
            transferred: held.saturating_sub(held_before),
            from: run.from,
        })
    }

    /// Tells the endpoint where `peer`'s endpoint is reached; its endpoint id (none for a peer
    /// id that is not an ed25519 key).
    fn register(&self, peer: PeerId, at: EndpointAt) -> Option<EndpointId> {
        let id = endpoint_id(&peer)?;
        tracing::debug!(%peer, addrs = ?at.addrs, relay = ?at.relay, "a file endpoint to dial");
        let mut addr = EndpointAddr::new(id);
        for a in at.addrs {
            addr = addr.with_ip_addr(a);
        }
        if let Some(relay) = at.relay {
            addr = addr.with_relay_url(relay);
        }
        self.lookup.add_endpoint_info(addr);
        Some(id)
    }

    /// Fetches many files, each from its own holders, over one connection per provider.
    ///
    /// Files of which nothing is held yet go in batches of up to [`MANY_PER_REQUEST`], each
    /// batch one request to one of their holders (a GetMany: the files one after another on
    /// one stream, each verified as it streams), [`REQUESTS_AT_ONCE`] requests at a time. What a
    /// batch did not bring, and files of which part is held (an interrupted fetch), are then
    /// fetched one by one, [`MANY_AT_ONCE`] at a time, each from its holders in turn,
    /// continuing from what is held. `held` grows by the verified bytes as they arrive. For
    /// each file, in no particular order: the bytes this fetch moved of it and the peer that
    /// served it (or was tried last), or why it failed.
    pub(crate) async fn fetch_many(
        &self,
        blobs: &Blobs,
        files: Vec<(Cid, Holders)>,
        held: &AtomicU64,
    ) -> Vec<(Cid, Result<(u64, Option<PeerId>), String>)> {
        let mut peers = HashMap::new();
        let mut out = Vec::with_capacity(files.len());
        let mut jobs: Vec<(Cid, Hash, Vec<EndpointId>)> = Vec::with_capacity(files.len());
        for (cid, holders) in files {
            let ids: Vec<EndpointId> = holders
                .into_iter()
                .filter_map(|(peer, at)| {
                    let id = self.register(peer, at)?;
                    peers.insert(id, peer);
                    Some(id)
                })
                .collect();
            match cids::blob_hash(&cid) {
                None => out.push((cid, Err("not a file CID".to_owned()))),
                Some(_) if ids.is_empty() => out.push((cid, Err("no peer holds it".to_owned()))),
                Some(h) => jobs.push((cid, Hash::from_bytes(h), ids)),
            }
        }
        let peers = &peers;

        // Batches by first holder, of files with nothing held yet.
        let mut batches: HashMap<EndpointId, Vec<usize>> = HashMap::new();
        let mut one_by_one = Vec::new();
        let hashes: Vec<Hash> = jobs.iter().map(|(_, hash, _)| *hash).collect();
        let local: Vec<u64> = futures::stream::iter(hashes)
            .map(|hash| self.local_bytes(blobs, GetRequest::blob(hash)))
            .buffered(CHECKS_AT_ONCE)
            .collect()
            .await;
        for (i, ((_, _, ids), local)) in jobs.iter().zip(local).enumerate() {
            if local == 0 {
                batches.entry(ids[0]).or_default().push(i);
            } else {
                one_by_one.push(i);
            }
        }
        let requests: Vec<(EndpointId, Vec<usize>)> = batches
            .into_iter()
            .flat_map(|(id, all)| {
                all.chunks(MANY_PER_REQUEST)
                    .map(|c| (id, c.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let jobs = &jobs;
        let done: Vec<(EndpointId, Vec<usize>)> = futures::stream::iter(requests)
            .map(|(id, batch)| async move {
                let hashes: Vec<Hash> = batch.iter().map(|i| jobs[*i].1).collect();
                if let Err(e) = self.get_many(blobs, id, hashes, held).await {
                    tracing::debug!(provider = %id, files = batch.len(), "a batch fetch failed: {e}");
                }
                (id, batch)
            })
            .buffer_unordered(REQUESTS_AT_ONCE)
            .collect()
            .await;
        let done: Vec<(EndpointId, usize)> = done
            .into_iter()
            .flat_map(|(id, batch)| batch.into_iter().map(move |i| (id, i)))
            .collect();
        let arrived: Vec<Cid> = done.iter().map(|(_, i)| jobs[*i].0).collect();
        let sizes: Vec<_> = futures::stream::iter(arrived)
            .map(|cid| async move { blobs.size(&cid).await })
            .buffered(CHECKS_AT_ONCE)
            .collect()
            .await;
        for ((id, i), size) in done.into_iter().zip(sizes) {
            let cid = &jobs[i].0;
            match size {
                Ok(Some(size)) => out.push((*cid, Ok((size, peers.get(&id).copied())))),
                // Each of its holders in turn, resuming from what the batch brought.
                _ => one_by_one.push(i),
            }
        }

        let rest: Vec<_> = futures::stream::iter(one_by_one)
            .map(|i| async move {
                let (cid, hash, ids) = &jobs[i];
                let result = self
                    .fetch_one(blobs, *hash, ids.clone(), held)
                    .await
                    .map(|(n, id)| (n, id.and_then(|id| peers.get(&id).copied())));
                (*cid, result)
            })
            .buffer_unordered(MANY_AT_ONCE)
            .collect()
            .await;
        out.extend(rest);
        out
    }

    /// One GetMany request of `hashes` to `provider`, storing what arrives (verified); `held`
    /// grows by the bytes as they do.
    async fn get_many(
        &self,
        blobs: &Blobs,
        provider: EndpointId,
        hashes: Vec<Hash>,
        held: &AtomicU64,
    ) -> Result<(), String> {
        let conn = self
            .router
            .endpoint()
            .connect(provider, iroh_blobs::ALPN)
            .await
            .map_err(|e| e.to_string())?;
        let request: GetManyRequest = hashes.into_iter().collect();
        let mut stream = blobs
            .store()
            .remote()
            .execute_get_many(conn, request)
            .stream();
        let mut last = 0;
        while let Some(item) = stream.next().await {
            match item {
                GetProgressItem::Progress(n) if n > last => {
                    held.fetch_add(n - last, Ordering::Relaxed);
                    last = n;
                }
                GetProgressItem::Error(e) => return Err(e.to_string()),
                _ => {}
            }
        }
        Ok(())
    }

    /// One file of [`BlobNet::fetch_many`]: the bytes moved, and the provider tried last.
    async fn fetch_one(
        &self,
        blobs: &Blobs,
        hash: Hash,
        providers: Vec<EndpointId>,
        held: &AtomicU64,
    ) -> Result<(u64, Option<EndpointId>), String> {
        let before = self.local_bytes(blobs, GetRequest::blob(hash)).await;
        held.fetch_add(before, Ordering::Relaxed);
        let mut last = before;
        let mut stream = self
            .downloader
            .download(GetRequest::blob(hash), providers)
            .stream()
            .await
            .map_err(|e| e.to_string())?;
        let mut failed = Vec::new();
        let mut serving = None;
        while let Some(item) = stream.next().await {
            match item {
                DownloadProgressItem::TryProvider { id, .. } => serving = Some(id),
                DownloadProgressItem::Progress(n) if n > last => {
                    held.fetch_add(n - last, Ordering::Relaxed);
                    last = n;
                }
                DownloadProgressItem::ProviderFailed { id, .. } => failed.push(id.to_string()),
                DownloadProgressItem::Error(e) => return Err(e.to_string()),
                DownloadProgressItem::DownloadError => {
                    return Err(format!("every provider failed ({})", failed.join(", ")));
                }
                _ => {}
            }
        }
        Ok((last.saturating_sub(before), serving))
    }

    /// Bytes of `request` the store already holds.
    async fn local_bytes(&self, blobs: &Blobs, request: GetRequest) -> u64 {
        blobs
            .store()
            .remote()
            .local_for_request(request)
            .await
            .map(|l| l.local_bytes())
            .unwrap_or(0)
    }

    /// Runs `requests` at once, each over its providers in turn; reports the bytes held of
    /// them all as they grow, and notes who served what. Returns the bytes held at the end.
    async fn drive(
        &self,
        blobs: &Blobs,
        requests: Vec<(GetRequest, Vec<EndpointId>)>,
        run: &mut Run,
        progress: &mut (impl FnMut(FetchProgress) + Send),
    ) -> Result<u64, String> {
        let mut held = Vec::with_capacity(requests.len());
        let mut streams = Vec::with_capacity(requests.len());
        for (j, (request, providers)) in requests.into_iter().enumerate() {
            held.push(self.local_bytes(blobs, request.clone()).await);
            let stream = self
                .downloader
                .download(request, providers)
                .stream()
                .await
                .map_err(|e| e.to_string())?;
            streams.push(stream.map(move |item| (j, item)).boxed());
        }
        // Progress counts towards the provider each part tried last.
        let mut serving: Vec<Option<PeerId>> = vec![None; held.len()];
        let mut all = futures::stream::select_all(streams);
        // Only bytes count as life: a downloader that keeps retrying providers
        // yields items while nothing arrives.
        let mut deadline = tokio::time::Instant::now() + STALLED;
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, all.next()).await else {
                return Err(format!(
                    "nothing arrived for {} s (providers tried: {})",
                    STALLED.as_secs(),
                    serving
                        .iter()
                        .flatten()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            let Some((j, item)) = next else {
                break;
            };
            match item {
                DownloadProgressItem::TryProvider { id, .. } => {
                    serving[j] = run.peers.get(&id).copied();
                }
                DownloadProgressItem::Progress(n) => {
                    // The size is known (verified) once the first chunk has arrived.
                    if !run.size_sent
                        && let Ok(bitfield) = blobs.store().observe(run.hash).await
                        && bitfield.size() > 0
                    {
                        progress(FetchProgress::Size(bitfield.size()));
                        run.size_sent = true;
                    }
                    if n > held[j] {
                        if let Some(peer) = serving[j] {
                            match run.from.iter_mut().find(|(p, _)| *p == peer) {
                                Some((_, b)) => *b += n - held[j],
                                None => run.from.push((peer, n - held[j])),
                            }
                        }
                        held[j] = n;
                        deadline = tokio::time::Instant::now() + STALLED;
                    }
                    progress(FetchProgress::Bytes(held.iter().sum()));
                }
                DownloadProgressItem::ProviderFailed { id, .. } => {
                    tracing::debug!(provider = %id, peer = ?run.peers.get(&id), "a provider failed");
                    run.failed.push(id.to_string());
                }
                DownloadProgressItem::Error(e) => return Err(e.to_string()),
                DownloadProgressItem::DownloadError => {
                    return Err(format!("every provider failed ({})", run.failed.join(", ")));
                }
                _ => {}
            }
        }
        Ok(held.iter().sum())
    }

    pub(crate) async fn shutdown(&self) {
        if let Err(e) = self.router.shutdown().await {
            tracing::debug!("iroh router shutdown: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(listen: &[&str], blobs_listen: &str) -> Vec<String> {
        let config = NetworkConfig {
            listen: listen.iter().map(|s| (*s).to_owned()).collect(),
            blobs_listen: blobs_listen.into(),
            ..NetworkConfig::default()
        };
        bind_addrs(&config)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_blob_endpoint_binds_where_the_node_listens() {
        assert_eq!(
            addrs(
                &["/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"],
                ""
            ),
            ["127.0.0.1:0"]
        );
        assert_eq!(
            addrs(&["/ip4/0.0.0.0/tcp/4001", "/ip4/127.0.0.1/tcp/4002"], ""),
            ["0.0.0.0:0"]
        );
        assert_eq!(
            addrs(&["/ip4/10.0.0.2/tcp/1", "/ip6/::1/tcp/1"], ""),
            ["10.0.0.2:0", "[::1]:0"]
        );
        assert_eq!(addrs(&[], ""), ["0.0.0.0:0"]);
        assert_eq!(
            addrs(&["/ip4/127.0.0.1/tcp/1"], "0.0.0.0:4100"),
            ["0.0.0.0:4100"]
        );
        let config = NetworkConfig {
            blobs_listen: "localhost".into(),
            ..NetworkConfig::default()
        };
        let e = bind_addrs(&config).unwrap_err().to_string();
        assert!(e.contains("network.blobs_listen"), "{e}");
    }
}
