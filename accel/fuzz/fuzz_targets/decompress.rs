//! cargo-fuzz target: every codec's decompressor on arbitrary bytes, bare and
//! through the batch payload framing, must return an error or data within the
//! bound, never panic.
//! Run (stable toolchain): `cd accel && cargo fuzz run -s none decompress -- -runs=200000`
#![no_main]

use std::cell::RefCell;

use neo_accel::{payload, Codec, Deflate, DeflateMiniz, Lz4, Zstd};

const BOUND: usize = 64 << 10;

thread_local! {
    static CODECS: RefCell<Vec<Box<dyn Codec>>> = RefCell::new(vec![
        Box::new(Lz4),
        Box::new(Zstd::new(3).expect("zstd context")),
        Box::new(Deflate::new(6)),
        Box::new(DeflateMiniz::new(6)),
    ]);
    static OUT: RefCell<Vec<u8>> = RefCell::new(vec![0u8; BOUND]);
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    CODECS.with_borrow_mut(|codecs| {
        OUT.with_borrow_mut(|out| {
            for c in codecs.iter_mut() {
                if let Ok(n) = c.decompress(data, out) {
                    assert!(n <= out.len());
                }
                if let Ok(n) = payload::decode(c.as_mut(), data, out, BOUND) {
                    assert_eq!(Ok(n), payload::decoded_len(c.id(), data, BOUND));
                }
            }
        })
    })
});
