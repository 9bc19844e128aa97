//! Neo frame encode+decode per message size, against its raw baseline in the
//! same run: a bare CRC32C over the same bytes plus the copy every encoder must
//! make. The ratio shows what the frame header and its checks cost.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use neo_transports::frame::{self, Kind};
use std::hint::black_box;
use std::time::Duration;

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for size in [64usize, 1024, 64 << 10] {
        let payload = vec![0x5au8; size];
        let mut buf = vec![0u8; frame::encoded_len(size)];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(
            BenchmarkId::new("neo_encode_decode", size),
            &size,
            |b, _| {
                b.iter(|| {
                    frame::encode_with(&mut buf, Kind::Request, 0, 7, |p| {
                        p.copy_from_slice(&payload)
                    });
                    let f = frame::decode(black_box(&buf), usize::MAX).unwrap();
                    black_box(f.payload.len())
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("raw_copy_crc32c", size), &size, |b, _| {
            b.iter(|| {
                buf[frame::HEADER_LEN..].copy_from_slice(&payload);
                black_box(crc32c::crc32c(black_box(&buf[frame::HEADER_LEN..])))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
