//! Sync settings.

use serde::{Deserialize, Serialize};

use super::protocol::{
    MAX_BLOCKS_BYTES, MAX_FETCH_CIDS, MAX_FRAME_BYTES, MIN_BLOCKS_BYTES, MIN_FRAME_BYTES,
};

/// Sync settings. They bound what this node sends and how long it keeps a session going; what
/// it accepts is bounded by the protocol's maximums, so peers with other settings interoperate.
/// Values outside the protocol's range are brought into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Largest reconciliation message this node writes, in bytes (the negentropy frame size
    /// limit), between [`MIN_FRAME_BYTES`] and [`MAX_FRAME_BYTES`]. A smaller frame bounds each
    /// exchange more tightly at the cost of more rounds when the sets differ a lot.
    pub frame_bytes: usize,
    /// Most reconciliation rounds a client session runs before giving up on the peer.
    pub max_rounds: u32,
    /// Most CIDs asked for in one fetch request (at most [`MAX_FETCH_CIDS`]).
    pub max_fetch_cids: usize,
    /// Most bytes of blocks this node puts in one fetch response (at most [`MAX_BLOCKS_BYTES`]);
    /// the client asks again for the rest.
    pub max_blocks_bytes: usize,
    /// How long a request may wait for its response, in seconds.
    pub request_timeout_secs: u64,
    /// Most sync streams open at once on one connection.
    pub max_concurrent_streams: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            frame_bytes: 512 << 10,
            max_rounds: 64,
            max_fetch_cids: 512,
            max_blocks_bytes: MAX_BLOCKS_BYTES,
            request_timeout_secs: 30,
            max_concurrent_streams: 32,
        }
    }
}

impl Config {
    /// The negentropy frame size limit to use.
    pub(super) fn frame_limit(&self) -> u64 {
        self.frame_bytes.clamp(MIN_FRAME_BYTES, MAX_FRAME_BYTES) as u64
    }

    /// CIDs per fetch request to use.
    pub(super) fn fetch_cids(&self) -> usize {
        self.max_fetch_cids.clamp(1, MAX_FETCH_CIDS)
    }

    /// Bytes of blocks per fetch response to use.
    pub(super) fn blocks_bytes(&self) -> usize {
        self.max_blocks_bytes
            .clamp(MIN_BLOCKS_BYTES, MAX_BLOCKS_BYTES)
    }

    /// Rounds to allow (at least one).
    pub(super) fn rounds(&self) -> u32 {
        self.max_rounds.max(1)
    }
}

#[cfg(test)]
mod tests {
    use mnode_dag::cbor;

    use super::*;

    #[test]
    fn default_config_dumps_and_parses_back() {
        let config = Config::default();
        let bytes = cbor::encode(&config).unwrap();
        assert_eq!(cbor::decode::<Config>(&bytes).unwrap(), config);
    }

    #[test]
    fn out_of_range_values_are_brought_into_range() {
        let config = Config {
            frame_bytes: 1,
            max_rounds: 0,
            max_fetch_cids: 1 << 20,
            max_blocks_bytes: 0,
            ..Config::default()
        };
        assert_eq!(config.frame_limit(), MIN_FRAME_BYTES as u64);
        assert_eq!(config.rounds(), 1);
        assert_eq!(config.fetch_cids(), MAX_FETCH_CIDS);
        assert_eq!(config.blocks_bytes(), MIN_BLOCKS_BYTES);
    }
}
