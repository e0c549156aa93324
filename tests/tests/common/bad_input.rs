//! Bad requests and the contract's answers to them, shared by every topic's
//! bad-input test: each [`Case`] is sent to a node, must get exactly its
//! contract error, and the node must go on serving `/health`.

use serde_json::Value;

use super::{assert_contract_error, Api};

/// A bad request and the contract's answer to it.
pub struct Case {
    /// What is wrong with it, for failure messages.
    pub what: String,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// Raw body bytes (may be malformed JSON).
    pub body: Vec<u8>,
    /// Expected HTTP status.
    pub status: u16,
    /// Expected `error.code`.
    pub code: &'static str,
}

impl Case {
    /// A POST of `body`, expected to be 400 `bad_request`.
    pub fn post(what: &str, path: &str, body: Value) -> Case {
        Case::raw(what, path, body.to_string())
    }

    /// A POST of raw text, expected to be 400 `bad_request`.
    pub fn raw(what: &str, path: &str, body: String) -> Case {
        Case {
            what: what.into(),
            method: "POST",
            path: path.into(),
            body: body.into_bytes(),
            status: 400,
            code: "bad_request",
        }
    }

    /// A GET expected to answer `status` with `code`.
    pub fn get(what: &str, path: String, status: u16, code: &'static str) -> Case {
        Case { what: what.into(), method: "GET", path, body: Vec::new(), status, code }
    }

    /// The same request, expected to answer `status` with `code` instead.
    pub fn answer(self, status: u16, code: &'static str) -> Case {
        Case { status, code, ..self }
    }

    /// Sends the request to node `id` (its `role` names it in messages) and
    /// asserts the contract error, then that the node still serves `/health`.
    pub async fn expect_rejected(&self, api: &Api, id: u64, role: &str) {
        let context = format!("{} {} ({}) on node{id} ({role})", self.method, shown(&self.path), self.what);
        let reply = match self.method {
            "GET" => api.get(id, &self.path).await,
            _ => api.post_bytes(id, &self.path, Some("application/json"), self.body.clone()).await,
        }
        .unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_contract_error(&reply, self.status, self.code, &context);
        if let Err(e) = api.health(id).await {
            panic!("node{id} stopped serving /health after {context}: {e}");
        }
    }
}

/// A path cut for failure messages (names of hundreds of bytes).
pub fn shown(path: &str) -> String {
    if path.len() <= 80 {
        path.to_owned()
    } else {
        format!("{}...({} bytes)", &path[..60], path.len())
    }
}
