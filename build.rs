//! Build script of the `neo` binary: stamps the version string with the git
//! commit and the enabled backend features, so `neo --version` and bench
//! results say exactly what was measured; and, with the `af-xdp` feature,
//! compiles `xdp-programs/neo_xsk.c` to BPF with clang into `OUT_DIR`, where
//! `src/fast.rs` embeds it.

use std::process::Command;

fn compile_xdp_program() {
    let src = "xdp-programs/neo_xsk.c";
    println!("cargo:rerun-if-changed={src}");
    let out =
        std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("neo_xsk.o");
    let triple = Command::new("gcc")
        .arg("-dumpmachine")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "x86_64-linux-gnu".into());
    let status = Command::new("clang")
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg(format!("-I/usr/include/{triple}"))
        .args(["-c", src, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "clang failed ({s}) compiling {src}; the af-xdp feature needs clang and libbpf-dev"
        ),
        Err(e) => panic!("cannot run clang ({e}); the af-xdp feature needs clang and libbpf-dev"),
    }
}

fn main() {
    if std::env::var_os("CARGO_FEATURE_AF_XDP").is_some() {
        compile_xdp_program();
    }
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| {
            k.strip_prefix("CARGO_FEATURE_")
                .map(|f| f.to_lowercase().replace('_', "-"))
        })
        .filter(|f| f != "default")
        .collect();
    features.sort();
    let features = if features.is_empty() {
        "tcp only".to_string()
    } else {
        features.join(",")
    };
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rustc-env=NEO_VERSION={version} (commit {commit}; features: {features})");
}
