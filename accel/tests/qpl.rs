//! Deflate through Intel QPL's job API, on QPL's software path (no IAA here):
//! round trips, and cross-decoding with ISA-L/miniz (`Deflate`) and zlib
//! (flate2) both ways — the contract that lets IAA and software read each
//! other's batches. Debian packages no QPL: without `libqpl.so.1` on the
//! library path (or `NEO_QPL_LIB=/path/to/libqpl.so`) this test says SKIPPED.

use std::io::{Read, Write};
use std::sync::Arc;

use neo_accel::{Codec, CodecError, Deflate, QplDeflate};
use neo_ffi_qpl::{ExecPath, Qpl};

fn qpl() -> Option<Arc<Qpl>> {
    let custom = std::env::var("NEO_QPL_LIB").ok();
    let names: Vec<&str> = match &custom {
        Some(p) => vec![p.as_str()],
        None => neo_ffi_qpl::SONAMES.to_vec(),
    };
    match Qpl::load_from(&names) {
        Ok(q) => Some(q),
        Err(e) => {
            eprintln!("SKIPPED qpl_deflate_interoperates: libqpl is not installed here (Debian packages no QPL; build it from Intel's sources and set NEO_QPL_LIB): {e}");
            None
        }
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let json: Vec<u8> = (0..4000)
        .flat_map(|i| {
            format!(
                "{{\"ts\":{},\"level\":\"info\",\"msg\":\"request {i} served\",\"ms\":{}}}\n",
                1_700_000_000 + i,
                i % 97
            )
            .into_bytes()
        })
        .collect();
    let mut x = 0x1234_5678u32;
    let random: Vec<u8> = (0..70_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    vec![
        b"a".to_vec(),
        b"hello hello hello hello".to_vec(),
        json,
        random,
        vec![0u8; 1 << 20],
    ]
}

fn zlib_inflate(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(raw)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn zlib_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn qpl_deflate_interoperates() {
    let Some(q) = qpl() else { return };
    eprintln!("QPL {} from {}", q.version(), q.name());
    match QplDeflate::new(q.clone(), ExecPath::Hardware, 1) {
        // Without an IAA the hardware path refuses to initialise, saying why.
        Err(e) => assert!(e.contains("QPL status"), "{e}"),
        Ok(_) => eprintln!("a QPL hardware job initialised: this node has a usable IAA"),
    }
    let mut qd = QplDeflate::new(q, ExecPath::Software, 6).expect("software job");
    assert_eq!(qd.backend(), "software (QPL software path)");
    let mut sw = Deflate::new(6);
    for data in corpus() {
        let mut packed = vec![0u8; qd.max_compressed_len(data.len())];
        let n = qd.compress(&data, &mut packed).unwrap();
        let packed = &packed[..n];
        // QPL -> QPL, QPL -> ISA-L/miniz, QPL -> zlib.
        let mut out = vec![0u8; data.len()];
        assert_eq!(qd.decompress(packed, &mut out).unwrap(), data.len());
        assert_eq!(out, data);
        let mut out2 = vec![0u8; data.len()];
        assert_eq!(sw.decompress(packed, &mut out2).unwrap(), data.len());
        assert_eq!(out2, data);
        assert_eq!(zlib_inflate(packed), data);
        // ISA-L/miniz -> QPL, zlib -> QPL.
        let mut sp = vec![0u8; sw.max_compressed_len(data.len())];
        let m = sw.compress(&data, &mut sp).unwrap();
        let mut out3 = vec![0u8; data.len()];
        assert_eq!(qd.decompress(&sp[..m], &mut out3).unwrap(), data.len());
        assert_eq!(out3, data);
        let z = zlib_deflate(&data);
        let mut out4 = vec![0u8; data.len()];
        assert_eq!(qd.decompress(&z, &mut out4).unwrap(), data.len());
        assert_eq!(out4, data);
        // The bound holds: one byte short is an error, not an overrun.
        if data.len() > 1 {
            let mut short = vec![0u8; data.len() - 1];
            assert!(
                matches!(
                    qd.decompress(packed, &mut short),
                    Err(CodecError::TooLarge { .. })
                ),
                "{} bytes into {}",
                data.len(),
                short.len()
            );
        }
    }
    // The JSON, random and zero inputs are long enough for ISA-L and zlib to
    // use distances beyond QPL's history: those went through the
    // software inflater, and said so.
    assert!(qd.wide_inflates() > 0, "no 32 KiB-window stream was met");
    // Garbage is an error, never a panic; damaged streams never overrun the
    // bound (QPL is C: a crash here would abort the test).
    let mut out = vec![0u8; 4096];
    for junk in [&[0xffu8; 64][..], &[7, 1, 2, 3][..], b"not deflate at all"] {
        assert!(qd.decompress(junk, &mut out).is_err());
    }
    let json = &corpus()[2];
    let mut packed = vec![0u8; qd.max_compressed_len(json.len())];
    let n = qd.compress(json, &mut packed).unwrap();
    packed.truncate(n);
    let mut x = 0x9e37_79b9u32;
    let mut rng = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut out = vec![0u8; json.len()];
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..20_000 {
        let mut m = packed.clone();
        for _ in 0..1 + rng() % 4 {
            let i = rng() as usize % m.len();
            m[i] ^= 1 << (rng() % 8);
        }
        if rng() % 4 == 0 {
            m.truncate(rng() as usize % m.len());
        }
        match qd.decompress(&m, &mut out) {
            Ok(n) => {
                assert!(n <= out.len());
                ok += 1
            }
            Err(_) => failed += 1,
        }
    }
    eprintln!("20000 damaged streams: {ok} inflated (to some bytes), {failed} refused, no crash");
}
