//! The libFuzzer-free harness for the frame decoder, run in every CI pass: a
//! seeded mutator (bit flips, byte sets, truncations, splices, random fills)
//! over valid frames, each input checked by the same oracle as the cargo-fuzz
//! target in `transports/fuzz`. `NEO_FUZZ_EXECS` sets the count.

use neo_transports::frame::{self, Kind};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn seed_frame(rng: &mut SmallRng) -> Vec<u8> {
    let len = rng.gen_range(0..96);
    let payload: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    let kind = [Kind::Request, Kind::Response, Kind::Error][rng.gen_range(0..3)];
    let mut out = vec![0u8; frame::encoded_len(len)];
    frame::encode_with(&mut out, kind, 0, rng.gen(), |p| {
        p.copy_from_slice(&payload)
    });
    out
}

fn mutate(rng: &mut SmallRng, mut input: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.gen_range(0..4) {
        match rng.gen_range(0..6) {
            0 if !input.is_empty() => {
                let bit = rng.gen_range(0..input.len() * 8);
                input[bit / 8] ^= 1 << (bit % 8);
            }
            1 if !input.is_empty() => {
                let i = rng.gen_range(0..input.len());
                input[i] = [0, 0xff, 0x7f, 0x80, rng.gen()][rng.gen_range(0..5)];
            }
            2 => {
                let cut = rng.gen_range(0..=input.len());
                input.truncate(cut);
            }
            3 => {
                let extra = rng.gen_range(1..16);
                input.extend((0..extra).map(|_| rng.gen::<u8>()));
            }
            4 => {
                let other = seed_frame(rng);
                let at = rng.gen_range(0..=input.len());
                input.splice(at..at, other);
            }
            _ => {}
        }
    }
    input
}

#[test]
fn frame_decoder_survives_mutated_inputs() {
    let execs: u64 = std::env::var("NEO_FUZZ_EXECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let seed: u64 = 0x00f0_22ed;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut accepted = 0u64;
    for _ in 0..execs {
        let input = if rng.gen_bool(0.05) {
            (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect()
        } else {
            let f = seed_frame(&mut rng);
            mutate(&mut rng, f)
        };
        if frame::decode(&input, 1 << 20).is_ok() {
            accepted += 1;
        }
        frame::fuzz_check(&input);
    }
    // Unmutated seeds (zero mutation rounds) must decode; mutated ones mostly not.
    assert!(
        accepted > 0 && accepted < execs,
        "accepted {accepted} of {execs}"
    );
    println!("fuzz_smoke seed={seed:#x} execs={execs} accepted={accepted}");
}
