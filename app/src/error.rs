//! The one error type that crosses the wire between the server and the browser.
//!
//! It carries only what a user may see. Internal details are logged on the server and replaced by
//! [`AppError::Internal`]; [`AppError::status`] is the single place where errors become HTTP statuses.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("sign-in required")]
    Unauthenticated,
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("internal error; the server log has the details")]
    Internal,
    /// The request itself failed: it never reached the server, or its encoding was wrong.
    #[error("request failed: {0}")]
    Request(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(msg) | ServerFnErrorErr::Deserialization(msg) => {
                AppError::Invalid(msg)
            }
            other => AppError::Request(other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
impl AppError {
    /// Log `err` with its full detail on the server and return the wire-safe [`AppError::Internal`].
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        AppError::Internal
    }

    /// The HTTP status for this error. The only mapping there is.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Invalid(_) | AppError::Request(_) => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[cfg(feature = "ssr")]
impl axum::response::IntoResponse for AppError {
    fn into_response(self) -> axum::response::Response {
        (self.status(), axum::Json(self)).into_response()
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn each_error_maps_to_one_status() {
        let cases = [
            (AppError::NotFound("policy".into()), StatusCode::NOT_FOUND),
            (AppError::Unauthenticated, StatusCode::UNAUTHORIZED),
            (AppError::Forbidden("approve".into()), StatusCode::FORBIDDEN),
            (AppError::Invalid("name".into()), StatusCode::BAD_REQUEST),
            (AppError::Request("io".into()), StatusCode::BAD_REQUEST),
            (AppError::Conflict("version".into()), StatusCode::CONFLICT),
            (AppError::Internal, StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status, "{error:?}");
        }
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let error = AppError::internal("loading", "password=hunter2 at db.internal");
        assert_eq!(error, AppError::Internal);
        assert!(!error.to_string().contains("hunter2"));
    }

    #[test]
    fn server_fn_argument_errors_become_invalid_input() {
        let error = AppError::from_server_fn_error(ServerFnErrorErr::Args("missing `name`".into()));
        assert_eq!(error, AppError::Invalid("missing `name`".into()));
    }
}
