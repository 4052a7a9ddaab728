//! The control plane's routers (cameras, streams, health) and the one merge of every area's
//! router, with the layers every route gets (request span, access control, body limit, JSON
//! 404/405, CORS, panic answer).
//!
//! Adding an output: its folder exposes `fn router(state) -> (Router, Vec<RouteDoc>)`, and
//! `app.rs` adds it to the list handed to [`merge`]. This module builds no part of the service
//! and holds no state; it must not import outputs (it receives their routers).

pub mod cameras;
pub mod health;
pub mod openapi;
pub mod streams;
pub mod tokens;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::http::{Access, AppError, RouteDoc, extract, require_access, trace};

/// One area's router and the routes it declared.
pub type Area = (Router, Vec<RouteDoc>);

/// The whole HTTP surface: every area behind access control, the dashboard's static files
/// outside it, and the table of every declared route.
pub fn merge(areas: Vec<Area>, access: Access, cors_origins: &[String]) -> (Router, Vec<RouteDoc>) {
    let mut app = Router::new();
    let mut table = Vec::new();
    for (router, docs) in areas {
        app = app.merge(router);
        table.extend(docs);
    }
    let (web, web_docs) = crate::web::router();
    table.extend(web_docs);
    // Last, so that it describes every route above and itself.
    let (openapi, openapi_docs) = openapi::router(table.clone());
    app = app.merge(openapi);
    table.extend(openapi_docs);
    let mut app = app
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(from_fn_with_state(access, require_access))
        // The dashboard's static files hold no data, and the page must load before it can
        // ask for an API key: outside access control.
        .merge(web);
    // Outside access control so that browsers' preflight requests (which carry no key) get
    // their CORS answer.
    if let Some(cors) = cors_layer(cors_origins) {
        app = app.layer(cors);
    }
    // A bug must cost one request a JSON 500, never the connection or the process; and every
    // error answer, ours or a library's, is the JSON shape.
    let app = app
        .layer(CatchPanicLayer::custom(panic_answer))
        .layer(from_fn(crate::http::json_errors::json_errors))
        .layer(from_fn(trace::trace_request));
    (app, table)
}

fn panic_answer(_panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    tracing::error!("a request handler panicked; this is a camgate bug");
    AppError::internal("internal_error", "internal error; see the server log").into_response()
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    // Config validation has already refused anything that is not an exact origin.
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                HeaderName::from_static("x-api-key"),
            ])
            // WHEP clients read these from the answer to a cross-origin offer.
            .expose_headers([
                header::LOCATION,
                header::ETAG,
                header::LINK,
                HeaderName::from_static("accept-patch"),
            ]),
    )
}

async fn not_found() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see docs/api.md",
    )
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method; see docs/api.md",
    )
}
