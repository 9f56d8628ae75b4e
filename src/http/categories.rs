//! The category tree (`/v1/categories`): anyone reads it; operators and admins create,
//! rename, move and remove categories. The tree is one entity, reached through the
//! router; `GET /v1/products?category=ID` includes the products of ID's descendants.

use warp::http::StatusCode;
use warp::reply::Response;

use super::dto::categories::{CategoryTree, CategoryView, PutCategory};
use super::dto::{ErrorBody, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::clock::now_ms;
use crate::domain::category::{Categories, CategoriesState, CategoryCommand, Node, TREE_ID};

/// The node of `id` in `tree`, with its subtree.
fn node<'a>(tree: &'a CategoriesState, id: &str) -> Option<Node<'a>> {
    fn find<'a>(nodes: Vec<Node<'a>>, id: &str) -> Option<Node<'a>> {
        for n in nodes {
            if n.id == id {
                return Some(n);
            }
            if let Some(hit) = find(n.children, id) {
                return Some(hit);
            }
        }
        None
    }
    find(tree.tree(), id)
}

/// Creates (201) or replaces (200) a category: its name, slug, parent and position.
/// Operators and admins.
#[utoipa::path(put, path = "/v1/categories/{id}", operation_id = "put_category", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "mugs", description = "the category")),
    request_body = PutCategory,
    responses(
        (status = 200, description = "the category, replaced", body = CategoryView),
        (status = 201, description = "the category, created", body = CategoryView),
        (status = 400, description = "`validation`: a bad id, name or slug, an unknown parent, a cycle, too deep; `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 409, description = "`conflict`: another category has the slug", body = ErrorBody),
    ))]
pub async fn put(app: App, id: String, b: PutCategory) -> Result<Response, ApiError> {
    let existed = app
        .router
        .get::<Categories>(TREE_ID)
        .await?
        .categories
        .contains_key(&id);
    let cmd = CategoryCommand::Put {
        id: id.clone(),
        name: b.name,
        slug: b.slug,
        parent: b.parent.filter(|p| !p.is_empty()),
        position: b.position,
        now: now_ms(),
    };
    let applied = app.router.command::<Categories>(TREE_ID, cmd).await?;
    let n = node(&applied.state, &id)
        .ok_or_else(|| ApiError::internal("a category just put is not in the tree"))?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &CategoryView::from(&n)))
}

/// The category tree: its roots, each with its subtree, by position then id.
#[utoipa::path(get, path = "/v1/categories", operation_id = "list_categories", tag = "catalog",
    responses((status = 200, description = "the tree", body = CategoryTree)))]
pub async fn list(app: App) -> Result<Response, ApiError> {
    let tree = app.router.get::<Categories>(TREE_ID).await?;
    let items = tree.tree().iter().map(CategoryView::from).collect();
    Ok(json(StatusCode::OK, &CategoryTree { items }))
}

/// One category with its subtree.
#[utoipa::path(get, path = "/v1/categories/{id}", operation_id = "get_category", tag = "catalog",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the category")),
    responses(
        (status = 200, description = "the category", body = CategoryView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get(app: App, id: String) -> Result<Response, ApiError> {
    let tree = app.router.get::<Categories>(TREE_ID).await?;
    let n = node(&tree, &id).ok_or_else(|| ApiError::not_found(format!("no category {id}")))?;
    Ok(json(StatusCode::OK, &CategoryView::from(&n)))
}

/// Removes a category with no subcategories (its products keep its id as their
/// category). Operators and admins.
#[utoipa::path(delete, path = "/v1/categories/{id}", operation_id = "delete_category", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the category")),
    responses(
        (status = 204, description = "removed"),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: it has subcategories", body = ErrorBody),
    ))]
pub async fn delete(app: App, id: String) -> Result<Response, ApiError> {
    app.router
        .command::<Categories>(TREE_ID, CategoryCommand::Delete { id })
        .await?;
    use warp::Reply as _;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{delete, get, path, put};
    let put_category = route!(
        app,
        "PUT /v1/categories/{id}",
        path!("v1" / "categories" / String)
            .and(end())
            .and(put())
            .and(filters::staff(app))
            .and(filters::small_body(app)),
        |id, _p, b, a| self::put(a, id, b)
    );
    let list_categories = route!(
        app,
        "GET /v1/categories",
        path!("v1" / "categories").and(end()).and(get()),
        |a| list(a)
    );
    let get_category = route!(
        app,
        "GET /v1/categories/{id}",
        path!("v1" / "categories" / String).and(end()).and(get()),
        |id, a| self::get(a, id)
    );
    let delete_category = route!(
        app,
        "DELETE /v1/categories/{id}",
        path!("v1" / "categories" / String)
            .and(end())
            .and(delete())
            .and(filters::staff(app)),
        |id, _p, a| self::delete(a, id)
    );
    put_category
        .or(list_categories)
        .or(get_category)
        .or(delete_category)
}
