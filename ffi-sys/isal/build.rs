//! Binds the stateless deflate/inflate entry points of Debian's libisal
//! (`libisal-dev`): bindgen over `isa-l/igzip_lib.h` for exactly the structs
//! and functions used, so `isal_zstream` and `inflate_state` have the layout
//! the installed library expects.

use std::path::PathBuf;

fn main() {
    let header = "/usr/include/isa-l/igzip_lib.h";
    println!("cargo:rerun-if-changed={header}");
    if !std::path::Path::new(header).exists() {
        panic!("{header} not found: the isal feature needs Debian's libisal-dev");
    }
    println!("cargo:rustc-link-lib=dylib=isal");
    let b = bindgen::Builder::default()
        .header(header)
        .allowlist_function("isal_deflate_stateless_init")
        .allowlist_function("isal_deflate_stateless")
        .allowlist_function("isal_inflate_init")
        .allowlist_function("isal_inflate_stateless")
        .allowlist_type("isal_zstream")
        .allowlist_type("inflate_state")
        .allowlist_var("ISAL_DEF_LVL1_DEFAULT")
        .allowlist_var("ISAL_DEF_LVL1_LARGE")
        .allowlist_var("ISAL_DEF_LVL2_DEFAULT")
        .allowlist_var("ISAL_DEF_LVL2_LARGE")
        .allowlist_var("ISAL_DEF_LVL3_DEFAULT")
        .allowlist_var("ISAL_DEF_LVL3_LARGE")
        .allowlist_var("IGZIP_DEFLATE")
        .allowlist_var("ISAL_DEFLATE")
        .allowlist_var("NO_FLUSH")
        .allowlist_var("COMP_OK")
        .allowlist_var("STATELESS_OVERFLOW")
        .allowlist_var("ISAL_DECOMP_OK")
        .allowlist_var("ISAL_OUT_OVERFLOW")
        .allowlist_var("ISAL_END_INPUT")
        .layout_tests(false)
        .generate_comments(false)
        .generate()
        .expect("bindgen over igzip_lib.h failed");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("bindings.rs");
    b.write_to_file(out).expect("writing bindings");
}
