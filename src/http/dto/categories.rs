//! The category tree: the bodies of `/v1/categories*`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::rfc3339;
use crate::domain::category::Node;

/// `PUT /v1/categories/{id}`: creates, renames or moves a category.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct PutCategory {
    #[schema(example = "Mugs")]
    pub name: String,
    /// The parent's id; absent or `null`: a root.
    #[serde(default)]
    #[schema(example = "kitchen")]
    pub parent: Option<String>,
    /// Lower-case letters, digits and `-`; absent: made from the name.
    #[serde(default)]
    #[schema(example = "mugs")]
    pub slug: Option<String>,
    /// Order among its siblings (default 0; then by id).
    #[serde(default)]
    pub position: u32,
}

/// A category and, in the tree, its subcategories.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct CategoryView {
    pub id: String,
    pub name: String,
    pub slug: String,
    #[schema(required = true)]
    pub parent: Option<String>,
    pub position: u32,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(no_recursion)]
    pub children: Vec<CategoryView>,
}

impl From<&Node<'_>> for CategoryView {
    fn from(n: &Node<'_>) -> Self {
        Self {
            id: n.id.to_owned(),
            name: n.category.name.clone(),
            slug: n.category.slug.clone(),
            parent: n.category.parent.clone(),
            position: n.category.position,
            updated_at: rfc3339(n.category.updated_at),
            children: n.children.iter().map(Into::into).collect(),
        }
    }
}

/// The whole tree: its roots, each with its subtree.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct CategoryTree {
    pub items: Vec<CategoryView>,
}
