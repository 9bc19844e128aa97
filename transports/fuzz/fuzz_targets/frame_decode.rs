//! cargo-fuzz target: the Neo frame decoder on arbitrary bytes.
//! Run (stable toolchain, no sanitizer): `cargo fuzz run -s none frame_decode -- -runs=1000000`
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    neo_transports::frame::fuzz_check(data);
});
