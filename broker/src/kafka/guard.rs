//! A structural walk of each request body before the codec decodes it.
//!
//! `kafka-protocol` 0.18 sizes every array with `Vec::with_capacity(n)` for
//! the `n` read off the wire, before decoding one element: eight bytes that
//! claim two billion elements abort the process on the allocation (upstream
//! pull requests #152/#161/#200 propose the fix; none is released). This
//! walk follows each served request's layout per version and refuses any
//! array that claims more elements than bytes remain (every element takes
//! at least one), so the codec only ever sees counts the frame can hold.
//!
//! The layouts are Kafka's request schemas for the versions in
//! [`super::versions`]; a test walks what the codec itself encodes for every
//! served key and version.

use kafka_protocol::messages::ApiKey;

type R = Result<(), String>;

struct W<'a> {
    b: &'a [u8],
    flex: bool,
}

impl W<'_> {
    fn skip(&mut self, n: usize) -> R {
        if n > self.b.len() {
            return Err(format!("{n} bytes wanted, {} left", self.b.len()));
        }
        self.b = &self.b[n..];
        Ok(())
    }
    fn uvarint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..5 {
            let (&byte, rest) = self.b.split_first().ok_or("varint truncated")?;
            self.b = rest;
            v |= ((byte & 0x7f) as u64) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 5 bytes".into())
    }
    fn int(&mut self, n: usize) -> Result<i64, String> {
        let b = self.b.get(..n).ok_or("integer truncated")?;
        let v = b.iter().fold(0i64, |a, &x| (a << 8) | x as i64);
        self.b = &self.b[n..];
        // Sign-extend from n bytes.
        let shift = 64 - 8 * n as u32;
        Ok((v << shift) >> shift)
    }
    fn i8(&mut self) -> R {
        self.skip(1)
    }
    fn i16(&mut self) -> R {
        self.skip(2)
    }
    fn i32(&mut self) -> R {
        self.skip(4)
    }
    fn i64(&mut self) -> R {
        self.skip(8)
    }
    fn uuid(&mut self) -> R {
        self.skip(16)
    }
    /// A string (nullable or not: the codec checks which).
    fn str(&mut self) -> R {
        if self.flex {
            let n = self.uvarint()?;
            self.skip(n.saturating_sub(1) as usize)
        } else {
            match self.int(2)? {
                n if n >= 0 => self.skip(n as usize),
                -1 => Ok(()),
                n => Err(format!("string length {n}")),
            }
        }
    }
    fn bytes(&mut self) -> R {
        if self.flex {
            let n = self.uvarint()?;
            self.skip(n.saturating_sub(1) as usize)
        } else {
            match self.int(4)? {
                n if n >= 0 => self.skip(n as usize),
                -1 => Ok(()),
                n => Err(format!("bytes length {n}")),
            }
        }
    }
    /// An array whose elements take at least `min` bytes each.
    fn array(&mut self, min: usize, mut elem: impl FnMut(&mut Self) -> R) -> R {
        let n = if self.flex {
            match self.uvarint()? {
                0 => return Ok(()),
                n => n - 1,
            }
        } else {
            match self.int(4)? {
                -1 => return Ok(()),
                n if n >= 0 => n as u64,
                n => return Err(format!("array length {n}")),
            }
        };
        if n.saturating_mul(min as u64) > self.b.len() as u64 {
            return Err(format!(
                "array of {n} elements in {} remaining bytes",
                self.b.len()
            ));
        }
        for _ in 0..n {
            elem(self)?;
        }
        Ok(())
    }
    fn strs(&mut self) -> R {
        self.array(1, |w| w.str())
    }
    fn i32s(&mut self) -> R {
        self.array(4, |w| w.i32())
    }
    /// Tagged fields (flexible versions only), skipped by their sizes.
    fn tags(&mut self) -> R {
        if !self.flex {
            return Ok(());
        }
        let n = self.uvarint()?;
        if n > self.b.len() as u64 {
            return Err(format!("{n} tagged fields in {} bytes", self.b.len()));
        }
        for _ in 0..n {
            self.uvarint()?;
            let size = self.uvarint()?;
            self.skip(size as usize)?;
        }
        Ok(())
    }
}

/// Walks the body of a served request; returns the bytes left after it
/// (the codec refuses those too). `Err` names what does not fit.
pub fn check(api: ApiKey, v: i16, body: &[u8]) -> Result<usize, String> {
    use ApiKey::*;
    let flexible_from = match api {
        Produce => 9,
        Fetch => 12,
        ListOffsets => 6,
        Metadata => 9,
        OffsetCommit => 8,
        OffsetFetch => 6,
        FindCoordinator => 3,
        JoinGroup => 6,
        Heartbeat | LeaveGroup | SyncGroup | DeleteTopics | DescribeConfigs => 4,
        DescribeGroups => 5,
        ListGroups => 3,
        ApiVersions => 3,
        CreateTopics => 5,
        InitProducerId => 2,
        DescribeCluster => 0,
        SaslHandshake => i16::MAX,
        SaslAuthenticate => 2,
        other => return Err(format!("{other:?} has no layout here")),
    };
    let w = &mut W {
        b: body,
        flex: v >= flexible_from,
    };
    match api {
        Produce => {
            w.str()?;
            w.i16()?;
            w.i32()?;
            w.array(1, |w| {
                w.str()?;
                w.array(1, |w| {
                    w.i32()?;
                    w.bytes()?;
                    w.tags()
                })?;
                w.tags()
            })?;
        }
        Fetch => {
            w.i32()?; // replica id (v <= 14)
            w.i32()?;
            w.i32()?;
            w.i32()?;
            w.i8()?;
            if v >= 7 {
                w.i32()?;
                w.i32()?;
            }
            w.array(1, |w| {
                w.str()?;
                w.array(1, |w| {
                    w.i32()?;
                    if v >= 9 {
                        w.i32()?;
                    }
                    w.i64()?;
                    if v >= 12 {
                        w.i32()?;
                    }
                    if v >= 5 {
                        w.i64()?;
                    }
                    w.i32()?;
                    w.tags()
                })?;
                w.tags()
            })?;
            if v >= 7 {
                w.array(1, |w| {
                    w.str()?;
                    w.i32s()?;
                    w.tags()
                })?;
            }
            if v >= 11 {
                w.str()?;
            }
        }
        ListOffsets => {
            w.i32()?;
            if v >= 2 {
                w.i8()?;
            }
            w.array(1, |w| {
                w.str()?;
                w.array(1, |w| {
                    w.i32()?;
                    if v >= 4 {
                        w.i32()?;
                    }
                    w.i64()?;
                    w.tags()
                })?;
                w.tags()
            })?;
            if v >= 10 {
                w.i32()?;
            }
        }
        Metadata => {
            w.array(1, |w| {
                if v >= 10 {
                    w.uuid()?;
                }
                w.str()?;
                w.tags()
            })?;
            if v >= 4 {
                w.i8()?;
            }
            if (8..=10).contains(&v) {
                w.i8()?;
            }
            if v >= 8 {
                w.i8()?;
            }
        }
        OffsetCommit => {
            w.str()?;
            w.i32()?;
            w.str()?;
            if v >= 7 {
                w.str()?;
            }
            if v <= 4 {
                w.i64()?;
            }
            w.array(1, |w| {
                w.str()?;
                w.array(1, |w| {
                    w.i32()?;
                    w.i64()?;
                    if v >= 6 {
                        w.i32()?;
                    }
                    w.str()?;
                    w.tags()
                })?;
                w.tags()
            })?;
        }
        OffsetFetch => {
            if v <= 7 {
                w.str()?;
                w.array(1, |w| {
                    w.str()?;
                    w.i32s()?;
                    w.tags()
                })?;
            } else {
                w.array(1, |w| {
                    w.str()?;
                    if v >= 9 {
                        w.str()?;
                        w.i32()?;
                    }
                    w.array(1, |w| {
                        w.str()?;
                        w.i32s()?;
                        w.tags()
                    })?;
                    w.tags()
                })?;
            }
            if v >= 7 {
                w.i8()?;
            }
        }
        FindCoordinator => {
            if v <= 3 {
                w.str()?;
            }
            if v >= 1 {
                w.i8()?;
            }
            if v >= 4 {
                w.strs()?;
            }
        }
        JoinGroup => {
            w.str()?;
            w.i32()?;
            if v >= 1 {
                w.i32()?;
            }
            w.str()?;
            if v >= 5 {
                w.str()?;
            }
            w.str()?;
            w.array(1, |w| {
                w.str()?;
                w.bytes()?;
                w.tags()
            })?;
            if v >= 8 {
                w.str()?;
            }
        }
        Heartbeat => {
            w.str()?;
            w.i32()?;
            w.str()?;
            if v >= 3 {
                w.str()?;
            }
        }
        LeaveGroup => {
            w.str()?;
            if v <= 2 {
                w.str()?;
            } else {
                w.array(1, |w| {
                    w.str()?;
                    w.str()?;
                    if v >= 5 {
                        w.str()?;
                    }
                    w.tags()
                })?;
            }
        }
        SyncGroup => {
            w.str()?;
            w.i32()?;
            w.str()?;
            if v >= 3 {
                w.str()?;
            }
            if v >= 5 {
                w.str()?;
                w.str()?;
            }
            w.array(1, |w| {
                w.str()?;
                w.bytes()?;
                w.tags()
            })?;
        }
        ApiVersions => {
            if v >= 3 {
                w.str()?;
                w.str()?;
            }
        }
        CreateTopics => {
            w.array(1, |w| {
                w.str()?;
                w.i32()?;
                w.i16()?;
                w.array(1, |w| {
                    w.i32()?;
                    w.i32s()?;
                    w.tags()
                })?;
                w.array(1, |w| {
                    w.str()?;
                    w.str()?;
                    w.tags()
                })?;
                w.tags()
            })?;
            w.i32()?;
            w.i8()?;
        }
        DeleteTopics => {
            if v >= 6 {
                w.array(1, |w| {
                    w.str()?;
                    w.uuid()?;
                    w.tags()
                })?;
            } else {
                w.strs()?;
            }
            w.i32()?;
        }
        InitProducerId => {
            w.str()?;
            w.i32()?;
            if v >= 3 {
                w.i64()?;
                w.i16()?;
            }
        }
        DescribeConfigs => {
            w.array(1, |w| {
                w.i8()?;
                w.str()?;
                w.strs()?;
                w.tags()
            })?;
            w.i8()?;
            if v >= 3 {
                w.i8()?;
            }
        }
        DescribeCluster => {
            w.i8()?;
            if v >= 1 {
                w.i8()?;
            }
            if v >= 2 {
                w.i8()?;
            }
        }
        DescribeGroups => {
            w.strs()?;
            if v >= 3 {
                w.i8()?;
            }
        }
        ListGroups => {
            if v >= 4 {
                w.strs()?;
            }
            if v >= 5 {
                w.strs()?;
            }
        }
        SaslHandshake => w.str()?,
        SaslAuthenticate => w.bytes()?,
        other => return Err(format!("{other:?} has no layout here")),
    }
    w.tags()?;
    Ok(w.b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.into())
    }
    fn topic(v: &str) -> TopicName {
        TopicName(s(v))
    }
    fn two<T: Clone>(x: T) -> Vec<T> {
        vec![x; 2]
    }

    /// A request of `api` with two elements in every array (nested ones
    /// too) and every string set, encoded by the codec at `v`.
    fn populated(api: ApiKey, v: i16) -> Vec<u8> {
        let mut b = BytesMut::new();
        match api {
            ApiKey::Produce => {
                let p = produce_request::PartitionProduceData::default()
                    .with_index(1)
                    .with_records(Some(Bytes::from_static(b"abc")));
                let t = produce_request::TopicProduceData::default()
                    .with_name(topic("t"))
                    .with_partition_data(two(p));
                ProduceRequest::default()
                    .with_acks(-1)
                    .with_topic_data(two(t))
                    .encode(&mut b, v)
            }
            ApiKey::Fetch => {
                let p = fetch_request::FetchPartition::default().with_fetch_offset(5);
                let t = fetch_request::FetchTopic::default()
                    .with_topic(topic("t"))
                    .with_partitions(two(p));
                let f = fetch_request::ForgottenTopic::default()
                    .with_topic(topic("f"))
                    .with_partitions(vec![1, 2]);
                let mut r = FetchRequest::default().with_topics(two(t));
                if v >= 7 {
                    r.forgotten_topics_data = two(f);
                }
                if v >= 11 {
                    r.rack_id = s("rack");
                }
                r.encode(&mut b, v)
            }
            ApiKey::ListOffsets => {
                let p = list_offsets_request::ListOffsetsPartition::default().with_timestamp(-2);
                let t = list_offsets_request::ListOffsetsTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(two(p));
                ListOffsetsRequest::default()
                    .with_topics(two(t))
                    .encode(&mut b, v)
            }
            ApiKey::Metadata => {
                let t =
                    metadata_request::MetadataRequestTopic::default().with_name(Some(topic("t")));
                MetadataRequest::default()
                    .with_topics(Some(two(t)))
                    .encode(&mut b, v)
            }
            ApiKey::OffsetCommit => {
                let p = offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_committed_metadata(Some(s("m")));
                let t = offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(two(p));
                let mut r = OffsetCommitRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_member_id(s("m"))
                    .with_topics(two(t));
                if v >= 7 {
                    r.group_instance_id = Some(s("i"));
                }
                r.encode(&mut b, v)
            }
            ApiKey::OffsetFetch => {
                let mut r = OffsetFetchRequest::default();
                if v <= 7 {
                    let t = offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(topic("t"))
                        .with_partition_indexes(vec![0, 1]);
                    r.group_id = GroupId(s("g"));
                    r.topics = Some(two(t));
                } else {
                    let t = offset_fetch_request::OffsetFetchRequestTopics::default()
                        .with_name(topic("t"))
                        .with_partition_indexes(vec![0, 1]);
                    let mut g = offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(s("g")))
                        .with_topics(Some(two(t)));
                    if v >= 9 {
                        g.member_id = Some(s("m"));
                    }
                    r.groups = two(g);
                }
                r.encode(&mut b, v)
            }
            ApiKey::FindCoordinator => {
                let mut r = FindCoordinatorRequest::default();
                if v <= 3 {
                    r.key = s("g");
                } else {
                    r.coordinator_keys = vec![s("g"), s("h")];
                }
                r.encode(&mut b, v)
            }
            ApiKey::JoinGroup => {
                let p = join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"meta"));
                let mut r = JoinGroupRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_member_id(s("m"))
                    .with_protocol_type(s("consumer"))
                    .with_protocols(two(p));
                if v >= 5 {
                    r.group_instance_id = Some(s("i"));
                }
                if v >= 8 {
                    r.reason = Some(s("why"));
                }
                r.encode(&mut b, v)
            }
            ApiKey::Heartbeat => {
                let mut r = HeartbeatRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_member_id(s("m"));
                if v >= 3 {
                    r.group_instance_id = Some(s("i"));
                }
                r.encode(&mut b, v)
            }
            ApiKey::LeaveGroup => {
                let mut r = LeaveGroupRequest::default().with_group_id(GroupId(s("g")));
                if v <= 2 {
                    r.member_id = s("m");
                } else {
                    let mut m = leave_group_request::MemberIdentity::default()
                        .with_member_id(s("m"))
                        .with_group_instance_id(Some(s("i")));
                    if v >= 5 {
                        m.reason = Some(s("why"));
                    }
                    r.members = two(m);
                }
                r.encode(&mut b, v)
            }
            ApiKey::SyncGroup => {
                let a = sync_group_request::SyncGroupRequestAssignment::default()
                    .with_member_id(s("m"))
                    .with_assignment(Bytes::from_static(b"asg"));
                let mut r = SyncGroupRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_member_id(s("m"))
                    .with_assignments(two(a));
                if v >= 3 {
                    r.group_instance_id = Some(s("i"));
                }
                if v >= 5 {
                    r.protocol_type = Some(s("consumer"));
                    r.protocol_name = Some(s("range"));
                }
                r.encode(&mut b, v)
            }
            ApiKey::ApiVersions => ApiVersionsRequest::default()
                .with_client_software_name(s("c"))
                .with_client_software_version(s("1"))
                .encode(&mut b, v),
            ApiKey::CreateTopics => {
                let a = create_topics_request::CreatableReplicaAssignment::default()
                    .with_broker_ids(vec![0.into(), 1.into()]);
                let c = create_topics_request::CreatableTopicConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("1")));
                let t = create_topics_request::CreatableTopic::default()
                    .with_name(topic("t"))
                    .with_assignments(two(a))
                    .with_configs(two(c));
                CreateTopicsRequest::default()
                    .with_topics(two(t))
                    .encode(&mut b, v)
            }
            ApiKey::DeleteTopics => {
                let mut r = DeleteTopicsRequest::default();
                if v >= 6 {
                    r.topics = two(delete_topics_request::DeleteTopicState::default()
                        .with_name(Some(topic("t"))));
                } else {
                    r.topic_names = two(topic("t"));
                }
                r.encode(&mut b, v)
            }
            ApiKey::InitProducerId => InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s("x"))))
                .encode(&mut b, v),
            ApiKey::DescribeConfigs => {
                let r = describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_name(s("t"))
                    .with_configuration_keys(Some(vec![s("a"), s("b")]));
                DescribeConfigsRequest::default()
                    .with_resources(two(r))
                    .encode(&mut b, v)
            }
            ApiKey::DescribeCluster => DescribeClusterRequest::default().encode(&mut b, v),
            ApiKey::DescribeGroups => DescribeGroupsRequest::default()
                .with_groups(two(GroupId(s("g"))))
                .with_include_authorized_operations(v >= 3)
                .encode(&mut b, v),
            ApiKey::ListGroups => {
                let mut r = ListGroupsRequest::default();
                if v >= 4 {
                    r.states_filter = two(s("Stable"));
                }
                if v >= 5 {
                    r.types_filter = two(s("classic"));
                }
                r.encode(&mut b, v)
            }
            ApiKey::SaslHandshake => SaslHandshakeRequest::default()
                .with_mechanism(s("SCRAM-SHA-256"))
                .encode(&mut b, v),
            ApiKey::SaslAuthenticate => SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from_static(b"n,,n=user,r=abc"))
                .encode(&mut b, v),
            other => panic!("{other:?} is not served"),
        }
        .unwrap();
        b.to_vec()
    }

    #[test]
    fn walks_exactly_what_the_codec_encodes_for_every_served_version() {
        for &(api, lo, hi) in crate::kafka::versions::SUPPORTED {
            for v in lo..=hi {
                let body = populated(api, v);
                assert_eq!(check(api, v, &body), Ok(0), "{api:?} v{v}");
                // Every truncation is refused or leaves the codec to refuse it.
                for cut in 0..body.len() {
                    let _ = check(api, v, &body[..cut]);
                }
            }
        }
    }

    #[test]
    fn impossible_array_counts_are_refused() {
        // Metadata v0 claiming 54 million topics in five bytes.
        assert!(check(ApiKey::Metadata, 0, &[0x03, 0x3c, 0x0c, 0x00, 0xb6]).is_err());
        // JoinGroup v9 (compact) claiming four billion protocols.
        let mut b = vec![2, b'g', 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1];
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(check(ApiKey::JoinGroup, 9, &b)
            .unwrap_err()
            .contains("array of"));
    }
}
