//! Compression throughput (MB/s of input) and ratio per codec on a corpus the
//! bench generates — JSON log lines, metric samples, random bytes — with the
//! bare crate call (lz4_flex, zstd) in the same run as the baseline for the
//! `Codec` path.

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

fn codecs(c: &mut Criterion) {
    let mut g = c.benchmark_group("compress");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    let mut out = vec![0u8; SIZE * 2];
    for (name, data) in corpus() {
        g.throughput(Throughput::Bytes(data.len() as u64));
        let mut impls: Vec<(&str, Box<dyn Codec>)> = vec![
            ("lz4", Box::new(Lz4)),
            ("zstd3", Box::new(Zstd::new(3).unwrap())),
            ("deflate6_isal", Box::new(Deflate::new(6))),
            ("deflate6_miniz", Box::new(DeflateMiniz::new(6))),
        ];
        for (label, codec) in impls.iter_mut() {
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

criterion_group!(benches, codecs);
criterion_main!(benches);
