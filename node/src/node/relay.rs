//! The iroh relay a node runs for others (`network.relay_server`), and how a node trusts the
//! relays it uses (`network.relay_urls`).
//!
//! The relay moves file-transfer packets between endpoints that cannot dial each other yet
//! (plain HTTP, websockets) and tells each endpoint the address its router gave it (QUIC
//! address discovery, on the same port over UDP), which is what hole punching needs. QUIC
//! needs TLS; the relay's certificate is signed with its node key, and a node accepts a relay's
//! certificate when its key is the key of one of its `network.relays` (the peer id in the
//! multiaddr), so no certificate authority or file has to be handed around. A relay with a
//! certificate from a public authority (an iroh relay behind a domain) is accepted as browsers
//! accept it.

use std::{net::SocketAddr, num::NonZeroU32, sync::Arc};

use iroh::{PublicKey, RelayConfig, RelayMap, RelayMode, RelayUrl, tls::CaTlsConfig};
use iroh_relay::{
    RelayQuicConfig,
    server::{self, ClientRateLimit, Limits, QuicConfig, Server, ServerConfig},
};
use libp2p::{Multiaddr, multiaddr::Protocol};
use rustls::{
    CertificateError, DigitallySignedStruct, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime},
};

use super::{NodeError, blobs_net::endpoint_id};
use crate::config::{NetworkConfig, RelayLimits};

/// The DER of an Ed25519 `SubjectPublicKeyInfo` before the 32 key bytes (RFC 8410: a
/// sequence of the algorithm 1.3.101.112 and a bit string of the key).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// The DER of an Ed25519 PKCS #8 private key before the 32 secret bytes (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Starts the iroh relay on `limits.iroh_listen` (TCP for relaying, UDP on the same port for
/// address discovery), its certificate signed with the node key `secret`.
pub(crate) async fn spawn(secret: &[u8; 32], limits: &RelayLimits) -> Result<Server, NodeError> {
    let bad = |reason: String| NodeError::Setting {
        key: "network.relay_limits.iroh_listen",
        value: limits.iroh_listen.clone(),
        reason,
    };
    let addr: SocketAddr = limits.iroh_listen.parse().map_err(|e| {
        bad(format!(
            "is not a socket address (such as 0.0.0.0:3340): {e}"
        ))
    })?;
    let tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| bad(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![certificate(secret).map_err(bad)?], pkcs8(secret))
        .map_err(|e| bad(e.to_string()))?;
    let mut relay = server::RelayConfig::new(addr);
    if let Some(rate) = NonZeroU32::new(limits.iroh_bytes_per_sec) {
        let mut rx = ClientRateLimit::new(rate);
        // A second's worth at once, so that the rate holds over any second.
        rx.max_burst_bytes = Some(rate);
        let mut l = Limits::default();
        l.client_rx = Some(rx);
        relay.limits = l;
    }
    let mut quic = QuicConfig::new(addr);
    quic.server_config = Some(tls);
    let mut config = ServerConfig::default();
    config.relay = Some(relay);
    config.quic = Some(quic);
    let server = Server::spawn(config)
        .await
        .map_err(|e| bad(format!("cannot start the iroh relay: {e}")))?;
    tracing::info!(
        http = ?server.http_addr(),
        quic = ?server.quic_addr(),
        "relaying file transfers for other nodes"
    );
    Ok(server)
}

/// The node key as PKCS #8 DER, what rustls and rcgen read keys as.
fn pkcs8(secret: &[u8; 32]) -> PrivateKeyDer<'static> {
    let mut der = ED25519_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(secret);
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))
}

/// A certificate for the relay, self-signed with the node key.
fn certificate(secret: &[u8; 32]) -> Result<CertificateDer<'static>, String> {
    let PrivateKeyDer::Pkcs8(key) = pkcs8(secret) else {
        return Err("the node key is not a PKCS #8 key".into());
    };
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519)
        .map_err(|e| format!("the node key cannot sign a certificate: {e}"))?;
    let params =
        rcgen::CertificateParams::new(vec!["mnode-relay".to_owned()]).map_err(|e| e.to_string())?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("cannot make the relay's certificate: {e}"))?;
    Ok(cert.der().clone())
}

/// The TLS provider for relays: the one iroh uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The relays the file endpoint uses.
pub(crate) struct Relays {
    /// The ones `network.relay_urls` names, address discovery on each URL's port.
    pub(crate) mode: RelayMode,
    /// Trust in them, as [`RelayKeys`] says.
    pub(crate) ca: CaTlsConfig,
    /// The first: where peers reach the endpoint before it has picked its home relay.
    pub(crate) first: RelayUrl,
}

/// How the file endpoint uses relays (see [`Relays`]); none when `network.relay_urls` is
/// empty.
pub(crate) fn relays(config: &NetworkConfig) -> Result<Option<Relays>, NodeError> {
    let mut configs = Vec::new();
    for text in &config.relay_urls {
        let url: RelayUrl = text.parse().map_err(|e| NodeError::Setting {
            key: "network.relay_urls",
            value: text.clone(),
            reason: format!("is not a URL (such as http://203.0.113.5:3340): {e}"),
        })?;
        let quic = url.port().map(RelayQuicConfig::new);
        configs.push(RelayConfig::new(url, quic));
    }
    let Some(first) = configs.first().map(|c| c.url.clone()) else {
        return Ok(None);
    };
    let keys = relay_keys(&config.relays);
    let verifier: iroh_relay::tls::ServerCertVerifierBuilder = Arc::new(move |provider| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let public = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Arc::new(RelayKeys {
            keys: keys.clone(),
            public,
            provider,
        }) as Arc<dyn ServerCertVerifier>)
    });
    Ok(Some(Relays {
        mode: RelayMode::Custom(RelayMap::from_iter(configs)),
        ca: CaTlsConfig::custom_server_cert_verifier(verifier),
        first,
    }))
}

/// The node keys of the relays `network.relays` names (by the peer id each ends in).
fn relay_keys(relays: &[String]) -> Vec<PublicKey> {
    relays
        .iter()
        .filter_map(|r| r.parse::<Multiaddr>().ok())
        .filter_map(|ma| match ma.iter().last() {
            Some(Protocol::P2p(peer)) => endpoint_id(&peer),
            _ => None,
        })
        .collect()
}

/// Accepts a relay's certificate if its key is one of the relays' node keys (the certificate
/// is then the relay's own, whatever name it carries), or if a public authority vouches for it.
#[derive(Debug)]
struct RelayKeys {
    keys: Vec<PublicKey>,
    public: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl RelayKeys {
    /// Whether `cert` carries one of the relays' keys.
    fn pinned(&self, cert: &CertificateDer<'_>) -> bool {
        let Ok(cert) = webpki::EndEntityCert::try_from(cert) else {
            return false;
        };
        let spki = cert.subject_public_key_info();
        let Some(key) = spki.as_ref().strip_prefix(&ED25519_SPKI_PREFIX[..]) else {
            return false;
        };
        self.keys.iter().any(|k| k.as_bytes()[..] == *key)
    }
}

impl ServerCertVerifier for RelayKeys {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pinned(end_entity) {
            // The handshake signature, checked next, proves the relay holds the key.
            return Ok(ServerCertVerified::assertion());
        }
        self.public
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            .map_err(|e| match e {
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                    rustls::Error::InvalidCertificate(
                        CertificateError::ApplicationVerificationFailure,
                    )
                }
                e => e,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn verifier(keys: Vec<PublicKey>) -> RelayKeys {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        RelayKeys {
            keys,
            public: WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap(),
            provider: provider(),
        }
    }

    #[test]
    fn a_relay_certificate_is_trusted_by_the_relay_key_only() {
        let secret = [7u8; 32];
        let public = iroh::SecretKey::from_bytes(&secret).public();
        let cert = certificate(&secret).unwrap();
        let name = ServerName::try_from("203.0.113.10").unwrap();
        let now = UnixTime::now();
        assert!(
            verifier(vec![public])
                .verify_server_cert(&cert, &[], &name, &[], now)
                .is_ok()
        );

        // Another relay's key, or none: refused.
        let other = iroh::SecretKey::from_bytes(&[8u8; 32]).public();
        for keys in [vec![other], vec![]] {
            let e = verifier(keys)
                .verify_server_cert(&cert, &[], &name, &[], now)
                .unwrap_err();
            assert!(matches!(e, rustls::Error::InvalidCertificate(_)), "{e:?}");
        }
    }
}
