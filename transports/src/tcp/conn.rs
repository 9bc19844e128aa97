//! One TCP connection's two halves: the receive half (read buffer and message
//! parser) and the send half (the socket and its write queue). They live in two
//! slabs with equal keys so a received message can stay borrowed from the read
//! buffer while the handler sends on any connection. Under TLS the send half
//! also holds the connection's rustls state ([`TlsConn`]); the buffers keep
//! plaintext either way.

use std::io::{self, IoSlice, Read, Write};

use mio::net::TcpStream;

use super::tls_conn::TlsConn;
use crate::transport::CloseReason;

/// Bytes of the length prefix in front of every message.
pub const PREFIX: usize = 4;

/// Receive half: a contiguous buffer, `start..end` holds unparsed bytes.
pub struct RxHalf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// What parsing the read buffer found next.
pub enum Parsed {
    /// A whole message at `range` of the buffer.
    Message(std::ops::Range<usize>),
    /// Not enough bytes yet.
    Incomplete,
    /// The peer announced a message above the limit.
    Oversize(u64),
}

impl RxHalf {
    pub fn new(initial: usize) -> Self {
        Self {
            buf: vec![0; initial],
            start: 0,
            end: 0,
        }
    }

    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    pub fn bytes(&self, range: std::ops::Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Parses the next message without consuming it; [`Self::consume`] after use.
    pub fn next_message(&self, max: usize) -> Parsed {
        let avail = &self.buf[self.start..self.end];
        let Some(prefix) = avail.get(..PREFIX) else {
            return Parsed::Incomplete;
        };
        let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
        if len > max {
            return Parsed::Oversize(len as u64);
        }
        if avail.len() < PREFIX + len {
            return Parsed::Incomplete;
        }
        let at = self.start + PREFIX;
        Parsed::Message(at..at + len)
    }

    pub fn consume(&mut self, range_end: usize) {
        self.start = range_end;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads once from `src` (the socket, or rustls' plaintext reader) into
    /// free space, making room first (compact, then grow up to one maximal
    /// message). Returns bytes read (0 means EOF) and whether the read filled
    /// all the space offered: a socket read that did not has drained the
    /// socket, and any later data raises a new edge.
    pub fn read_from(&mut self, src: &mut impl Read, max: usize) -> io::Result<(usize, bool)> {
        if self.end == self.buf.len() {
            self.make_room(max);
        }
        let space = self.buf.len() - self.end;
        let n = src.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok((n, n == space))
    }

    fn make_room(&mut self, max: usize) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A single message larger than the buffer: grow, bounded by the
            // largest legal message (the parser rejects anything larger).
            let want = (self.buf.len() * 2)
                .min(max + PREFIX)
                .max(self.buf.len() + 1);
            self.buf.resize(want, 0);
        }
    }
}

/// Send half: the socket and a write queue of framed messages.
pub struct TxHalf {
    pub stream: TcpStream,
    wbuf: Vec<u8>,
    sent: usize,
    pub connected: bool,
    /// On the dirty list already.
    pub dirty: bool,
    /// Close once the queue is drained.
    pub closing: Option<CloseReason>,
    /// TLS state when this connection speaks TLS; the queue holds plaintext.
    pub tls: Option<Box<TlsConn>>,
}

/// Result of pushing the queue at the socket.
pub enum Flushed {
    Done,
    Blocked,
}

impl TxHalf {
    pub fn new(stream: TcpStream, connected: bool, tls: Option<Box<TlsConn>>) -> Self {
        Self {
            stream,
            wbuf: Vec::new(),
            sent: 0,
            connected,
            dirty: false,
            closing: None,
            tls,
        }
    }

    pub fn pending(&self) -> usize {
        self.wbuf.len() - self.sent
    }

    /// Appends a length-prefixed message of `len` bytes written by `fill`.
    pub fn queue_with(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) {
        self.compact_if_worthwhile();
        let at = self.wbuf.len();
        self.wbuf.extend_from_slice(&(len as u32).to_be_bytes());
        self.wbuf.resize(at + PREFIX + len, 0);
        fill(&mut self.wbuf[at + PREFIX..]);
    }

    /// Appends a length-prefixed message gathered from `parts`.
    pub fn queue_parts(&mut self, len: usize, parts: &[&[u8]]) {
        self.compact_if_worthwhile();
        self.wbuf.extend_from_slice(&(len as u32).to_be_bytes());
        for p in parts {
            self.wbuf.extend_from_slice(p);
        }
    }

    /// With nothing queued, writes prefix and `parts` straight from the
    /// caller's memory in one `writev`, and queues only what the socket did not
    /// take. Saves a copy for large messages (a fetch response's log bytes).
    pub fn write_direct(&mut self, len: usize, parts: &[&[u8]]) -> io::Result<()> {
        debug_assert_eq!(self.pending(), 0);
        let prefix = (len as u32).to_be_bytes();
        let mut iov: [IoSlice<'_>; 8] = [IoSlice::new(&[]); 8];
        iov[0] = IoSlice::new(&prefix);
        let n_iov = 1 + parts.len().min(7);
        for (slot, p) in iov[1..n_iov].iter_mut().zip(parts) {
            *slot = IoSlice::new(p);
        }
        let mut written = if parts.len() <= 7 {
            match self.stream.write_vectored(&iov[..n_iov]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            }
        } else {
            0
        };
        // Queue the remainder (from wherever the socket stopped).
        let mut skip = |chunk: &[u8], out: &mut Vec<u8>| {
            if written >= chunk.len() {
                written -= chunk.len();
            } else {
                out.extend_from_slice(&chunk[written..]);
                written = 0;
            }
        };
        skip(&prefix, &mut self.wbuf);
        for p in parts {
            skip(p, &mut self.wbuf);
        }
        Ok(())
    }

    fn compact_if_worthwhile(&mut self) {
        if self.sent > 0 && self.sent >= self.wbuf.len() / 2 {
            self.wbuf.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// Writes queued bytes until the socket pushes back or the queue is empty
    /// (under TLS: through rustls, with a close_notify when closing).
    pub fn flush(&mut self) -> io::Result<Flushed> {
        if let Some(tls) = &mut self.tls {
            let closing = self.closing.is_some();
            return tls.flush(&mut self.stream, &mut self.wbuf, &mut self.sent, closing);
        }
        while self.sent < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wbuf.clear();
        self.sent = 0;
        Ok(Flushed::Done)
    }
}

/// Maps a socket error to a close reason.
pub fn reason_for(err: &io::Error) -> CloseReason {
    match err.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => CloseReason::Reset,
        kind => CloseReason::Io(kind),
    }
}
