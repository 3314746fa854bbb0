//! The API's error body: every failure is JSON `{"error": {"code": ..., "message": ...}}`
//! with a matching HTTP status (SPEC §12), never axum's plain-text rejections.
//!
//! [`ApiError`] maps each [`ServiceError`] to a status and its stable code
//! ([`ServiceError::code`]); an upload that is not a plugin also carries the inspection's code
//! (`"reason"`, e.g. `ELF_TRUNCATED`), a refused install the decision (`"decision"`).
#![forbid(unsafe_code)]

use crate::service::ServiceError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `unauthorized`, `not_found`, `body_too_large`.
    pub code: &'static str,
    /// What went wrong, naming the thing and the problem.
    pub message: String,
    /// For an upload that is not a plugin, the inspection's stable code (`ELF_TRUNCATED`, ...).
    pub reason: Option<&'static str>,
    /// Extra facts (the decision of a refused install).
    pub decision: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            reason: None,
            decision: None,
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let status = match &error {
            ServiceError::NotFound { .. } | ServiceError::NoSuchHook { .. } => {
                StatusCode::NOT_FOUND
            }
            ServiceError::Ambiguous { .. } => StatusCode::BAD_REQUEST,
            ServiceError::NotAPlugin { .. } | ServiceError::InvalidManifest { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ServiceError::Denied { .. } => StatusCode::FORBIDDEN,
            ServiceError::AlreadyInstalled { .. } | ServiceError::WrongStatus { .. } => {
                StatusCode::CONFLICT
            }
            ServiceError::NotRecorded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // A failure of the host itself is `internal` to a client, whatever its kind.
        let code = if status == StatusCode::INTERNAL_SERVER_ERROR
            && !matches!(error, ServiceError::Tampered { .. })
        {
            "internal"
        } else {
            error.code()
        };
        let reason = error.reason();
        let message = error.to_string();
        let decision = match error {
            ServiceError::Denied { decision, .. } => serde_json::to_value(&decision).ok(),
            _ => None,
        };
        ApiError {
            status,
            code,
            message,
            reason,
            decision,
        }
    }
}

/// An error body, `{"error": {"code", "message", "reason"?}}`: the API's, and the CLI's with
/// `--json`.
pub fn body(code: &str, message: &str, reason: Option<&str>) -> serde_json::Value {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let (Some(reason), Some(object)) = (reason, error.as_object_mut()) {
        object.insert("reason".into(), reason.into());
    }
    serde_json::json!({ "error": error })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = body(self.code, &self.message, self.reason);
        if let (Some(decision), Some(error)) = (self.decision, body["error"].as_object_mut()) {
            error.insert("decision".into(), decision);
        }
        (self.status, Json(body)).into_response()
    }
}
