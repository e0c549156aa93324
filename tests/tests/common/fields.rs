//! Strict readers of JSON answer fields and query-string encoding, shared
//! by the topic clients so every binary parses answers the same way.

use serde_json::Value;

/// `text` percent-encoded for a query string (everything but unreserved bytes).
pub fn encode_query(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The string field `name`, or an error naming it.
pub fn str_field(body: &Value, name: &str) -> Result<String, String> {
    body[name].as_str().map(str::to_owned).ok_or_else(|| format!("field {name} is not a string"))
}

/// The non-negative integer field `name`, or an error naming it.
pub fn u64_field(body: &Value, name: &str) -> Result<u64, String> {
    body[name].as_u64().ok_or_else(|| format!("field {name} is not a non-negative integer"))
}
