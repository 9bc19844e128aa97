//! The partition log's append and fetch, each beside its raw baseline in the
//! same run: appending 64 KiB batches with fsync=never against plain 64 KiB
//! `write` calls into a file in the same directory, and against the work any
//! checksummed format must do (CRC32C of the batch, a `writev` of a 64-byte
//! header and the payload; and the `writev` alone); fetching (with CRC verification) from a sealed
//! segment against a plain copy of its bytes.

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use neo_storage::{BatchMeta, FsyncPolicy, Log, LogConfig};

const BATCH: usize = 64 << 10;

fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 256 << 20,
        max_batch: 1 << 20,
        fsync: FsyncPolicy::Never,
        retention_age: None,
        ..LogConfig::default()
    }
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_64k_fsync_never");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    g.throughput(Throughput::Bytes(BATCH as u64));
    let dir = tempfile::tempdir().unwrap();
    let payload = vec![0x42u8; BATCH];
    let meta = BatchMeta::simple(64, 1);

    let log_dir = dir.path().join("log");
    let (mut log, _) = Log::open(&log_dir, cfg()).unwrap();
    let mut n = 0u64;
    g.bench_function("neo", |b| {
        b.iter(|| {
            log.append(&meta, &payload).unwrap();
            n += 1;
            // Start over every 64 MiB (both sides alike): the data stays in
            // the page cache, so writeback throttling does not swamp the
            // comparison, and the disk stays bounded.
            if n.is_multiple_of(1024) {
                // Like the baseline's re-create: drop the files, no fsync.
                std::fs::remove_dir_all(&log_dir).unwrap();
                log = Log::open(&log_dir, cfg()).unwrap().0;
            }
        })
    });
    drop(log);

    let path = dir.path().join("raw");
    let mut f = File::create(&path).unwrap();
    let mut m = 0u64;
    g.bench_function("raw_write", |b| {
        b.iter(|| {
            f.write_all(&payload).unwrap();
            m += 1;
            if m.is_multiple_of(1024) {
                f = File::create(&path).unwrap();
            }
        })
    });
    let path2 = dir.path().join("raw2");
    let mut f2 = File::create(&path2).unwrap();
    let mut k = 0u64;
    let header = [7u8; 64];
    g.bench_function("raw_writev_header_and_crc", |b| {
        b.iter(|| {
            black_box(neo_storage::batch::crc32c_parts(&[
                &header[..12],
                &header[16..],
                &payload,
            ]));
            use std::io::IoSlice;
            let n = f2
                .write_vectored(&[IoSlice::new(&header), IoSlice::new(&payload)])
                .unwrap();
            assert_eq!(n, 64 + BATCH);
            k += 1;
            if k.is_multiple_of(1024) {
                f2 = File::create(&path2).unwrap();
            }
        })
    });
    let path3 = dir.path().join("raw3");
    let mut f3 = File::create(&path3).unwrap();
    let mut j = 0u64;
    g.bench_function("raw_writev_header_no_crc", |b| {
        b.iter(|| {
            use std::io::IoSlice;
            let n = f3
                .write_vectored(&[IoSlice::new(&header), IoSlice::new(&payload)])
                .unwrap();
            assert_eq!(n, 64 + BATCH);
            j += 1;
            if j.is_multiple_of(1024) {
                f3 = File::create(&path3).unwrap();
            }
        })
    });
    // The same bytes as one contiguous `write`: tells whether the cost of
    // the header is the unaligned file offset or the second iovec.
    let path4 = dir.path().join("raw4");
    let mut f4 = File::create(&path4).unwrap();
    let mut q = 0u64;
    let joined = [&header[..], &payload[..]].concat();
    g.bench_function("raw_write_unaligned_one_buffer", |b| {
        b.iter(|| {
            f4.write_all(&joined).unwrap();
            q += 1;
            if q.is_multiple_of(1024) {
                f4 = File::create(&path4).unwrap();
            }
        })
    });
    // What a page-aligned layout would write: a filler to the page
    // boundary, the header at the end of that page, the payload aligned.
    let path5 = dir.path().join("raw5");
    let mut f5 = File::create(&path5).unwrap();
    let mut w = 0u64;
    let filler = vec![0u8; 4096 - 64];
    g.bench_function("raw_writev_filler_header_payload_aligned", |b| {
        b.iter(|| {
            use std::io::IoSlice;
            let n = f5
                .write_vectored(&[
                    IoSlice::new(&filler),
                    IoSlice::new(&header),
                    IoSlice::new(&payload),
                ])
                .unwrap();
            assert_eq!(n, 4096 + BATCH);
            w += 1;
            if w.is_multiple_of(1024) {
                f5 = File::create(&path5).unwrap();
            }
        })
    });
    g.finish();
}

fn fetch(c: &mut Criterion) {
    let mut g = c.benchmark_group("fetch_sealed_segment");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), cfg()).unwrap();
    let payload = vec![0x42u8; 16 << 10];
    for _ in 0..1024 {
        log.append(&BatchMeta::simple(16, 1), &payload).unwrap();
    }
    log.roll().unwrap();
    let r = log.reader();
    let total: usize = (16 << 10) * 1024;
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("neo_fetch_1MiB_views_crc_checked", |b| {
        b.iter(|| {
            let mut off = 0;
            let mut bytes = 0;
            while off < r.end_offset() {
                let v = r.fetch(off, 1 << 20).unwrap();
                bytes += v.bytes().len();
                off = v
                    .batches()
                    .last()
                    .map(|(h, _)| h.last_offset() + 1)
                    .unwrap();
            }
            black_box(bytes)
        })
    });
    let mut copy = vec![0u8; 1 << 20];
    let all = r.fetch(0, usize::MAX).unwrap();
    g.bench_function("raw_copy_of_the_same_bytes", |b| {
        b.iter(|| {
            for chunk in all.bytes().chunks(1 << 20) {
                copy[..chunk.len()].copy_from_slice(chunk);
                black_box(&copy);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, append, fetch);
criterion_main!(benches);
