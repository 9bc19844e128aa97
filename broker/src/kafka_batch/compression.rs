//! Kafka's batch compression codecs, decompressed with a bound: a batch
//! that would inflate past the limit is refused after `limit` bytes, so a
//! small request cannot make the broker allocate gigabytes.
//!
//! Codec ids are Kafka's (attributes & 7): 1 gzip, 2 snappy (raw, or in
//! xerial's framing as the Java client writes it), 3 lz4 (frame format), 4 zstd.

use std::io::Read;

/// xerial snappy-java's stream header.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

fn read_bounded(mut r: impl Read, limit: usize, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    (&mut r)
        .take(limit as u64 + 1)
        .read_to_end(out)
        .map_err(|e| e.to_string())?;
    if out.len() > limit {
        return Err(format!("inflates past {limit} bytes"));
    }
    Ok(())
}

fn snappy_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let n = snap::raw::decompress_len(block).map_err(|e| e.to_string())?;
    if out.len() + n > limit {
        return Err(format!("inflates past {limit} bytes"));
    }
    let at = out.len();
    out.resize(at + n, 0);
    let got = snap::raw::Decoder::new()
        .decompress(block, &mut out[at..])
        .map_err(|e| e.to_string())?;
    out.truncate(at + got);
    Ok(())
}

fn snappy(data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    if !data.starts_with(XERIAL_MAGIC) {
        return snappy_block(data, limit, out);
    }
    let mut rest = data
        .get(XERIAL_HEADER_LEN..)
        .ok_or("xerial snappy header truncated")?;
    while !rest.is_empty() {
        let len = rest.get(..4).ok_or("xerial block length truncated")?;
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let block = rest.get(4..4 + len).ok_or("xerial block truncated")?;
        snappy_block(block, limit, out)?;
        rest = &rest[4 + len..];
    }
    Ok(())
}

/// Inflates `data` (Kafka codec `codec`, 1..=4) into `out`, at most `limit` bytes.
pub fn decompress(codec: u8, data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let r = match codec {
        1 => read_bounded(flate2::read::MultiGzDecoder::new(data), limit, out),
        2 => snappy(data, limit, out),
        3 => {
            let d = lz4::Decoder::new(data).map_err(|e| e.to_string())?;
            read_bounded(d, limit, out)
        }
        4 => {
            let d = zstd::stream::read::Decoder::with_buffer(data).map_err(|e| e.to_string())?;
            read_bounded(d, limit, out)
        }
        c => Err(format!("unknown codec {c}")),
    };
    r.map_err(|e| format!("{}: {e}", name(codec)))
}

pub fn name(codec: u8) -> &'static str {
    match codec {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "unknown",
    }
}
