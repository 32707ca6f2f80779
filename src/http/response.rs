//! What a handler answers: a status, a content type and a body; errors as `{"error": "..."}`.

use serde_json::{json, Value};

pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    pub fn ok(value: Value) -> Response {
        Response::json(200, &value)
    }

    pub fn error(status: u16, message: impl Into<String>) -> Response {
        Response::json(status, &json!({ "error": message.into() }))
    }
}

/// A handler's JSON result as a response: 200 with the value, or the error it gave.
pub fn answer(result: Result<Value, Response>) -> Response {
    match result {
        Ok(v) => Response::ok(v),
        Err(r) => r,
    }
}
