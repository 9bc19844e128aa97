//! `neo doctor`: detects what this node offers each transport and accelerator,
//! and says per transport whether it is usable here and why not.
//!
//! Every probe reads the real system (sysfs, procfs, the dynamic loader, a
//! socket call) under a root directory, `/` by default, so tests can point it at
//! a crafted tree. A probe that cannot read something reports that, never
//! panics.

mod accel;
mod net;
mod sys;

use std::path::PathBuf;

use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Read sysfs/procfs under this root instead of `/` (for testing).
    #[arg(long, default_value = "/", hide = true)]
    root: PathBuf,
    /// Attach Neo's XDP program and an AF_XDP socket to this interface for a
    /// moment, and report the XDP mode and copy/zero-copy mode obtained
    /// (needs root; redirects nothing: the probe's port is 0).
    #[arg(long, value_name = "INTERFACE")]
    probe_af_xdp: Option<String>,
}

/// The verdict for one transport.
#[derive(Debug, Serialize)]
pub struct TransportReport {
    pub name: &'static str,
    /// Built into this binary.
    pub compiled: bool,
    /// The node has what the backend needs (devices, libraries, kernel support).
    pub node_ready: bool,
    /// Compiled and node ready: `transport = "auto"` may pick it.
    pub usable: bool,
    /// Why, in order of importance.
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub transports: Vec<TransportReport>,
    pub interfaces: Vec<net::Interface>,
    pub rdma_devices: Vec<net::RdmaDevice>,
    /// What verbs reports per port (GIDs with their types), when compiled in.
    pub rdma_verbs: Vec<String>,
    pub hugepages: sys::Hugepages,
    pub accelerators: accel::Accel,
    pub cpu: sys::Cpu,
}

/// Backends whose code exists (behind a cargo feature).
const IMPLEMENTED: &[&str] = &["tcp", "af-xdp", "dpdk", "rdma"];

fn verdict(
    name: &'static str,
    compiled: bool,
    node_ready: bool,
    mut reasons: Vec<String>,
) -> TransportReport {
    if !compiled {
        let why = if IMPLEMENTED.contains(&name) {
            format!("not compiled into this binary (build with `--features {name}`)")
        } else {
            format!("not implemented yet (the `{name}` backend has its own issue)")
        };
        reasons.insert(0, why);
    }
    TransportReport {
        name,
        compiled,
        node_ready,
        usable: compiled && node_ready,
        reasons,
    }
}

/// Gathers the whole report from the system under `root`.
pub fn gather(root: &std::path::Path) -> Report {
    let fs = sys::Fs::new(root);
    let interfaces = net::interfaces(&fs);
    let rdma_devices = net::rdma_devices(&fs);
    let hugepages = sys::hugepages(&fs);
    let accelerators = accel::detect(&fs);
    let cpu = sys::cpu(&fs);

    let tcp = net::tcp_check();
    let tcp = verdict("tcp", true, tcp.is_ok(), vec![tcp.unwrap_or_else(|e| e)]);

    let verbs = neo_ffi_dl::load_first(&["libibverbs.so.1"]);
    let active_ports = rdma_devices
        .iter()
        .flat_map(|d| &d.ports)
        .filter(|p| p.state.contains("ACTIVE"))
        .count();
    let mut why = vec![match rdma_devices.len() {
        0 => "no RDMA devices under /sys/class/infiniband".to_string(),
        n => format!("{n} RDMA device(s), {active_ports} active port(s)"),
    }];
    why.push(match &verbs {
        Ok(l) => format!("{} loads", l.name),
        Err(e) => format!("libibverbs does not load: {e}"),
    });
    let (verbs_ok, rdma_verbs) = verbs_view();
    match &verbs_ok {
        Ok(port) => why.push(format!("verbs: {port}")),
        Err(e) => why.push(format!("verbs: not available ({e})")),
    }
    let rdma = verdict(
        "rdma",
        cfg!(feature = "rdma"),
        active_ports > 0 && verbs.is_ok() && (verbs_ok.is_ok() || !cfg!(feature = "rdma")),
        why,
    );

    let eal = neo_ffi_dl::load_first(&[
        "librte_eal.so.23",
        "librte_eal.so.24",
        "librte_eal.so.25",
        "librte_eal.so",
    ]);
    let mut why = vec![match &eal {
        Ok(l) => format!("libdpdk present ({} loads)", l.name),
        Err(_) => "libdpdk not installed (librte_eal.so.* does not load)".to_string(),
    }];
    why.push(hugepages.summary());
    let vfio = fs.exists("dev/vfio/vfio");
    why.push(if vfio {
        "/dev/vfio present: PCI devices can be bound to vfio-pci".into()
    } else {
        "no /dev/vfio: only virtual devices (--vdev, --no-pci)".into()
    });
    let dpdk = verdict("dpdk", cfg!(feature = "dpdk"), eal.is_ok(), why);

    let xsk = net::af_xdp_socket_check();
    let mut why = vec![xsk.clone().unwrap_or_else(|e| e)];
    let up = interfaces
        .iter()
        .filter(|i| i.operstate == "up" && i.name != "lo")
        .count();
    why.push(format!(
        "{up} interface(s) up besides lo; XDP modes per interface below"
    ));
    let af_xdp = verdict("af-xdp", cfg!(feature = "af-xdp"), xsk.is_ok(), why);

    Report {
        transports: vec![rdma, dpdk, af_xdp, tcp],
        interfaces,
        rdma_devices,
        rdma_verbs,
        hugepages,
        accelerators,
        cpu,
    }
}

/// The verbs view (through the rdma backend): the first active port, and a
/// line per port with its GIDs. Never fails hard: a node without verbs says why.
#[cfg(feature = "rdma")]
fn verbs_view() -> (Result<String, String>, Vec<String>) {
    let lines = match neo_transports::rdma::devices() {
        Ok(devs) => devs
            .iter()
            .flat_map(|d| {
                d.ports.iter().map(move |p| {
                    let gids: Vec<String> = p
                        .gids
                        .iter()
                        .map(|(i, g, t)| format!("gid[{i}] {g} ({t})"))
                        .collect();
                    format!(
                        "{} port {}: {}, {}, mtu {}; {}",
                        d.name,
                        p.port,
                        p.state,
                        p.link_layer,
                        p.active_mtu,
                        if gids.is_empty() {
                            "no GIDs".into()
                        } else {
                            gids.join(", ")
                        }
                    )
                })
            })
            .collect(),
        Err(e) => vec![format!("verbs unavailable: {e}")],
    };
    (neo_transports::rdma::usable(), lines)
}

#[cfg(not(feature = "rdma"))]
fn verbs_view() -> (Result<String, String>, Vec<String>) {
    (
        Err("the rdma backend is not compiled in".into()),
        Vec::new(),
    )
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut report = gather(&args.root);
    if let Some(interface) = &args.probe_af_xdp {
        let line = probe_af_xdp(interface);
        if let Some(t) = report.transports.iter_mut().find(|t| t.name == "af-xdp") {
            t.reasons.push(line);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print(&report);
    Ok(())
}

#[cfg(feature = "af-xdp")]
fn probe_af_xdp(interface: &str) -> String {
    match neo::fast::probe_af_xdp(interface) {
        Ok(mode) => format!("probe on {interface}: {mode}"),
        Err(e) => format!("probe on {interface} failed: {e:#}"),
    }
}

#[cfg(not(feature = "af-xdp"))]
fn probe_af_xdp(interface: &str) -> String {
    format!("probe on {interface} impossible: af-xdp is not compiled in")
}

fn print(r: &Report) {
    println!("neo doctor — what this node offers (auto order: rdma, dpdk, af-xdp, tcp)\n");
    println!("transports:");
    for t in &r.transports {
        let state = if t.usable { "usable" } else { "not usable" };
        println!("  {:<7} {:<11} {}", t.name, state, t.reasons.join("; "));
    }
    println!("\nnetwork interfaces:");
    for i in &r.interfaces {
        println!(
            "  {:<12} {:<5} driver {:<14} mtu {:<6} rx queues {:<3} XDP: {}",
            i.name, i.operstate, i.driver, i.mtu, i.rx_queues, i.xdp
        );
    }
    if !r.rdma_verbs.is_empty() {
        println!("\nRDMA verbs:");
        for l in &r.rdma_verbs {
            println!("  {l}");
        }
    }
    if !r.rdma_devices.is_empty() {
        println!("\nRDMA devices:");
        for d in &r.rdma_devices {
            for p in &d.ports {
                println!(
                    "  {} port {}: {} ({}, {})",
                    d.name, p.port, p.state, p.link_layer, p.rate
                );
            }
        }
    }
    println!("\nhugepages: {}", r.hugepages.summary());
    println!("\naccelerators:");
    for line in r.accelerators.lines() {
        println!("  {line}");
    }
    println!(
        "\ncpu: {} ({} logical cpus)",
        r.cpu.model, r.cpu.logical_cpus
    );
    println!("  features: {}", r.cpu.features.join(" "));
    if !r.cpu.missing.is_empty() {
        println!("  absent:   {}", r.cpu.missing.join(" "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn crafted_node_with_hugepages_interfaces_and_an_rdma_port() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let w = |rel: &str, s: &str| {
            let p = r.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        };
        w("proc/meminfo", "MemTotal: 100 kB\nHugePages_Total:     256\nHugePages_Free:      200\nHugepagesize:       2048 kB\n");
        w(
            "proc/mounts",
            "none /dev/hugepages hugetlbfs rw 0 0\nproc /proc proc rw 0 0\n",
        );
        w("sys/class/net/eth9/operstate", "up");
        w("sys/class/net/eth9/mtu", "9000");
        fs::create_dir_all(r.join("sys/class/net/eth9/queues/rx-0")).unwrap();
        fs::create_dir_all(r.join("sys/class/net/eth9/queues/rx-1")).unwrap();
        fs::create_dir_all(r.join("sys/class/net/eth9/queues/tx-0")).unwrap();
        fs::create_dir_all(r.join("drivers/mlx5_core")).unwrap();
        fs::create_dir_all(r.join("sys/class/net/eth9/device")).unwrap();
        std::os::unix::fs::symlink(
            r.join("drivers/mlx5_core"),
            r.join("sys/class/net/eth9/device/driver"),
        )
        .unwrap();
        w("sys/class/infiniband/mlx5_0/ports/1/state", "4: ACTIVE");
        w("sys/class/infiniband/mlx5_0/ports/1/link_layer", "Ethernet");
        w(
            "sys/class/infiniband/mlx5_0/ports/1/rate",
            "100 Gb/sec (4X EDR)",
        );
        w(
            "proc/cpuinfo",
            "processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse4_2 avx2\n",
        );

        let rep = gather(r);
        assert_eq!(rep.hugepages.total, 256);
        assert_eq!(rep.hugepages.free, 200);
        assert_eq!(rep.hugepages.mounts, vec!["/dev/hugepages"]);
        let eth = &rep.interfaces[0];
        assert_eq!(
            (eth.driver.as_str(), eth.mtu, eth.rx_queues),
            ("mlx5_core", 9000, 2)
        );
        assert!(eth.xdp.contains("zero-copy"), "{}", eth.xdp);
        assert_eq!(rep.rdma_devices[0].ports[0].state, "4: ACTIVE");
        let rdma = &rep.transports[0];
        assert_eq!(rdma.name, "rdma");
        assert!(!rdma.usable, "not compiled in yet");
        assert!(
            rdma.reasons.iter().any(|r| r.contains("1 active port")),
            "{:?}",
            rdma.reasons
        );
        assert_eq!(rep.cpu.model, "Test CPU");
        assert!(rep.cpu.features.iter().any(|f| f.starts_with("sse4_2")));
        assert!(rep.cpu.missing.iter().any(|f| f.starts_with("avx512f")));
        let tcp = rep.transports.iter().find(|t| t.name == "tcp").unwrap();
        assert!(tcp.usable);
    }

    #[test]
    fn empty_root_gives_reasons_not_panics() {
        let t = tempfile::tempdir().unwrap();
        let rep = gather(t.path());
        assert!(rep.interfaces.is_empty());
        assert!(rep.hugepages.error.is_some());
        assert!(rep.transports[0]
            .reasons
            .iter()
            .any(|r| r.contains("no RDMA devices")));
        assert_eq!(rep.cpu.model, "unknown");
    }
}
