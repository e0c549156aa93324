//! The snapshot file: a point-in-time image of the whole state machine.
//!
//! Layout: an 8-byte magic `DSYNCSNP`, a u32 format version, then frames of
//! `kind (u8) | length (u32 LE) | crc32 of payload (u32 LE) | payload`:
//! one `META` (bincode `SnapshotMeta`), one `MEMORY` (the in-memory state,
//! `State::to_snapshot`), any number of `ENTRY` (bincode `(key, value)` of
//! the state machine's store) and one `END` (bincode entry count). A file
//! that does not end with a matching `END` frame is incomplete and refused.
//!
//! The file is written and read as a stream, so a snapshot of a queue with
//! millions of messages never has to fit in memory.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use openraft::{BasicNode, SnapshotMeta};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::types::NodeId;

const MAGIC: &[u8; 8] = b"DSYNCSNP";
const VERSION: u32 = 1;
const KIND_META: u8 = 1;
const KIND_MEMORY: u8 = 2;
const KIND_ENTRY: u8 = 3;
const KIND_END: u8 = 4;
/// Largest frame accepted on read: a garbage length must not allocate.
const FRAME_BYTES_MAX: u32 = 256 << 20;

/// Snapshot metadata of dsync's Raft.
pub type Meta = SnapshotMeta<NodeId, BasicNode>;

/// Writes a snapshot file frame by frame.
pub struct SnapshotWriter {
    out: BufWriter<File>,
    entries: u64,
}

impl SnapshotWriter {
    /// Starts a snapshot file at `path` with its metadata and memory image.
    pub fn create(path: &Path, meta: &Meta, memory: &[u8]) -> io::Result<SnapshotWriter> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        let mut writer = SnapshotWriter { out, entries: 0 };
        writer.frame(KIND_META, &encode(meta)?)?;
        writer.frame(KIND_MEMORY, memory)?;
        Ok(writer)
    }

    /// Adds one store entry.
    pub fn entry(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.entries += 1;
        self.frame(KIND_ENTRY, &encode(&(key, value))?)
    }

    /// Writes the end frame and fsyncs the file.
    pub fn finish(mut self) -> io::Result<()> {
        let count = encode(&self.entries)?;
        self.frame(KIND_END, &count)?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }

    fn frame(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len()).map_err(|_| invalid("snapshot frame above 4 GiB"))?;
        self.out.write_all(&[kind])?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&crc32fast::hash(payload).to_le_bytes())?;
        self.out.write_all(payload)
    }
}

/// Reads a snapshot file: metadata and memory image first, then entries.
pub struct SnapshotReader {
    input: BufReader<File>,
    /// The snapshot's metadata.
    pub meta: Meta,
    /// The in-memory state image.
    pub memory: Vec<u8>,
    entries: u64,
    done: bool,
}

impl SnapshotReader {
    /// Opens `path` and reads its header, metadata and memory image.
    pub fn open(path: &Path) -> io::Result<SnapshotReader> {
        let mut input = BufReader::new(File::open(path)?);
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic)?;
        let mut version = [0u8; 4];
        input.read_exact(&mut version)?;
        if &magic != MAGIC || u32::from_le_bytes(version) != VERSION {
            return Err(invalid(format!("{} is not a dsync snapshot (version {VERSION})", path.display())));
        }
        let meta = decode(&expect(&mut input, KIND_META)?)?;
        let memory = expect(&mut input, KIND_MEMORY)?;
        Ok(SnapshotReader { input, meta, memory, entries: 0, done: false })
    }

    /// The next store entry, or `None` after the end frame (whose count
    /// must match the entries read).
    pub fn next_entry(&mut self) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        if self.done {
            return Ok(None);
        }
        let (kind, payload) = read_frame(&mut self.input)?;
        match kind {
            KIND_ENTRY => {
                self.entries += 1;
                decode(&payload).map(Some)
            }
            KIND_END => {
                let count: u64 = decode(&payload)?;
                if count != self.entries {
                    return Err(invalid(format!("snapshot ends after {} entries but says {count}", self.entries)));
                }
                self.done = true;
                Ok(None)
            }
            other => Err(invalid(format!("unexpected snapshot frame kind {other}"))),
        }
    }
}

fn expect(input: &mut impl Read, kind: u8) -> io::Result<Vec<u8>> {
    let (found, payload) = read_frame(input)?;
    if found != kind {
        return Err(invalid(format!("snapshot frame kind {found} where {kind} was expected")));
    }
    Ok(payload)
}

fn read_frame(input: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 9];
    input.read_exact(&mut head)?;
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let crc = u32::from_le_bytes([head[5], head[6], head[7], head[8]]);
    if len > FRAME_BYTES_MAX {
        return Err(invalid(format!("snapshot frame of {len} bytes")));
    }
    let mut payload = vec![0u8; len as usize];
    input.read_exact(&mut payload)?;
    if crc32fast::hash(&payload) != crc {
        return Err(invalid("snapshot frame checksum mismatch"));
    }
    Ok((head[0], payload))
}

fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    codec::encode(value).map_err(io::Error::other)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    codec::decode(bytes).map_err(|e| invalid(e.to_string()))
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta { last_log_id: None, last_membership: Default::default(), snapshot_id: "t".into() }
    }

    #[test]
    fn round_trip_streams_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let mut writer = SnapshotWriter::create(&path, &meta(), b"memory").unwrap();
        for i in 0..1000u32 {
            writer.entry(&i.to_be_bytes(), b"v").unwrap();
        }
        writer.finish().unwrap();
        let mut reader = SnapshotReader::open(&path).unwrap();
        assert_eq!(reader.memory, b"memory");
        let mut count = 0;
        while let Some((key, value)) = reader.next_entry().unwrap() {
            assert_eq!(key, (count as u32).to_be_bytes());
            assert_eq!(value, b"v");
            count += 1;
        }
        assert_eq!(count, 1000);
    }

    #[test]
    fn truncated_or_damaged_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let mut writer = SnapshotWriter::create(&path, &meta(), b"memory").unwrap();
        writer.entry(b"k", b"v").unwrap();
        writer.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();

        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let mut reader = SnapshotReader::open(&path).unwrap();
        assert!(reader.next_entry().is_ok());
        assert!(reader.next_entry().is_err(), "a snapshot without its end frame is refused");

        let mut flipped = bytes.clone();
        let last = flipped.len() - 12;
        flipped[last] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        let mut reader = SnapshotReader::open(&path).unwrap();
        let result = (|| -> io::Result<()> {
            while reader.next_entry()?.is_some() {}
            Ok(())
        })();
        assert!(result.is_err(), "a flipped bit is a checksum error");
    }
}
