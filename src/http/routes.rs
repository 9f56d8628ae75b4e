//! How a resource module hands its routes to [`super::api`]: [`Routes`], one boxed warp
//! filter with the route templates it serves, and [`route!`], which builds one route.
//!
//! A route is `path + method + extractor filters`, then the handler under the request
//! timeout ([`run`]), tagged with its template for metrics and logs. An extractor that
//! refuses the request (a bad token, a missing role, a body that does not parse)
//! rejects with [`super::filters::Refused`]; each route recovers its own refusal into
//! the exact `ApiError` answer, tagged with its template, so a refusal never reaches
//! the next route of an `or` chain (where it would become that route's 404 or 405).

use super::error::ApiError;
use super::filters::Refused;
use crate::app::App;
use std::future::Future;
use std::time::Duration;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

/// The route template a response was produced by, for metrics and logs.
#[derive(Clone, Copy, Debug)]
pub struct RouteTag(pub &'static str);

/// Some routes of the API: the filter serving them and their templates
/// (`GET /v1/carts/{id}`).
pub struct Routes {
    filter: BoxedFilter<(Response,)>,
    templates: Vec<&'static str>,
}

impl Routes {
    /// One route.
    pub fn one(template: &'static str, filter: BoxedFilter<(Response,)>) -> Self {
        Self {
            filter,
            templates: vec![template],
        }
    }

    /// These routes, then `other`'s (warp tries an `or` chain in order).
    pub fn or(self, other: Routes) -> Self {
        let mut templates = self.templates;
        templates.extend(other.templates);
        Self {
            filter: self.filter.or(other.filter).unify().boxed(),
            templates,
        }
    }

    /// Routes chained in order; `None` for an empty list.
    pub fn chain(routes: impl IntoIterator<Item = Routes>) -> Option<Self> {
        routes.into_iter().reduce(Routes::or)
    }

    pub fn templates(&self) -> &[&'static str] {
        &self.templates
    }

    pub fn into_parts(self) -> (BoxedFilter<(Response,)>, Vec<&'static str>) {
        (self.filter, self.templates)
    }
}

/// The request timeout of `app`.
pub fn timeout(app: &App) -> Duration {
    Duration::from_millis(app.config.http.request_timeout_ms)
}

fn tagged(mut resp: Response, route: &'static str) -> Response {
    resp.extensions_mut().insert(RouteTag(route));
    resp
}

/// Runs a handler under the request timeout and tags the response with its route.
pub async fn run<F>(route: &'static str, timeout: Duration, fut: F) -> Response
where
    F: Future<Output = Result<Response, ApiError>>,
{
    let resp = match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::unavailable(
            "timeout",
            "the request took too long",
            Duration::from_secs(1),
        )
        .into_response(),
    };
    tagged(resp, route)
}

/// Recovers an extractor's refusal into its `ApiError` answer, tagged with the route;
/// any other rejection (the path or method did not match) goes on to the next route.
pub async fn refused(route: &'static str, r: warp::Rejection) -> Result<Response, warp::Rejection> {
    match r.find::<Refused>() {
        Some(Refused(e)) => Ok(tagged(e.clone().into_response(), route)),
        None => Err(r),
    }
}

pub fn with_app(
    app: App,
) -> impl Filter<Extract = (App,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || app.clone())
}

/// One route: `route!(app, "GET /v1/carts/{id}", filter, |id, p, app| handler)`. The
/// closure gets the filter's values, then the `App`.
macro_rules! route {
    ($app:expr, $name:literal, $filter:expr, |$($arg:ident),*| $handler:expr) => {{
        use warp::Filter as _;
        let timeout = $crate::http::routes::timeout($app);
        let filter = $filter
            .and($crate::http::routes::with_app($app.clone()))
            .then(move |$($arg),*| $crate::http::routes::run($name, timeout, $handler))
            .recover(|r| $crate::http::routes::refused($name, r))
            .unify()
            .boxed();
        $crate::http::routes::Routes::one($name, filter)
    }};
}
pub(crate) use route;
