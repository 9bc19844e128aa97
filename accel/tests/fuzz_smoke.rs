//! The libFuzzer-free harness run in CI: seeded random and mutated compressed
//! inputs to every decompressor; each must return an error or data within
//! the bound. `NEO_FUZZ_EXECS` sets the count. The cargo-fuzz target is
//! `accel/fuzz/fuzz_targets/decompress.rs`.

use neo_accel::{Codec, Deflate, Lz4, Zstd};

#[test]
fn decompressors_survive_mutated_inputs() {
    let execs: u64 = std::env::var("NEO_FUZZ_EXECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15_000);
    let mut codecs: Vec<Box<dyn Codec>> = vec![
        Box::new(Lz4),
        Box::new(Zstd::new(3).unwrap()),
        Box::new(Deflate::new(6)),
    ];
    let sample: Vec<u8> = (0..4000u32)
        .flat_map(|i| format!("event {} value {}\n", i, i % 13).into_bytes())
        .collect();
    let seeds: Vec<Vec<u8>> = codecs
        .iter_mut()
        .map(|c| {
            let mut b = vec![0u8; c.max_compressed_len(sample.len())];
            let n = c.compress(&sample, &mut b).unwrap();
            b.truncate(n);
            b
        })
        .collect();
    let mut x = 0x5eed_1234_u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = vec![0u8; 64 << 10];
    let mut ok = 0u64;
    for i in 0..execs {
        let mut input = seeds[(i % 3) as usize].clone();
        match next() % 4 {
            0 => input = (0..next() % 512).map(|_| next() as u8).collect(),
            1 => {
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % input.len();
                    input[at] ^= 1 << (next() % 8);
                }
            }
            2 => input.truncate((next() as usize) % input.len()),
            _ => {
                let at = (next() as usize) % input.len();
                input[at] = next() as u8;
            }
        }
        for c in codecs.iter_mut() {
            if let Ok(n) = c.decompress(&input, &mut out) {
                assert!(n <= out.len());
                ok += 1;
            }
        }
    }
    println!("accel fuzz_smoke execs={execs} decoded_ok={ok}");
}
