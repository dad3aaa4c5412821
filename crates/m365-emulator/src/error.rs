//! Errors: `EmulatorError` for the library API, `GraphError` for Graph's JSON error envelope.
//!
//! A handler returns `GraphError`; the Graph middleware (`graph::pipeline`) then writes
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}` with
//! the same request id as the `request-id` header, as Graph does.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Errors of the library API (starting, loading tenants, control operations).
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("cannot read tenant file {path}: {reason}")]
    TenantFile { path: String, reason: String },
    #[error("cannot import .eml files from {path}: {reason}")]
    Import { path: String, reason: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("a folder named {0:?} already exists here")]
    FolderExists(String),
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// A Graph error response. Fields mirror the envelope; options cover Graph's variations.
#[derive(Debug, Clone)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Some Outlook errors (MailboxConcurrency, bad MIME base64) come without innerError.
    pub inner: bool,
    /// Extra innerError members (the throttling sample carries code/message/status).
    pub inner_extra: Vec<(&'static str, String)>,
    pub retry_after: Option<f64>,
    /// 503s are sometimes bodiless.
    pub empty_body: bool,
    pub www_authenticate: bool,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code: code.to_string(),
            message: message.into(),
            inner: true,
            inner_extra: Vec::new(),
            retry_after: None,
            empty_body: false,
            www_authenticate: false,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn item_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }

    pub fn user_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        )
    }

    pub fn no_mailbox() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    }

    pub fn unauthenticated(message: &str) -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        );
        e.www_authenticate = true;
        e
    }

    /// 501 for a request the emulator does not implement (the real service might).
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, "NotImplemented", message)
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        )
    }

    pub fn without_inner(mut self) -> Self {
        self.inner = false;
        self
    }

    pub fn retry_after(mut self, seconds: f64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The JSON body, given the request id and date the middleware assigns.
    pub fn body(&self, request_id: &str, client_request_id: &str, date: &str) -> serde_json::Value {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if self.inner {
            let mut inner = serde_json::Map::new();
            inner.insert("date".into(), date.into());
            inner.insert("request-id".into(), request_id.into());
            inner.insert("client-request-id".into(), client_request_id.into());
            for (k, v) in &self.inner_extra {
                inner.insert((*k).into(), v.clone().into());
            }
            error["innerError"] = inner.into();
        }
        serde_json::json!({ "error": error })
    }
}

impl From<EmulatorError> for GraphError {
    fn from(e: EmulatorError) -> Self {
        match e {
            EmulatorError::NotFound(_) => GraphError::item_not_found(),
            EmulatorError::FolderExists(name) => GraphError::new(
                StatusCode::CONFLICT,
                "ErrorFolderExists",
                format!("A folder with the specified name already exists., {name}"),
            ),
            other => GraphError::bad_request(other.to_string()),
        }
    }
}

/// The response carries the error as an extension; `graph::pipeline` renders the body.
impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(seconds) = self.retry_after {
            let value = format_retry_after(seconds);
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert("retry-after", v);
            }
        }
        if self.www_authenticate {
            response.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static(
                    "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                ),
            );
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// Retry-After with up to three decimals, as Graph sends it ("2.128").
pub fn format_retry_after(seconds: f64) -> String {
    let s = format!("{:.3}", seconds.max(0.001));
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_fractional_without_trailing_zeros() {
        assert_eq!(format_retry_after(2.128), "2.128");
        assert_eq!(format_retry_after(0.5), "0.5");
        assert_eq!(format_retry_after(3.0), "3");
    }

    #[test]
    fn envelope_carries_request_id_and_date() {
        let e = GraphError::no_mailbox();
        let body = e.body("rid", "cid", "2024-01-01T00:00:00");
        assert_eq!(body["error"]["code"], "MailboxNotEnabledForRESTAPI");
        assert_eq!(body["error"]["innerError"]["request-id"], "rid");
        assert!(
            GraphError::no_mailbox().without_inner().body("r", "c", "d")["error"]
                .get("innerError")
                .is_none()
        );
    }
}
