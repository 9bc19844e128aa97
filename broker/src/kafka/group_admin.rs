//! Kafka's ListGroups and DescribeGroups, so admin tools
//! (`kafka-consumer-groups.sh`, AdminClient's `listConsumerGroups` /
//! `describeConsumerGroups`) see the Kafka consumer groups this broker
//! coordinates: state, chosen assignor, members with their client id and
//! host, subscription metadata and assignment.
//!
//! Listed: the groups with members, and the groups that only have committed
//! offsets (`Empty`, no protocol type, as Kafka lists them; that includes
//! Neo-protocol groups, whose commits share the offsets store). In a cluster
//! each broker lists the groups it coordinates (AdminClient asks every
//! broker and merges), and DescribeGroups elsewhere says NOT_COORDINATOR. A principal sees the groups it may Describe
//! (all of them with Describe on the cluster), as Kafka filters.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::coordinator::{group_gate, GroupView};
use super::{Ctx, CLUSTER};
use crate::security::{Operation, ResourceType};

/// `authorized_operations` when the client did not ask for them (Kafka's
/// Integer.MIN_VALUE); Neo never fills them in.
const OPS_NOT_GIVEN: i32 = i32::MIN;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The groups to show: those with members, then commit-only ones.
fn all_groups(ctx: &Ctx<'_>) -> Vec<GroupView> {
    let mut views = ctx.shared.groups.views();
    let known: std::collections::BTreeSet<String> = views.iter().map(|v| v.name.clone()).collect();
    for name in ctx.shared.broker().offset_group_names() {
        if !known.contains(&name) {
            views.push(GroupView {
                name,
                state: "Empty",
                protocol_type: StrBytes::default(),
                protocol: StrBytes::default(),
                members: Vec::new(),
            });
        }
    }
    views.sort_by(|a, b| a.name.cmp(&b.name));
    views
}

pub fn list_groups(ctx: &Ctx<'_>, r: ListGroupsRequest) -> ListGroupsResponse {
    let mut resp = ListGroupsResponse::default();
    let everything = ctx.allowed(Operation::Describe, ResourceType::Cluster, CLUSTER);
    let wanted = |v: &GroupView| {
        (r.states_filter.is_empty()
            || r.states_filter.iter().any(|st| st.eq_ignore_ascii_case(v.state)))
            // Every group here runs the classic protocol.
            && (r.types_filter.is_empty()
                || r.types_filter.iter().any(|t| t.eq_ignore_ascii_case("classic")))
    };
    let groups = all_groups(ctx);
    let mine: Vec<GroupView> = {
        let broker = ctx.shared.broker();
        groups
            .into_iter()
            .filter(|v| broker.is_group_coordinator(&v.name))
            .collect()
    };
    resp.groups = mine
        .into_iter()
        .filter(|v| wanted(v))
        .filter(|v| everything || ctx.allowed(Operation::Describe, ResourceType::Group, &v.name))
        .map(|v| {
            ListedGroup::default()
                .with_group_id(GroupId(s(&v.name)))
                .with_protocol_type(v.protocol_type)
                .with_group_state(s(v.state))
                .with_group_type(s("classic"))
        })
        .collect();
    resp
}

pub fn describe_groups(ctx: &Ctx<'_>, r: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let mut views = None;
    let groups = r
        .groups
        .iter()
        .map(|id| {
            let name = id.0.to_string();
            let d = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(OPS_NOT_GIVEN);
            if let Some(code) = group_gate(ctx, &name, Operation::Describe) {
                return d.with_error_code(code).with_group_state(s("Dead"));
            }
            let views = views.get_or_insert_with(|| all_groups(ctx));
            let Some(v) = views.iter().find(|v| v.name == name) else {
                // As Kafka: an unknown group is described as Dead, no error.
                return d.with_group_state(s("Dead"));
            };
            d.with_group_state(s(v.state))
                .with_protocol_type(v.protocol_type.clone())
                .with_protocol_data(v.protocol.clone())
                .with_members(
                    v.members
                        .iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(m.id.clone())
                                .with_group_instance_id(m.instance_id.clone())
                                .with_client_id(s(&m.client_id))
                                .with_client_host(s(&m.client_host))
                                .with_member_metadata(m.metadata.clone())
                                .with_member_assignment(m.assignment.clone())
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
