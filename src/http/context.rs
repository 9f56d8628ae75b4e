//! Per-request context carried in a task-local: the request id and, once a caller is
//! authenticated, their user id. The edge layer opens the scope; handlers and filters
//! read or fill it. Outside a scope (unit tests) every call is a no-op.

use std::sync::{Arc, OnceLock};

#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: String,
    user_id: Arc<OnceLock<String>>,
}

impl RequestContext {
    pub fn new(request_id: String) -> Self {
        Self {
            request_id,
            user_id: Arc::default(),
        }
    }
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.get().map(String::as_str)
    }
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// Runs `fut` with `ctx` as the current request context.
pub async fn scope<F: std::future::Future>(ctx: RequestContext, fut: F) -> F::Output {
    CONTEXT.scope(ctx, fut).await
}

/// Records the authenticated user of the current request.
pub fn set_user(user_id: &str) {
    let _ = CONTEXT.try_with(|c| c.user_id.set(user_id.to_owned()));
}

/// The current request id, if inside a request.
pub fn request_id() -> Option<String> {
    CONTEXT.try_with(|c| c.request_id.clone()).ok()
}
