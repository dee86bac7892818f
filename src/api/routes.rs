//! The list of API routes. Every route is registered here, so the OpenAPI
//! document can be compared with what the server really answers: a test
//! fails if a route is registered without being described.

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Responder};

/// One registered route: its method, its full path and the actix route.
pub struct Endpoint {
    /// HTTP method.
    pub method: Method,
    /// Full path with `{param}` segments, e.g. `/v1/cases/{id}`.
    pub path: &'static str,
    route: actix_web::Route,
}

/// Collects the routes of every module, in registration order.
#[derive(Default)]
pub struct Endpoints(Vec<Endpoint>);

macro_rules! method {
    ($name:ident, $method:ident, $route:ident) => {
        /// Registers a handler for this method on `path`.
        pub fn $name<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.0.push(Endpoint {
                method: Method::$method,
                path,
                route: web::$route().to(handler),
            });
            self
        }
    };
}

impl Endpoints {
    method!(get, GET, get);
    method!(post, POST, post);
    method!(patch, PATCH, patch);
    method!(delete, DELETE, delete);

    /// Every (method, path) registered, in order.
    pub fn list(&self) -> Vec<(Method, &'static str)> {
        self.0.iter().map(|e| (e.method.clone(), e.path)).collect()
    }

    /// Adds every route to `cfg`, one resource per path (in the order of
    /// first registration, so `/v1/tokens/self` stays before `/v1/tokens/{id}`).
    pub fn register(self, cfg: &mut web::ServiceConfig) {
        let mut resources: Vec<(&'static str, actix_web::Resource)> = Vec::new();
        for e in self.0 {
            match resources.iter().position(|(p, _)| *p == e.path) {
                Some(i) => {
                    let (p, r) = resources.remove(i);
                    resources.insert(i, (p, r.route(e.route)));
                }
                None => resources.push((e.path, web::resource(e.path).route(e.route))),
            }
        }
        for (_, r) in resources {
            cfg.service(r);
        }
    }
}

/// Every route of the API (health, documents and `/v1`; the console's
/// static files are registered by `console`).
pub fn all() -> Endpoints {
    let mut e = Endpoints::default();
    e.get("/healthz", super::health::healthz)
        .get("/readyz", super::health::readyz)
        .get("/metrics", super::health::metrics)
        .get("/openapi.json", super::openapi::get_openapi)
        .get("/docs", super::openapi::get_docs)
        .post("/v1/score", super::score::score_text)
        .get("/v1/policy", super::score::get_policy)
        .post("/v1/policy/reload", super::score::reload_policy)
        .get("/v1/events", super::samples::list_events);
    super::tenants::routes(&mut e);
    super::cases::routes(&mut e);
    super::statements::routes(&mut e);
    // Before `reports`, whose `/v1/reports/{id}` would take it.
    super::transparency::routes(&mut e);
    super::reports::routes(&mut e);
    super::portal::routes(&mut e);
    super::audit::routes(&mut e);
    super::tokens::routes(&mut e);
    super::samples::routes(&mut e);
    super::webhooks::routes(&mut e);
    super::review::routes(&mut e);
    e
}
