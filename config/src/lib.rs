//! Configuration: `mnode.yaml` in the repo.
//!
//! Plain serde structs whose `Default` works for a local run. Precedence, highest first:
//! command-line flags, `MNODE_*` environment variables, the file, the defaults. A setting is
//! named by its path (`store.tmp_max_age_secs`); its environment variable is that path in upper
//! case with `_` for `.`, after `MNODE_` (`MNODE_STORE_TMP_MAX_AGE_SECS`). A malformed file, an
//! unknown setting or a bad value is an error that names where it came from.

use std::{fmt::Write as _, path::Path};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The file name of the config inside the repo.
pub const FILE_NAME: &str = "mnode.yaml";

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The HTTP gateway and API.
    pub api: ApiConfig,
    /// The peer-to-peer network.
    pub network: NetworkConfig,
    /// Records and files on disk.
    pub store: StoreConfig,
    /// Where the bytes of files live: the repo's disk or an S3-compatible bucket.
    pub blobs: BlobsConfig,
    /// Logging.
    pub log: LogConfig,
}

/// The HTTP gateway and API (`mnode daemon`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address the gateway listens on.
    pub listen: String,
    /// Largest upload accepted, in bytes.
    pub max_upload_bytes: u64,
    /// How long a login session lasts, in seconds.
    pub session_ttl_secs: u64,
    /// Anyone who reaches the API may create an account; when off, only an admin can.
    pub open_registration: bool,
    /// Nobody, admins included, may delete accounts, artists or files on this node (an
    /// archive, a label's catalogue); the setting itself is the way back.
    pub forbid_deletion: bool,
    /// How long the gateway looks for a block it does not hold among connected peers
    /// (Bitswap) before answering 404, in milliseconds; 0: never look.
    pub gateway_fetch_timeout_ms: u64,
    /// The largest file `/ipfs/{cid}?format=raw` answers as one raw block, in bytes (the whole
    /// file is the block; clients check it against its CID). Larger files are fetched without
    /// a format, or through their UnixFS view in 1 MiB blocks.
    pub gateway_max_raw_block: u64,
    /// How long `mnode daemon`, told to stop, lets requests in flight (uploads) finish before
    /// it cuts them off, in seconds.
    pub shutdown_grace_secs: u64,
    /// Rate limits on writes, uploads and logins.
    pub limits: LimitsConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5001".into(),
            max_upload_bytes: 10 << 30,
            session_ttl_secs: 30 * 24 * 3600,
            open_registration: true,
            forbid_deletion: false,
            gateway_fetch_timeout_ms: 5000,
            gateway_max_raw_block: 16 << 20,
            shutdown_grace_secs: 5,
            limits: LimitsConfig::default(),
        }
    }
}

/// Rate limits of the API and the pages (`api.limits`): how many writes, uploads and login
/// attempts one account and one client address may make per `period_secs`, and how failed
/// logins slow down. Each budget allows its whole count at once, then refills evenly over the
/// period; 0 turns that budget off. The node's admin token (the CLI) is never limited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// The period the counts below are per, in seconds (at least 1).
    #[serde(deserialize_with = "at_least_one")]
    pub period_secs: u64,
    /// Writes (every POST, PUT, PATCH and DELETE but logins and uploads) per account.
    pub writes_per_account: u32,
    /// Writes per client address.
    pub writes_per_address: u32,
    /// Uploads (files, CAR imports) per account.
    pub uploads_per_account: u32,
    /// Uploads per client address.
    pub uploads_per_address: u32,
    /// Login attempts per handle or email tried, whatever their outcome.
    pub logins_per_account: u32,
    /// Login attempts per client address.
    pub logins_per_address: u32,
    /// Failed logins of one handle before each next attempt waits, 1 s doubling per failure.
    pub login_free_failures_per_account: u32,
    /// Failed logins from one address before each next attempt waits.
    pub login_free_failures_per_address: u32,
    /// The longest wait failed logins impose, in seconds.
    pub login_max_wait_secs: u64,
    /// Proxies whose `X-Forwarded-For` names the client; empty: the TCP peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Most clients each budget tracks (at least 1); past it, it forgets them all.
    #[serde(deserialize_with = "at_least_one")]
    pub max_tracked: u64,
}

fn at_least_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if n == 0 {
        return Err(serde::de::Error::invalid_value(
            serde::de::Unexpected::Unsigned(0),
            &"a whole number, at least 1",
        ));
    }
    Ok(n)
}

impl LimitsConfig {
    /// No limits at all.
    pub fn off() -> Self {
        Self {
            writes_per_account: 0,
            writes_per_address: 0,
            uploads_per_account: 0,
            uploads_per_address: 0,
            logins_per_account: 0,
            logins_per_address: 0,
            login_free_failures_per_account: 0,
            login_free_failures_per_address: 0,
            ..Self::default()
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        // Far above what a person at the pages or the CLI does in a minute; see the DOCS.
        Self {
            period_secs: 60,
            writes_per_account: 600,
            writes_per_address: 1200,
            uploads_per_account: 120,
            uploads_per_address: 240,
            logins_per_account: 30,
            logins_per_address: 120,
            login_free_failures_per_account: 5,
            login_free_failures_per_address: 20,
            login_max_wait_secs: 900,
            trusted_proxies: vec![],
            max_tracked: 100_000,
        }
    }
}

/// The peer-to-peer network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// libp2p listen addresses.
    pub listen: Vec<String>,
    /// Peers to connect to at start (multiaddrs with /p2p/). None by default: no public
    /// bootstrap peers.
    pub bootstrap: Vec<String>,
    /// Find peers on the local network with mDNS (multicasts to the LAN).
    pub mdns: bool,
    /// The UDP address the iroh endpoint (file transfers) binds; port 0 picks a free one.
    /// Empty: the IP addresses of `listen` (each on a free port), so that a node told to listen
    /// on 127.0.0.1 moves files on 127.0.0.1 only; `0.0.0.0:0` when `listen` names none.
    pub blobs_listen: String,
    /// Gossipsub heartbeat, in milliseconds.
    pub gossip_heartbeat_ms: u64,
    /// Largest gossip message, in bytes.
    pub gossip_max_message_bytes: usize,
    /// How often (seconds) followed topics are reconciled with a connected peer.
    pub sync_interval_secs: u64,
    /// Most connections at once (in and out).
    pub max_connections: u32,
    /// How long (seconds) a peer whose gossip score fell below the graylist threshold (it
    /// sent invalid records) stays disconnected and refused.
    pub misbehaviour_ban_secs: u64,
    /// Most records an author may put into one shared topic (a thread, a branch, a forum,
    /// someone else's feed) per minute; more are dropped unforwarded.
    pub gossip_author_per_minute: u32,
    /// How many of the peers it reached before (the most recently seen first) the node dials
    /// again at start; 0: none.
    pub redial_peers: usize,
    /// Addresses peers can reach this node on from outside its network (multiaddrs), announced
    /// as they are. Empty: the addresses AutoNAT confirms.
    pub external_addresses: Vec<String>,
    /// Relays (multiaddrs ending in `/p2p/<peer id>`) this node reserves a slot on, listens
    /// through and announces, so that peers behind other routers reach it. None by default:
    /// no public relay is ever used.
    pub relays: Vec<String>,
    /// The iroh relays (URLs) the file endpoint uses to be reached and to punch holes; usually
    /// the same servers as `relays`. None by default.
    pub relay_urls: Vec<String>,
    /// Act as a relay for other nodes: a libp2p circuit relay and an iroh relay.
    pub relay_server: bool,
    /// What a relay gives each node and connection, when `relay_server` is on.
    pub relay_limits: RelayLimits,
}

/// What a relay (`network.relay_server`) gives each node and connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayLimits {
    /// Most nodes holding a reservation at once.
    pub max_reservations: usize,
    /// Most reservations one node holds at once.
    pub max_reservations_per_peer: usize,
    /// How long a reservation lasts before the node renews it, in seconds.
    pub reservation_secs: u64,
    /// Most relayed connections at once.
    pub max_circuits: usize,
    /// Most relayed connections one node takes part in at once.
    pub max_circuits_per_peer: usize,
    /// How long one relayed libp2p connection may last, in seconds; the peers punch a hole or
    /// dial again.
    pub max_circuit_secs: u64,
    /// Most bytes one relayed libp2p connection may carry (both ways).
    pub max_circuit_bytes: u64,
    /// The address the iroh relay (HTTP) listens on.
    pub iroh_listen: String,
    /// Bytes per second the iroh relay accepts from one node; 0: no limit.
    pub iroh_bytes_per_sec: u32,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_reservations: 128,
            max_reservations_per_peer: 4,
            reservation_secs: 3600,
            max_circuits: 512,
            max_circuits_per_peer: 32,
            max_circuit_secs: 600,
            max_circuit_bytes: 16 << 20,
            iroh_listen: "0.0.0.0:3340".into(),
            iroh_bytes_per_sec: 0,
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/4001".into(),
                "/ip4/0.0.0.0/udp/4001/quic-v1".into(),
            ],
            bootstrap: vec![],
            mdns: false,
            blobs_listen: String::new(),
            gossip_heartbeat_ms: 700,
            gossip_max_message_bytes: 2 << 20,
            sync_interval_secs: 60,
            max_connections: 512,
            misbehaviour_ban_secs: 600,
            gossip_author_per_minute: 60,
            redial_peers: 50,
            external_addresses: vec![],
            relays: vec![],
            relay_urls: vec![],
            relay_server: false,
            relay_limits: RelayLimits::default(),
        }
    }
}

/// Records and files on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Temporary upload files older than this (seconds) are removed at start and periodically.
    pub tmp_max_age_secs: u64,
    /// How often (seconds) a running daemon looks for stale temporary uploads.
    pub tmp_sweep_interval_secs: u64,
    /// RocksDB memory, in MiB: the block cache, which also pays for the memtables (up to half).
    pub cache_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            tmp_max_age_secs: 24 * 3600,
            tmp_sweep_interval_secs: 3600,
            cache_mb: 64,
        }
    }
}

/// Where the bytes of files live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobsConfig {
    /// `local`: under the repo; `s3`: in the bucket `s3` names.
    pub store: BlobStoreKind,
    /// The bucket, when `store` is `s3`.
    pub s3: S3Config,
}

/// Where [`BlobsConfig`] puts file bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobStoreKind {
    /// The repo's own disk.
    #[default]
    Local,
    /// An S3-compatible bucket.
    S3,
}

/// An S3-compatible bucket for file bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The server's URL (`http://127.0.0.1:9000`); empty: AWS itself, by `region`.
    pub endpoint: String,
    /// The bucket; it must exist.
    pub bucket: String,
    /// The region to sign requests for.
    pub region: String,
    /// Objects are named `<prefix>/blobs/<BLAKE3 hex>`; empty: at the bucket's root.
    pub prefix: String,
    /// Path-style URLs (`endpoint/bucket/key`), which most self-hosted servers need; false:
    /// virtual-hosted (`bucket.endpoint/key`).
    pub path_style: bool,
    /// The access key; empty: `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// The secret key; empty: `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// Other nodes use the same bucket and prefix: removing a file here leaves its object.
    pub shared: bool,
    /// How long one request to the bucket may take before it fails (and is retried), in
    /// seconds.
    pub timeout_secs: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".into(),
            prefix: "mnode".into(),
            path_style: true,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            shared: false,
            timeout_secs: 30,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `mnode_node=debug,info`, …
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

/// A configuration problem, naming where it came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML or has an unknown or malformed setting.
    #[error("{path}:{line}:{column}: {message}")]
    File {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// An override (environment variable or flag) is unknown or has a bad value.
    #[error("{source_name}: {message}")]
    Override {
        /// `MNODE_…` or `-c key=value`.
        source_name: String,
        /// What is wrong.
        message: String,
    },
}

/// Comments written above each setting in the generated file.
const DOCS: &[(&str, &str)] = &[
    ("api", "The HTTP gateway and API, served by `mnode daemon`."),
    ("api.listen", "Address the gateway listens on."),
    ("api.max_upload_bytes", "Largest upload accepted, in bytes."),
    (
        "api.session_ttl_secs",
        "How long a login session lasts, in seconds; the person logs in again after.",
    ),
    (
        "api.open_registration",
        "Anyone who reaches the API may create an account (POST /api/v1/accounts); false: only an admin can.",
    ),
    (
        "api.forbid_deletion",
        "Nobody, admins included, may delete an account, an artist (art.artist, art.artist_group) or a file (its blob or its core.file record) on this node: such deletes answer 403 deletion_forbidden. For archives and catalogues; set it back to false to delete.",
    ),
    (
        "api.gateway_max_raw_block",
        "The largest file /ipfs/{cid}?format=raw answers as one raw block, in bytes (the whole file is the block, checked by the client against its CID); larger files are fetched without a format or through their UnixFS view. Default 16 MiB.",
    ),
    (
        "api.gateway_fetch_timeout_ms",
        "How long /ipfs/ looks for a record block it does not hold among connected peers (Bitswap) before answering 404, in milliseconds; 0: never.",
    ),
    (
        "api.shutdown_grace_secs",
        "Seconds a stopping daemon lets requests in flight (uploads) finish before it cuts them off; a second Ctrl-C cuts them at once.",
    ),
    (
        "api.limits",
        "Rate limits of the API and the pages, per account and per client address. Over a limit the answer is 429 with Retry-After. Each budget allows its whole count at once and refills evenly over period_secs; 0 turns it off. The admin token (the CLI) is never limited.",
    ),
    (
        "api.limits.period_secs",
        "The period, in seconds, that the counts below are per.",
    ),
    (
        "api.limits.writes_per_account",
        "Writes (every POST, PUT, PATCH and DELETE of /api/v1 and every form sent, except logins and uploads) one account may make per period.",
    ),
    (
        "api.limits.writes_per_address",
        "Writes one client address (an IPv6 /64) may make per period, whoever is logged in.",
    ),
    (
        "api.limits.uploads_per_account",
        "Uploads (files, CAR and file imports) one account may make per period.",
    ),
    (
        "api.limits.uploads_per_address",
        "Uploads one client address may make per period.",
    ),
    (
        "api.limits.logins_per_account",
        "Login attempts, right or wrong, at one handle or email per period.",
    ),
    (
        "api.limits.logins_per_address",
        "Login attempts from one client address per period.",
    ),
    (
        "api.limits.login_free_failures_per_account",
        "Failed logins at one handle before each next attempt must wait: 1 s, doubling with every further failure up to login_max_wait_secs. A successful login starts the count again; so does a quiet period of login_max_wait_secs.",
    ),
    (
        "api.limits.login_free_failures_per_address",
        "Failed logins from one client address before each next attempt from it must wait, as above.",
    ),
    (
        "api.limits.login_max_wait_secs",
        "The longest wait failed logins impose, in seconds, so that nobody can lock a person out for longer.",
    ),
    (
        "api.limits.trusted_proxies",
        "IP addresses of reverse proxies in front of the node whose X-Forwarded-For header names the client. Empty: the TCP peer is the client (behind a proxy, all clients then share its budget).",
    ),
    (
        "api.limits.max_tracked",
        "Most accounts or addresses each budget keeps track of; idle ones are dropped first, and past it the budget forgets them all (logged as a warning).",
    ),
    ("network", "The peer-to-peer network."),
    (
        "network.listen",
        "libp2p listen addresses (TCP, and UDP for QUIC); port 0 picks a free port. A port another program holds stops the daemon at start.",
    ),
    (
        "network.bootstrap",
        "Peers to connect to at start (multiaddrs ending in /p2p/<peer id>). Empty: no public bootstrap peers.",
    ),
    (
        "network.mdns",
        "Find peers on the local network with mDNS (sends multicast to the LAN).",
    ),
    (
        "network.blobs_listen",
        "UDP address of the iroh endpoint that moves files, such as 0.0.0.0:4002; port 0 picks a free port. Empty: the IP addresses network.listen names (0.0.0.0 if none), each on a free port.",
    ),
    (
        "network.gossip_heartbeat_ms",
        "Gossipsub heartbeat, in milliseconds.",
    ),
    (
        "network.gossip_max_message_bytes",
        "Largest gossip message accepted or sent, in bytes.",
    ),
    (
        "network.sync_interval_secs",
        "How often, in seconds, followed feeds, branches and threads are reconciled with a peer.",
    ),
    ("network.max_connections", "Most peer connections at once."),
    (
        "network.misbehaviour_ban_secs",
        "Seconds a peer that sent invalid records (gossip score below the graylist threshold) stays disconnected and refused.",
    ),
    (
        "network.gossip_author_per_minute",
        "Most records one author may put into a shared topic (a thread, a branch, a forum, someone else's feed) per minute; the rest are dropped.",
    ),
    (
        "network.redial_peers",
        "How many of the peers reached before (most recently seen first) are dialled again at start; 0: none. `mnode peers` lists them.",
    ),
    (
        "network.external_addresses",
        "Addresses peers reach this node on from outside its network (multiaddrs such as /ip4/203.0.113.5/tcp/4001), announced as they are; a relay on a server names its public address here. Empty: the addresses AutoNAT confirms.",
    ),
    (
        "network.relays",
        "Relays (multiaddrs ending in /p2p/<peer id>) this node reserves a slot on when it is behind a router: peers reach it through them, and hole punching then makes the connection direct. Empty: none; no public relay is ever used.",
    ),
    (
        "network.relay_urls",
        "iroh relays (URLs such as http://203.0.113.5:3340) the file endpoint is reached through and punches holes with; usually the same servers as network.relays. Empty: none.",
    ),
    (
        "network.relay_server",
        "Relay for other nodes: a libp2p circuit relay on network.listen and an iroh relay on network.relay_limits.iroh_listen. Set network.external_addresses too.",
    ),
    (
        "network.relay_limits",
        "What a relay gives each node and connection (when network.relay_server is on).",
    ),
    (
        "network.relay_limits.max_reservations",
        "Most nodes holding a reservation at once.",
    ),
    (
        "network.relay_limits.max_reservations_per_peer",
        "Most reservations one node holds at once.",
    ),
    (
        "network.relay_limits.reservation_secs",
        "How long a reservation lasts, in seconds, before the node renews it.",
    ),
    (
        "network.relay_limits.max_circuits",
        "Most relayed libp2p connections at once.",
    ),
    (
        "network.relay_limits.max_circuits_per_peer",
        "Most relayed libp2p connections one node takes part in at once.",
    ),
    (
        "network.relay_limits.max_circuit_secs",
        "How long one relayed libp2p connection may last, in seconds; by then the peers have punched a hole or dial again.",
    ),
    (
        "network.relay_limits.max_circuit_bytes",
        "Most bytes one relayed libp2p connection carries, both ways together.",
    ),
    (
        "network.relay_limits.iroh_listen",
        "The address the iroh relay (HTTP, for file transfers) listens on.",
    ),
    (
        "network.relay_limits.iroh_bytes_per_sec",
        "Bytes per second the iroh relay accepts from one node; 0: no limit.",
    ),
    ("store", "Records and files on disk."),
    (
        "store.tmp_max_age_secs",
        "Temporary upload files older than this many seconds are removed at start and periodically.",
    ),
    (
        "store.tmp_sweep_interval_secs",
        "How often, in seconds, a running daemon looks for stale temporary uploads.",
    ),
    (
        "store.cache_mb",
        "RocksDB memory, in MiB: the block cache, which also pays for the memtables (up to half of it).",
    ),
    (
        "blobs",
        "Where the bytes of files live. Records always stay in the repo; so do files of up to 16 KiB and files added with --in-place.",
    ),
    (
        "blobs.store",
        "local: under the repo. s3: in the bucket below (move existing files with `mnode repo migrate-blobs --to s3`).",
    ),
    (
        "blobs.s3",
        "An S3-compatible bucket (AWS S3, MinIO, Garage, Ceph, R2, …).",
    ),
    (
        "blobs.s3.endpoint",
        "The server's URL, such as http://127.0.0.1:9000; empty: AWS S3 itself, in the region below.",
    ),
    ("blobs.s3.bucket", "The bucket; it must exist."),
    ("blobs.s3.region", "The region requests are signed for."),
    (
        "blobs.s3.prefix",
        "Objects are named <prefix>/blobs/<BLAKE3 hash in hex>; empty: at the bucket's root.",
    ),
    (
        "blobs.s3.path_style",
        "Path-style URLs (endpoint/bucket/key), which most self-hosted servers need; false: virtual-hosted (bucket.endpoint/key).",
    ),
    (
        "blobs.s3.access_key_id",
        "The access key; empty: the AWS_ACCESS_KEY_ID environment variable.",
    ),
    (
        "blobs.s3.secret_access_key",
        "The secret key; empty: the AWS_SECRET_ACCESS_KEY environment variable (better than writing it here).",
    ),
    (
        "blobs.s3.shared",
        "Other nodes use the same bucket and prefix: deleting or collecting a file here forgets it but leaves its object for them.",
    ),
    (
        "blobs.s3.timeout_secs",
        "How long one request to the bucket may take, in seconds, before it fails and is retried.",
    ),
    ("log", "Logging."),
    (
        "log.level",
        "A tracing filter such as info, debug or mnode_node=debug,info.",
    ),
];

impl Config {
    /// Loads `path`, applies `MNODE_*` variables from `env` and then `flags` (`key=value`).
    /// A missing file means defaults.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &[String],
    ) -> Result<Self, ConfigError> {
        let base = match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, &path.display().to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        base.with_env(env)?.with_flags(flags)
    }

    /// Parses the YAML text of a config file; `name` is used in errors.
    pub fn parse(text: &str, name: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            ConfigError::File {
                path: name.to_owned(),
                line,
                column,
                message: plain(e.to_string().split(" at line ").next().unwrap_or_default()),
            }
        })
    }

    /// Applies `MNODE_<SECTION>_<KEY>` variables. Other `MNODE_` variables that name no setting
    /// are left alone (some, like `MNODE_REPO`, are not settings).
    pub fn with_env(
        self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let keys = self.keys();
        let mut overrides = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("MNODE_") else {
                continue;
            };
            if let Some(key) = keys
                .iter()
                .find(|k| k.replace('.', "_").eq_ignore_ascii_case(rest))
            {
                overrides.push((key.clone(), value, name));
            }
        }
        self.apply(overrides)
    }

    /// Applies `key=value` flags (`-c store.cache_mb=128`).
    pub fn with_flags(self, flags: &[String]) -> Result<Self, ConfigError> {
        let mut overrides = Vec::new();
        for flag in flags {
            let Some((key, value)) = flag.split_once('=') else {
                return Err(ConfigError::Override {
                    source_name: format!("-c {flag}"),
                    message: "expected key=value, as in store.cache_mb=128".into(),
                });
            };
            overrides.push((
                key.trim().to_owned(),
                value.to_owned(),
                format!("-c {flag}"),
            ));
        }
        self.apply(overrides)
    }

    /// Applies `(key, value text, where it came from)` overrides in order.
    fn apply(self, overrides: Vec<(String, String, String)>) -> Result<Self, ConfigError> {
        if overrides.is_empty() {
            return Ok(self);
        }
        let mut tree = serde_json::to_value(&self).map_err(|e| ConfigError::Override {
            source_name: "config".into(),
            message: e.to_string(),
        })?;
        for (key, text, source_name) in &overrides {
            let err = |message: String| ConfigError::Override {
                source_name: source_name.clone(),
                message,
            };
            if !key.contains('.') {
                return Err(err(format!(
                    "{key:?} is not a setting; settings look like store.cache_mb"
                )));
            }
            let slot = key
                .split('.')
                .try_fold(&mut tree, |node, part| node.get_mut(part))
                .ok_or_else(|| {
                    err(format!(
                        "{key:?} is not a setting; `mnode config show` lists them"
                    ))
                })?;
            if slot.is_object() {
                return Err(err(format!(
                    "{key:?} is a section; set its settings, like {key}.{}",
                    slot.as_object()
                        .and_then(|o| o.keys().next())
                        .map_or("…", String::as_str)
                )));
            }
            // The value is YAML, so numbers, booleans and [lists] work as they do in the file.
            let value: Value = serde_yaml_ng::from_str(text)
                .map_err(|e| err(format!("{key}: {}", plain(&e.to_string()))))?;
            // A string setting takes the text as it is, even if it looks like a number.
            *slot = match (&*slot, value) {
                (Value::String(_), v) if !v.is_string() => Value::String(text.clone()),
                (_, v) => v,
            };
            Self::deserialize(&tree)
                .map_err(|e| err(format!("{key}: {}", plain(&e.to_string()))))?;
        }
        Self::deserialize(tree).map_err(|e| ConfigError::Override {
            source_name: "overrides".into(),
            message: plain(&e.to_string()),
        })
    }

    /// Every setting's path (`section.key`, `section.sub.key`), sorted as in the file.
    pub fn keys(&self) -> Vec<String> {
        fn walk(prefix: &str, fields: &serde_json::Map<String, Value>, out: &mut Vec<String>) {
            for (field, value) in fields {
                let key = format!("{prefix}.{field}");
                match value {
                    Value::Object(sub) => walk(&key, sub, out),
                    _ => out.push(key),
                }
            }
        }
        let mut out = Vec::new();
        if let Ok(Value::Object(sections)) = serde_json::to_value(self) {
            for (section, fields) in sections {
                if let Value::Object(fields) = fields {
                    walk(&section, &fields, &mut out);
                }
            }
        }
        out
    }

    /// The file `mnode init` writes: every setting with its value and a comment.
    pub fn to_commented_yaml(&self) -> String {
        let doc = |key: &str| -> &'static str {
            DOCS.iter().find(|(k, _)| *k == key).map_or("", |(_, d)| *d)
        };
        let mut out = String::from(
            "# mnode configuration. Every setting is written out with its default.\n\
             # Precedence: command-line flags > MNODE_* environment variables > this file > defaults.\n\
             # The variable for a setting is its path in upper case: store.cache_mb is MNODE_STORE_CACHE_MB.\n",
        );
        let Ok(Value::Object(sections)) = serde_json::to_value(self) else {
            return out;
        };
        for (section, fields) in sections {
            let _ = write!(out, "\n# {}\n{section}:\n", doc(&section));
            let Value::Object(fields) = fields else {
                continue;
            };
            write_fields(&mut out, &section, &fields, 1, &doc);
        }
        out
    }
}

/// Writes `fields` of the section at `path`, `depth` levels in, subsections as nested maps.
fn write_fields(
    out: &mut String,
    path: &str,
    fields: &serde_json::Map<String, Value>,
    depth: usize,
    doc: &dyn Fn(&str) -> &'static str,
) {
    let indent = "  ".repeat(depth);
    for (field, value) in fields {
        let key = format!("{path}.{field}");
        let _ = writeln!(out, "{indent}# {}", doc(&key));
        match value {
            Value::Object(sub) => {
                let _ = writeln!(out, "{indent}{field}:");
                write_fields(out, &key, sub, depth + 1, doc);
            }
            other => {
                let _ = writeln!(out, "{indent}{field}: {}", yaml_scalar(other));
            }
        }
    }
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(yaml_scalar).collect();
            format!("[{}]", items.join(", "))
        }
        // JSON strings are valid YAML flow scalars, with escapes.
        other => other.to_string(),
    }
}

/// serde's "invalid type: string \"lots\", expected u64", said as a person would: "expected a
/// whole number, found text \"lots\"".
fn plain(message: &str) -> String {
    // The YAML parser puts the setting's path first: "store.cache_mb: invalid type: …".
    let Some((path, found, expected)) = ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|p| message.split_once(p))
        .and_then(|(path, m)| {
            let (found, expected) = m.split_once(", expected ")?;
            Some((path, found, expected))
        })
    else {
        return message.to_owned();
    };
    let expected = match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i32" | "i64" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" => "text",
        "a sequence" => "a list",
        other => other,
    };
    let found = if let Some(text) = found.strip_prefix("string ") {
        format!("text {text}")
    } else if let Some(n) = found
        .strip_prefix("integer ")
        .or_else(|| found.strip_prefix("floating point "))
    {
        format!("the number {}", n.trim_matches('`'))
    } else if let Some(b) = found.strip_prefix("boolean ") {
        b.trim_matches('`').to_owned()
    } else {
        match found {
            "sequence" => "a list".to_owned(),
            "map" => "a map".to_owned(),
            "unit value" => "nothing".to_owned(),
            other => other.to_owned(),
        }
    };
    format!("{path}expected {expected}, found {found}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error setting `flag` (`key=value`) on the default config gives.
    fn flag_error(flag: &str) -> String {
        Config::default()
            .with_flags(&[flag.into()])
            .unwrap_err()
            .to_string()
    }

    /// The error the environment variable `var=value` gives.
    fn env_error(var: &str, value: &str) -> String {
        Config::default()
            .with_env(vec![(var.into(), value.into())])
            .unwrap_err()
            .to_string()
    }

    /// The error parsing `text` as the file `file` gives.
    fn parse_error(text: &str, file: &str) -> String {
        Config::parse(text, file).unwrap_err().to_string()
    }

    /// Asserts `e` starts with `start` and says each of `says`.
    fn assert_says(e: &str, start: &str, says: &[&str]) {
        assert!(e.starts_with(start), "{e}");
        for s in says {
            assert!(e.contains(s), "{e}\ndoes not say {s:?}");
        }
    }

    #[test]
    fn wrong_values_are_said_plainly() {
        for (key, value, says) in [
            (
                "store.cache_mb",
                "lots",
                r#"expected a whole number, found text "lots""#,
            ),
            (
                "network.mdns",
                "7",
                "expected true or false, found the number 7",
            ),
        ] {
            let e = Config::default()
                .apply(vec![(key.into(), value.into(), "-c".into())])
                .unwrap_err()
                .to_string();
            assert_says(&e, "", &[says]);
        }
        let e = parse_error("store:\n  cache_mb: [1]\n", "mnode.yaml");
        assert_says(&e, "", &["expected a whole number, found a list"]);
    }

    #[test]
    fn default_config_dumps_and_parses_back() {
        let text = Config::default().to_commented_yaml();
        assert_eq!(
            Config::parse(&text, "mnode.yaml").unwrap(),
            Config::default()
        );
        for key in Config::default().keys() {
            assert!(DOCS.iter().any(|(k, _)| *k == key), "{key} has no comment");
            let field = key.rsplit('.').next().unwrap();
            assert!(
                text.contains(&format!("  {field}: ")),
                "{key} is not written out"
            );
        }
    }

    #[test]
    fn a_changed_config_round_trips() {
        let mut c = Config::default();
        c.api.listen = "127.0.0.1:6001".into();
        c.network.bootstrap = vec!["/ip4/127.0.0.1/tcp/4002/p2p/12D3KooW".into()];
        c.network.mdns = true;
        c.store.cache_mb = 7;
        c.log.level = "debug,mnode=trace".into();
        assert_eq!(Config::parse(&c.to_commented_yaml(), "x").unwrap(), c);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        for (text, file, start, says) in [
            (
                "store:\n  cache_mb: 64\n  cahce_mb: 3\n",
                "/r/mnode.yaml",
                "/r/mnode.yaml:3:",
                &["cahce_mb"][..],
            ),
            (
                "store:\n  cache_mb: lots\n",
                "/r/mnode.yaml",
                "/r/mnode.yaml:2:",
                &["cache_mb"],
            ),
            ("store: [\n", "f", "f:", &[]),
        ] {
            assert_says(&parse_error(text, file), start, says);
        }
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "store:\n  cache_mb: 10\n  tmp_max_age_secs: 5\n").unwrap();
        let env = vec![
            ("MNODE_STORE_CACHE_MB".to_owned(), "20".to_owned()),
            ("MNODE_STORE_TMP_MAX_AGE_SECS".to_owned(), "6".to_owned()),
            ("MNODE_REPO".to_owned(), "/elsewhere".to_owned()),
            ("HOME".to_owned(), "/root".to_owned()),
        ];
        let c = Config::load(&path, env, &["store.cache_mb=30".into()]).unwrap();
        assert_eq!(c.store.cache_mb, 30);
        assert_eq!(c.store.tmp_max_age_secs, 6);
        assert_eq!(c.store.tmp_sweep_interval_secs, 3600);
        let c = Config::load(&dir.path().join("missing.yaml"), vec![], &[]).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn bad_overrides_are_named() {
        let e = env_error("MNODE_STORE_CACHE_MB", "many");
        assert_says(&e, "MNODE_STORE_CACHE_MB: store.cache_mb", &[]);
        let e = flag_error("store.nope=1");
        assert_says(&e, "", &["\"store.nope\" is not a setting"]);
        let c = Config::default()
            .with_flags(&[
                "network.listen=[/ip4/127.0.0.1/tcp/0]".into(),
                "log.level=5".into(),
            ])
            .unwrap();
        assert_eq!(c.network.listen, vec!["/ip4/127.0.0.1/tcp/0".to_owned()]);
        assert_eq!(c.log.level, "5");
    }
    #[test]
    fn limits_are_a_nested_section_set_from_file_env_and_flags() {
        let keys = Config::default().keys();
        assert!(
            keys.contains(&"api.limits.writes_per_account".to_owned()),
            "{keys:?}"
        );
        assert!(
            keys.contains(&"api.limits.trusted_proxies".to_owned()),
            "{keys:?}"
        );
        assert!(
            !keys.contains(&"api.limits".to_owned()),
            "a section is not a setting"
        );

        let text = Config::default().to_commented_yaml();
        assert!(text.contains("\n  limits:\n    # "), "{text}");
        assert!(text.contains("\n    writes_per_account: 600\n"), "{text}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(
            &path,
            "api:\n  limits:\n    writes_per_account: 7\n    trusted_proxies: [10.0.0.1, \"::1\"]\n",
        )
        .unwrap();
        let env = vec![
            (
                "MNODE_API_LIMITS_UPLOADS_PER_ADDRESS".to_owned(),
                "0".to_owned(),
            ),
            ("MNODE_API_LIMITS_PERIOD_SECS".to_owned(), "2".to_owned()),
        ];
        let c = Config::load(&path, env, &["api.limits.login_max_wait_secs=60".into()]).unwrap();
        let l = &c.api.limits;
        assert_eq!(l.writes_per_account, 7);
        assert_eq!(l.uploads_per_address, 0);
        assert_eq!(l.period_secs, 2);
        assert_eq!(l.login_max_wait_secs, 60);
        assert_eq!(
            l.trusted_proxies,
            [
                "10.0.0.1".parse::<std::net::IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        // Settings the file does not name keep their defaults.
        assert_eq!(
            l.writes_per_address,
            LimitsConfig::default().writes_per_address
        );
        assert_eq!(c.api.listen, ApiConfig::default().listen);
        // And all of it is written out and read back.
        assert_eq!(Config::parse(&c.to_commented_yaml(), "x").unwrap(), c);
    }

    #[test]
    fn bad_limits_are_named() {
        let e = env_error("MNODE_API_LIMITS_WRITES_PER_ACCOUNT", "lots");
        assert_says(
            &e,
            "MNODE_API_LIMITS_WRITES_PER_ACCOUNT: api.limits.writes_per_account",
            &[r#"expected a whole number, found text "lots""#],
        );
        for (flag, says) in [
            (
                "api.limits.period_secs=0",
                &["expected a whole number, at least 1, found the number 0"][..],
            ),
            (
                "api.limits.trusted_proxies=[proxy.example]",
                &["api.limits.trusted_proxies", "IP address"],
            ),
            ("api.limits=0", &["\"api.limits\" is a section"]),
            (
                "api.limits.nope=1",
                &["\"api.limits.nope\" is not a setting"],
            ),
        ] {
            assert_says(&flag_error(flag), "", says);
        }
        let e = parse_error("api:\n  limits:\n    max_tracked: 0\n", "/r/mnode.yaml");
        assert_says(&e, "/r/mnode.yaml:3:", &["at least 1"]);
    }

    #[test]
    fn off_turns_every_limit_off() {
        let off = LimitsConfig::off();
        assert_eq!(off.writes_per_account + off.logins_per_address, 0);
        assert_eq!(off.login_free_failures_per_account, 0);
        assert_eq!(off.period_secs, LimitsConfig::default().period_secs);
    }
}
