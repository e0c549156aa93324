//! The HTTP side of the command-line client: one request, tried on each
//! `--endpoint` in turn until a node answers, and the mapping of what came
//! back onto the documented exit codes.
//!
//! Failover rule: the next endpoint is tried when this one cannot be
//! connected to (nothing was sent, so nothing can have happened), when it
//! answers 503 `unavailable` (no leader or no quorum there; retryable), and,
//! for reads (GET) only, on any other transport error. A write whose
//! connection broke after it was sent is not sent again: it may already have
//! been applied, and a second produce would duplicate the message.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// How long to wait for a TCP connection before moving to the next endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a node may take to answer on top of the request's own wait: the
/// node's REQUEST_TIMEOUT_MS (5 s by default) plus a margin, so a node that
/// gives up answers 503 before the client does.
const ANSWER_MARGIN: Duration = Duration::from_secs(10);

/// Exit code of a successful command.
pub const EXIT_OK: u8 = 0;
/// Exit code when the server said no: not granted (409 `conflict` or
/// `deadlock`, 408 `timeout`) or not found (404).
pub const EXIT_REFUSED: u8 = 1;
/// Exit code of a usage error: bad arguments (clap's own code) or a request
/// the server rejected as bad input (400, 413).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when no node could serve the request: unreachable, 503 from
/// every endpoint, or a 5xx.
pub const EXIT_UNAVAILABLE: u8 = 3;

/// One API call, as sent to whichever endpoint serves it.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    wait: Duration,
}

impl Request {
    /// A read: `GET path`, safe to send again to another node.
    pub fn get(path: &str) -> Request {
        Request { method: Method::GET, path: path.to_string(), query: Vec::new(), body: None, wait: Duration::ZERO }
    }

    /// A write: `POST path` with a JSON body.
    pub fn post(path: &str, body: Value) -> Request {
        Request { method: Method::POST, body: Some(body), ..Request::get(path) }
    }

    /// Adds a query parameter (percent-encoded when sent), so names such as
    /// `acct:42` or `a&b` reach the server intact.
    pub fn query(mut self, name: &'static str, value: &str) -> Request {
        self.query.push((name, value.to_string()));
        self
    }

    /// Declares that the server may block this long (`wait_ms`) before it
    /// answers, so the client's own timeout does not cut a long poll short.
    pub fn waiting(mut self, wait_ms: u64) -> Request {
        self.wait = Duration::from_millis(wait_ms);
        self
    }
}

/// Why a call did not succeed, ready to report: the exit code and an error
/// body in the contract's shape (`{"error":{"code","message"}}`), either the
/// server's own or one made up for a transport failure, so `--json` users
/// always get the same shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The process exit code (see [`exit_code`]).
    pub exit: u8,
    /// The error body.
    pub body: Value,
}

impl Failure {
    /// A failure that never reached a server's answer: exit 3, code `unavailable`.
    fn transport(message: String) -> Failure {
        Failure { exit: EXIT_UNAVAILABLE, body: error_body("unavailable", &message) }
    }

    /// The error's `code` and `message`, for the human `dsync: <code>: <message>` line.
    pub fn code_and_message(&self) -> (&str, &str) {
        let error = &self.body["error"];
        (error["code"].as_str().unwrap_or("error"), error["message"].as_str().unwrap_or("(no message)"))
    }
}

/// A body in the contract's error shape.
fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

/// The exit code of an HTTP status: 0 for 2xx; 1 for 404, 408 and 409 (not
/// found, timed out, conflict or deadlock: the request was fine but refused);
/// 2 for other 4xx (bad input, too large); 3 for 5xx and anything else.
pub fn exit_code(status: StatusCode) -> u8 {
    match status.as_u16() {
        200..=299 => EXIT_OK,
        404 | 408 | 409 => EXIT_REFUSED,
        400..=499 => EXIT_USAGE,
        _ => EXIT_UNAVAILABLE,
    }
}

/// The innermost cause of an error: reqwest's own message is only "error
/// sending request for url (...)", the useful part ("Connection refused") is
/// at the bottom of the chain.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// An HTTP client over several endpoints of one cluster. It remembers which
/// endpoint last answered and starts there, so the calls of one command (as
/// `dsync status` makes) talk to the same node.
pub struct Client {
    http: reqwest::Client,
    endpoints: Vec<String>,
    preferred: AtomicUsize,
}

impl Client {
    /// A client for these base URLs (`http://host:port`, trailing `/` ignored).
    pub fn new(endpoints: &[String]) -> Result<Client, Failure> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| Failure::transport(format!("cannot build the HTTP client: {}", root_cause(&e))))?;
        let endpoints = endpoints.iter().map(|e| e.trim_end_matches('/').to_string()).collect();
        Ok(Client { http, endpoints, preferred: AtomicUsize::new(0) })
    }

    /// The endpoint that answered last (the first one before any call).
    pub fn current_endpoint(&self) -> &str {
        self.endpoints.get(self.preferred.load(Ordering::Relaxed)).map_or("", String::as_str)
    }

    /// Sends the request with failover (see the module doc) and returns the
    /// body of a 2xx answer, or the failure to report.
    pub async fn call(&self, request: &Request) -> Result<Value, Failure> {
        let start = self.preferred.load(Ordering::Relaxed);
        let mut unavailable = None;
        let mut unreachable = Vec::new();
        for i in (0..self.endpoints.len()).map(|k| (start + k) % self.endpoints.len()) {
            let endpoint = &self.endpoints[i];
            let mut builder = self
                .http
                .request(request.method.clone(), format!("{endpoint}{}", request.path))
                .query(&request.query)
                .timeout(request.wait + ANSWER_MARGIN);
            if let Some(body) = &request.body {
                builder = builder.json(body);
            }
            let reply = match builder.send().await {
                Ok(reply) => reply,
                Err(e) if e.is_connect() || request.method == Method::GET => {
                    unreachable.push(format!("{endpoint}: {}", root_cause(&e)));
                    continue;
                }
                Err(e) => {
                    let cause = root_cause(&e);
                    return Err(Failure::transport(format!("{endpoint}: {cause} (the request may have taken effect)")));
                }
            };
            self.preferred.store(i, Ordering::Relaxed);
            let status = reply.status();
            let body = match reply.text().await {
                Ok(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
                Err(e) => {
                    return Err(Failure::transport(format!("{endpoint}: reading the answer: {}", root_cause(&e))))
                }
            };
            if status.is_success() {
                return Ok(body);
            }
            let body = if body["error"]["code"].is_string() {
                body
            } else {
                error_body("http", &format!("{endpoint} answered {status}: {body}"))
            };
            let failure = Failure { exit: exit_code(status), body };
            if status != StatusCode::SERVICE_UNAVAILABLE {
                return Err(failure);
            }
            unavailable = Some(failure);
        }
        // A node's own 503 ("no leader") says more than "connection refused".
        Err(unavailable
            .unwrap_or_else(|| Failure::transport(format!("no endpoint reachable ({})", unreachable.join("; ")))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_exit_codes() {
        let code = |n: u16| exit_code(StatusCode::from_u16(n).unwrap());
        assert_eq!(code(200), EXIT_OK);
        for refused in [404, 408, 409] {
            assert_eq!(code(refused), EXIT_REFUSED, "{refused}");
        }
        for usage in [400, 413] {
            assert_eq!(code(usage), EXIT_USAGE, "{usage}");
        }
        for unavailable in [500, 502, 503] {
            assert_eq!(code(unavailable), EXIT_UNAVAILABLE, "{unavailable}");
        }
    }

    #[test]
    fn failure_reports_code_and_message() {
        let failure = Failure { exit: 1, body: json!({"error": {"code": "conflict", "message": "taken"}}) };
        assert_eq!(failure.code_and_message(), ("conflict", "taken"));
        let transport = Failure::transport("no endpoint reachable".to_string());
        assert_eq!(transport.exit, EXIT_UNAVAILABLE);
        assert_eq!(transport.code_and_message(), ("unavailable", "no endpoint reachable"));
    }

    #[tokio::test]
    async fn dead_endpoints_fail_over_then_give_up_with_exit_3() {
        // Port 9 (discard) on localhost: nothing listens there in a test box.
        let client = Client::new(&["http://127.0.0.1:9".to_string(), "http://127.0.0.1:9/".to_string()]).unwrap();
        let failure = client.call(&Request::post("/locks/renew", json!({"owner": "o"}))).await.unwrap_err();
        assert_eq!(failure.exit, EXIT_UNAVAILABLE);
        let (code, message) = failure.code_and_message();
        assert_eq!(code, "unavailable");
        assert_eq!(message.matches("http://127.0.0.1:9:").count(), 2, "{message}");
    }
}
