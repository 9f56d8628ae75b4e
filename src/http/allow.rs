//! The `Allow` header of a 405 (RFC 9110 §15.5.6): the methods the request's path is
//! served with, looked up in the API's route templates (`GET /v1/carts/{id}`), so it
//! is true for every route without a list kept by hand.
//!
//! A template's `{name}` segment matches any one path segment; the methods of every
//! template whose segments match the path are listed, in a fixed order.

use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

/// The path patterns of the API and the methods each is served with.
#[derive(Debug, Default)]
pub struct AllowTable {
    routes: Vec<(Vec<Segment>, &'static str)>,
}

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    Any,
}

/// The order methods are listed in.
const ORDER: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

impl AllowTable {
    /// The table of templates such as `GET /v1/carts/{id}`.
    pub fn new(templates: &[&'static str]) -> Self {
        let routes = templates
            .iter()
            .filter_map(|t| t.split_once(' '))
            .map(|(method, path)| {
                let segs = segments(path)
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            Segment::Any
                        } else {
                            Segment::Literal(s)
                        }
                    })
                    .collect();
                (segs, method)
            })
            .collect();
        Self { routes }
    }

    /// The methods `path` is served with, e.g. `GET, DELETE`; empty if none.
    pub fn methods(&self, path: &str) -> String {
        let parts: Vec<&str> = segments(path).collect();
        let mut found: Vec<&str> = self
            .routes
            .iter()
            .filter(|(segs, _)| {
                segs.len() == parts.len()
                    && segs.iter().zip(&parts).all(|(s, p)| match s {
                        Segment::Any => !p.is_empty(),
                        Segment::Literal(l) => l == p,
                    })
            })
            .map(|(_, m)| *m)
            .collect();
        found.sort_by_key(|m| ORDER.iter().position(|o| o == m).unwrap_or(ORDER.len()));
        found.dedup();
        found.join(", ")
    }

    /// Adds `Allow` to a 405 answer for `path`; other answers pass unchanged.
    pub fn apply(&self, path: &str, mut resp: Response) -> Response {
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
            if let Ok(v) = HeaderValue::from_str(&self.methods(path)) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
        }
        resp
    }
}

fn segments<'a>(path: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split('/').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> AllowTable {
        AllowTable::new(&[
            "GET /v1/carts/{id}",
            "POST /v1/carts",
            "PUT /v1/carts/{id}/items/{sku}",
            "DELETE /v1/carts/{id}/items/{sku}",
            "GET /v1/products/{sku}",
            "PUT /v1/products/{sku}",
            "DELETE /v1/products/{sku}",
            "GET /v1/products",
        ])
    }

    #[test]
    fn lists_the_methods_of_every_matching_template() {
        let t = table();
        assert_eq!(t.methods("/v1/carts"), "POST");
        assert_eq!(t.methods("/v1/carts/abc"), "GET");
        assert_eq!(t.methods("/v1/carts/abc/items/MUG"), "PUT, DELETE");
        assert_eq!(t.methods("/v1/products/MUG"), "GET, PUT, DELETE");
        assert_eq!(t.methods("/v1/products/"), "GET");
        assert_eq!(t.methods("/v1/nothing"), "");
    }

    #[test]
    fn only_a_405_gets_the_header() {
        let t = table();
        let mut r = Response::new("".into());
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        let r = t.apply("/v1/carts/x", r);
        assert_eq!(r.headers()[header::ALLOW], "GET");
        let ok = t.apply("/v1/carts/x", Response::new("".into()));
        assert!(ok.headers().get(header::ALLOW).is_none());
    }
}
