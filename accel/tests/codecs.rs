//! Every codec round-trips every kind of input; bounds are enforced; software
//! deflate and zlib's inflater decode each other; arbitrary bytes never panic
//! a decompressor.

use neo_accel::{payload, Codec, CodecError, Deflate, DeflateMiniz, Lz4, Zstd};
use proptest::prelude::*;

fn codecs() -> Vec<Box<dyn Codec>> {
    let mut v: Vec<Box<dyn Codec>> = vec![
        Box::new(Lz4),
        Box::new(Zstd::new(3).unwrap()),
        Box::new(Zstd::new(19).unwrap()),
        Box::new(Zstd::new(-5).unwrap()),
        Box::new(Deflate::new(1)),
        Box::new(Deflate::new(6)),
    ];
    if cfg!(feature = "isal") {
        // Deflate is ISA-L then; miniz is the other implementation.
        v.push(Box::new(Deflate::new(9)));
        v.push(Box::new(DeflateMiniz::new(6)));
    }
    v
}

/// Compresses through the batch payload framing (length prefix + stream) and
/// decodes both the bare stream and the framed payload.
fn round_trip(c: &mut dyn Codec, data: &[u8]) {
    let mut p = vec![0u8; payload::max_encoded_len(c, data.len())];
    let n = payload::encode(c, data, &mut p).unwrap();
    let mut out = vec![0u8; data.len()];
    let m = c.decompress(&p[payload::LEN_PREFIX..n], &mut out).unwrap();
    assert_eq!(m, data.len(), "{}", c.backend());
    assert!(out == data, "{} altered the data", c.backend());
    out.fill(0);
    assert_eq!(
        payload::decode(c, &p[..n], &mut out, data.len()),
        Ok(data.len())
    );
    assert!(out == data, "{} altered the framed data", c.backend());
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

#[test]
fn deflate_and_zlib_agree_on_damaged_streams() {
    // Differential: wherever our inflater and zlib's both accept a damaged
    // stream they must produce the same bytes. ISA-L is laxer than zlib on
    // some malformed Huffman headers (it may accept a stream zlib rejects,
    // yielding a few bytes); the payload's exact-length check and the batch
    // CRC catch those.
    use std::io::Read;
    let data = json_lines(600);
    let mut ours = Deflate::new(6);
    let mut seed = vec![0u8; ours.max_compressed_len(data.len())];
    let n = ours.compress(&data, &mut seed).unwrap();
    seed.truncate(n);
    let mut x = 0x0dd_ba11u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut a = vec![0u8; 64 << 10];
    let mut b = Vec::with_capacity(64 << 10);
    let (mut both, mut ours_only) = (0, 0);
    for _ in 0..3000 {
        let mut input = seed.clone();
        let at = next() as usize % input.len();
        input[at] ^= 1 << (next() % 8);
        b.clear();
        let z = flate2::read::DeflateDecoder::new(&input[..])
            .take(64 << 10)
            .read_to_end(&mut b);
        match (ours.decompress(&input, &mut a), z) {
            (Ok(p), Ok(_)) => {
                assert!(a[..p] == b[..], "{} and zlib disagree", ours.backend());
                both += 1;
            }
            (Ok(_), Err(_)) => ours_only += 1,
            _ => {}
        }
    }
    println!("of 3000 damaged streams: both accepted {both}, only ours {ours_only}");
}
