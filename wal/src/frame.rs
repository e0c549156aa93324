//! Byte layout of one record frame: how a record is stored and how it is checked.
//!
//! ```text
//! offset size field
//!      0    4 payload length N, u32 little-endian
//!      4    8 record index, u64 little-endian
//!     12    4 CRC32 (IEEE, crc32fast) of bytes 0..12 followed by the N payload bytes
//!     16    N payload
//! ```
//!
//! The checksum covers the length and the index as well as the payload: a flipped length bit
//! cannot silently re-frame the rest of the file, and a frame that is intact but sits at the wrong
//! place in the sequence is caught by comparing its index with the expected one.

/// Size of a frame's fixed part (length, index, checksum).
pub(crate) const FRAME_HEADER_LEN: usize = 16;

/// Bytes of the fixed part covered by the checksum (length and index).
const CHECKED_HEADER_LEN: usize = 12;

/// A valid frame decoded from a byte slice; the payload borrows from that slice.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    /// The record index stored in the frame.
    pub(crate) index: u64,
    /// The record itself.
    pub(crate) payload: &'a [u8],
    /// Total bytes the frame occupies, header included: where the next frame starts.
    pub(crate) len: usize,
}

/// Why the bytes at some offset are not a valid frame.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameFault {
    /// Fewer than [`FRAME_HEADER_LEN`] bytes are left.
    #[error("frame header needs {FRAME_HEADER_LEN} bytes but only {available} remain")]
    HeaderPastEnd { available: usize },
    /// The declared payload runs past the end of the available bytes. The length is checked
    /// against the bytes actually present before anything is allocated, so a garbage length can
    /// never make the log allocate gigabytes.
    #[error("frame declares a {declared}-byte payload but only {available} bytes remain")]
    PayloadPastEnd { declared: u32, available: usize },
    /// The stored checksum does not match the bytes.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
}

/// Appends the frame of record `index` to `out`.
///
/// Fails only if the payload does not fit the u32 length field; the writer rejects such records
/// earlier (they exceed any `record_bytes_max`), so this is a guard, not a normal path.
pub(crate) fn encode(out: &mut Vec<u8>, index: u64, payload: &[u8]) -> Result<(), FrameTooLarge> {
    let len = u32::try_from(payload.len()).map_err(|_| FrameTooLarge)?;
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    let crc = checksum(&out[start..start + CHECKED_HEADER_LEN], payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// A payload longer than the u32 length field can describe.
#[derive(Debug)]
pub(crate) struct FrameTooLarge;

/// Decodes the frame at the start of `bytes`, verifying its checksum. Bytes after the frame are
/// ignored; `Frame::len` says where they start.
pub(crate) fn decode(bytes: &[u8]) -> Result<Frame<'_>, FrameFault> {
    let header_past_end = || FrameFault::HeaderPastEnd { available: bytes.len() };
    let declared = le_u32(bytes, 0).ok_or_else(header_past_end)?;
    let index = le_u64(bytes, 4).ok_or_else(header_past_end)?;
    let stored = le_u32(bytes, CHECKED_HEADER_LEN).ok_or_else(header_past_end)?;
    let body = bytes.get(FRAME_HEADER_LEN..).unwrap_or_default();
    let payload = usize::try_from(declared)
        .ok()
        .and_then(|n| body.get(..n))
        .ok_or(FrameFault::PayloadPastEnd { declared, available: body.len() })?;
    let computed = checksum(&bytes[..CHECKED_HEADER_LEN], payload);
    if computed != stored {
        return Err(FrameFault::Checksum { stored, computed });
    }
    Ok(Frame { index, payload, len: FRAME_HEADER_LEN + payload.len() })
}

/// CRC32 of a frame's length and index followed by its payload.
fn checksum(checked_header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(checked_header);
    hasher.update(payload);
    hasher.finalize()
}

/// The little-endian u32 at `at`, or `None` if `bytes` is too short.
pub(crate) fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..)?.first_chunk().map(|chunk| u32::from_le_bytes(*chunk))
}

/// The little-endian u64 at `at`, or `None` if `bytes` is too short.
pub(crate) fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..)?.first_chunk().map(|chunk| u64::from_le_bytes(*chunk))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(index: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, index, payload).expect("small payload");
        out
    }

    #[test]
    fn a_frame_decodes_to_what_was_encoded_and_reports_its_length() {
        let mut bytes = encoded(42, b"hello");
        bytes.extend_from_slice(b"next frame");
        let frame = decode(&bytes).expect("valid frame");
        assert_eq!(frame.index, 42);
        assert_eq!(frame.payload, b"hello");
        assert_eq!(frame.len, FRAME_HEADER_LEN + 5);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let clean = encoded(7, b"payload bytes");
        for byte in 0..clean.len() {
            for bit in 0..8 {
                let mut bytes = clean.clone();
                bytes[byte] ^= 1 << bit;
                assert!(decode(&bytes).is_err(), "flip at byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn a_cut_frame_is_reported_as_running_past_the_end() {
        let bytes = encoded(1, &[9; 100]);
        assert!(matches!(decode(&bytes[..10]), Err(FrameFault::HeaderPastEnd { available: 10 })));
        assert!(matches!(decode(&bytes[..50]), Err(FrameFault::PayloadPastEnd { declared: 100, available: 34 })));
    }

    #[test]
    fn a_garbage_length_is_refused_without_allocating() {
        let mut bytes = encoded(1, b"x");
        bytes[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&bytes), Err(FrameFault::PayloadPastEnd { declared: u32::MAX, .. })));
    }
}
