//! Byte encodings shared by the modules whose data lives in the [`Store`]
//! (`queue`, `cache`): names inside store keys, and checked reading of the
//! hand-rolled records.
//!
//! Names (queue names, cache keys) are arbitrary UTF-8 and may contain any
//! byte, `0x00` included, yet must be usable as a key component followed by
//! more bytes. So a name is escaped (`0x00` becomes `0x00 0xFF`) and
//! terminated by `0x00 0x01`. The terminator is smaller than any escaped or
//! plain byte that could follow it, so encoded names sort exactly as the
//! names do (bytewise), and no encoded name is a prefix of another: a
//! per-name prefix scan never reaches a neighbour (say `a` and `a/b`, or `a`
//! and `a\0`).
//!
//! Records start with their module's format version byte; [`Reader`] checks
//! it and makes every read `None` past the end, so decoders are strict
//! (unknown version, short or trailing bytes, bad UTF-8: `None`) without
//! index arithmetic of their own.

#[cfg(doc)]
use crate::store::Store;

/// Appends the escaped, terminated `name`.
pub(crate) fn push_name(key: &mut Vec<u8>, name: &str) {
    for byte in name.bytes() {
        key.push(byte);
        if byte == 0 {
            key.push(0xFF);
        }
    }
    key.extend_from_slice(&[0x00, 0x01]);
}

/// Splits an escaped, terminated name off the front of `bytes`; `None` if
/// `bytes` does not start with one.
pub(crate) fn take_name(bytes: &[u8]) -> Option<(String, &[u8])> {
    let mut name = Vec::new();
    let mut rest = bytes;
    loop {
        match rest {
            [0x00, 0x01, tail @ ..] => return Some((String::from_utf8(name).ok()?, tail)),
            [0x00, 0xFF, tail @ ..] => {
                name.push(0);
                rest = tail;
            }
            [0x00, ..] | [] => return None,
            [byte, tail @ ..] => {
                name.push(*byte);
                rest = tail;
            }
        }
    }
}

/// The first key after every key that starts with `prefix` (which here
/// always ends with a table byte or a name terminator, so never with `0xFF`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    // Only reachable for an all-0xFF prefix: no key is greater.
    vec![u8::MAX; prefix.len() + 1]
}

/// The smallest key strictly greater than `key`: where a page that ended at
/// `key` continues.
pub(crate) fn key_after(key: &[u8]) -> Vec<u8> {
    [key, &[0]].concat()
}

/// Appends a length-prefixed string (u32 big-endian length, then the UTF-8
/// bytes). Longer than 4 GiB cannot happen (the server bounds values and
/// names far below); it would be cut, not panic.
pub(crate) fn push_str(bytes: &mut Vec<u8>, text: &str) {
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(&text.as_bytes()[..len as usize]);
}

/// Checked reads over a record: every read is `None` past the end.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader after the version byte; `None` unless it is `version`.
    pub(crate) fn new(bytes: &'a [u8], version: u8) -> Option<Reader<'a>> {
        match bytes.split_first() {
            Some((&first, rest)) if first == version => Some(Reader { rest }),
            _ => None,
        }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A big-endian u32.
    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A big-endian u64.
    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A string written by [`push_str`].
    pub(crate) fn str(&mut self) -> Option<String> {
        let len = usize::try_from(self.u32()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    /// `Some` if every byte was read.
    pub(crate) fn finish(self) -> Option<()> {
        self.rest.is_empty().then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sorted bytewise, with the awkward neighbours: a name and its
    /// extensions by `0x00`, `0x01` and `/`.
    const NAMES: [&str; 9] = ["", "\0", "a", "a\0", "a\0b", "a\u{1}", "a/b", "ab", "é/\u{1}"];

    fn encoded(name: &str) -> Vec<u8> {
        let mut key = vec![b'x'];
        push_name(&mut key, name);
        key
    }

    #[test]
    fn names_round_trip_and_keep_their_order() {
        let keys: Vec<Vec<u8>> = NAMES.iter().map(|n| encoded(n)).collect();
        for (name, key) in NAMES.iter().zip(&keys) {
            assert_eq!(take_name(&key[1..]), Some((name.to_string(), &[][..])));
        }
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys, "NAMES is sorted, so must their encodings be");
    }

    #[test]
    fn no_name_is_a_prefix_of_another_and_key_after_skips_only_itself() {
        for a in NAMES {
            let (prefix, after) = (encoded(a), key_after(&encoded(a)));
            for b in NAMES.iter().filter(|b| **b != a) {
                let other = [&encoded(b)[..], &[7u8][..]].concat();
                assert!(!(other >= prefix && other < prefix_end(&prefix)), "{a:?} reaches {b:?}");
                assert_eq!(other > after, *b > a, "{a:?} then {b:?}");
            }
        }
    }

    #[test]
    fn garbage_names_do_not_decode() {
        for bad in [&b""[..], b"a", b"a\x00", b"a\x00\x02\x00\x01", b"\xff\x00\x01"] {
            assert_eq!(take_name(bad), None, "{bad:?}");
        }
        assert_eq!(prefix_end(&[1, 0xFF]), vec![2]);
    }

    #[test]
    fn the_reader_is_strict() {
        let mut bytes = vec![3];
        push_str(&mut bytes, "hé");
        bytes.extend_from_slice(&9u64.to_be_bytes());
        let mut reader = Reader::new(&bytes, 3).unwrap();
        assert_eq!((reader.str(), reader.u64(), reader.u8()), (Some("hé".into()), Some(9), None));
        assert!(Reader::new(&bytes, 4).is_none());
        assert!(Reader::new(&[], 3).is_none());
        let mut reader = Reader::new(&bytes, 3).unwrap();
        reader.str();
        assert_eq!(reader.finish(), None, "trailing bytes");
    }
}
