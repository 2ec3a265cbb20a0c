//! The server's routing table: werkzeug rules of the HTTP entrypoints, and the tower
//! services mounted by other extensions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::error::WebError;
use crate::request::Request;
use crate::rule::Rule;
use crate::{Body, HttpService};

/// What answers a matched request.
pub(crate) type Handler = Arc<
    dyn Fn(Request) -> Pin<Box<dyn Future<Output = http::Response<Body>> + Send>> + Send + Sync,
>;

/// One entrypoint's rule.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) id: u64,
    pub(crate) rule: Rule,
    /// Upper case; `HEAD` added when `GET` is there, as werkzeug does.
    pub(crate) methods: Vec<String>,
    /// `service.method`, for messages.
    pub(crate) owner: String,
    pub(crate) handler: Handler,
    /// Its service stopped while the server goes on: answered 503, and replaced by a
    /// route that clashes with it.
    retired: bool,
    sort_key: Vec<(u8, u32, usize)>,
}

impl Route {
    pub(crate) fn new(
        id: u64,
        rule: Rule,
        methods: &str,
        owner: String,
        handler: Handler,
    ) -> Result<Self, WebError> {
        let mut list: Vec<String> = Vec::new();
        for method in methods.split(',').map(|m| m.trim().to_ascii_uppercase()) {
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(WebError::Rule(crate::error::RuleError::new(
                    rule.as_str(),
                    format!("`{methods}` is not a list of HTTP methods such as \"GET,POST\""),
                )));
            }
            if !list.contains(&method) {
                list.push(method);
            }
        }
        if list.iter().any(|m| m == "GET") && !list.iter().any(|m| m == "HEAD") {
            list.insert(0, "HEAD".to_owned());
        }
        let sort_key = rule.sort_key();
        Ok(Self {
            id,
            rule,
            methods: list,
            owner,
            handler,
            retired: false,
            sort_key,
        })
    }
}

/// A tower service answering a path, or every path under a prefix.
#[derive(Clone)]
pub(crate) struct Mount {
    pub(crate) id: u64,
    pub(crate) path: String,
    pub(crate) nested: bool,
    pub(crate) name: String,
    pub(crate) service: HttpService,
}

impl Mount {
    fn answers(&self, path: &str) -> bool {
        if self.nested {
            path == self.path
                || path
                    .strip_prefix(self.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        } else {
            path == self.path
        }
    }
}

/// What a request matched.
pub(crate) enum Matched {
    Route(Handler, Vec<(String, Value)>),
    Mount(HttpService),
    /// The path with a trailing slash matches: werkzeug redirects there.
    Redirect,
    MethodNotAllowed(Vec<String>),
    NotFound,
}

/// The routing table; copied on change, read without locking for long.
#[derive(Clone, Default)]
pub(crate) struct Table {
    routes: Vec<Route>,
    mounts: Vec<Mount>,
}

impl Table {
    pub(crate) fn add_route(&mut self, route: Route) -> Result<(), WebError> {
        let shape = route.rule.shape();
        let common_methods = |existing: &Route| -> Vec<String> {
            if existing.rule.shape() != shape {
                return Vec::new();
            }
            route
                .methods
                .iter()
                .filter(|m| *m != "HEAD" && existing.methods.contains(m))
                .cloned()
                .collect()
        };
        self.routes
            .retain(|existing| !existing.retired || common_methods(existing).is_empty());
        for existing in &self.routes {
            let common = common_methods(existing);
            if !common.is_empty() {
                return Err(WebError::Clash {
                    new: route.owner.clone(),
                    new_rule: route.rule.as_str().to_owned(),
                    existing: existing.owner.clone(),
                    existing_rule: existing.rule.as_str().to_owned(),
                    methods: common.join(","),
                });
            }
        }
        self.routes.push(route);
        // Stable: rules of the same weight keep the order they were added in.
        self.routes.sort_by(|a, b| a.sort_key.cmp(&b.sort_key));
        Ok(())
    }

    pub(crate) fn add_mount(&mut self, mount: Mount) -> Result<(), WebError> {
        if let Some(existing) = self.mounts.iter().find(|m| m.path == mount.path) {
            return Err(WebError::Clash {
                new: mount.name.clone(),
                new_rule: mount.path.clone(),
                existing: existing.name.clone(),
                existing_rule: existing.path.clone(),
                methods: "every method".to_owned(),
            });
        }
        self.mounts.push(mount);
        // The longest prefix first.
        self.mounts.sort_by_key(|m| std::cmp::Reverse(m.path.len()));
        Ok(())
    }

    /// The route's service stopped: it answers 503 from now on, until a route that
    /// clashes with it replaces it.
    pub(crate) fn retire(&mut self, id: u64) {
        for route in self.routes.iter_mut().filter(|r| r.id == id) {
            route.retired = true;
            route.handler = Arc::new(|_request| Box::pin(async { crate::response::unavailable() }));
        }
    }

    pub(crate) fn remove(&mut self, id: u64) {
        self.routes.retain(|r| r.id != id);
        self.mounts.retain(|m| m.id != id);
    }

    pub(crate) fn route_of(&self, owner: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.owner == owner)
    }

    pub(crate) fn lookup(&self, method: &str, path: &str) -> Matched {
        if let Some(mount) = self.mounts.iter().find(|m| m.answers(path)) {
            return Matched::Mount(mount.service.clone());
        }
        let mut allowed: Vec<String> = Vec::new();
        for route in &self.routes {
            let Some(values) = route.rule.matches(path) else {
                continue;
            };
            if route.methods.iter().any(|m| m == method) {
                return Matched::Route(route.handler.clone(), values);
            }
            for m in &route.methods {
                if !allowed.contains(m) {
                    allowed.push(m.clone());
                }
            }
        }
        if !allowed.is_empty() {
            return Matched::MethodNotAllowed(allowed);
        }
        if !path.ends_with('/') {
            let with_slash = format!("{path}/");
            if self.routes.iter().any(|r| {
                r.rule.ends_with_slash()
                    && r.methods.iter().any(|m| m == method)
                    && r.rule.matches(&with_slash).is_some()
            }) {
                return Matched::Redirect;
            }
        }
        Matched::NotFound
    }
}
