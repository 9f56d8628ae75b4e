//! The catalog view: every product, in memory, for listing and search. Fed by the
//! product actors after their events are durable, and rebuilt from the journal at
//! start-up. Reads never touch an actor.

use crate::domain::product::ProductState;
use crate::domain::Sku;
use parking_lot::RwLock;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub sku: Sku,
    pub state: ProductState,
    words: Vec<String>,
}

/// A page of products.
pub struct Page {
    pub items: Vec<CatalogEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Default)]
pub struct Catalog {
    entries: RwLock<BTreeMap<Sku, CatalogEntry>>,
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

impl Catalog {
    pub fn upsert(&self, sku: &Sku, state: &ProductState) {
        let Some(spec) = &state.spec else { return };
        let mut ws: Vec<String> = words(&spec.name)
            .chain(spec.description.iter().flat_map(|d| words(d)))
            .chain(spec.tags.iter().flat_map(|t| words(t)))
            .collect();
        ws.sort();
        ws.dedup();
        self.entries.write().insert(
            sku.clone(),
            CatalogEntry {
                sku: sku.clone(),
                state: state.clone(),
                words: ws,
            },
        );
    }

    /// Forgets a product (its partition moved to another node).
    pub fn remove(&self, sku: &str) {
        self.entries.write().retain(|k, _| k.as_str() != sku);
    }

    pub fn contains(&self, sku: &Sku) -> bool {
        self.entries.read().contains_key(sku)
    }

    /// The product's state, if it is known.
    pub fn get(&self, sku: &Sku) -> Option<ProductState> {
        self.entries.read().get(sku).map(|e| e.state.clone())
    }

    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Purchasable products matching every word of `q` (as a word prefix) and the
    /// category (any of `categories`, case-insensitive), in sku order, after `cursor`.
    pub fn search(
        &self,
        q: Option<&str>,
        categories: Option<&[String]>,
        limit: usize,
        cursor: Option<&Sku>,
    ) -> Page {
        self.search_where(q, categories, limit, cursor, &|_| true)
    }

    /// [`Catalog::search`] over the products `keep` selects (those of the partitions a
    /// node answers for, in a cluster-wide search).
    pub fn search_where(
        &self,
        q: Option<&str>,
        categories: Option<&[String]>,
        limit: usize,
        cursor: Option<&Sku>,
        keep: &dyn Fn(&Sku) -> bool,
    ) -> Page {
        let terms: Vec<String> = q.map(|q| words(q).collect()).unwrap_or_default();
        let entries = self.entries.read();
        let range = match cursor {
            Some(c) => {
                entries.range::<Sku, _>((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))
            }
            None => entries.range::<Sku, _>(..),
        };
        let mut items: Vec<CatalogEntry> = range
            .map(|(_, e)| e)
            .filter(|e| keep(&e.sku))
            .filter(|e| e.state.purchasable())
            .filter(|e| {
                categories.is_none_or(|cs| {
                    e.state
                        .spec
                        .as_ref()
                        .is_some_and(|s| cs.iter().any(|c| s.category.eq_ignore_ascii_case(c)))
                })
            })
            .filter(|e| {
                terms
                    .iter()
                    .all(|t| e.words.iter().any(|w| w.starts_with(t.as_str())))
            })
            .take(limit + 1)
            .cloned()
            .collect();
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|e| e.sku.to_string())
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::product::ProductSpec;

    fn put(c: &Catalog, sku: &str, name: &str, cat: &str) {
        let state = ProductState {
            spec: Some(ProductSpec {
                name: name.into(),
                description: Some("Hand made".into()),
                price_minor: 100,
                category: cat.into(),
                tags: vec!["gift".into()],
            }),
            archived: false,
            rating: Default::default(),
            images: vec![],
        };
        c.upsert(&Sku::parse(sku).unwrap(), &state);
    }

    #[test]
    fn search_matches_words_category_and_pages() {
        let c = Catalog::default();
        put(&c, "A", "Blue Mug", "kitchen");
        put(&c, "B", "Red Mug", "kitchen");
        put(&c, "C", "Blue Scarf", "apparel");
        assert_eq!(c.search(Some("blue"), None, 10, None).items.len(), 2);
        assert_eq!(c.search(Some("mug blue"), None, 10, None).items.len(), 1);
        assert_eq!(
            c.search(Some("hand"), Some(&["Apparel".to_owned()]), 10, None)
                .items
                .len(),
            1
        );
        assert_eq!(c.search(Some("gif"), None, 10, None).items.len(), 3);
        let p1 = c.search(None, None, 2, None);
        assert_eq!(p1.items.len(), 2);
        let cur = Sku::parse(p1.next_cursor.as_deref().unwrap()).unwrap();
        let p2 = c.search(None, None, 2, Some(&cur));
        assert_eq!(p2.items.len(), 1);
        assert!(p2.next_cursor.is_none());
    }

    #[test]
    fn search_where_counts_only_the_selected_products() {
        let c = Catalog::default();
        for s in ["A", "B", "C", "D"] {
            put(&c, s, "Mug", "kitchen");
        }
        let odd = |s: &Sku| matches!(s.as_str(), "A" | "C");
        let p = c.search_where(None, None, 1, None, &odd);
        assert_eq!(p.items[0].sku.as_str(), "A");
        assert_eq!(p.next_cursor.as_deref(), Some("A"));
        let cur = Sku::parse("A").unwrap();
        let p = c.search_where(None, None, 1, Some(&cur), &odd);
        assert_eq!(p.items[0].sku.as_str(), "C");
        assert!(p.next_cursor.is_none());
    }
}
