//! The category tree: one entity (id [`TREE_ID`]) holding every category: its name, its
//! slug, its parent and its position among its siblings. A product names its category by
//! id; a listing filtered by a category includes the products of its descendants.
//!
//! One entity rather than one per category: a move must be checked against the whole
//! tree (no cycle, a bounded depth) by one writer, and the tree is small and bounded
//! ([`MAX_CATEGORIES`]). Pure: the caller passes the time.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode, Sku};

/// The one id of the category tree.
pub const TREE_ID: &str = "categories";
/// Most categories a shop holds.
pub const MAX_CATEGORIES: usize = 1000;
/// Most levels from a root to a leaf.
pub const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub name: String,
    /// URL-safe, unique in the tree.
    pub slug: String,
    pub parent: Option<String>,
    /// Order among its siblings (then by id).
    pub position: u32,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoriesState {
    pub categories: BTreeMap<String, Category>,
}

/// A category with its subtree, for `GET /v1/categories`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<'a> {
    pub id: &'a str,
    pub category: &'a Category,
    pub children: Vec<Node<'a>>,
}

impl CategoriesState {
    /// `id` and every category below it.
    pub fn descendants(&self, id: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::from([id.to_owned()]);
        let mut frontier = vec![id.to_owned()];
        while let Some(p) = frontier.pop() {
            for (c, cat) in &self.categories {
                if cat.parent.as_deref() == Some(p.as_str()) && out.insert(c.clone()) {
                    frontier.push(c.clone());
                }
            }
        }
        out
    }

    /// How many levels `id` is below its root (a root is 1).
    fn depth(&self, id: &str) -> usize {
        let mut d = 1;
        let mut at = self.categories.get(id).and_then(|c| c.parent.as_deref());
        while let Some(p) = at {
            d += 1;
            if d > MAX_DEPTH + 1 {
                break;
            }
            at = self.categories.get(p).and_then(|c| c.parent.as_deref());
        }
        d
    }

    /// Levels of the subtree under `id`, itself included.
    fn height(&self, id: &str) -> usize {
        1 + self
            .categories
            .iter()
            .filter(|(_, c)| c.parent.as_deref() == Some(id))
            .map(|(c, _)| self.height(c))
            .max()
            .unwrap_or(0)
    }

    /// The roots and their subtrees, each level by position then id.
    pub fn tree(&self) -> Vec<Node<'_>> {
        self.children_of(None)
    }

    fn children_of(&self, parent: Option<&str>) -> Vec<Node<'_>> {
        let mut kids: Vec<(&String, &Category)> = self
            .categories
            .iter()
            .filter(|(_, c)| c.parent.as_deref() == parent)
            .collect();
        kids.sort_by_key(|(id, c)| (c.position, id.as_str()));
        kids.into_iter()
            .map(|(id, c)| Node {
                id,
                category: c,
                children: self.children_of(Some(id)),
            })
            .collect()
    }
}

/// A slug from a name: lower-case letters and digits, words joined by `-`.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for w in name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push('-');
        }
        out.extend(w.chars().flat_map(char::to_lowercase));
    }
    out.chars().take(64).collect()
}

fn check_slug(slug: &str) -> Result<(), String> {
    let ok = !slug.is_empty()
        && slug.chars().count() <= 64
        && slug
            .chars()
            .all(|c| (c.is_alphanumeric() && !c.is_uppercase()) || c == '-');
    if ok {
        Ok(())
    } else {
        Err("slug is 1 to 64 lower-case letters, digits or '-'".into())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CategoryCommand {
    /// Creates or replaces (renames, moves) a category.
    Put {
        id: String,
        name: String,
        slug: Option<String>,
        parent: Option<String>,
        position: u32,
        now: Millis,
    },
    /// Removes a category that has no children.
    Delete { id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CategoryEvent {
    Put { id: String, category: Category },
    Deleted { id: String },
}

pub struct Categories;

impl Aggregate for Categories {
    const KIND: EntityKind = EntityKind::Category;
    type State = CategoriesState;
    type Command = CategoryCommand;
    type Event = CategoryEvent;

    fn decide(s: &CategoriesState, cmd: &CategoryCommand) -> Result<Vec<CategoryEvent>, Rejection> {
        let invalid = |m: String| Rejection::new(RejectionCode::Validation, m);
        match cmd {
            CategoryCommand::Put {
                id,
                name,
                slug,
                parent,
                position,
                now,
            } => {
                Sku::parse(id).map_err(|_| {
                    invalid("a category id is 1 to 64 letters, digits, '.', '_' or '-'".into())
                })?;
                let n = name.trim().chars().count();
                if n == 0 || n > 100 {
                    return Err(invalid("name must be 1 to 100 characters".into()));
                }
                let slug = slug.clone().unwrap_or_else(|| slugify(name));
                check_slug(&slug).map_err(invalid)?;
                if let Some((other, _)) = s
                    .categories
                    .iter()
                    .find(|(o, c)| c.slug == slug && *o != id)
                {
                    return reject(
                        RejectionCode::Conflict,
                        format!("the slug {slug} belongs to category {other}"),
                    );
                }
                let existing = s.categories.get(id);
                if existing.is_none() && s.categories.len() >= MAX_CATEGORIES {
                    return Err(invalid(format!(
                        "a shop holds at most {MAX_CATEGORIES} categories"
                    )));
                }
                if let Some(p) = parent {
                    if !s.categories.contains_key(p) {
                        return Err(invalid(format!("parent: no category {p}")));
                    }
                    if s.descendants(id).contains(p) {
                        return Err(invalid(format!(
                            "parent: {p} is {id} or below it; a category cannot be its own ancestor"
                        )));
                    }
                    if s.depth(p) + s.height(id) > MAX_DEPTH {
                        return Err(invalid(format!(
                            "the tree is at most {MAX_DEPTH} levels deep"
                        )));
                    }
                }
                let category = Category {
                    name: name.trim().to_owned(),
                    slug,
                    parent: parent.clone(),
                    position: *position,
                    updated_at: *now,
                };
                let same = existing.is_some_and(|e| {
                    Category {
                        updated_at: *now,
                        ..e.clone()
                    } == category
                });
                if same {
                    return Ok(vec![]);
                }
                Ok(vec![CategoryEvent::Put {
                    id: id.clone(),
                    category,
                }])
            }
            CategoryCommand::Delete { id } => {
                if !s.categories.contains_key(id) {
                    return reject(RejectionCode::NotFound, format!("no category {id}"));
                }
                if s.categories
                    .values()
                    .any(|c| c.parent.as_deref() == Some(id))
                {
                    return reject(
                        RejectionCode::Conflict,
                        format!("category {id} has subcategories; move or remove them first"),
                    );
                }
                Ok(vec![CategoryEvent::Deleted { id: id.clone() }])
            }
        }
    }

    fn apply(s: &mut CategoriesState, e: &CategoryEvent) {
        match e {
            CategoryEvent::Put { id, category } => {
                s.categories.insert(id.clone(), category.clone());
            }
            CategoryEvent::Deleted { id } => {
                s.categories.remove(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn put(id: &str, parent: Option<&str>) -> CategoryCommand {
        CategoryCommand::Put {
            id: id.into(),
            name: format!("Cat {id}"),
            slug: None,
            parent: parent.map(str::to_owned),
            position: 0,
            now: 1,
        }
    }

    fn run(s: &mut CategoriesState, c: &CategoryCommand) -> Result<(), Rejection> {
        for e in Categories::decide(s, c)? {
            Categories::apply(s, &e);
        }
        Ok(())
    }

    #[test]
    fn descendants_include_every_level_and_a_cycle_is_refused() {
        let mut s = CategoriesState::default();
        for (id, p) in [
            ("home", None),
            ("kitchen", Some("home")),
            ("mugs", Some("kitchen")),
            ("garden", None),
        ] {
            run(&mut s, &put(id, p)).unwrap();
        }
        assert_eq!(
            s.descendants("home").into_iter().collect::<Vec<_>>(),
            ["home", "kitchen", "mugs"]
        );
        let e = run(&mut s, &put("home", Some("mugs"))).unwrap_err();
        assert!(e.message.contains("own ancestor"), "{e:?}");
        let e = run(
            &mut s,
            &CategoryCommand::Delete {
                id: "kitchen".into(),
            },
        )
        .unwrap_err();
        assert_eq!(e.code, RejectionCode::Conflict);
        let tree = s.tree();
        assert_eq!(
            tree.iter().map(|n| n.id).collect::<Vec<_>>(),
            ["garden", "home"]
        );
        assert_eq!(tree[1].children[0].children[0].id, "mugs");
        assert_eq!(s.categories["mugs"].slug, "cat-mugs");
        assert_eq!(slugify("Tea & Coffee, Loose"), "tea-coffee-loose");
    }

    proptest! {
        /// Whatever moves are asked, the tree stays a forest: every parent exists, no
        /// category is its own ancestor, and no branch is deeper than the limit.
        #[test]
        fn the_tree_never_holds_a_cycle_or_a_too_deep_branch(
            ops in proptest::collection::vec((0u8..12, proptest::option::of(0u8..12), any::<bool>()), 0..80)
        ) {
            let mut s = CategoriesState::default();
            for (id, parent, delete) in ops {
                let id = format!("c{id}");
                let cmd = if delete {
                    CategoryCommand::Delete { id }
                } else {
                    put(&id, parent.map(|p| format!("c{p}")).as_deref())
                };
                let _ = run(&mut s, &cmd);
                for (c, cat) in &s.categories {
                    if let Some(p) = &cat.parent {
                        prop_assert!(s.categories.contains_key(p), "{c}'s parent {p} is gone");
                    }
                    prop_assert!(s.depth(c) <= MAX_DEPTH, "{c} is too deep");
                }
            }
        }
    }
}
