//! The admin client: topics, offsets lookups, groups.

use neo_transports::Transport;

use super::{ClientError, ConnectConfig, Connection};
use crate::protocol::*;

pub struct Admin<T: Transport> {
    conn: Connection<T>,
}

impl<T: Transport> Admin<T> {
    pub fn connect(transport: T, cfg: ConnectConfig) -> Result<Self, ClientError> {
        Ok(Self {
            conn: Connection::connect(transport, cfg)?,
        })
    }

    pub fn connection(&mut self) -> &mut Connection<T> {
        &mut self.conn
    }

    /// Creates a topic with exactly `config`.
    pub fn create_topic(&mut self, name: &str, config: TopicConfig) -> Result<(), ClientError> {
        self.create_topic_with(name, None, config.pairs()).map(drop)
    }

    /// Creates a topic from the broker's defaults changed by `configs`
    /// (see `TopicConfig::set`); returns the settings it got.
    pub fn create_topic_with(
        &mut self,
        name: &str,
        partitions: Option<u32>,
        configs: Vec<(String, String)>,
    ) -> Result<TopicConfig, ClientError> {
        let req = CreateTopic {
            name: name.into(),
            partitions,
            configs,
        };
        self.conn.call(method::CREATE_TOPIC, &req)
    }

    pub fn delete_topic(&mut self, name: &str) -> Result<(), ClientError> {
        self.conn
            .call(method::DELETE_TOPIC, &TopicName { name: name.into() })
    }

    pub fn list_topics(&mut self) -> Result<Vec<String>, ClientError> {
        self.conn.call(method::LIST_TOPICS, &())
    }

    pub fn describe_topic(&mut self, name: &str) -> Result<TopicDescription, ClientError> {
        self.conn
            .call(method::DESCRIBE_TOPIC, &TopicName { name: name.into() })
    }

    pub fn list_offset(
        &mut self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<Option<u64>, ClientError> {
        self.conn.list_offset(topic, partition, spec)
    }

    pub fn list_groups(&mut self) -> Result<Vec<String>, ClientError> {
        self.conn.call(method::LIST_GROUPS, &())
    }

    pub fn describe_group(&mut self, group: &str) -> Result<GroupDescription, ClientError> {
        self.conn
            .call(method::DESCRIBE_GROUP, &TopicName { name: group.into() })
    }

    pub fn fetch_offsets(
        &mut self,
        group: &str,
        partitions: Vec<TopicPartitions>,
    ) -> Result<Vec<PartitionOffset>, ClientError> {
        let req = FetchOffsets {
            group: group.into(),
            partitions,
        };
        self.conn.call(method::FETCH_OFFSETS, &req)
    }

    /// Commits offsets for a group outside group management (the group must
    /// have no active members), as `kafka-consumer-groups --reset-offsets` does.
    pub fn commit_offsets(
        &mut self,
        group: &str,
        offsets: Vec<CommittedOffset>,
    ) -> Result<(), ClientError> {
        let req = CommitOffsets {
            member: MemberRef {
                group: group.into(),
                member_id: String::new(),
                generation: -1,
            },
            offsets,
        };
        self.conn.call(method::COMMIT_OFFSETS, &req)
    }
}
