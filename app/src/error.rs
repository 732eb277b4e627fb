//! Errors, in two layers.
//!
//! [`AppError`] is the one error type that crosses the wire between the server and the browser: it
//! carries only what a user may see, and [`AppError::status`] is the single place where errors
//! become HTTP statuses. Inside the server, services return [`ServerError`]: either an answer for
//! the user (an `AppError`) or a fault that keeps its cause and the place it was met. A fault
//! becomes [`AppError::Internal`] once, where a request leaves the server, and is logged there.

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
            ServerFnErrorErr::Args(msg) => AppError::Invalid(msg),
            // On the server, a body that does not decode is bad input. In the browser it is the
            // server's answer that did not decode: a proxy's error page, or no server at all,
            // never the person's input.
            ServerFnErrorErr::Deserialization(msg) if cfg!(feature = "ssr") => {
                AppError::Invalid(msg)
            }
            ServerFnErrorErr::Deserialization(msg) => AppError::Request(format!(
                "Palisade's answer could not be read ({msg}); is the server reachable?"
            )),
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

/// A failure inside the server. `?` turns a database error into a fault that remembers where the
/// `?` stands; an [`AppError`] passes through unchanged.
#[cfg(feature = "ssr")]
#[derive(Debug)]
pub enum ServerError {
    /// An answer for the user: not found, not allowed, invalid, conflict.
    User(AppError),
    /// Something broke that the user cannot fix: its cause and the place it was met.
    Fault {
        cause: Box<dyn std::error::Error + Send + Sync>,
        at: &'static std::panic::Location<'static>,
    },
}

/// What a service returns.
#[cfg(feature = "ssr")]
pub type ServerResult<T> = Result<T, ServerError>;

#[cfg(feature = "ssr")]
impl ServerError {
    /// A fault with `cause`, located where this is called.
    #[track_caller]
    pub fn fault(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ServerError::Fault {
            cause: cause.into(),
            at: std::panic::Location::caller(),
        }
    }

    /// The user's answer, when this is one (tests and callers that branch on it).
    pub fn user(&self) -> Option<&AppError> {
        match self {
            ServerError::User(err) => Some(err),
            ServerError::Fault { .. } => None,
        }
    }
}

/// `result.or_fault()?`: any other error becomes a fault located at that line.
#[cfg(feature = "ssr")]
pub trait OrFault<T> {
    fn or_fault(self) -> ServerResult<T>;
}

#[cfg(feature = "ssr")]
impl<T, E: Into<Box<dyn std::error::Error + Send + Sync>>> OrFault<T> for Result<T, E> {
    #[track_caller]
    fn or_fault(self) -> ServerResult<T> {
        match self {
            Ok(value) => Ok(value),
            Err(err) => Err(ServerError::fault(err)),
        }
    }
}

#[cfg(feature = "ssr")]
impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::User(err) => err.fmt(f),
            ServerError::Fault { cause, at } => write!(f, "{cause} (at {at})"),
        }
    }
}

#[cfg(feature = "ssr")]
impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::User(err) => Some(err),
            ServerError::Fault { cause, .. } => Some(cause.as_ref()),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<AppError> for ServerError {
    fn from(err: AppError) -> Self {
        ServerError::User(err)
    }
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for ServerError {
    #[track_caller]
    fn from(err: sqlx::Error) -> Self {
        ServerError::fault(err)
    }
}

#[cfg(feature = "ssr")]
impl From<serde_json::Error> for ServerError {
    #[track_caller]
    fn from(err: serde_json::Error) -> Self {
        ServerError::fault(err)
    }
}

#[cfg(feature = "ssr")]
impl From<crate::wire::UnknownValue> for ServerError {
    #[track_caller]
    fn from(err: crate::wire::UnknownValue) -> Self {
        ServerError::fault(err)
    }
}

/// Where a request leaves the server: a fault is logged with its cause and place, and the user
/// sees only [`AppError::Internal`]. Inside a server function called over HTTP, the response gets
/// the error's status too (404, 409, …), as a REST handler's would.
#[cfg(feature = "ssr")]
impl From<ServerError> for AppError {
    fn from(err: ServerError) -> Self {
        let err = match err {
            ServerError::User(err) => err,
            ServerError::Fault { cause, at } => {
                tracing::error!(error = %cause, at = %at, "internal error");
                AppError::Internal
            }
        };
        err.answer_with_status();
        err
    }
}

#[cfg(feature = "ssr")]
impl AppError {
    /// Give the response of the server function being called its status for this error. Only for
    /// a call of the server function itself (`/api/…`, not the REST API, whose handlers answer
    /// with [`AppError::status`] directly): while a page renders, the page's own status stands (a
    /// section says "only admins" with 200, not a 403 page).
    pub fn answer_with_status(&self) {
        use leptos::prelude::use_context;
        let called_directly = use_context::<http::request::Parts>().is_some_and(|parts| {
            parts.uri.path().starts_with("/api/") && !parts.uri.path().starts_with("/api/v1/")
        });
        if called_directly {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(self.status());
            }
        }
    }
}

#[cfg(feature = "ssr")]
impl axum::response::IntoResponse for ServerError {
    fn into_response(self) -> axum::response::Response {
        AppError::from(self).into_response()
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

    fn located() -> Result<(), ServerError> {
        Err(sqlx::Error::RowNotFound)?;
        Ok(())
    }

    #[test]
    fn a_fault_keeps_its_cause_and_the_place_of_its_question_mark() {
        let Err(err) = located() else {
            panic!("expected a fault");
        };
        let text = err.to_string();
        assert!(text.contains("no rows returned"), "{text}");
        assert!(text.contains("app/src/error.rs:"), "{text}");
        assert_eq!(err.user(), None);
        assert_eq!(AppError::from(err), AppError::Internal);
    }

    #[test]
    fn or_fault_locates_the_caller() {
        let result: Result<(), std::fmt::Error> = Err(std::fmt::Error);
        let line = line!() + 1;
        let err = result.or_fault().err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains(&format!("app/src/error.rs:{line}:")),
            "{text}"
        );
    }

    #[test]
    fn a_user_answer_passes_through_unchanged() {
        let err = ServerError::from(AppError::Conflict("version".into()));
        assert_eq!(err.user(), Some(&AppError::Conflict("version".into())));
        assert_eq!(AppError::from(err), AppError::Conflict("version".into()));
    }

    #[test]
    fn server_fn_argument_errors_become_invalid_input() {
        let error = AppError::from_server_fn_error(ServerFnErrorErr::Args("missing `name`".into()));
        assert_eq!(error, AppError::Invalid("missing `name`".into()));
    }

    #[test]
    fn a_body_the_server_cannot_decode_is_invalid_input() {
        let error = AppError::from_server_fn_error(ServerFnErrorErr::Deserialization(
            "missing field `name`".into(),
        ));
        assert_eq!(error, AppError::Invalid("missing field `name`".into()));
    }
}
