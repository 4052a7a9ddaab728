//! `GET /openapi.json`: the OpenAPI 3.1 document of every HTTP route, built with `utoipa`'s
//! builders from the route table that `http::Routes` records while it builds the router, so
//! the document cannot list a route that is not served nor miss one that is.
//!
//! Each operation gets its summary, its path parameters, a success answer and the contract's
//! JSON error (`{"error":{"code","message"}}`); WebSocket routes are GETs marked
//! `x-websocket: true`. Bodies and answers are described in docs/api.md, not here.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref,
    Required, ResponseBuilder, SecurityRequirement,
};

use crate::http::{RouteDoc, Routes};

/// The route of the document itself, and its summary.
pub const PATH: &str = "/openapi.json";
const SUMMARY: &str = "This OpenAPI 3.1 document of every route";

/// `GET /openapi.json` describing `table` (every other route) and itself.
pub fn router(mut table: Vec<RouteDoc>) -> (Router, Vec<RouteDoc>) {
    table.push(RouteDoc {
        method: "GET",
        path: PATH,
        summary: SUMMARY,
        query: &[],
    });
    let json = document(&table)
        .to_pretty_json()
        .expect("an OpenAPI document of strings and maps always serializes");
    Routes::new()
        .get(PATH, SUMMARY, serve)
        .with_state(Arc::new(json))
}

async fn serve(State(json): State<Arc<String>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json.as_str().to_owned(),
    )
        .into_response()
}

/// The document of `table`.
pub fn document(table: &[RouteDoc]) -> OpenApi {
    let mut paths = PathsBuilder::new();
    for route in table {
        let (method, websocket) = method(route.method);
        let mut op = OperationBuilder::new()
            .summary(Some(route.summary))
            .operation_id(Some(operation_id(route)))
            .tag(tag(route.path))
            .response(
                if websocket { "101" } else { "200" },
                ResponseBuilder::new().description(if websocket {
                    "Switching to the WebSocket protocol"
                } else {
                    "Success; the answer is described in docs/api.md"
                }),
            )
            .response(
                "default",
                ResponseBuilder::new()
                    .description("An error: {\"error\":{\"code\",\"message\"}}")
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Error")))
                            .build(),
                    ),
            );
        for name in path_params(route.path) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        for &(name, required) in route.query {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Query)
                    .required(if required {
                        Required::True
                    } else {
                        Required::False
                    })
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        if websocket {
            op = op.extensions(Some(
                ExtensionsBuilder::new()
                    .add("x-websocket", serde_json::Value::Bool(true))
                    .build(),
            ));
        }
        paths = paths.path(route.path, PathItem::new(method, op));
    }
    let error = ObjectBuilder::new()
        .property(
            "error",
            ObjectBuilder::new()
                .property("code", ObjectBuilder::new().schema_type(Type::String))
                .property("message", ObjectBuilder::new().schema_type(Type::String))
                .required("code")
                .required("message"),
        )
        .required("error");
    let components = ComponentsBuilder::new()
        .schema("Error", error)
        .security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        )
        .security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("camgate")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Camera streaming gateway. The full contract, with bodies and answers, is docs/api.md. \
                     With [auth] api_keys set every route needs a key (or a viewer token on media URLs); \
                     without, only clients on this machine are answered.",
                )),
        )
        .paths(paths)
        .components(Some(components))
        .security(Some([
            SecurityRequirement::new::<&str, [&str; 0], &str>("bearer", []),
            SecurityRequirement::new::<&str, [&str; 0], &str>("api_key", []),
            SecurityRequirement::default(),
        ]))
        .build()
}

/// The table's method names (`GET (WebSocket)` is a GET that upgrades).
fn method(name: &str) -> (HttpMethod, bool) {
    match name {
        "POST" => (HttpMethod::Post, false),
        "PATCH" => (HttpMethod::Patch, false),
        "DELETE" => (HttpMethod::Delete, false),
        "OPTIONS" => (HttpMethod::Options, false),
        "PUT" => (HttpMethod::Put, false),
        "GET (WebSocket)" => (HttpMethod::Get, true),
        _ => (HttpMethod::Get, false),
    }
}

/// `{name}` segments of an axum (and OpenAPI) path template.
pub fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
}

/// `get_cameras_id_status`: unique per (method, path), as OpenAPI requires.
fn operation_id(route: &RouteDoc) -> String {
    let verb = match route.method {
        "GET (WebSocket)" => "ws".to_owned(),
        m => m.to_ascii_lowercase(),
    };
    let mut id = verb;
    for seg in route.path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(
            seg.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    if route.path == "/" {
        id.push_str("_root");
    }
    id
}

/// The first path segment names the area (`cameras`, `hls`, `api`...).
fn tag(path: &str) -> String {
    path.split('/')
        .find(|s| !s.is_empty())
        .unwrap_or("dashboard")
        .to_owned()
}
