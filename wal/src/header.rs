//! The 24-byte header shared by segment files and the first-index file.
//!
//! ```text
//! offset size field
//!      0    8 magic: "DSWALSEG" for a segment, "DSWALFIX" for the first-index file
//!      8    4 format version, u32 little-endian (currently 1)
//!     12    8 value, u64 little-endian: a segment's base index, or the log's first index
//!     20    4 CRC32 of bytes 0..20
//! ```
//!
//! The header has its own checksum because everything after it is interpreted relative to the
//! value it carries: a segment's frames are checked against the base index.

use crate::frame::{le_u32, le_u64};

/// Size of a header in bytes.
pub(crate) const HEADER_LEN: usize = 24;

/// [`HEADER_LEN`] as a file offset.
pub(crate) const HEADER_LEN_U64: u64 = HEADER_LEN as u64;

/// The only format version this crate reads and writes; bumped on any layout change so an old
/// binary refuses a newer log instead of misreading it.
const VERSION: u32 = 1;

/// Magic of a segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"DSWALSEG";

/// Magic of the first-index file.
pub(crate) const FIRST_INDEX_MAGIC: [u8; 8] = *b"DSWALFIX";

/// Bytes covered by the header checksum.
const CHECKED_LEN: usize = 20;

/// Why bytes are not a valid header.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeaderFault {
    /// The file is shorter than a header.
    #[error("header needs {HEADER_LEN} bytes but the file has {available}")]
    Short { available: usize },
    /// The checksum does not match.
    #[error("header checksum mismatch")]
    Checksum,
    /// The checksum matches but the magic is another file type's.
    #[error("wrong magic {found:?}")]
    Magic { found: [u8; 8] },
    /// Written by a different format version.
    #[error("unsupported format version {found}")]
    Version { found: u32 },
}

/// The header carrying `value`, tagged with `magic`.
pub(crate) fn encode(magic: [u8; 8], value: u64) -> [u8; HEADER_LEN] {
    let mut out = [0; HEADER_LEN];
    out[..8].copy_from_slice(&magic);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..CHECKED_LEN].copy_from_slice(&value.to_le_bytes());
    let crc = crc32fast::hash(&out[..CHECKED_LEN]);
    out[CHECKED_LEN..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The value of the header at the start of `bytes`, if it is intact and tagged with `magic`.
pub(crate) fn decode(magic: [u8; 8], bytes: &[u8]) -> Result<u64, HeaderFault> {
    let short = || HeaderFault::Short { available: bytes.len() };
    let stored = le_u32(bytes, CHECKED_LEN).ok_or_else(short)?;
    let checked = bytes.get(..CHECKED_LEN).ok_or_else(short)?;
    if crc32fast::hash(checked) != stored {
        return Err(HeaderFault::Checksum);
    }
    let found = *checked.first_chunk::<8>().ok_or_else(short)?;
    if found != magic {
        return Err(HeaderFault::Magic { found });
    }
    let version = le_u32(checked, 8).ok_or_else(short)?;
    if version != VERSION {
        return Err(HeaderFault::Version { found: version });
    }
    le_u64(checked, 12).ok_or_else(short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_its_value() {
        let bytes = encode(SEGMENT_MAGIC, 1234);
        assert_eq!(decode(SEGMENT_MAGIC, &bytes).expect("valid"), 1234);
    }

    #[test]
    fn a_first_index_file_is_not_mistaken_for_a_segment() {
        let bytes = encode(FIRST_INDEX_MAGIC, 5);
        assert!(matches!(decode(SEGMENT_MAGIC, &bytes), Err(HeaderFault::Magic { .. })));
    }

    #[test]
    fn a_partial_or_damaged_header_is_refused() {
        let bytes = encode(SEGMENT_MAGIC, 9);
        assert!(matches!(decode(SEGMENT_MAGIC, &bytes[..23]), Err(HeaderFault::Short { available: 23 })));
        for at in 0..HEADER_LEN {
            let mut damaged = bytes;
            damaged[at] ^= 0x10;
            assert!(decode(SEGMENT_MAGIC, &damaged).is_err(), "flip at {at}");
        }
    }
}
