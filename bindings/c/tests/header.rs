//! `include/neo.h` is what cbindgen generates from the sources: CI fails on
//! drift. `NEO_BLESS=1 cargo test -p neo-c --test header` rewrites it.

use std::path::Path;

#[test]
fn header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let path = dir.join("include/neo.h");
    if std::env::var_os("NEO_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let current = std::fs::read(&path).unwrap_or_default();
    assert!(
        current == generated,
        "include/neo.h is stale: regenerate with `NEO_BLESS=1 cargo test -p neo-c --test header`"
    );
}
