//! The engine's own header inside each UDP datagram (36 bytes, little-endian).
//!
//! ```text
//! offset size field
//!  0     2    magic    b"NP"
//!  2     1    version  1
//!  3     1    type     1 CONNECT, 2 ACCEPT, 3 DATA, 4 ACK, 5 CLOSE, 6 RESET
//!  4     1    flags    DATA: bit 0 FIRST fragment, bit 1 LAST fragment
//!  5     1    reserved 0
//!  6     2    window   credits: packets the sender of this header will accept
//!                      beyond `ack` (its reorder buffer)
//!  8     4    dst_sid  receiver's session id (0 in CONNECT)
//! 12     4    src_sid  sender's session id
//! 16     4    seq      DATA: packet sequence number; otherwise 0
//! 20     4    ack      cumulative: the next sequence number expected from the peer
//! 24     8    sack     bit i set: packet ack+1+i already received
//! 32     4    msg_len  DATA with FIRST: length of the whole message; otherwise 0
//! 36     ..   payload  DATA: this fragment's bytes
//! ```

pub const LEN: usize = 36;
const MAGIC: [u8; 2] = *b"NP";
const VERSION: u8 = 1;

pub const FIRST: u8 = 1;
pub const LAST: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Type {
    Connect = 1,
    Accept = 2,
    Data = 3,
    Ack = 4,
    Close = 5,
    Reset = 6,
}

impl Type {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Connect,
            2 => Self::Accept,
            3 => Self::Data,
            4 => Self::Ack,
            5 => Self::Close,
            6 => Self::Reset,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ty: Type,
    pub flags: u8,
    pub window: u16,
    pub dst_sid: u32,
    pub src_sid: u32,
    pub seq: u32,
    pub ack: u32,
    pub sack: u64,
    pub msg_len: u32,
}

impl Header {
    pub fn control(ty: Type, dst_sid: u32, src_sid: u32) -> Self {
        Self {
            ty,
            flags: 0,
            window: 0,
            dst_sid,
            src_sid,
            seq: 0,
            ack: 0,
            sack: 0,
            msg_len: 0,
        }
    }

    pub fn write(&self, b: &mut [u8]) {
        b[0..2].copy_from_slice(&MAGIC);
        b[2] = VERSION;
        b[3] = self.ty as u8;
        b[4] = self.flags;
        b[5] = 0;
        b[6..8].copy_from_slice(&self.window.to_le_bytes());
        b[8..12].copy_from_slice(&self.dst_sid.to_le_bytes());
        b[12..16].copy_from_slice(&self.src_sid.to_le_bytes());
        b[16..20].copy_from_slice(&self.seq.to_le_bytes());
        b[20..24].copy_from_slice(&self.ack.to_le_bytes());
        b[24..32].copy_from_slice(&self.sack.to_le_bytes());
        b[32..36].copy_from_slice(&self.msg_len.to_le_bytes());
    }

    /// Parses the header of a datagram; `None` for anything that is not a
    /// well-formed version-1 engine packet.
    pub fn parse(b: &[u8]) -> Option<(Self, &[u8])> {
        let h = b.get(..LEN)?;
        if h[0..2] != MAGIC || h[2] != VERSION || h[5] != 0 {
            return None;
        }
        let u32_at = |at: usize| u32::from_le_bytes(h[at..at + 4].try_into().expect("4 bytes"));
        let ty = Type::from_u8(h[3])?;
        let flags = h[4];
        if flags & !(FIRST | LAST) != 0 || (ty != Type::Data && flags != 0) {
            return None;
        }
        let hdr = Self {
            ty,
            flags,
            window: u16::from_le_bytes([h[6], h[7]]),
            dst_sid: u32_at(8),
            src_sid: u32_at(12),
            seq: u32_at(16),
            ack: u32_at(20),
            sack: u64::from_le_bytes(h[24..32].try_into().expect("8 bytes")),
            msg_len: u32_at(32),
        };
        let payload = &b[LEN..];
        if ty != Type::Data && !payload.is_empty() {
            return None;
        }
        Some((hdr, payload))
    }
}

/// `a` comes before `b` in wrapping sequence space.
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_rejections() {
        let h = Header {
            ty: Type::Data,
            flags: FIRST | LAST,
            window: 256,
            dst_sid: 7,
            src_sid: 9,
            seq: u32::MAX,
            ack: 3,
            sack: 0b101,
            msg_len: 1234,
        };
        let mut b = vec![0u8; LEN + 3];
        h.write(&mut b);
        b[LEN..].copy_from_slice(b"abc");
        assert_eq!(Header::parse(&b), Some((h, &b"abc"[..])));
        assert_eq!(Header::parse(&b[..LEN - 1]), None);
        let mut bad = b.clone();
        bad[4] = 4;
        assert_eq!(Header::parse(&bad), None, "unknown flag");
        let mut ack = vec![0u8; LEN + 1];
        Header::control(Type::Ack, 1, 2).write(&mut ack);
        assert_eq!(
            Header::parse(&ack),
            None,
            "control packets carry no payload"
        );
        assert!(before(u32::MAX, 0) && before(1, 2) && !before(2, 2));
    }
}
