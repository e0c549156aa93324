//! bincode (serde mode) encoding used for log records, snapshots on disk and
//! RPC bodies, so that one configuration governs every binary format.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The one bincode configuration of dsync (varint integers, little endian).
fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `value`. Our types always encode; a failure is a bug, reported as
/// an error rather than a panic so a node never dies on it.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(value, config())
}

/// Decodes a whole buffer into `T`; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::error::DecodeError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())?;
    if read != bytes.len() {
        return Err(bincode::error::DecodeError::OtherString(format!(
            "{} trailing bytes after value",
            bytes.len() - read
        )));
    }
    Ok(value)
}
