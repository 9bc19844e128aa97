//! Shared helpers of the controller integration tests: free ports, cluster
//! start-up, bounded waiting.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use neo_cluster::{ClusterMeta, Controller, ControllerConfig, NodeId};

pub const T: Duration = Duration::from_secs(10);

pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap()).collect()
}

pub fn voters(n: u64) -> BTreeMap<NodeId, String> {
    (1..=n)
        .zip(free_addrs(n as usize).iter().map(|a| a.to_string()))
        .collect()
}

pub fn config(id: NodeId, voters: &BTreeMap<NodeId, String>, root: &Path) -> ControllerConfig {
    ControllerConfig::new(
        id,
        voters[&id].parse().unwrap(),
        voters.clone(),
        root.join(format!("n{id}")),
        format!("127.0.0.1:{}", 9000 + id),
    )
}

pub fn start_all(voters: &BTreeMap<NodeId, String>, root: &Path) -> BTreeMap<NodeId, Controller> {
    voters
        .keys()
        .map(|&id| (id, Controller::start(config(id, voters, root)).unwrap()))
        .collect()
}

/// Starts a three-voter cluster under `root` and waits until all three
/// brokers are registered and unfenced; returns the voters (to restart a
/// node with) and the controllers.
pub fn start_three(root: &Path) -> (BTreeMap<NodeId, String>, BTreeMap<NodeId, Controller>) {
    let v = voters(3);
    let nodes = start_all(&v, root);
    wait_registered(&nodes, &[1, 2, 3]);
    (v, nodes)
}

/// Polls `f` every 20 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn registered_unfenced(m: &ClusterMeta, ids: &[NodeId]) -> bool {
    ids.iter()
        .all(|id| m.brokers.get(id).is_some_and(|b| !b.fenced))
}

/// Waits until every controller's meta is registered with all `ids` unfenced.
pub fn wait_registered(nodes: &BTreeMap<NodeId, Controller>, ids: &[NodeId]) {
    assert!(
        wait_until(T, || nodes
            .values()
            .all(|c| registered_unfenced(&c.meta(), ids))),
        "brokers {ids:?} not all registered: {:?}",
        nodes.values().map(|c| c.meta()).collect::<Vec<_>>()
    );
}

/// Waits until every controller has applied the same image.
pub fn wait_converged(nodes: &BTreeMap<NodeId, Controller>) -> ClusterMeta {
    let mut last = None;
    let ok = wait_until(T, || {
        let metas: Vec<_> = nodes.values().map(|c| c.meta()).collect();
        let same = metas.windows(2).all(|w| w[0] == w[1]);
        last = Some((*metas[0]).clone());
        same
    });
    assert!(ok, "metadata did not converge");
    last.unwrap()
}

pub fn leader_of(nodes: &BTreeMap<NodeId, Controller>) -> NodeId {
    let mut l = None;
    assert!(wait_until(T, || {
        l = nodes.values().next().and_then(|c| c.leader());
        l.is_some() && nodes.values().all(|c| c.leader() == l)
    }));
    l.unwrap()
}
