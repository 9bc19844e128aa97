//! Builds Neo's DPDK binding: finds Debian's libdpdk with pkg-config, compiles
//! the C shim with DPDK's own flags (`-include rte_config.h -march=...`), and
//! runs bindgen over exactly the functions and types Neo uses.

use std::path::PathBuf;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run pkg-config ({e}); the dpdk feature needs pkg-config and libdpdk-dev")
        });
    if !out.status.success() {
        panic!(
            "pkg-config cannot find libdpdk: {}; the dpdk feature needs Debian's libdpdk-dev",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn main() {
    println!("cargo:rerun-if-changed=shim/neo_dpdk.c");
    println!("cargo:rerun-if-changed=shim/neo_dpdk.h");
    let cflags = pkg_config(&["--cflags"]);
    // `-include rte_config.h` is two words; keep the flags as pkg-config gives them.
    let mut build = cc::Build::new();
    build
        .file("shim/neo_dpdk.c")
        .warnings(true)
        .flag_if_supported("-Wno-deprecated-declarations");
    for f in &cflags {
        build.flag(f);
    }
    build.compile("neo_dpdk_shim");

    // Only the libraries the binding uses; the PMDs (net_tap, net_af_packet,
    // ...) are plugins EAL loads from its driver directory at run time.
    for lib in [
        "rte_ethdev",
        "rte_mbuf",
        "rte_mempool",
        "rte_eal",
        "rte_kvargs",
    ] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    for f in pkg_config(&["--libs-only-L"]) {
        println!(
            "cargo:rustc-link-search=native={}",
            f.trim_start_matches("-L")
        );
    }

    let bindings = bindgen::Builder::default()
        .header("shim/neo_dpdk.h")
        .header_contents("neo_dpdk_all.h", "#include <rte_eal.h>\n#include <rte_ethdev.h>\n#include <rte_mbuf.h>\n#include <rte_lcore.h>\n")
        .clang_args(&cflags)
        .allowlist_function("neo_.*")
        .allowlist_function("rte_eal_init")
        .allowlist_function("rte_eal_cleanup")
        .allowlist_function("rte_strerror")
        .allowlist_function("rte_eth_dev_count_avail")
        .allowlist_function("rte_eth_dev_get_port_by_name")
        .allowlist_function("rte_eth_dev_stop")
        .allowlist_function("rte_eth_dev_close")
        .allowlist_function("rte_eth_macaddr_get")
        .allowlist_function("rte_eth_link_get_nowait")
        .allowlist_function("rte_eth_stats_get")
        .allowlist_function("rte_eth_xstats_get")
        .allowlist_function("rte_eth_xstats_get_names")
        .allowlist_function("rte_pktmbuf_pool_create")
        .allowlist_function("rte_mempool_free")
        .allowlist_function("rte_socket_id")
        .allowlist_var("RTE_MBUF_DEFAULT_BUF_SIZE")
        .opaque_type("rte_mbuf")
        .opaque_type("rte_mempool")
        // Packed types containing aligned ones trip bindgen (see kernel-bypass notes).
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_arp_ipv4")
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .layout_tests(false)
        .generate_comments(false)
        .generate()
        .expect("bindgen over the DPDK headers failed");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("bindings.rs");
    bindings.write_to_file(out).expect("writing bindings");
}
