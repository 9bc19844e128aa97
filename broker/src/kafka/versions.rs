//! The Kafka API keys and versions the listener serves, as ApiVersions
//! advertises them. `docs/kafka.md` says why each range ends where it does.

use kafka_protocol::messages::ApiKey;

/// (key, lowest version, highest version).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    // Kafka 4.0 removed v0-2; v13 names topics by id.
    (ApiKey::Produce, 3, 12),
    // Kafka 4.0 removed v0-3; v13 names topics by id.
    (ApiKey::Fetch, 4, 12),
    // Kafka 4.0 removed v0; v10 adds only a timeout.
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 12),
    // Kafka 4.0 removed v0-1; v10 names topics by id.
    (ApiKey::OffsetCommit, 2, 9),
    // Kafka 4.0 removed v0; v10 names topics by id.
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::DescribeCluster, 0, 1),
    // After a v0 handshake a client would send raw SASL tokens, which are
    // not served (the connection closes); v0 is advertised because
    // librdkafka requires it to enable SASL at all, and then uses v1 with
    // SaslAuthenticate, as every client since Kafka 1.0 does.
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// The served range of `key`, if it is served at all.
pub fn range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, lo, hi)| (lo, hi))
}

pub fn is_supported(key: ApiKey, version: i16) -> bool {
    range(key).is_some_and(|(lo, hi)| (lo..=hi).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every advertised range lies inside what the codec can read and write.
    #[test]
    fn advertised_ranges_are_within_the_codec() {
        fn codec(key: ApiKey) -> (i16, i16) {
            let r = key.valid_versions();
            (r.min, r.max)
        }
        for &(key, lo, hi) in SUPPORTED {
            let (clo, chi) = codec(key);
            assert!(
                clo <= lo && hi <= chi,
                "{key:?} {lo}..={hi} vs codec {clo}..={chi}"
            );
        }
    }
}
