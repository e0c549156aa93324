//! The records stored under the queue keys, and their encoding.
//!
//! A compact hand-rolled format: a record is read on every consume, ack and
//! timer, and bodies are JSON text that serde_json would escape again. Each
//! record starts with a format version byte, so a later format can be told
//! apart and migrated; decoding is strict (unknown version, short or
//! trailing bytes, bad UTF-8: `None`, which callers treat as absent).
//!
//! Version 1:
//! - meta: `1`, then nine u64 (big-endian): next_seq, ready, in_flight,
//!   delayed, dead_lettered, produced_total, consumed_total, acked_total,
//!   redelivered_total.
//! - message: `1`, seq u64, delivery_count u32, max_deliveries u32, state
//!   (`0` Ready | `1` until_ms u64, consumer str | `2` until_ms u64), key
//!   (`0` | `1` str), body str; a str is a u32 length then UTF-8 bytes.

use super::{MessageState, QueueStats};
use crate::codec::{push_str, Reader};

/// Format version of every record written by this build.
const FORMAT_VERSION: u8 = 1;

/// One queue's sequence counter, depths and totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Meta {
    /// Sequence number of the next message to enter the queue.
    pub(super) next_seq: u64,
    /// Messages Ready (as [`QueueStats`], like every field below).
    pub(super) ready: u64,
    /// Messages InFlight.
    pub(super) in_flight: u64,
    /// Messages Delayed.
    pub(super) delayed: u64,
    /// Messages moved to the dead-letter queue.
    pub(super) dead_lettered: u64,
    /// Messages that entered (produced or dead-lettered into the queue).
    pub(super) produced_total: u64,
    /// Deliveries.
    pub(super) consumed_total: u64,
    /// Messages acknowledged.
    pub(super) acked_total: u64,
    /// Messages put back after their visibility ran out.
    pub(super) redelivered_total: u64,
}

/// One stored message. Its queue and id are in its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Message {
    /// Position in its queue's delivery order.
    pub(super) seq: u64,
    /// Deliveries so far.
    pub(super) delivery_count: u32,
    /// Deliveries after which a give-back dead-letters it.
    pub(super) max_deliveries: u32,
    /// Ready, in flight or delayed.
    pub(super) state: MessageState,
    /// Ordering key.
    pub(super) key: Option<String>,
    /// Compact JSON text.
    pub(super) body: String,
}

impl Meta {
    /// The public view of this record for `queue`.
    pub(super) fn stats(&self, queue: &str) -> QueueStats {
        QueueStats {
            queue: queue.to_string(),
            ready: self.ready,
            in_flight: self.in_flight,
            delayed: self.delayed,
            dead_lettered: self.dead_lettered,
            produced_total: self.produced_total,
            consumed_total: self.consumed_total,
            acked_total: self.acked_total,
            redelivered_total: self.redelivered_total,
        }
    }

    /// The depth counter of messages in `state`.
    pub(super) fn depth_mut(&mut self, state: &MessageState) -> &mut u64 {
        match state {
            MessageState::Ready => &mut self.ready,
            MessageState::InFlight { .. } => &mut self.in_flight,
            MessageState::Delayed { .. } => &mut self.delayed,
        }
    }

    /// The fields in encoding order.
    fn fields(&self) -> [u64; 9] {
        [
            self.next_seq,
            self.ready,
            self.in_flight,
            self.delayed,
            self.dead_lettered,
            self.produced_total,
            self.consumed_total,
            self.acked_total,
            self.redelivered_total,
        ]
    }

    /// Encodes the record.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(1 + 9 * 8);
        bytes.push(FORMAT_VERSION);
        for field in self.fields() {
            bytes.extend_from_slice(&field.to_be_bytes());
        }
        bytes
    }

    /// Decodes a record made by [`Meta::encode`].
    pub(super) fn decode(bytes: &[u8]) -> Option<Meta> {
        let mut reader = Reader::new(bytes, FORMAT_VERSION)?;
        let mut fields = [0u64; 9];
        for field in &mut fields {
            *field = reader.u64()?;
        }
        reader.finish()?;
        let [next_seq, ready, in_flight, delayed, dead_lettered, produced_total, consumed_total, acked_total, redelivered_total] =
            fields;
        Some(Meta {
            next_seq,
            ready,
            in_flight,
            delayed,
            dead_lettered,
            produced_total,
            consumed_total,
            acked_total,
            redelivered_total,
        })
    }
}

impl Message {
    /// When this message's timer is due, if it has one (InFlight, Delayed).
    pub(super) fn deadline_ms(&self) -> Option<u64> {
        match self.state {
            MessageState::Ready => None,
            MessageState::InFlight { until_ms, .. } | MessageState::Delayed { until_ms } => Some(until_ms),
        }
    }

    /// Encodes the record.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(40 + self.body.len());
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&self.seq.to_be_bytes());
        bytes.extend_from_slice(&self.delivery_count.to_be_bytes());
        bytes.extend_from_slice(&self.max_deliveries.to_be_bytes());
        match &self.state {
            MessageState::Ready => bytes.push(0),
            MessageState::InFlight { consumer, until_ms } => {
                bytes.push(1);
                bytes.extend_from_slice(&until_ms.to_be_bytes());
                push_str(&mut bytes, consumer);
            }
            MessageState::Delayed { until_ms } => {
                bytes.push(2);
                bytes.extend_from_slice(&until_ms.to_be_bytes());
            }
        }
        match &self.key {
            None => bytes.push(0),
            Some(key) => {
                bytes.push(1);
                push_str(&mut bytes, key);
            }
        }
        push_str(&mut bytes, &self.body);
        bytes
    }

    /// Decodes a record made by [`Message::encode`].
    pub(super) fn decode(bytes: &[u8]) -> Option<Message> {
        let mut reader = Reader::new(bytes, FORMAT_VERSION)?;
        let seq = reader.u64()?;
        let delivery_count = reader.u32()?;
        let max_deliveries = reader.u32()?;
        let state = match reader.u8()? {
            0 => MessageState::Ready,
            1 => {
                let until_ms = reader.u64()?;
                MessageState::InFlight { until_ms, consumer: reader.str()? }
            }
            2 => MessageState::Delayed { until_ms: reader.u64()? },
            _ => return None,
        };
        let key = match reader.u8()? {
            0 => None,
            1 => Some(reader.str()?),
            _ => return None,
        };
        let body = reader.str()?;
        reader.finish()?;
        Some(Message { seq, delivery_count, max_deliveries, state, key, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(state: MessageState, key: Option<&str>) -> Message {
        Message {
            seq: 7,
            delivery_count: 2,
            max_deliveries: 5,
            state,
            key: key.map(String::from),
            body: "{\"a\":\"é\"}".into(),
        }
    }

    #[test]
    fn records_round_trip() {
        let states = [
            MessageState::Ready,
            MessageState::InFlight { consumer: "w1".into(), until_ms: 99 },
            MessageState::Delayed { until_ms: u64::MAX },
        ];
        for state in states {
            for key in [None, Some(""), Some("k/1")] {
                let message = sample(state.clone(), key);
                assert_eq!(Message::decode(&message.encode()), Some(message));
            }
        }
        let meta = Meta { next_seq: 1, ready: 2, redelivered_total: u64::MAX, ..Meta::default() };
        assert_eq!(Meta::decode(&meta.encode()), Some(meta));
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let bytes = sample(MessageState::InFlight { consumer: "w".into(), until_ms: 1 }, Some("k")).encode();
        for cut in 0..bytes.len() {
            assert_eq!(Message::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(Message::decode(&[&bytes[..], &[0]].concat()), None);
        let meta = Meta::default().encode();
        assert_eq!(Meta::decode(&meta[..meta.len() - 1]), None);
        assert_eq!(Meta::decode(&[&[2], &meta[1..]].concat()), None, "unknown version");
    }

    #[test]
    fn any_bytes_decode_without_panicking() {
        for seed in 0u32..2000 {
            // A valid version byte, then noise, so the decoders get past it.
            let noise = (0..seed % 64).map(|i| (seed.wrapping_mul(31).wrapping_add(i * 7) % 256) as u8);
            let bytes: Vec<u8> = std::iter::once(FORMAT_VERSION).chain(noise).collect();
            let _ = Message::decode(&bytes);
            let _ = Meta::decode(&bytes);
        }
    }
}
