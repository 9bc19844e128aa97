//! The libFuzzer-free harness run in CI: seeded random and mutated compressed
//! inputs to every decompressor, bare and through the payload framing; each
//! must return an error or data within the bound, never panic. One test per
//! codec so they run in parallel. `NEO_FUZZ_EXECS` sets the count per codec
//! (default 50 000). The cargo-fuzz target is
//! `accel/fuzz/fuzz_targets/decompress.rs`.

use neo_accel::{payload, Codec, Deflate, DeflateMiniz, Lz4, Zstd};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], r: &mut Rng) -> Vec<u8> {
    let mut input = seed.to_vec();
    match r.next() % 5 {
        0 => return (0..r.below(512)).map(|_| r.next() as u8).collect(),
        1 => {
            for _ in 0..1 + r.below(4) {
                let at = r.below(input.len());
                input[at] ^= 1 << (r.next() % 8);
            }
        }
        2 => input.truncate(r.below(input.len())),
        3 => {
            // Splice a run of random bytes over the middle.
            let at = r.below(input.len());
            let n = r.below(32).min(input.len() - at);
            for b in &mut input[at..at + n] {
                *b = r.next() as u8;
            }
        }
        _ => {
            let at = r.below(input.len());
            input[at] = r.next() as u8;
        }
    }
    input
}

fn survive(mut c: Box<dyn Codec>, seed_value: u64) {
    let execs: u64 = std::env::var("NEO_FUZZ_EXECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let sample: Vec<u8> = (0..600u32)
        .flat_map(|i| format!("event {} value {}\n", i, i % 13).into_bytes())
        .collect();
    let mut seed = vec![0u8; payload::max_encoded_len(c.as_ref(), sample.len())];
    let n = payload::encode(c.as_mut(), &sample, &mut seed).unwrap();
    seed.truncate(n);
    let mut r = Rng(seed_value);
    let mut out = vec![0u8; 64 << 10];
    let (mut ok, mut framed_ok) = (0u64, 0u64);
    for _ in 0..execs {
        let input = mutate(&seed, &mut r);
        // Bare stream (skip the prefix when there is one) and framed payload.
        let bare = input.get(payload::LEN_PREFIX..).unwrap_or(&input);
        if let Ok(n) = c.decompress(bare, &mut out) {
            assert!(n <= out.len());
            ok += 1;
        }
        if let Ok(n) = payload::decode(c.as_mut(), &input, &mut out, 64 << 10) {
            assert!(n <= out.len());
            framed_ok += 1;
        }
    }
    // The unmutated seed must still decode: the harness is testing something.
    assert_eq!(
        payload::decode(c.as_mut(), &seed, &mut out, 64 << 10),
        Ok(sample.len())
    );
    println!(
        "{}: execs={execs} decoded_ok={ok} framed_ok={framed_ok}",
        c.backend()
    );
}

#[test]
fn lz4_survives_mutated_inputs() {
    survive(Box::new(Lz4), 0x5eed_0001);
}

#[test]
fn zstd_survives_mutated_inputs() {
    survive(Box::new(Zstd::new(3).unwrap()), 0x5eed_0002);
}

#[test]
fn deflate_survives_mutated_inputs() {
    survive(Box::new(Deflate::new(6)), 0x5eed_0003);
}

#[test]
fn deflate_miniz_survives_mutated_inputs() {
    survive(Box::new(DeflateMiniz::new(6)), 0x5eed_0004);
}
