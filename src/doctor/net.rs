//! Network interfaces (XDP support), RDMA devices, and kernel socket checks.

use serde::Serialize;

use super::sys::Fs;

/// Drivers with native (driver-mode) XDP in mainline Linux.
const NATIVE_XDP: &[&str] = &[
    "veth",
    "virtio_net",
    "tun",
    "mlx5_core",
    "mlx4_en",
    "i40e",
    "ice",
    "ixgbe",
    "ixgbevf",
    "igb",
    "igc",
    "bnxt_en",
    "ena",
    "nfp",
    "qede",
    "sfc",
    "stmmac",
    "hv_netvsc",
    "mvneta",
    "mvpp2",
    "cpsw",
    "fec",
    "gve",
    "idpf",
];
/// Drivers with AF_XDP zero-copy support in mainline Linux.
const ZERO_COPY: &[&str] = &[
    "mlx5_core",
    "i40e",
    "ice",
    "ixgbe",
    "igc",
    "stmmac",
    "gve",
    "idpf",
    "mvpp2",
];

#[derive(Debug, Serialize)]
pub struct Interface {
    pub name: String,
    pub operstate: String,
    pub driver: String,
    pub mtu: u32,
    pub rx_queues: usize,
    /// What XDP mode the driver allows, in words.
    pub xdp: String,
}

fn driver_of(fs: &Fs, name: &str) -> String {
    if let Some(d) = fs.link_name(&format!("sys/class/net/{name}/device/driver")) {
        return d;
    }
    // Virtual devices have no `device` link; ethtool asks the driver itself.
    if fs.is_real_root() {
        if let Ok(out) = std::process::Command::new("ethtool")
            .arg("-i")
            .arg(name)
            .output()
        {
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(d) = text.lines().find_map(|l| l.strip_prefix("driver: ")) {
                return d.trim().to_string();
            }
        }
    }
    if fs.exists(&format!("sys/devices/virtual/net/{name}")) {
        "virtual".into()
    } else {
        "unknown".into()
    }
}

fn xdp_modes(driver: &str, name: &str) -> String {
    if name == "lo" {
        return "generic only (loopback)".into();
    }
    let native = NATIVE_XDP.contains(&driver);
    let zc = ZERO_COPY.contains(&driver);
    match (native, zc) {
        (true, true) => "native + generic; AF_XDP zero-copy supported by the driver".into(),
        (true, false) => "native + generic; AF_XDP copy mode (driver has no zero-copy)".into(),
        _ if driver == "virtual" || driver == "unknown" => {
            "generic (skb) mode; native mode unknown (driver not identified: install ethtool)"
                .into()
        }
        _ => format!("generic (skb) only: driver `{driver}` has no native XDP; AF_XDP copy mode"),
    }
}

pub fn interfaces(fs: &Fs) -> Vec<Interface> {
    fs.list("sys/class/net")
        .into_iter()
        .map(|name| {
            let base = format!("sys/class/net/{name}");
            let driver = driver_of(fs, &name);
            Interface {
                operstate: fs
                    .read(&format!("{base}/operstate"))
                    .unwrap_or_else(|_| "unknown".into()),
                mtu: fs
                    .read(&format!("{base}/mtu"))
                    .ok()
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(0),
                rx_queues: fs
                    .list(&format!("{base}/queues"))
                    .iter()
                    .filter(|q| q.starts_with("rx-"))
                    .count(),
                xdp: xdp_modes(&driver, &name),
                driver,
                name,
            }
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct RdmaPort {
    pub port: String,
    pub state: String,
    pub link_layer: String,
    pub rate: String,
}

#[derive(Debug, Serialize)]
pub struct RdmaDevice {
    pub name: String,
    pub ports: Vec<RdmaPort>,
}

pub fn rdma_devices(fs: &Fs) -> Vec<RdmaDevice> {
    fs.list("sys/class/infiniband")
        .into_iter()
        .map(|name| {
            let base = format!("sys/class/infiniband/{name}/ports");
            let ports = fs
                .list(&base)
                .into_iter()
                .map(|port| {
                    let read = |f: &str| {
                        fs.read(&format!("{base}/{port}/{f}"))
                            .unwrap_or_else(|_| "unknown".into())
                    };
                    RdmaPort {
                        state: read("state"),
                        link_layer: read("link_layer"),
                        rate: read("rate"),
                        port,
                    }
                })
                .collect();
            RdmaDevice { name, ports }
        })
        .collect()
}

/// TCP works wherever a loopback socket can be bound.
pub fn tcp_check() -> Result<String, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .map(|_| "kernel sockets; loopback bind ok".to_string())
        .map_err(|e| format!("cannot bind a loopback TCP socket: {e}"))
}

/// Whether the kernel lets this process open an AF_XDP socket.
pub fn af_xdp_socket_check() -> Result<String, String> {
    const AF_XDP: i32 = 44;
    match socket2::Socket::new(socket2::Domain::from(AF_XDP), socket2::Type::RAW, None) {
        Ok(_) => Ok("kernel supports AF_XDP sockets and this process may open them".into()),
        Err(e) if e.raw_os_error() == Some(97) => {
            Err("kernel lacks AF_XDP sockets (CONFIG_XDP_SOCKETS)".into())
        }
        Err(e) if e.raw_os_error() == Some(1) => Err(
            "AF_XDP sockets need CAP_NET_RAW and CAP_BPF (run as root or grant capabilities)"
                .into(),
        ),
        Err(e) => Err(format!("AF_XDP socket failed: {e}")),
    }
}
