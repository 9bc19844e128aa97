//! The partition log's append and fetch, each beside its raw baseline in the
//! same run: appending 64 KiB batches with fsync=never — whole batches of
//! 64 KiB (header included, as Kafka's `batch.size` counts), and 64 KiB
//! payloads plus their header — against plain 64 KiB `write` calls into a
//! file in the same directory, and against the work any checksummed format
//! must do (CRC32C of the batch, a `writev` of a 64-byte header and the
//! payload; the `writev` alone; the same bytes as one unaligned `write`);
//! fetching (with CRC verification) from a sealed segment against a plain
//! copy of its bytes. Every writer starts a fresh target each 64 MiB with the
//! clock stopped, so the figures are of writing, not of making and deleting
//! files. docs/storage.md explains why the batch shape matters.

use std::fs::File;
use std::hint::black_box;
use std::io::{IoSlice, Write};
use std::time::{Duration, Instant};

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

/// Writes per target before it is made afresh (64 MiB of 64 KiB batches):
/// the data stays in the page cache, so writeback throttling does not swamp
/// the comparison, and the disk stays bounded.
const PER_TARGET: u64 = 1024;

/// Benchmarks `write` on a target made by `make`, remade every
/// [`PER_TARGET`] writes with the clock stopped (dropping the old one first):
/// what is timed is the writing alone, the same way on every side.
fn bench_writes<W>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut make: impl FnMut() -> W,
    mut write: impl FnMut(&mut W),
) {
    let mut target = Some(make());
    let mut n = 0u64;
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut start = Instant::now();
            for _ in 0..iters {
                write(target.as_mut().expect("a target"));
                n += 1;
                if n.is_multiple_of(PER_TARGET) {
                    timed += start.elapsed();
                    target = None;
                    target = Some(make());
                    start = Instant::now();
                }
            }
            timed + start.elapsed()
        })
    });
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
    let header = [7u8; 64];

    // A fresh log in `name` (like the baselines' re-create: the files go,
    // no fsync).
    let log = |name: &str| {
        let path = dir.path().join(name);
        move || {
            let _ = std::fs::remove_dir_all(&path);
            Log::open(&path, cfg()).unwrap().0
        }
    };
    // A 64 KiB batch as Kafka's `batch.size` counts it: header included, so
    // every append writes exactly the bytes one baseline `write` does.
    let whole = &payload[..BATCH - neo_storage::batch::HEADER_LEN];
    bench_writes(&mut g, "neo_batch_64k", log("log"), |l| {
        l.append(&meta, whole).unwrap();
    });
    // A 64 KiB payload plus its 64-byte header: every write then straddles
    // the 64 KiB folio boundaries the baseline's writes stay within.
    bench_writes(&mut g, "neo_payload_64k", log("log2"), |l| {
        l.append(&meta, &payload).unwrap();
    });
    let file = |name: &str| {
        let path = dir.path().join(name);
        move || File::create(&path).unwrap()
    };
    bench_writes(&mut g, "raw_write", file("raw"), |f| {
        f.write_all(&payload).unwrap()
    });
    bench_writes(&mut g, "raw_writev_header_and_crc", file("raw2"), |f| {
        black_box(neo_storage::batch::crc32c_parts(&[
            &header[..12],
            &header[16..],
            &payload,
        ]));
        let n = f
            .write_vectored(&[IoSlice::new(&header), IoSlice::new(&payload)])
            .unwrap();
        assert_eq!(n, 64 + BATCH);
    });
    bench_writes(&mut g, "raw_writev_header_no_crc", file("raw3"), |f| {
        let n = f
            .write_vectored(&[IoSlice::new(&header), IoSlice::new(&payload)])
            .unwrap();
        assert_eq!(n, 64 + BATCH);
    });
    // The same bytes as one contiguous `write`: tells whether the cost of
    // the header is the unaligned file offset or the second iovec.
    let joined = [&header[..], &payload[..]].concat();
    bench_writes(
        &mut g,
        "raw_write_unaligned_one_buffer",
        file("raw4"),
        |f| f.write_all(&joined).unwrap(),
    );
    // What a page-aligned layout would write: a filler to the page
    // boundary, the header at the end of that page, the payload aligned.
    let filler = vec![0u8; 4096 - 64];
    bench_writes(
        &mut g,
        "raw_writev_filler_header_payload_aligned",
        file("raw5"),
        |f| {
            let n = f
                .write_vectored(&[
                    IoSlice::new(&filler),
                    IoSlice::new(&header),
                    IoSlice::new(&payload),
                ])
                .unwrap();
            assert_eq!(n, 4096 + BATCH);
        },
    );
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
