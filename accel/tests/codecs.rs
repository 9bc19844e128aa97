//! Every codec round-trips every kind of input; bounds are enforced; software
//! deflate and zlib's inflater decode each other; arbitrary bytes never panic
//! a decompressor.

use neo_accel::{Codec, CodecError, Deflate, DeflateMiniz, Lz4, Zstd};
use proptest::prelude::*;

fn codecs() -> Vec<Box<dyn Codec>> {
    vec![
        Box::new(Lz4),
        Box::new(Zstd::new(3).unwrap()),
        Box::new(Zstd::new(19).unwrap()),
        Box::new(Deflate::new(6)),
    ]
}

fn round_trip(c: &mut dyn Codec, data: &[u8]) {
    let mut comp = vec![0u8; c.max_compressed_len(data.len())];
    let n = c.compress(data, &mut comp).unwrap();
    let mut out = vec![0u8; data.len()];
    let m = c.decompress(&comp[..n], &mut out).unwrap();
    assert_eq!(m, data.len(), "{}", c.backend());
    assert!(out == data, "{} altered the data", c.backend());
}

fn json_lines(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            format!(
                "{{\"ts\":{},\"level\":\"info\",\"msg\":\"request {} served\",\"ms\":{}}}\n",
                1_700_000_000 + i,
                i,
                i % 97
            )
            .into_bytes()
        })
        .collect()
}

#[test]
fn empty_tiny_incompressible_and_large_inputs() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..(1 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let inputs: Vec<Vec<u8>> = vec![
        vec![],
        vec![7],
        b"ab".to_vec(),
        random.clone(),
        json_lines(40_000),
        vec![0u8; 8 << 20],
    ];
    for mut c in codecs() {
        for i in &inputs {
            round_trip(c.as_mut(), i);
        }
    }
}

#[test]
fn decompression_bound_is_enforced() {
    let data = vec![b'a'; 1 << 20];
    for mut c in codecs() {
        let mut comp = vec![0u8; c.max_compressed_len(data.len())];
        let n = c.compress(&data, &mut comp).unwrap();
        let mut small = vec![0u8; 1000];
        let e = c.decompress(&comp[..n], &mut small).unwrap_err();
        assert!(
            matches!(e, CodecError::TooLarge { .. }),
            "{}: {e:?}",
            c.backend()
        );
        let mut tiny = vec![0u8; 4];
        assert!(
            c.compress(&data, &mut tiny).is_err(),
            "{}: compress into a tiny buffer",
            c.backend()
        );
    }
}

#[test]
fn both_deflate_implementations_decode_each_other() {
    let data = json_lines(3000);
    let cross = |enc: &mut dyn Codec, dec: &mut dyn Codec| {
        let mut comp = vec![0u8; enc.max_compressed_len(data.len())];
        let n = enc.compress(&data, &mut comp).unwrap();
        let mut out = vec![0u8; data.len()];
        assert_eq!(
            dec.decompress(&comp[..n], &mut out).unwrap(),
            data.len(),
            "{} -> {}",
            enc.backend(),
            dec.backend()
        );
        assert!(out == data);
    };
    cross(&mut Deflate::new(6), &mut DeflateMiniz::new(6));
    cross(&mut DeflateMiniz::new(6), &mut Deflate::new(6));
}

#[test]
fn software_deflate_and_zlib_decode_each_other() {
    use std::io::{Read, Write};
    let data = json_lines(5000);
    let mut ours = Deflate::new(6);
    let mut comp = vec![0u8; ours.max_compressed_len(data.len())];
    let n = ours.compress(&data, &mut comp).unwrap();
    let mut back = Vec::new();
    flate2::read::DeflateDecoder::new(&comp[..n])
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == data, "zlib could not read our deflate");
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&data).unwrap();
    let theirs = z.finish().unwrap();
    let mut out = vec![0u8; data.len()];
    assert_eq!(ours.decompress(&theirs, &mut out).unwrap(), data.len());
    assert!(out == data, "we could not read zlib's deflate");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_any_input(data in proptest::collection::vec(any::<u8>(), 0..20_000), repeat in 1usize..4) {
        let data: Vec<u8> = data.iter().copied().cycle().take(data.len() * repeat).collect();
        for mut c in codecs() {
            round_trip(c.as_mut(), &data);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_decompressor(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut out = vec![0u8; 64 << 10];
        for mut c in codecs() {
            let _ = c.decompress(&data, &mut out);
        }
    }
}
