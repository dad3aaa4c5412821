//! Typed errors: the Graph error envelope, identity-platform token errors, transport failures.

use std::time::Duration;

use serde::Deserialize;

/// Everything that can go wrong talking to the identity platform or Graph.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error status and (usually) an error envelope.
    #[error("{0}")]
    Service(ServiceError),
    /// A delta token or link is no longer valid (410 `SyncStateNotFound` and friends): the
    /// caller must drop its saved delta link and enumerate `resource` again from scratch.
    #[error("delta state expired for {resource}: {source}")]
    SyncStateNotFound {
        /// The resource whose delta must restart, e.g. a mail folder id or `users`.
        resource: String,
        source: ServiceError,
    },
    /// The token endpoint refused (bad secret, bad assertion, consent missing, ...).
    #[error("{0}")]
    Identity(IdentityError),
    /// The sign-in redirect did not carry what the flow expects (state mismatch, no code).
    #[error("sign-in redirect rejected: {0}")]
    SignIn(String),
    /// Connection, TLS or protocol failure that persisted through every retry.
    #[error("transport error: {0}")]
    Transport(String),
    /// A response body that is not what the API documents.
    #[error("unexpected response body: {0}")]
    Decode(String),
    /// A body exceeded the caller's in-memory limit; stream it instead.
    #[error("response body exceeds the {limit}-byte limit")]
    TooLarge { limit: usize },
    /// Retries were exhausted on throttling or transient server errors.
    #[error("gave up after {attempts} attempts; last failure: {last}")]
    RetriesExhausted { attempts: u32, last: String },
    /// A request the client refuses to send (for example a `$batch` of more than 20).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Certificate or key material could not be generated, parsed or used.
    #[error("certificate: {0}")]
    Certificate(String),
}

impl GraphError {
    /// The Graph error code, when the service sent an envelope.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            GraphError::Service(e) | GraphError::SyncStateNotFound { source: e, .. } => {
                Some(&e.code)
            }
            _ => None,
        }
    }

    /// HTTP status of a service error.
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Service(e) | GraphError::SyncStateNotFound { source: e, .. } => {
                Some(e.status)
            }
            _ => None,
        }
    }

    /// True when the user has no Exchange Online mailbox (unlicensed, on-premises,
    /// soft-deleted): a fact about the account, not a failure of the backup.
    pub fn is_mailbox_not_enabled(&self) -> bool {
        matches!(self.code(), Some(ErrorCode::MailboxNotEnabled))
    }
}

/// A non-success response from Graph, decoded from its error envelope
/// `{"error":{"code","message","innerError":{"request-id","date",...}}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceError {
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
    /// `request-id` from the envelope's inner error or the response header.
    pub request_id: Option<String>,
    /// Server-requested wait (429/503), already parsed.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Graph {} {}: {}",
            self.status,
            self.code.as_str(),
            self.message
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " (request-id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServiceError {}

impl ServiceError {
    /// Decode an error body. Bodies that are empty or not an envelope (some 503s) still give a
    /// `ServiceError` whose code is derived from the status.
    pub fn from_body(status: u16, body: &[u8], header_request_id: Option<&str>) -> ServiceError {
        #[derive(Deserialize)]
        struct Envelope {
            error: Inner,
        }
        #[derive(Deserialize)]
        struct Inner {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
            #[serde(default, alias = "innererror")]
            #[serde(rename = "innerError")]
            inner_error: Option<serde_json::Value>,
        }
        let parsed = serde_json::from_slice::<Envelope>(body).ok();
        let (code, message, inner_id) = match parsed {
            Some(e) => {
                let inner_id = e.error.inner_error.as_ref().and_then(|v| {
                    v.get("request-id")
                        .or_else(|| v.get("requestId"))
                        .and_then(|s| s.as_str())
                        .map(str::to_owned)
                });
                (e.error.code, e.error.message, inner_id)
            }
            None => (
                String::new(),
                String::from_utf8_lossy(body).trim().to_owned(),
                None,
            ),
        };
        let code = if code.is_empty() {
            ErrorCode::Other(format!("http{status}"))
        } else {
            ErrorCode::parse(&code)
        };
        ServiceError {
            status,
            code,
            message,
            request_id: inner_id.or_else(|| header_request_id.map(str::to_owned)),
            retry_after: None,
        }
    }

    /// A delta token the service no longer knows: restart that resource's enumeration.
    pub fn requires_resync(&self) -> bool {
        self.status == 410
            || matches!(
                self.code,
                ErrorCode::SyncStateNotFound
                    | ErrorCode::ResyncRequired
                    | ErrorCode::SyncStateInvalid
            )
    }
}

/// Graph error codes the client acts on; everything else is kept verbatim in `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// `MailboxNotEnabledForRESTAPI`: the user has no Exchange Online mailbox.
    MailboxNotEnabled,
    /// `SyncStateNotFound` / `syncStateNotFound`: the delta token expired.
    SyncStateNotFound,
    /// `resyncRequired`.
    ResyncRequired,
    /// `SyncStateInvalid`.
    SyncStateInvalid,
    /// `ErrorAccessDenied` / `accessDenied` / `Authorization_RequestDenied` (e.g. an
    /// application access policy excludes the mailbox).
    AccessDenied,
    /// `InvalidAuthenticationToken`: the access token expired or is not yet valid.
    InvalidAuthenticationToken,
    /// `ErrorItemNotFound` / `itemNotFound` / `ResourceNotFound` / `Request_ResourceNotFound`.
    NotFound,
    /// `ErrorQuotaExceeded`: mailbox full; delta calls fail while plain reads work.
    QuotaExceeded,
    /// `TooManyRequests` / `ApplicationThrottled` / `activityLimitReached`.
    Throttled,
    /// `ErrorInvalidUser`.
    InvalidUser,
    Other(String),
}

impl ErrorCode {
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "MailboxNotEnabledForRESTAPI" => ErrorCode::MailboxNotEnabled,
            "SyncStateNotFound" | "syncStateNotFound" => ErrorCode::SyncStateNotFound,
            "resyncRequired" | "ResyncRequired" => ErrorCode::ResyncRequired,
            "SyncStateInvalid" => ErrorCode::SyncStateInvalid,
            "ErrorAccessDenied" | "accessDenied" | "Authorization_RequestDenied" => {
                ErrorCode::AccessDenied
            }
            "InvalidAuthenticationToken" => ErrorCode::InvalidAuthenticationToken,
            "ErrorItemNotFound"
            | "itemNotFound"
            | "ResourceNotFound"
            | "Request_ResourceNotFound" => ErrorCode::NotFound,
            "ErrorQuotaExceeded" => ErrorCode::QuotaExceeded,
            "TooManyRequests" | "ApplicationThrottled" | "activityLimitReached" => {
                ErrorCode::Throttled
            }
            "ErrorInvalidUser" => ErrorCode::InvalidUser,
            other => ErrorCode::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::MailboxNotEnabled => "MailboxNotEnabledForRESTAPI",
            ErrorCode::SyncStateNotFound => "SyncStateNotFound",
            ErrorCode::ResyncRequired => "resyncRequired",
            ErrorCode::SyncStateInvalid => "SyncStateInvalid",
            ErrorCode::AccessDenied => "ErrorAccessDenied",
            ErrorCode::InvalidAuthenticationToken => "InvalidAuthenticationToken",
            ErrorCode::NotFound => "ErrorItemNotFound",
            ErrorCode::QuotaExceeded => "ErrorQuotaExceeded",
            ErrorCode::Throttled => "TooManyRequests",
            ErrorCode::InvalidUser => "ErrorInvalidUser",
            ErrorCode::Other(s) => s,
        }
    }
}

/// An OAuth error from the token endpoint:
/// `{"error":"invalid_scope","error_description":"AADSTS70011: ...","error_codes":[70011]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityError {
    pub status: Option<u16>,
    /// The OAuth `error` value (`invalid_client`, `invalid_grant`, ...). Code against this.
    pub error: String,
    pub description: String,
    /// The AADSTS number, from `error_codes` or the description's `AADSTSnnnn:` prefix.
    pub aadsts: Option<u32>,
}

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "identity platform refused: {}", self.error)?;
        if let Some(code) = self.aadsts {
            write!(f, " (AADSTS{code})")?;
        }
        // Only the first line: the rest is trace/correlation ids and timestamps.
        if let Some(first) = self.description.lines().next().filter(|l| !l.is_empty()) {
            write!(f, ": {first}")?;
        }
        Ok(())
    }
}

impl IdentityError {
    /// Decode a token-endpoint error body.
    pub fn from_body(status: Option<u16>, body: &[u8]) -> IdentityError {
        #[derive(Deserialize)]
        struct Body {
            error: String,
            #[serde(default)]
            error_description: String,
            #[serde(default)]
            error_codes: Vec<u32>,
        }
        match serde_json::from_slice::<Body>(body) {
            Ok(b) => IdentityError {
                status,
                aadsts: b
                    .error_codes
                    .first()
                    .copied()
                    .or_else(|| aadsts_from_description(&b.error_description)),
                error: b.error,
                description: b.error_description,
            },
            Err(_) => IdentityError {
                status,
                error: "unparseable_response".into(),
                description: String::from_utf8_lossy(body).chars().take(200).collect(),
                aadsts: None,
            },
        }
    }
}

/// `"AADSTS70011: The provided ..."` → `Some(70011)`.
pub(crate) fn aadsts_from_description(description: &str) -> Option<u32> {
    let rest = description.strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::fixture;

    #[test]
    fn mailbox_not_enabled_envelope() {
        let e = ServiceError::from_body(
            404,
            &fixture("error-404-MailboxNotEnabledForRESTAPI.json"),
            None,
        );
        assert_eq!(e.code, ErrorCode::MailboxNotEnabled);
        assert_eq!(e.message, "REST API is not yet supported for this mailbox.");
        assert_eq!(
            e.request_id.as_deref(),
            Some("080ffc52-c4e9-478f-9774-e8723d4a950e")
        );
        assert!(GraphError::Service(e).is_mailbox_not_enabled());
    }

    #[test]
    fn sync_state_not_found_requires_resync() {
        let e = ServiceError::from_body(410, &fixture("error-410-SyncStateNotFound.json"), None);
        assert_eq!(e.code, ErrorCode::SyncStateNotFound);
        assert!(e.requires_resync());
        let other = ServiceError::from_body(404, &fixture("error-404-ResourceNotFound.json"), None);
        assert_eq!(other.code, ErrorCode::NotFound);
        assert!(!other.requires_resync());
    }

    #[test]
    fn access_denied_and_throttle_codes() {
        let e = ServiceError::from_body(
            403,
            &fixture("error-403-ErrorAccessDenied-appaccesspolicy.json"),
            None,
        );
        assert_eq!(e.code, ErrorCode::AccessDenied);
        assert_eq!(e.message, "Access to OData is disabled.");
        let t = ServiceError::from_body(429, &fixture("error-429-throttled.json"), None);
        assert_eq!(t.code, ErrorCode::Throttled);
        assert_eq!(
            t.request_id.as_deref(),
            Some("94fb3b52-452a-4535-a601-69e0a90e3aa2")
        );
        let c = ServiceError::from_body(
            429,
            &fixture("error-429-MailboxConcurrency.json"),
            Some("hdr-id"),
        );
        assert_eq!(c.code, ErrorCode::Throttled);
        assert_eq!(
            c.request_id.as_deref(),
            Some("hdr-id"),
            "falls back to the header id"
        );
        let tok = ServiceError::from_body(
            401,
            &fixture("error-401-InvalidAuthenticationToken.json"),
            None,
        );
        assert_eq!(tok.code, ErrorCode::InvalidAuthenticationToken);
    }

    #[test]
    fn unknown_codes_and_odd_inner_error_spellings_survive() {
        let e = ServiceError::from_body(416, &fixture("error-generic-invalidRange.json"), None);
        assert_eq!(e.code, ErrorCode::Other("invalidRange".into()));
        assert_eq!(
            e.request_id.as_deref(),
            Some("request-id"),
            "innerError.requestId spelling"
        );
        let lower = br#"{"error":{"code":"x","message":"m","innererror":{"request-id":"r1"}}}"#;
        assert_eq!(
            ServiceError::from_body(500, lower, None)
                .request_id
                .as_deref(),
            Some("r1")
        );
        let n = ServiceError::from_body(501, &fixture("error-501-notimplemented.json"), None);
        assert_eq!(n.code.as_str(), "NotImplemented");
    }

    #[test]
    fn empty_503_body_still_decodes() {
        let e = ServiceError::from_body(503, b"", Some("abc"));
        assert_eq!(e.code, ErrorCode::Other("http503".into()));
        assert_eq!(e.request_id.as_deref(), Some("abc"));
    }

    #[test]
    fn identity_error_reads_aadsts_code() {
        let e = IdentityError::from_body(Some(400), &fixture("token-error-invalid_scope.json"));
        assert_eq!(e.error, "invalid_scope");
        assert_eq!(e.aadsts, Some(70011));
        let shown = e.to_string();
        assert!(shown.contains("AADSTS70011"), "{shown}");
        assert!(
            !shown.contains("Trace ID"),
            "only the first description line: {shown}"
        );
        assert_eq!(
            aadsts_from_description("AADSTS7000215: Invalid client secret"),
            Some(7000215)
        );
        assert_eq!(aadsts_from_description("nothing"), None);
    }
}
