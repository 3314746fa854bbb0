//! The API's error body: every failure is JSON `{"error": {"code": ..., "message": ...}}`
//! with a matching HTTP status (SPEC §12), never axum's plain-text rejections.
//!
//! [`ApiError`] maps each [`ServiceError`] to a status and a stable code; a refused install
//! also carries the decision (`"decision"` beside `code` and `message`).
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
            decision: None,
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let message = error.to_string();
        let (status, code) = match &error {
            ServiceError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            ServiceError::NoSuchHook { .. } => (StatusCode::NOT_FOUND, "no_such_hook"),
            ServiceError::Ambiguous { .. } => (StatusCode::BAD_REQUEST, "ambiguous_id"),
            ServiceError::NotAPlugin { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "not_a_plugin"),
            ServiceError::InvalidManifest { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifest")
            }
            ServiceError::Denied { .. } => (StatusCode::FORBIDDEN, "denied"),
            ServiceError::AlreadyInstalled { .. } => (StatusCode::CONFLICT, "already_installed"),
            ServiceError::WrongStatus { .. } => (StatusCode::CONFLICT, "wrong_status"),
            ServiceError::Tampered { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "store_tampered"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let decision = match error {
            ServiceError::Denied { decision, .. } => serde_json::to_value(&decision).ok(),
            _ => None,
        };
        ApiError {
            status,
            code,
            message,
            decision,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let (Some(decision), Some(object)) = (self.decision, error.as_object_mut()) {
            object.insert("decision".into(), decision);
        }
        (self.status, Json(serde_json::json!({ "error": error }))).into_response()
    }
}
