//! Property tests of the Neo frame codec: whatever is encoded decodes to the
//! same thing, and no input — random, truncated or bit-flipped — panics the
//! decoder or gets past it altered.

use neo_transports::frame::{self, FrameError, Kind, HEADER_LEN};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Request), Just(Kind::Response), Just(Kind::Error)]
}

fn encode(kind: Kind, corr: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; frame::encoded_len(payload.len())];
    frame::encode_with(&mut out, kind, 0, corr, |p| p.copy_from_slice(payload));
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(kind in kind(), corr in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let msg = encode(kind, corr, &payload);
        let f = frame::decode(&msg, 1 << 20).unwrap();
        prop_assert_eq!(f.header.kind, kind);
        prop_assert_eq!(f.header.correlation, corr);
        prop_assert_eq!(f.header.length as usize, payload.len());
        prop_assert_eq!(f.payload, &payload[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = frame::decode(&bytes, 1 << 20);
        let _ = frame::peek_correlation(&bytes);
    }

    #[test]
    fn any_single_bit_flip_is_rejected(
        kind in kind(),
        corr in any::<u64>(),
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        bit in any::<prop::sample::Index>(),
    ) {
        let mut msg = encode(kind, corr, &payload);
        let bit = bit.index(msg.len() * 8);
        msg[bit / 8] ^= 1 << (bit % 8);
        // CRC32C detects every single-bit error; header fields may fail earlier.
        prop_assert!(frame::decode(&msg, 1 << 20).is_err(), "flip of bit {} accepted", bit);
    }

    #[test]
    fn every_truncation_is_rejected(
        payload in proptest::collection::vec(any::<u8>(), 1..512),
        cut in any::<prop::sample::Index>(),
    ) {
        let msg = encode(Kind::Request, 1, &payload);
        let cut = cut.index(msg.len());
        let err = frame::decode(&msg[..cut], 1 << 20).unwrap_err();
        if cut < HEADER_LEN {
            prop_assert_eq!(err, FrameError::Truncated { have: cut });
        } else {
            let is_mismatch = matches!(err, FrameError::LengthMismatch { .. });
            prop_assert!(is_mismatch, "cut at {}: {:?}", cut, err);
        }
    }
}
