//! The records stored under the cache keys, and their encoding.
//!
//! A compact hand-rolled format, as the queue's: a record is read by every
//! cache command and values are JSON text that serde_json would escape
//! again. Each record starts with a format version byte, so a later format
//! can be told apart and migrated; decoding is strict (unknown version,
//! short or trailing bytes, bad UTF-8, an unknown state, holders out of
//! order or repeated: `None`, which callers treat as absent).
//!
//! Version 1:
//! - record: `1`, version u64, dirty (`0` | `1` str), holder count u32,
//!   then per holder node u64 and state u8 (`0` M, `1` E, `2` S), nodes
//!   strictly ascending.
//! - memory value: `1`, version u64, value str.
//!
//! Integers are big-endian; a str is a u32 length then UTF-8 bytes.

use std::collections::BTreeMap;

use super::{Holder, Line, Mesi, NodeId};
use crate::codec::{push_str, Reader};

/// Format version of every record written by this build.
const FORMAT_VERSION: u8 = 1;

/// One key's directory record. The key itself is in the store key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Record {
    /// The version of the key's latest put.
    pub(super) version: u64,
    /// The latest put's value while not yet written back.
    pub(super) dirty: Option<String>,
    /// Who holds a copy, in which state; a map so a node holds at most one
    /// copy and iteration is in node order.
    pub(super) holders: BTreeMap<NodeId, Mesi>,
}

/// The embedded backing memory's value of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Memory {
    /// The version that was written back.
    pub(super) version: u64,
    /// Its value, compact JSON text.
    pub(super) value: String,
}

impl Record {
    /// The holders as the API lists them, by node.
    pub(super) fn holder_list(&self) -> Vec<Holder> {
        self.holders.iter().map(|(&node, &state)| Holder { node, state }).collect()
    }

    /// The public view of this record.
    pub(super) fn line(&self) -> Line {
        Line { version: self.version, dirty: self.dirty.clone(), holders: self.holder_list() }
    }

    /// Encodes the record.
    pub(super) fn encode(&self) -> Vec<u8> {
        let dirty_len = self.dirty.as_ref().map_or(0, |value| 4 + value.len());
        let mut bytes = Vec::with_capacity(1 + 8 + 1 + dirty_len + 4 + 9 * self.holders.len());
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&self.version.to_be_bytes());
        match &self.dirty {
            None => bytes.push(0),
            Some(value) => {
                bytes.push(1);
                push_str(&mut bytes, value);
            }
        }
        // A line has at most one holder per node of the cluster.
        let count = u32::try_from(self.holders.len()).unwrap_or(u32::MAX);
        bytes.extend_from_slice(&count.to_be_bytes());
        for (node, state) in self.holders.iter().take(count as usize) {
            bytes.extend_from_slice(&node.to_be_bytes());
            bytes.push(state_byte(*state));
        }
        bytes
    }

    /// Decodes a record made by [`Record::encode`].
    pub(super) fn decode(bytes: &[u8]) -> Option<Record> {
        let mut reader = Reader::new(bytes, FORMAT_VERSION)?;
        let version = reader.u64()?;
        let dirty = match reader.u8()? {
            0 => None,
            1 => Some(reader.str()?),
            _ => return None,
        };
        let count = reader.u32()?;
        let mut holders = BTreeMap::new();
        let mut previous = None;
        for _ in 0..count {
            let node = reader.u64()?;
            if previous.is_some_and(|previous| node <= previous) {
                return None;
            }
            previous = Some(node);
            holders.insert(node, byte_state(reader.u8()?)?);
        }
        reader.finish()?;
        Some(Record { version, dirty, holders })
    }
}

impl Memory {
    /// Encodes the value.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(1 + 8 + 4 + self.value.len());
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&self.version.to_be_bytes());
        push_str(&mut bytes, &self.value);
        bytes
    }

    /// Decodes a value made by [`Memory::encode`].
    pub(super) fn decode(bytes: &[u8]) -> Option<Memory> {
        let mut reader = Reader::new(bytes, FORMAT_VERSION)?;
        let version = reader.u64()?;
        let value = reader.str()?;
        reader.finish()?;
        Some(Memory { version, value })
    }
}

/// The byte a state is stored as.
fn state_byte(state: Mesi) -> u8 {
    match state {
        Mesi::M => 0,
        Mesi::E => 1,
        Mesi::S => 2,
    }
}

/// The state stored as `byte`; `None` for anything else.
fn byte_state(byte: u8) -> Option<Mesi> {
    match byte {
        0 => Some(Mesi::M),
        1 => Some(Mesi::E),
        2 => Some(Mesi::S),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dirty: Option<&str>, holders: &[(NodeId, Mesi)]) -> Record {
        Record { version: 7, dirty: dirty.map(String::from), holders: holders.iter().copied().collect() }
    }

    #[test]
    fn records_round_trip() {
        let holders = [(1, Mesi::S), (2, Mesi::S), (u64::MAX, Mesi::S)];
        for record in [
            sample(None, &[]),
            sample(Some("{\"a\":\"é\"}"), &[(3, Mesi::M)]),
            sample(Some(""), &[(0, Mesi::E)]),
            sample(None, &holders),
        ] {
            assert_eq!(Record::decode(&record.encode()), Some(record));
        }
        let memory = Memory { version: u64::MAX, value: "[1,2]".into() };
        assert_eq!(Memory::decode(&memory.encode()), Some(memory));
        for state in [Mesi::M, Mesi::E, Mesi::S] {
            assert_eq!(byte_state(state_byte(state)), Some(state));
        }
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let bytes = sample(Some("1"), &[(1, Mesi::S), (2, Mesi::S)]).encode();
        for cut in 0..bytes.len() {
            assert_eq!(Record::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(Record::decode(&[&bytes[..], &[0]].concat()), None);
        assert_eq!(Record::decode(&[&[2], &bytes[1..]].concat()), None, "unknown version");
        let memory = Memory { version: 1, value: "2".into() }.encode();
        for cut in 0..memory.len() {
            assert_eq!(Memory::decode(&memory[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn holders_out_of_order_repeated_or_in_unknown_states_are_rejected() {
        let encode = |holders: &[(u64, u8)]| {
            let mut bytes = vec![FORMAT_VERSION];
            bytes.extend_from_slice(&1u64.to_be_bytes());
            bytes.push(0);
            bytes.extend_from_slice(&(holders.len() as u32).to_be_bytes());
            for (node, state) in holders {
                bytes.extend_from_slice(&node.to_be_bytes());
                bytes.push(*state);
            }
            bytes
        };
        assert!(Record::decode(&encode(&[(1, 2), (2, 2)])).is_some());
        assert_eq!(Record::decode(&encode(&[(2, 2), (1, 2)])), None);
        assert_eq!(Record::decode(&encode(&[(1, 2), (1, 2)])), None);
        assert_eq!(Record::decode(&encode(&[(1, 3)])), None);
    }

    #[test]
    fn any_bytes_decode_without_panicking() {
        for seed in 0u32..2000 {
            // A valid version byte, then noise, so the decoders get past it.
            let noise = (0..seed % 64).map(|i| (seed.wrapping_mul(31).wrapping_add(i * 7) % 256) as u8);
            let bytes: Vec<u8> = std::iter::once(FORMAT_VERSION).chain(noise).collect();
            let _ = Record::decode(&bytes);
            let _ = Memory::decode(&bytes);
        }
    }
}
