//! Product images: an operator uploads one as the raw body with its `Content-Type`
//! (`POST /v1/products/{sku}/images`: PNG, JPEG or WebP, checked by magic bytes and
//! dimensions, at most `media.max_image_bytes`); anyone reads it at its stable URL
//! (`GET /v1/products/{sku}/images/{id}`) with an `ETag` and year-long caching, since an
//! image's id is the SHA-256 of its bytes and never names other bytes.

use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

use super::dto::catalog::ImageView;
use super::dto::{ErrorBody, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::extract::{body_bytes, sku};
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::auth::Principal;
use crate::domain::product::{Product, ProductCommand, ProductImage};
use crate::media::{check, image_id, ImageRefusal};

fn store_failed(e: crate::media::MediaError) -> ApiError {
    tracing::error!(error = %e, "image store failed");
    ApiError::unavailable(
        "storage_unavailable",
        "the image store failed; nothing was recorded",
        std::time::Duration::from_secs(1),
    )
}

/// Adds an image to a product. Operators and admins.
#[utoipa::path(post, path = "/v1/products/{sku}/images", operation_id = "upload_product_image", tag = "catalog",
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the product")),
    request_body(content = Vec<u8>, description = "the image's bytes: PNG, JPEG or WebP, its Content-Type image/png, image/jpeg or image/webp", content_type = "image/*"),
    responses(
        (status = 201, description = "the image, stored and fsync'd", body = ImageView),
        (status = 400, description = "`validation`: an unreadable header, a side beyond `media.max_dimension`, too many images", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: beyond `media.max_image_bytes`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not a PNG, JPEG or WebP, or not what `Content-Type` says", body = ErrorBody),
    ))]
pub async fn upload(
    app: App,
    sku_s: String,
    p: Principal,
    content_type: Option<String>,
    body: Result<bytes::Bytes, ApiError>,
) -> Result<Response, ApiError> {
    let sku = sku(&sku_s)?;
    let bytes = body?;
    let checked = check(
        &bytes,
        content_type.as_deref(),
        app.config.media.max_dimension,
    )
    .map_err(|r| match r {
        ImageRefusal::Unsupported(m) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            m,
        ),
        ImageRefusal::Invalid(m) => ApiError::validation(m),
    })?;
    let product = app.router.get::<Product>(sku.as_str()).await?;
    if !product.exists() {
        return Err(ApiError::not_found(format!("no product {sku}")));
    }
    let id = image_id(&bytes);
    let image = ProductImage {
        id: id.clone(),
        content_type: checked.kind.content_type().to_owned(),
        width: checked.width,
        height: checked.height,
        bytes: bytes.len() as u64,
    };
    // The bytes first, durably; then the product names them. A crash between leaves an
    // unnamed object, never a product naming missing bytes.
    app.media
        .put(sku.as_str(), &id, bytes)
        .await
        .map_err(store_failed)?;
    let cmd = ProductCommand::AddImage {
        image: image.clone(),
        by: p.actor(),
    };
    app.router.command::<Product>(sku.as_str(), cmd).await?;
    Ok(json(StatusCode::CREATED, &ImageView::new(&sku, &image)))
}

/// A product image's bytes, with its `ETag` (`If-None-Match` answers 304).
#[utoipa::path(get, path = "/v1/products/{sku}/images/{id}", operation_id = "get_product_image", tag = "catalog",
    params(
        ("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the product"),
        ("id" = String, Path, pattern = "^[0-9a-f]{64}$", description = "the image"),
    ),
    responses(
        (status = 200, description = "the image", content_type = "image/*"),
        (status = 304, description = "not modified (`If-None-Match` matched)"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get(
    app: App,
    sku_s: String,
    id: String,
    if_none_match: Option<String>,
) -> Result<Response, ApiError> {
    let sku = sku(&sku_s)?;
    let missing = || ApiError::not_found(format!("no image {id} of {sku}"));
    let product = app.router.get::<Product>(sku.as_str()).await?;
    let image = product
        .images
        .iter()
        .find(|i| i.id == id)
        .ok_or_else(missing)?;
    let etag = format!("\"{id}\"");
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    let matched = if_none_match
        .as_deref()
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if matched {
        let mut r = Response::new(Vec::new().into());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let bytes = app
            .media
            .get(sku.as_str(), &id)
            .await
            .map_err(store_failed)?
            .ok_or_else(missing)?;
        let mut r = Response::new(bytes.into());
        if let Ok(ct) = HeaderValue::from_str(&image.content_type) {
            r.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        r
    };
    if let Ok(e) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, e);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, cache);
    Ok(resp)
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path, post};
    let limit = app.config.media.max_image_bytes;
    let upload_image = route!(
        app,
        "POST /v1/products/{sku}/images",
        path!("v1" / "products" / String / "images")
            .and(end())
            .and(post())
            .and(super::filters::staff(app))
            .and(warp::header::optional::<String>("content-type"))
            .and(body_bytes(limit)),
        |sku, p, ct, b, a| upload(a, sku, p, ct, b)
    );
    let get_image = route!(
        app,
        "GET /v1/products/{sku}/images/{id}",
        path!("v1" / "products" / String / "images" / String)
            .and(end())
            .and(get())
            .and(warp::header::optional::<String>("if-none-match")),
        |sku, id, inm, a| self::get(a, sku, id, inm)
    );
    upload_image.or(get_image)
}
