//! A hand-rolled HTTP/1.1 POST for bodies the server is expected to refuse.
//!
//! When a server answers 413 before reading a large body and then closes the
//! connection, an ordinary client that is still uploading may see a broken
//! pipe or a reset and lose the response, which would make an oversized-body
//! test flaky for reasons that have nothing to do with the server. Here the
//! upload runs in its own task, its errors are ignored, and the response is
//! read independently until the server closes the connection.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::api::Reply;

/// Sends `POST path` with `body` to `127.0.0.1:port` and returns the reply,
/// even when the server answers before reading the whole body. `Err` when no
/// complete response head arrives within `timeout`.
pub async fn post_raw(
    port: u16,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Reply, String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let upload = tokio::spawn(async move {
        // Errors are expected once the server stops reading; the response
        // (read below) is what the test judges.
        if writer.write_all(head.as_bytes()).await.is_ok() {
            let _ = writer.write_all(&body).await;
        }
        writer
    });
    let mut received = Vec::new();
    let read = tokio::time::timeout(timeout, async {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                // A reset after the response is normal here; keep what came.
                Err(_) => return,
            }
            if parse_response(&received, false).is_some() {
                return;
            }
        }
    })
    .await;
    upload.abort();
    // After a timeout the bytes may stop mid-body: only a self-delimited
    // response counts then. After the connection ended, the rest is the body.
    let parsed = parse_response(&received, read.is_ok());
    match (read, parsed) {
        (_, Some(reply)) => Ok(reply),
        (Err(_), None) => Err(format!(
            "POST {path} on port {port}: no complete response within {timeout:?} ({} bytes received)",
            received.len()
        )),
        (Ok(()), None) => Err(format!(
            "POST {path} on port {port}: connection ended without a complete response: {:?}",
            String::from_utf8_lossy(&received)
        )),
    }
}

/// Parses a complete HTTP/1.1 response; `None` if it is not complete yet.
/// A response that announces neither `Content-Length` nor chunked encoding
/// ends with the connection, so it is complete only once `connection_ended`.
fn parse_response(received: &[u8], connection_ended: bool) -> Option<Reply> {
    let head_end = find(received, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&received[..head_end]);
    let rest = &received[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut content_length = None;
    let mut chunked = false;
    let mut content_type = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => content_length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-type" => content_type = Some(value.to_owned()),
            _ => {}
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = content_length {
        rest.get(..length)?.to_vec()
    } else if connection_ended {
        rest.to_vec()
    } else {
        return None;
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    Some(Reply { status, content_type, body: serde_json::from_str(&text).unwrap_or(Value::Null), text })
}

/// Decodes a complete chunked body; `None` until the last chunk has arrived.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_hex = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
