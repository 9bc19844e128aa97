//! The `extern "C"` functions of `neo.h`: each checks its pointers, turns C
//! strings and buffers into Rust values, calls the safe half
//! ([`crate::NeoProducer`], [`crate::NeoConsumer`]) and reports failures
//! through a code and an optional `NeoError` out-parameter.
//!
//! Ownership: every `*_new` returns a handle the caller frees with its
//! `*_free` (NULL is accepted and ignored); a `NeoError` stored through an
//! `err` out-parameter is the caller's, freed with `neo_error_free`; a
//! `NeoMessage` from `neo_consumer_poll` is the caller's, freed with
//! `neo_message_free`, and the pointers its accessors return live as long as
//! it does. Input strings and buffers are only read during the call. Handles
//! are not thread-safe: use one from one thread at a time.

// These are entry points for C callers, whose contract is the ownership rules
// above (copied into neo.h); an `unsafe` marker would not reach them. Every
// dereference checks for NULL and carries its SAFETY line.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::time::Duration;

use crate::{NeoCode, NeoConsumer, NeoDeliveryCb, NeoError, NeoProducer, Pending};

/// A received record (owned by the caller until `neo_message_free`).
pub struct NeoMessage {
    topic: CString,
    partition: u32,
    offset: u64,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
}

/// Stores `e` through `err` (when the caller asked for it); returns its code.
fn fail(err: *mut *mut NeoError, e: NeoError) -> NeoCode {
    let code = e.code;
    if !err.is_null() {
        // SAFETY: the caller passes either NULL or a valid `NeoError**`.
        unsafe { *err = Box::into_raw(Box::new(e)) };
    }
    code
}

fn invalid(what: &str) -> NeoError {
    NeoError::new(NeoCode::NeoErrInvalidArgument, what.to_string())
}

/// A C string argument as UTF-8.
fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, NeoError> {
    if p.is_null() {
        return Err(invalid(&format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string that
    // stays valid during the call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| invalid(&format!("{what} is not UTF-8")))
}

/// A (pointer, length) argument; NULL with length 0 is the empty buffer.
fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], NeoError> {
    if p.is_null() {
        return match len {
            0 => Ok(&[]),
            _ => Err(invalid(&format!("{what} is NULL with length {len}"))),
        };
    }
    // SAFETY: the caller promises `len` readable bytes at `p` during the call.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

pub(crate) fn deliver(
    p: &Pending,
    topic: &CStr,
    partition: u32,
    offset: i64,
    err: Option<&NeoError>,
) {
    if let Some(cb) = p.cb {
        let e = err.map_or(ptr::null(), |e| e as *const NeoError);
        cb(p.opaque, topic.as_ptr(), partition, offset, e);
    }
}

/// The library's version, a static string.
#[no_mangle]
pub extern "C" fn neo_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// The code of an error.
#[no_mangle]
pub extern "C" fn neo_error_code(err: *const NeoError) -> NeoCode {
    // SAFETY: NULL or a NeoError from this library.
    unsafe { err.as_ref() }.map_or(NeoCode::NeoOk, |e| e.code)
}

/// The message of an error; lives as long as the error.
#[no_mangle]
pub extern "C" fn neo_error_message(err: *const NeoError) -> *const c_char {
    // SAFETY: NULL or a NeoError from this library.
    unsafe { err.as_ref() }.map_or(c"no error".as_ptr(), |e| e.message.as_ptr())
}

/// Frees an error (NULL is ignored).
#[no_mangle]
pub extern "C" fn neo_error_free(err: *mut NeoError) {
    if !err.is_null() {
        // SAFETY: the pointer came from Box::into_raw in `fail`, freed once.
        drop(unsafe { Box::from_raw(err) });
    }
}

/// `options` as an optional string (NULL: none).
fn opt_text<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, NeoError> {
    match p.is_null() {
        true => Ok(None),
        false => text(p, what).map(Some),
    }
}

/// Connects a producer to `bootstrap` ("host:port", or a cluster's brokers
/// comma-separated: leaders are found from the first one reached) over `transport`
/// ("tcp", "rdma", "af-xdp", "dpdk", "auto"); `options` (may be NULL):
/// "key=value,..." for the raw-frame transports, e.g.
/// "interface=eth1,local=10.0.0.1:7401". Idempotent, acks=all. NULL on failure.
#[no_mangle]
pub extern "C" fn neo_producer_new(
    bootstrap: *const c_char,
    transport: *const c_char,
    options: *const c_char,
    err: *mut *mut NeoError,
) -> *mut NeoProducer {
    let r = (|| {
        let b = text(bootstrap, "bootstrap")?;
        let t = text(transport, "transport")?;
        NeoProducer::open(b, t, opt_text(options, "options")?)
    })();
    match r {
        Ok(p) => Box::into_raw(Box::new(p)),
        Err(e) => {
            fail(err, e);
            ptr::null_mut()
        }
    }
}

/// Queues one record. `partition` < 0: by key hash, or sticky without a key.
/// `key` may be NULL (no key). `cb(opaque, ...)` reports the record's fate
/// from a later `neo_producer_poll`/`neo_producer_flush` (NULL: no report).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn neo_producer_send(
    producer: *mut NeoProducer,
    topic: *const c_char,
    partition: i32,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    cb: NeoDeliveryCb,
    opaque: *mut c_void,
    err: *mut *mut NeoError,
) -> NeoCode {
    // SAFETY: NULL or a live handle from neo_producer_new, used by one thread.
    let Some(p) = (unsafe { producer.as_mut() }) else {
        return fail(err, invalid("producer is NULL"));
    };
    let r = (|| {
        let topic = text(topic, "topic")?;
        let key = match key.is_null() {
            true => None,
            false => Some(bytes(key, key_len, "key")?),
        };
        let value = bytes(value, value_len, "value")?;
        let partition = u32::try_from(partition).ok();
        p.send(topic, partition, key, value, cb, opaque)
    })();
    match r {
        Ok(()) => NeoCode::NeoOk,
        Err(e) => fail(err, e),
    }
}

/// Moves batches along and runs due delivery callbacks. Returns how many
/// records were reported, or -1 with `*err` set.
#[no_mangle]
pub extern "C" fn neo_producer_poll(producer: *mut NeoProducer, err: *mut *mut NeoError) -> i64 {
    // SAFETY: NULL or a live handle from neo_producer_new.
    let Some(p) = (unsafe { producer.as_mut() }) else {
        fail(err, invalid("producer is NULL"));
        return -1;
    };
    match p.poll() {
        Ok(n) => n as i64,
        Err(e) => {
            fail(err, e);
            -1
        }
    }
}

/// Waits up to `timeout_ms` until every queued record is acknowledged (or
/// given up), running their callbacks.
#[no_mangle]
pub extern "C" fn neo_producer_flush(
    producer: *mut NeoProducer,
    timeout_ms: u32,
    err: *mut *mut NeoError,
) -> NeoCode {
    // SAFETY: NULL or a live handle from neo_producer_new.
    let Some(p) = (unsafe { producer.as_mut() }) else {
        return fail(err, invalid("producer is NULL"));
    };
    match p.flush(Duration::from_millis(timeout_ms as u64)) {
        Ok(_) => NeoCode::NeoOk,
        Err(e) => fail(err, e),
    }
}

/// Frees a producer. Records not yet flushed are dropped without callbacks:
/// call `neo_producer_flush` first.
#[no_mangle]
pub extern "C" fn neo_producer_free(producer: *mut NeoProducer) {
    if !producer.is_null() {
        // SAFETY: from Box::into_raw in neo_producer_new, freed once.
        drop(unsafe { Box::from_raw(producer) });
    }
}

/// Joins `group` as a consumer of `topics[0..n_topics]`; transport and
/// options as for `neo_producer_new`. NULL on failure.
#[no_mangle]
pub extern "C" fn neo_consumer_new(
    bootstrap: *const c_char,
    transport: *const c_char,
    options: *const c_char,
    group: *const c_char,
    topics: *const *const c_char,
    n_topics: usize,
    err: *mut *mut NeoError,
) -> *mut NeoConsumer {
    let r = (|| {
        let b = text(bootstrap, "bootstrap")?;
        let t = text(transport, "transport")?;
        let g = text(group, "group")?;
        if topics.is_null() && n_topics > 0 {
            return Err(invalid("topics is NULL"));
        }
        let list: Vec<&str> = (0..n_topics)
            // SAFETY: the caller promises `n_topics` string pointers at `topics`.
            .map(|i| text(unsafe { *topics.add(i) }, "a topic"))
            .collect::<Result<_, _>>()?;
        NeoConsumer::subscribe(b, t, opt_text(options, "options")?, g, &list)
    })();
    match r {
        Ok(c) => Box::into_raw(Box::new(c)),
        Err(e) => {
            fail(err, e);
            ptr::null_mut()
        }
    }
}

/// The next record, waiting up to `timeout_ms`. NULL when none arrived in
/// time (`*err` untouched) or on failure (`*err` set).
#[no_mangle]
pub extern "C" fn neo_consumer_poll(
    consumer: *mut NeoConsumer,
    timeout_ms: u32,
    err: *mut *mut NeoError,
) -> *mut NeoMessage {
    // SAFETY: NULL or a live handle from neo_consumer_new.
    let Some(c) = (unsafe { consumer.as_mut() }) else {
        fail(err, invalid("consumer is NULL"));
        return ptr::null_mut();
    };
    match c.poll(Duration::from_millis(timeout_ms as u64)) {
        Ok(Some(r)) => Box::into_raw(Box::new(NeoMessage {
            topic: CString::new(r.topic.as_bytes()).unwrap_or_default(),
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
        })),
        Ok(None) => ptr::null_mut(),
        Err(e) => {
            fail(err, e);
            ptr::null_mut()
        }
    }
}

/// Commits the positions of the records returned so far (durable when it returns).
#[no_mangle]
pub extern "C" fn neo_consumer_commit(
    consumer: *mut NeoConsumer,
    err: *mut *mut NeoError,
) -> NeoCode {
    // SAFETY: NULL or a live handle from neo_consumer_new.
    let Some(c) = (unsafe { consumer.as_mut() }) else {
        return fail(err, invalid("consumer is NULL"));
    };
    match c.commit() {
        Ok(()) => NeoCode::NeoOk,
        Err(e) => fail(err, e),
    }
}

/// Leaves the group (committing the records returned) and frees the
/// consumer; NULL is ignored. Returns the close's outcome.
#[no_mangle]
pub extern "C" fn neo_consumer_free(
    consumer: *mut NeoConsumer,
    err: *mut *mut NeoError,
) -> NeoCode {
    if consumer.is_null() {
        return NeoCode::NeoOk;
    }
    // SAFETY: from Box::into_raw in neo_consumer_new, freed once.
    let mut c = unsafe { Box::from_raw(consumer) };
    match c.close() {
        Ok(()) => NeoCode::NeoOk,
        Err(e) => fail(err, e),
    }
}

fn message<'a>(m: *const NeoMessage) -> Option<&'a NeoMessage> {
    // SAFETY: NULL or a live message from neo_consumer_poll.
    unsafe { m.as_ref() }
}

/// The record's topic; lives as long as the message.
#[no_mangle]
pub extern "C" fn neo_message_topic(m: *const NeoMessage) -> *const c_char {
    message(m).map_or(ptr::null(), |m| m.topic.as_ptr())
}

#[no_mangle]
pub extern "C" fn neo_message_partition(m: *const NeoMessage) -> u32 {
    message(m).map_or(0, |m| m.partition)
}

/// The record's offset (-1 for a NULL message).
#[no_mangle]
pub extern "C" fn neo_message_offset(m: *const NeoMessage) -> i64 {
    message(m).map_or(-1, |m| m.offset as i64)
}

/// Milliseconds since the epoch.
#[no_mangle]
pub extern "C" fn neo_message_timestamp(m: *const NeoMessage) -> i64 {
    message(m).map_or(-1, |m| m.timestamp)
}

/// The key and its length through `len`; NULL when the record has none.
#[no_mangle]
pub extern "C" fn neo_message_key(m: *const NeoMessage, len: *mut usize) -> *const u8 {
    let k = message(m).and_then(|m| m.key.as_deref());
    if !len.is_null() {
        // SAFETY: the caller passes NULL or a valid `size_t*`.
        unsafe { *len = k.map_or(0, <[u8]>::len) };
    }
    k.map_or(ptr::null(), <[u8]>::as_ptr)
}

/// The value and its length through `len`.
#[no_mangle]
pub extern "C" fn neo_message_value(m: *const NeoMessage, len: *mut usize) -> *const u8 {
    let v = message(m).map(|m| m.value.as_slice());
    if !len.is_null() {
        // SAFETY: the caller passes NULL or a valid `size_t*`.
        unsafe { *len = v.map_or(0, <[u8]>::len) };
    }
    v.map_or(ptr::null(), <[u8]>::as_ptr)
}

/// Frees a message (NULL is ignored).
#[no_mangle]
pub extern "C" fn neo_message_free(m: *mut NeoMessage) {
    if !m.is_null() {
        // SAFETY: from Box::into_raw in neo_consumer_poll, freed once.
        drop(unsafe { Box::from_raw(m) });
    }
}
