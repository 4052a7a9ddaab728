//! Route declarations: every route is added with its method, path and a one-line summary in
//! one call, so the table of routes (for an OpenAPI document, `docs/api.md` checks and tests)
//! is read from the same calls that build the router and cannot drift from it.

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodRouter, delete, get, patch, post};

/// One declared route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteDoc {
    pub method: &'static str,
    /// In axum's syntax (`/cameras/{id}`), which is also OpenAPI's.
    pub path: &'static str,
    pub summary: &'static str,
    /// The query parameters it reads and whether each is required, for the OpenAPI document
    /// (see [`Routes::query`]).
    pub query: &'static [(&'static str, bool)],
}

/// A router under construction together with its route table.
pub struct Routes<S = ()> {
    router: Router<S>,
    docs: Vec<RouteDoc>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes {
            router: Router::new(),
            docs: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        summary: &'static str,
        route: MethodRouter<S>,
    ) -> Self {
        // axum merges method routers given for the same path.
        self.router = self.router.route(path, route);
        self.docs.push(RouteDoc {
            method,
            path,
            summary,
            query: &[],
        });
        self
    }

    pub fn get<H, T>(self, path: &'static str, summary: &'static str, h: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("GET", path, summary, get(h))
    }

    pub fn post<H, T>(self, path: &'static str, summary: &'static str, h: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("POST", path, summary, post(h))
    }

    pub fn patch<H, T>(self, path: &'static str, summary: &'static str, h: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("PATCH", path, summary, patch(h))
    }

    pub fn options<H, T>(self, path: &'static str, summary: &'static str, h: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("OPTIONS", path, summary, axum::routing::options(h))
    }

    pub fn delete<H, T>(self, path: &'static str, summary: &'static str, h: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("DELETE", path, summary, delete(h))
    }

    /// A WebSocket endpoint (an HTTP GET that upgrades).
    pub fn websocket<H, T>(self, path: &'static str, summary: &'static str, h: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("GET (WebSocket)", path, summary, get(h))
    }

    /// Names the query parameters of the route declared last, each with whether it is
    /// required (for the OpenAPI document).
    pub fn query(mut self, params: &'static [(&'static str, bool)]) -> Self {
        if let Some(last) = self.docs.last_mut() {
            last.query = params;
        }
        self
    }

    /// The router with its state, and the table of what it serves.
    pub fn with_state(self, state: S) -> (Router, Vec<RouteDoc>) {
        (self.router.with_state(state), self.docs)
    }
}

impl Routes<()> {
    /// For areas without state.
    pub fn build(self) -> (Router, Vec<RouteDoc>) {
        self.with_state(())
    }
}
