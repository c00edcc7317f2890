//! DNS-rebinding protection: a request whose `Origin` is present and not one we serve is 403.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::error::json_error;
use super::AppState;

pub async fn check_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| state.allowed_origins.contains(o.trim_end_matches('/')));
        if !allowed {
            return json_error(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                "requests from this Origin are not allowed",
            );
        }
    }
    next.run(request).await
}
