//! What verbs devices the node has: name, ports, state, link layer, GIDs —
//! for `neo doctor` and `--transport auto`. Where the node has no verbs
//! support (no rdma-core, or a kernel without InfiniBand, where
//! `ibv_get_device_list` fails with ENOSYS) this answers an error to print,
//! never a crash.

use sideway::ibverbs::address::GidType;
use sideway::ibverbs::device::{DeviceInfo as _, DeviceList};
use sideway::ibverbs::device_context::{LinkLayer, PortState};

/// One verbs device.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub name: String,
    pub ports: Vec<PortInfo>,
}

/// One port of a device.
#[derive(Debug, Clone)]
pub struct PortInfo {
    pub port: u8,
    /// `active`, `down`, `init`, `armed`, ...
    pub state: String,
    /// `Ethernet` (RoCE) or `InfiniBand`.
    pub link_layer: String,
    pub active_mtu: String,
    /// (index, GID, type) for the non-zero entries.
    pub gids: Vec<(u32, String, String)>,
}

impl PortInfo {
    pub fn is_active(&self) -> bool {
        self.state == "active"
    }
}

/// Every verbs device and its ports.
pub fn devices() -> Result<Vec<DeviceInfo>, String> {
    let list = DeviceList::new().map_err(|e| format!("ibv_get_device_list: {e}"))?;
    let mut out = Vec::new();
    for dev in &list {
        let name = dev.name();
        let ctx = match dev.open() {
            Ok(c) => c,
            Err(e) => {
                out.push(DeviceInfo {
                    name: format!("{name} (cannot open: {e})"),
                    ports: Vec::new(),
                });
                continue;
            }
        };
        let count = ctx.query_device().map(|a| a.phys_port_cnt()).unwrap_or(0);
        let mut ports = Vec::new();
        for port in 1..=count {
            let Ok(attr) = ctx.query_port(port) else {
                continue;
            };
            let mut gids = Vec::new();
            for index in 0..(attr.gid_tbl_len().clamp(0, 16) as u32) {
                let Ok(gid) = ctx.query_gid(port, index) else {
                    continue;
                };
                if gid.is_zero() {
                    continue;
                }
                let kind = match ctx.query_gid_ex(port, index).map(|e| e.gid_type()) {
                    Ok(GidType::RoceV2) => "RoCE v2",
                    Ok(GidType::RoceV1) => "RoCE v1",
                    Ok(GidType::InfiniBand) => "IB",
                    Err(_) => "?",
                };
                gids.push((index, gid.to_string(), kind.to_string()));
            }
            ports.push(PortInfo {
                port,
                state: match attr.port_state() {
                    PortState::Active => "active",
                    PortState::Down => "down",
                    PortState::Initializing => "init",
                    PortState::Armed => "armed",
                    _ => "other",
                }
                .into(),
                link_layer: match attr.link_layer() {
                    LinkLayer::Ethernet => "Ethernet",
                    LinkLayer::InfiniBand => "InfiniBand",
                    LinkLayer::Unspecified => "unspecified",
                }
                .into(),
                active_mtu: format!("{:?}", attr.active_mtu())
                    .trim_start_matches("Mtu")
                    .to_string(),
                gids,
            });
        }
        out.push(DeviceInfo { name, ports });
    }
    Ok(out)
}

/// Whether some device has an active port: the test `--transport auto` uses.
pub fn usable() -> Result<String, String> {
    let devs = devices()?;
    for d in &devs {
        if let Some(p) = d.ports.iter().find(|p| p.is_active()) {
            return Ok(format!(
                "{} port {} ({}, active)",
                d.name, p.port, p.link_layer
            ));
        }
    }
    match devs.is_empty() {
        true => Err("no RDMA device".into()),
        false => Err(format!(
            "no active port on {}",
            devs.iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
