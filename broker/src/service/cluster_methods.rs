//! The cluster's methods on the Neo RPC server: topic create and delete
//! (through the controller quorum when the broker is in a cluster),
//! `ReplicaFetch` (followers; needs Alter on the cluster resource when
//! ACLs are on), `Metadata` and `ClusterStatus`.

use std::time::Instant;

use neo_transports::rpc::Server;
use neo_transports::Transport;

use super::methods::{answer, timer};
use super::{lock, SharedBroker};
use crate::access::Access;
use crate::protocol::*;
use crate::replication::wire::{Metadata, MetadataRequest, ReplicaFetchHead};
use crate::replication::{METHOD_CLUSTER_STATUS, METHOD_METADATA, METHOD_REPLICA_FETCH};
use crate::security::{Operation as Op, ResourceType as R};

use super::methods::SharedAccess;

fn cluster_op(
    a: &mut Access,
    c: &neo_transports::rpc::Call<'_>,
    op: Op,
) -> Result<(), BrokerError> {
    a.check(c, op, R::Cluster, crate::kafka::CLUSTER)
}

pub fn register<T: Transport>(
    s: &mut Server<T>,
    broker: &SharedBroker,
    access: &SharedAccess,
) -> Result<(), String> {
    let (br, acc) = (broker.clone(), access.clone());
    let h = timer(method::CREATE_TOPIC);
    s.register(SERVICE, method::CREATE_TOPIC, move |call| {
        let t = Instant::now();
        let req = decode_request::<CreateTopic>(call.body(), method::CREATE_TOPIC).and_then(|r| {
            if acc.active {
                let mut a = acc.lock();
                cluster_op(&mut a, call, Op::Create)
                    .or_else(|_| a.check(call, Op::Create, R::Topic, &r.name))?;
            }
            Ok(r)
        });
        let mut b = lock(&br);
        let result = req.and_then(|r| {
            if b.node_id().is_none() {
                return b.create_topic(&r).map(Some);
            }
            let config = b.topic_config_for(&r)?;
            crate::topics::validate_name(&r.name)?;
            b.cluster_create(r.name, config, call.defer());
            Ok(None)
        });
        drop(b);
        match result {
            Ok(None) => {}
            Ok(Some(c)) => answer(call, &acc, &encode_result(&Ok::<_, BrokerError>(c)))?,
            Err(e) => answer(call, &acc, &encode_result::<TopicConfig>(&Err(e)))?,
        }
        h.observe(t.elapsed().as_secs_f64());
        Ok(())
    })?;
    let (br, acc) = (broker.clone(), access.clone());
    let h = timer(method::DELETE_TOPIC);
    s.register(SERVICE, method::DELETE_TOPIC, move |call| {
        let t = Instant::now();
        let req = decode_request::<TopicName>(call.body(), method::DELETE_TOPIC).and_then(|r| {
            if acc.active {
                acc.lock().check(call, Op::Delete, R::Topic, &r.name)?;
            }
            Ok(r)
        });
        let mut b = lock(&br);
        let result = req.and_then(|r| {
            if b.node_id().is_none() {
                return b.delete_topic(&r.name).map(|()| true);
            }
            b.topic_config(&r.name)?;
            b.cluster_delete(r.name, call.defer());
            Ok(false)
        });
        drop(b);
        match result {
            Ok(false) => {}
            Ok(true) => answer(call, &acc, &encode_result(&Ok::<(), BrokerError>(())))?,
            Err(e) => answer(call, &acc, &encode_result::<()>(&Err(e)))?,
        }
        h.observe(t.elapsed().as_secs_f64());
        Ok(())
    })?;
    let (br, acc) = (broker.clone(), access.clone());
    let h = timer(METHOD_REPLICA_FETCH);
    s.register(SERVICE, METHOD_REPLICA_FETCH, move |call| {
        let t = Instant::now();
        if acc.active {
            let denied = cluster_op(&mut acc.lock(), call, Op::Alter);
            if let Err(e) = denied {
                return Ok(answer(
                    call,
                    &acc,
                    &encode_result::<ReplicaFetchHead>(&Err(e)),
                )?);
            }
        }
        match lock(&br).replica_fetch(call.body(), || call.defer()) {
            Ok(Some(reply)) => call.reply_with(reply.len(), |buf| reply.write(buf))?,
            Ok(None) => {}
            Err(reply) => answer(call, &acc, &reply)?,
        }
        h.observe(t.elapsed().as_secs_f64());
        Ok(())
    })?;
    let (br, acc) = (broker.clone(), access.clone());
    s.register(SERVICE, METHOD_METADATA, move |call| {
        let result =
            decode_request::<MetadataRequest>(call.body(), METHOD_METADATA).and_then(|r| {
                let mut md = lock(&br).metadata(&r);
                if acc.active {
                    let mut a = acc.lock();
                    a.principal(call)?;
                    md.topics
                        .retain(|t| a.may_describe(call, R::Topic, &t.name));
                }
                Ok::<Metadata, BrokerError>(md)
            });
        Ok(answer(call, &acc, &encode_result(&result))?)
    })?;
    let (br, acc) = (broker.clone(), access.clone());
    s.register(SERVICE, METHOD_CLUSTER_STATUS, move |call| {
        if acc.active {
            let denied = cluster_op(&mut acc.lock(), call, Op::Describe);
            if let Err(e) = denied {
                return Ok(answer(call, &acc, &encode_result::<String>(&Err(e)))?);
            }
        }
        let mut b = lock(&br);
        if b.node_id().is_none() {
            drop(b);
            let e = BrokerError::Cluster("this broker is not in a cluster".into());
            return Ok(answer(call, &acc, &encode_result::<String>(&Err(e)))?);
        }
        // In a cluster the status is always answered later, by the worker.
        let _ = b.cluster_status(call.defer());
        Ok(())
    })?;
    Ok(())
}
