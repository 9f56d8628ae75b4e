//! `GET /openapi.json`: the OpenAPI document of the API.

use super::error::ApiError;
use crate::app::App;
use warp::reply::Response;

pub async fn serve(_app: App) -> Result<Response, ApiError> {
    Err(ApiError::not_found("the OpenAPI document is not built yet"))
}
