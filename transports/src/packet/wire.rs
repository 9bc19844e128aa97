//! Ethernet II, ARP (IPv4 over Ethernet), IPv4 and UDP: parsing in place and
//! building in place, with the Internet checksum. Only what the engine sends
//! and accepts: no VLAN tags, no IP options on transmit, no IP fragments
//! (the engine fragments messages itself and sets DF).

use std::net::Ipv4Addr;

pub const ETH_LEN: usize = 14;
pub const IPV4_LEN: usize = 20;
pub const UDP_LEN: usize = 8;
/// Ethernet + IPv4 + UDP headers in front of every engine packet.
pub const HEADERS: usize = ETH_LEN + IPV4_LEN + UDP_LEN;
pub const ARP_LEN: usize = 28;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const BROADCAST: [u8; 6] = [0xff; 6];
const PROTO_UDP: u8 = 17;

/// Why a frame was not accepted; each has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    Malformed,
    BadChecksum,
    /// Well-formed but for another host, port or protocol.
    NotForUs,
    /// An IP fragment (the engine never sends them).
    Fragment,
}

/// A parsed frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    Arp(Arp),
    Udp {
        src_mac: [u8; 6],
        src: Ipv4Addr,
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    },
}

/// An ARP packet (IPv4 over Ethernet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn mac(b: &[u8], at: usize) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[at..at + 6]);
    m
}

fn ip(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// One's-complement sum of `data` folded into `acc` (not yet complemented).
pub fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc + u32::from_be_bytes(tail) as u64
}

/// Folds a running sum into the 16-bit checksum field value.
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, udp_len: u16) -> u64 {
    sum(0, &src.octets()) + sum(0, &dst.octets()) + PROTO_UDP as u64 + udp_len as u64
}

/// Parses a frame addressed to `my_ip`/`my_port` (ARP: any).
pub fn parse(frame: &[u8], my_ip: Ipv4Addr, my_port: u16) -> Result<Parsed<'_>, Drop> {
    if frame.len() < ETH_LEN {
        return Err(Drop::Malformed);
    }
    let src_mac = mac(frame, 6);
    match be16(frame, 12) {
        ETHERTYPE_ARP => parse_arp(&frame[ETH_LEN..]).map(Parsed::Arp),
        ETHERTYPE_IPV4 => {
            let ipv4 = &frame[ETH_LEN..];
            if ipv4.len() < IPV4_LEN || ipv4[0] >> 4 != 4 {
                return Err(Drop::Malformed);
            }
            let ihl = (ipv4[0] & 0x0f) as usize * 4;
            let total = be16(ipv4, 2) as usize;
            if ihl < IPV4_LEN || total < ihl || total > ipv4.len() {
                return Err(Drop::Malformed);
            }
            if fold(sum(0, &ipv4[..ihl])) != 0 {
                return Err(Drop::BadChecksum);
            }
            if be16(ipv4, 6) & 0x3fff != 0 {
                return Err(Drop::Fragment);
            }
            let (src, dst) = (ip(ipv4, 12), ip(ipv4, 16));
            if ipv4[9] != PROTO_UDP || dst != my_ip {
                return Err(Drop::NotForUs);
            }
            let udp = &ipv4[ihl..total];
            if udp.len() < UDP_LEN || (be16(udp, 4) as usize) != udp.len() {
                return Err(Drop::Malformed);
            }
            let dst_port = be16(udp, 2);
            if dst_port != my_port {
                return Err(Drop::NotForUs);
            }
            if be16(udp, 6) != 0 && fold(sum(pseudo_header(src, dst, udp.len() as u16), udp)) != 0 {
                return Err(Drop::BadChecksum);
            }
            Ok(Parsed::Udp {
                src_mac,
                src,
                src_port: be16(udp, 0),
                dst_port,
                payload: &udp[UDP_LEN..],
            })
        }
        _ => Err(Drop::NotForUs),
    }
}

fn parse_arp(b: &[u8]) -> Result<Arp, Drop> {
    if b.len() < ARP_LEN {
        return Err(Drop::Malformed);
    }
    // Ethernet hardware (1), IPv4 protocol, 6-byte MACs, 4-byte addresses.
    if be16(b, 0) != 1 || be16(b, 2) != ETHERTYPE_IPV4 || b[4] != 6 || b[5] != 4 {
        return Err(Drop::NotForUs);
    }
    let op = be16(b, 6);
    if op != ARP_REQUEST && op != ARP_REPLY {
        return Err(Drop::Malformed);
    }
    Ok(Arp {
        op,
        sender_mac: mac(b, 8),
        sender_ip: ip(b, 14),
        target_mac: mac(b, 18),
        target_ip: ip(b, 24),
    })
}

/// Addresses of one UDP packet on the wire.
#[derive(Debug, Clone, Copy)]
pub struct UdpAddrs {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
}

/// Writes Ethernet, IPv4 and UDP headers into `frame[..HEADERS]` for the
/// payload already in `frame[HEADERS..]`, checksums included (veth and TAP
/// leave UDP checksums to offload that a userspace stack does not get).
pub fn write_udp(frame: &mut [u8], a: &UdpAddrs) {
    let udp_len = (frame.len() - ETH_LEN - IPV4_LEN) as u16;
    let (eth, rest) = frame.split_at_mut(ETH_LEN);
    eth[0..6].copy_from_slice(&a.dst_mac);
    eth[6..12].copy_from_slice(&a.src_mac);
    eth[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let (ipv4, udp) = rest.split_at_mut(IPV4_LEN);
    ipv4[0] = 0x45;
    ipv4[1] = 0;
    ipv4[2..4].copy_from_slice(&(udp_len + IPV4_LEN as u16).to_be_bytes());
    ipv4[4..6].copy_from_slice(&[0, 0]);
    ipv4[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
    ipv4[8] = 64;
    ipv4[9] = PROTO_UDP;
    ipv4[10..12].copy_from_slice(&[0, 0]);
    ipv4[12..16].copy_from_slice(&a.src.octets());
    ipv4[16..20].copy_from_slice(&a.dst.octets());
    let c = fold(sum(0, ipv4));
    ipv4[10..12].copy_from_slice(&c.to_be_bytes());
    udp[0..2].copy_from_slice(&a.src_port.to_be_bytes());
    udp[2..4].copy_from_slice(&a.dst_port.to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    let c = match fold(sum(pseudo_header(a.src, a.dst, udp_len), udp)) {
        0 => 0xffff, // 0 means "no checksum" in UDP
        c => c,
    };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
}

/// Writes a whole ARP frame (`ETH_LEN + ARP_LEN` bytes).
pub fn write_arp(frame: &mut [u8], eth_dst: [u8; 6], arp: &Arp) {
    frame[0..6].copy_from_slice(&eth_dst);
    frame[6..12].copy_from_slice(&arp.sender_mac);
    frame[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    let b = &mut frame[ETH_LEN..ETH_LEN + ARP_LEN];
    b[0..2].copy_from_slice(&1u16.to_be_bytes());
    b[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    b[4] = 6;
    b[5] = 4;
    b[6..8].copy_from_slice(&arp.op.to_be_bytes());
    b[8..14].copy_from_slice(&arp.sender_mac);
    b[14..18].copy_from_slice(&arp.sender_ip.octets());
    b[18..24].copy_from_slice(&arp.target_mac);
    b[24..28].copy_from_slice(&arp.target_ip.octets());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_round_trip_and_checksums_verified() {
        let a = UdpAddrs {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            src_port: 4000,
            dst_port: 5000,
        };
        let mut f = vec![0u8; HEADERS + 5];
        f[HEADERS..].copy_from_slice(b"hello");
        write_udp(&mut f, &a);
        let p = parse(&f, a.dst, 5000).unwrap();
        assert_eq!(
            p,
            Parsed::Udp {
                src_mac: a.src_mac,
                src: a.src,
                src_port: 4000,
                dst_port: 5000,
                payload: b"hello"
            }
        );
        assert_eq!(parse(&f, a.dst, 5001), Err(Drop::NotForUs));
        assert_eq!(parse(&f, a.src, 5000), Err(Drop::NotForUs));
        let mut bad = f.clone();
        bad[HEADERS] ^= 1;
        assert_eq!(parse(&bad, a.dst, 5000), Err(Drop::BadChecksum));
        let mut bad = f.clone();
        bad[ETH_LEN + 8] = 1; // TTL: breaks the IP header checksum
        assert_eq!(parse(&bad, a.dst, 5000), Err(Drop::BadChecksum));
        for cut in 0..f.len() {
            assert!(parse(&f[..cut], a.dst, 5000).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn arp_round_trip() {
        let arp = Arp {
            op: ARP_REQUEST,
            sender_mac: [2, 0, 0, 0, 0, 1],
            sender_ip: Ipv4Addr::new(10, 0, 0, 1),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(10, 0, 0, 2),
        };
        let mut f = vec![0u8; ETH_LEN + ARP_LEN];
        write_arp(&mut f, BROADCAST, &arp);
        assert_eq!(parse(&f, Ipv4Addr::UNSPECIFIED, 0), Ok(Parsed::Arp(arp)));
    }
}
