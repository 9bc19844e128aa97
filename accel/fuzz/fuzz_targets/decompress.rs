//! cargo-fuzz target: every codec's decompressor on arbitrary bytes must return
//! an error or data within the bound, never panic.
//! Run (stable toolchain): `cd accel && cargo fuzz run -s none decompress -- -runs=1000000`
#![no_main]

use neo_accel::{Codec, Deflate, Lz4, Zstd};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut out = vec![0u8; 64 << 10];
    let mut codecs: Vec<Box<dyn Codec>> = vec![Box::new(Lz4), Box::new(Zstd::new(3).unwrap()), Box::new(Deflate::new(6))];
    for c in codecs.iter_mut() {
        if let Ok(n) = c.decompress(data, &mut out) {
            assert!(n <= out.len());
        }
    }
});
