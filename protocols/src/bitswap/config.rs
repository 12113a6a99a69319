//! Bitswap limits and timeouts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::protocol::MAX_MESSAGE_SIZE;

/// Bitswap configuration. The defaults suit a local node and match what Kubo and Helia accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The largest message read or written, in bytes; a bigger inbound message drops its
    /// stream, and outbound answers are split to fit.
    pub max_message_size: usize,
    /// How many wants for blocks we do not have are remembered per peer (further wants in
    /// the same state are ignored, as Kubo does).
    pub max_wants_per_peer: usize,
    /// How many distinct blocks we fetch at once, and how many fetch requests may wait at
    /// once; more fail with [`FetchError::Overloaded`](super::FetchError::Overloaded).
    pub max_fetches: usize,
    /// How many recently finished fetches are remembered, so that duplicate or late blocks for
    /// them are ignored rather than counted as unsolicited.
    pub recent_fetches: usize,
    /// Messages queued per peer for sending; when full, further messages to that peer wait
    /// beside it (up to 16 MiB) and go as it drains, and past that are dropped (the peer will
    /// ask again or time out).
    pub send_queue: usize,
    /// Inbound streams read at once, over all peers; more are refused.
    pub max_inbound_streams: usize,
    /// Inbound streams read at once per peer; a new one replaces the oldest.
    pub max_inbound_streams_per_peer: usize,
    /// Block store lookups run at once; further inbound messages wait.
    pub max_concurrent_lookups: usize,
    /// How long opening an outbound stream (and dialling, if needed) may take.
    #[serde(with = "millis")]
    pub open_timeout: Duration,
    /// How long writing one message may take.
    #[serde(with = "millis")]
    pub write_timeout: Duration,
    /// How long an outbound stream is kept open with nothing to send. Helia aborts inbound
    /// streams idle for 10 s, so closing ours first avoids writing into a stream the peer is
    /// about to reset (which would lose the message).
    #[serde(with = "millis")]
    pub stream_idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_message_size: MAX_MESSAGE_SIZE,
            max_wants_per_peer: 1024,
            max_fetches: 4096,
            recent_fetches: 1024,
            send_queue: 32,
            max_inbound_streams: 512,
            max_inbound_streams_per_peer: 8,
            max_concurrent_lookups: 16,
            open_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            stream_idle_timeout: Duration::from_secs(5),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_dumps_and_parses_back() {
        let config = Config::default();
        let json = serde_json::to_string_pretty(&config).unwrap();
        assert!(json.contains("\"open_timeout\": 10000"), "{json}");
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), config);
        // Missing fields take their defaults.
        let partial: Config = serde_json::from_str(r#"{"max_wants_per_peer": 7}"#).unwrap();
        assert_eq!(partial.max_wants_per_peer, 7);
        assert_eq!(partial.max_message_size, MAX_MESSAGE_SIZE);
        assert!(serde_json::from_str::<Config>(r#"{"nope": 1}"#).is_err());
    }
}
