//! [`ControlPlane`] for `neo_cluster::Controller`: the controller's typed
//! refusals become broker errors clients understand.

use std::sync::Arc;
use std::time::Duration;

use neo_cluster::{AlterIsr, ClusterError, ClusterMeta, Controller};

use super::link::ControlPlane;
use super::wire::NodeId;
use crate::protocol::{BrokerError, TopicConfig};

fn broker_error(e: ClusterError) -> BrokerError {
    match e {
        ClusterError::TopicExists(t) => BrokerError::TopicExists(t),
        ClusterError::UnknownTopic(t) => BrokerError::UnknownTopic(t),
        ClusterError::InvalidRequest(m) => BrokerError::InvalidRequest(m),
        other => BrokerError::Cluster(other.to_string()),
    }
}

impl ControlPlane for Controller {
    fn meta(&self) -> Arc<ClusterMeta> {
        Controller::meta(self)
    }

    fn meta_version(&self) -> u64 {
        Controller::meta_version(self)
    }

    fn caught_up(&self) -> bool {
        Controller::caught_up(self)
    }

    fn create_topic(
        &self,
        name: &str,
        config: &TopicConfig,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        let json =
            serde_json::to_value(config).map_err(|e| BrokerError::InvalidConfig(e.to_string()))?;
        Controller::create_topic(
            self,
            name,
            config.partitions,
            config.replication_factor,
            json,
            timeout,
        )
        .map(drop)
        .map_err(broker_error)
    }

    fn delete_topic(&self, name: &str, timeout: Duration) -> Result<(), BrokerError> {
        Controller::delete_topic(self, name, timeout).map_err(broker_error)
    }

    fn alter_isr(
        &self,
        topic: &str,
        partition: u32,
        leader: NodeId,
        leader_epoch: u32,
        partition_epoch: u32,
        isr: Vec<NodeId>,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        let req = AlterIsr {
            topic: topic.into(),
            partition,
            leader,
            leader_epoch,
            partition_epoch,
            isr,
        };
        Controller::alter_isr(self, req, timeout)
            .map(drop)
            .map_err(broker_error)
    }

    fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<(String, u32, u64, String)>,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        Controller::commit_offsets(self, group, offsets, timeout).map_err(broker_error)
    }

    fn status(&self, timeout: Duration) -> Result<serde_json::Value, BrokerError> {
        let s = Controller::status(self, timeout).map_err(broker_error)?;
        serde_json::to_value(s).map_err(|e| BrokerError::Cluster(e.to_string()))
    }
}
