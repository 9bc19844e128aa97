//! Compression and decompression throughput (bytes of uncompressed data per
//! second) and compression ratio per codec on a corpus the bench generates —
//! JSON log lines, metric samples, random bytes, 1 MiB each — with the bare
//! crate calls (lz4_flex, zstd) in the same run as the baselines for the
//! `Codec` path. Deflate is ISA-L's igzip (the bench builds neo-accel with
//! `isal`) and miniz_oxide.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use neo_accel::{Codec, Deflate, DeflateMiniz, Lz4, Zstd};

const SIZE: usize = 1 << 20;

fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let json: Vec<u8> = (0..)
        .flat_map(|i: u64| {
            format!(
                "{{\"ts\":\"2026-11-22T16:{:02}:{:02}.{:03}Z\",\"level\":\"{}\",\"svc\":\"broker\",\"msg\":\"fetch served\",\"partition\":{},\"bytes\":{}}}\n",
                i / 60 % 60, i % 60, i % 1000, ["info", "warn", "debug"][i as usize % 3], i % 64, (i * 7919) % 65_536
            )
            .into_bytes()
        })
        .take(SIZE)
        .collect();
    let metrics: Vec<u8> = (0..SIZE / 16)
        .flat_map(|i: usize| {
            let ts = 1_700_000_000_000u64 + i as u64 * 1000;
            let v = (((i as f64) / 50.0).sin() * 1000.0) as i64;
            [ts.to_le_bytes(), v.to_le_bytes()].concat()
        })
        .collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    vec![("json", json), ("metrics", metrics), ("random", random)]
}

fn configure(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
}

/// The `Codec` implementations measured, with their labels.
fn impls() -> Vec<(&'static str, Box<dyn Codec>)> {
    vec![
        ("lz4", Box::new(Lz4)),
        ("zstd1", Box::new(Zstd::new(1).unwrap())),
        ("zstd3", Box::new(Zstd::new(3).unwrap())),
        ("deflate1_isal", Box::new(Deflate::new(1))),
        ("deflate6_isal", Box::new(Deflate::new(6))),
        ("deflate6_miniz", Box::new(DeflateMiniz::new(6))),
    ]
}

fn compress(c: &mut Criterion) {
    let mut g = c.benchmark_group("compress");
    configure(&mut g);
    let mut out = vec![0u8; SIZE * 2];
    for (name, data) in corpus() {
        g.throughput(Throughput::Bytes(data.len() as u64));
        for (label, mut codec) in impls() {
            let n = codec.compress(&data, &mut out).unwrap();
            eprintln!(
                "ratio {label}/{name}: {:.3} ({} -> {} bytes)",
                data.len() as f64 / n as f64,
                data.len(),
                n
            );
            g.bench_with_input(
                BenchmarkId::new(format!("codec_{label}"), name),
                &data,
                |b, d| b.iter(|| black_box(codec.compress(d, &mut out).unwrap())),
            );
        }
        g.bench_with_input(BenchmarkId::new("bare_lz4_flex", name), &data, |b, d| {
            b.iter(|| black_box(lz4_flex::block::compress_into(d, &mut out).unwrap()))
        });
        let mut z = zstd::bulk::Compressor::new(3).unwrap();
        g.bench_with_input(BenchmarkId::new("bare_zstd3", name), &data, |b, d| {
            b.iter(|| black_box(z.compress_to_buffer(d, &mut out[..]).unwrap()))
        });
    }
    g.finish();
}

/// Decompression throughput, in bytes of decompressed output.
fn decompress(c: &mut Criterion) {
    let mut g = c.benchmark_group("decompress");
    configure(&mut g);
    let mut out = vec![0u8; SIZE];
    for (name, data) in corpus() {
        g.throughput(Throughput::Bytes(data.len() as u64));
        for (label, mut codec) in impls() {
            if label == "zstd1" || label == "deflate1_isal" {
                continue;
            }
            let mut comp = vec![0u8; codec.max_compressed_len(data.len())];
            let n = codec.compress(&data, &mut comp).unwrap();
            comp.truncate(n);
            g.bench_with_input(
                BenchmarkId::new(format!("codec_{label}"), name),
                &comp,
                |b, c| b.iter(|| black_box(codec.decompress(c, &mut out).unwrap())),
            );
        }
        let lz4 = lz4_flex::block::compress(&data);
        g.bench_with_input(BenchmarkId::new("bare_lz4_flex", name), &lz4, |b, c| {
            b.iter(|| black_box(lz4_flex::block::decompress_into(c, &mut out).unwrap()))
        });
        let zc = zstd::bulk::compress(&data, 3).unwrap();
        let mut z = zstd::bulk::Decompressor::new().unwrap();
        g.bench_with_input(BenchmarkId::new("bare_zstd3", name), &zc, |b, c| {
            b.iter(|| black_box(z.decompress_to_buffer(c, &mut out[..]).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, compress, decompress);
criterion_main!(benches);
