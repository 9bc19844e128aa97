//! The `neo` package's library half: opening the transports from options
//! ([`fast`]), shared by the `neo` binary and the client bindings
//! (`bindings/c`, `bindings/python`), so every front end opens AF_XDP, DPDK
//! and RDMA the same way.

pub mod fast;
