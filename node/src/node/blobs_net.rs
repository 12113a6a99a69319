//! The iroh endpoint that moves files: serves the node's blob store and fetches from peers.
//!
//! It uses the node's key (so a libp2p peer id names the same key as an iroh endpoint id),
//! no relays, no address lookup service and no port mapping: peers' socket addresses come
//! from the blob-address exchange on libp2p.

use std::net::SocketAddr;

use futures::StreamExt;
use iroh::{
    Endpoint, EndpointAddr, EndpointId, RelayMode, SecretKey,
    address_lookup::MemoryLookup,
    endpoint::{PortmapperConfig, presets},
    protocol::Router,
};
use iroh_blobs::{
    BlobsProtocol, Hash,
    api::downloader::{DownloadProgressItem, Downloader},
};
use libp2p::PeerId;
use mnode_dag::{Cid, cids};

use super::{FetchProgress, Fetched, NodeError};
use crate::blobs::Blobs;

pub(crate) struct BlobNet {
    router: Router,
    lookup: MemoryLookup,
    downloader: Downloader,
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
    pub(crate) async fn bind(
        secret: [u8; 32],
        listen: &str,
        blobs: &Blobs,
    ) -> Result<Self, NodeError> {
        let err = |reason: String| NodeError::Endpoint {
            addr: listen.to_owned(),
            reason,
        };
        let addr: SocketAddr = listen
            .parse()
            .map_err(|e| err(format!("not a socket address: {e}")))?;
        let lookup = MemoryLookup::new();
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(SecretKey::from_bytes(&secret))
            .relay_mode(RelayMode::Disabled)
            .portmapper_config(PortmapperConfig::Disabled)
            .clear_ip_transports()
            .bind_addr(addr)
            .map_err(|e| err(e.to_string()))?
            .address_lookup(lookup.clone())
            .bind()
            .await
            .map_err(|e| err(e.to_string()))?;
        let downloader = Downloader::new(blobs.store(), &endpoint);
        let router = Router::builder(endpoint)
            .accept(iroh_blobs::ALPN, BlobsProtocol::new(blobs.store(), None))
            .spawn();
        Ok(Self {
            router,
            lookup,
            downloader,
        })
    }

    pub(crate) fn endpoint_id_hex(&self) -> String {
        self.router.endpoint().id().to_string()
    }

    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        self.router.endpoint().bound_sockets()
    }

    /// Fetches `cid` from `providers`, trying them in turn; a provider that fails hands over to
    /// the next, which continues from what is already stored. Every chunk is verified against
    /// the BLAKE3 tree before it is written.
    pub(crate) async fn fetch(
        &self,
        blobs: &Blobs,
        cid: Cid,
        providers: Vec<(PeerId, Vec<SocketAddr>)>,
        mut progress: impl FnMut(FetchProgress) + Send,
    ) -> Result<Fetched, NodeError> {
        let hash = cids::blob_hash(&cid)
            .map(Hash::from_bytes)
            .ok_or_else(|| NodeError::Fetch {
                cid,
                reason: "not a file CID".into(),
            })?;
        let mut ids = Vec::new();
        let mut peers = std::collections::HashMap::new();
        for (peer, addrs) in providers {
            let Some(id) = endpoint_id(&peer) else {
                continue;
            };
            peers.insert(id, peer);
            let mut addr = EndpointAddr::new(id);
            for a in addrs {
                addr = addr.with_ip_addr(a);
            }
            self.lookup.add_endpoint_info(addr);
            ids.push(id);
        }
        if ids.is_empty() {
            return Err(NodeError::NotFound(cid));
        }
        // What an earlier, interrupted fetch left is not fetched again.
        let held_before = blobs
            .store()
            .remote()
            .local(iroh_blobs::HashAndFormat::raw(hash))
            .await
            .map(|l| l.local_bytes())
            .unwrap_or(0);
        let mut stream = self
            .downloader
            .download(hash, ids)
            .stream()
            .await
            .map_err(|e| NodeError::Fetch {
                cid,
                reason: e.to_string(),
            })?;
        let mut failed = Vec::new();
        let mut held = held_before;
        let mut size_sent = false;
        // Who served what: progress counts towards the provider tried last.
        let mut from: Vec<(PeerId, u64)> = Vec::new();
        let mut serving: Option<PeerId> = None;
        while let Some(item) = stream.next().await {
            match item {
                DownloadProgressItem::TryProvider { id, .. } => serving = peers.get(&id).copied(),
                DownloadProgressItem::Progress(n) => {
                    // The size is known (verified) once the first chunk has arrived.
                    if !size_sent
                        && let Ok(bitfield) = blobs.store().observe(hash).await
                        && bitfield.size() > 0
                    {
                        progress(FetchProgress::Size(bitfield.size()));
                        size_sent = true;
                    }
                    if let Some(peer) = serving
                        && n > held
                    {
                        match from.iter_mut().find(|(p, _)| *p == peer) {
                            Some((_, b)) => *b += n - held,
                            None => from.push((peer, n - held)),
                        }
                    }
                    held = held.max(n);
                    progress(FetchProgress::Bytes(n));
                }
                DownloadProgressItem::ProviderFailed { id, .. } => failed.push(id.to_string()),
                DownloadProgressItem::Error(e) => {
                    return Err(NodeError::Fetch {
                        cid,
                        reason: e.to_string(),
                    });
                }
                DownloadProgressItem::DownloadError => {
                    return Err(NodeError::Fetch {
                        cid,
                        reason: format!("every provider failed ({})", failed.join(", ")),
                    });
                }
                _ => {}
            }
        }
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
        Ok(Fetched {
            size,
            transferred: held.max(held_before) - held_before,
            from,
        })
    }

    pub(crate) async fn shutdown(&self) {
        if let Err(e) = self.router.shutdown().await {
            tracing::debug!("iroh router shutdown: {e}");
        }
    }
}
