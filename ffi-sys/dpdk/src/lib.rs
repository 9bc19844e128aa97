//! `neo-ffi-dpdk`: the raw binding to Debian's libdpdk 22.11 that Neo's DPDK
//! backend uses — nothing more. bindgen generates declarations for an
//! allowlist of EAL, ethdev and mempool functions; a small C shim
//! (`shim/neo_dpdk.c`) wraps the static inline functions (`rte_eth_rx_burst`,
//! `rte_eth_tx_burst`, `rte_pktmbuf_alloc`/`free`/`append`/`mtod`) and does
//! port setup. Everything here is `unsafe`; the safe layer is
//! `neo_transports::dpdk`.

#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    clippy::all
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
