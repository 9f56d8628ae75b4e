//! `--demo`: a small catalog (12 products in 3 categories) with stock, written through
//! the router like any operator would, and only into an empty store.

use super::App;
use crate::domain::product::{Product, ProductCommand, ProductSpec};
use crate::domain::stock::{Stock, StockCommand};

/// sku, name, description, price_minor, category, tags.
type DemoProduct = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
    &'static [&'static str],
);

const PRODUCTS: &[DemoProduct] = &[
    (
        "MUG-BLUE",
        "Blue Enamel Mug",
        "A sturdy enamel mug for camp coffee.",
        1450,
        "kitchen",
        &["camping", "coffee"],
    ),
    (
        "MUG-RED",
        "Red Enamel Mug",
        "The blue mug's louder sibling.",
        1450,
        "kitchen",
        &["camping", "coffee"],
    ),
    (
        "KETTLE-STEEL",
        "Steel Kettle",
        "Stovetop kettle, 1.5 litres.",
        3900,
        "kitchen",
        &["tea"],
    ),
    (
        "BOARD-OAK",
        "Oak Cutting Board",
        "End-grain oak board.",
        5400,
        "kitchen",
        &["wood"],
    ),
    (
        "SCARF-WOOL",
        "Wool Scarf",
        "Merino wool scarf, charcoal.",
        4200,
        "apparel",
        &["winter", "gift"],
    ),
    (
        "SOCKS-HIKE",
        "Hiking Socks",
        "Cushioned socks for long trails.",
        1800,
        "apparel",
        &["camping"],
    ),
    (
        "CAP-CANVAS",
        "Canvas Cap",
        "Waxed canvas cap.",
        2600,
        "apparel",
        &["summer"],
    ),
    (
        "TEE-LOGO",
        "Logo Tee",
        "Organic cotton t-shirt.",
        2200,
        "apparel",
        &["gift"],
    ),
    (
        "LAMP-DESK",
        "Desk Lamp",
        "Warm LED desk lamp with a brass arm.",
        8900,
        "home",
        &["office", "light"],
    ),
    (
        "CANDLE-FIG",
        "Fig Candle",
        "Soy candle, fig and cedar.",
        2400,
        "home",
        &["gift", "light"],
    ),
    (
        "THROW-KNIT",
        "Knit Throw",
        "Chunky knit throw blanket.",
        7600,
        "home",
        &["winter"],
    ),
    (
        "PLANT-POT",
        "Terracotta Pot",
        "Hand-thrown terracotta pot, 15 cm.",
        1900,
        "home",
        &["garden"],
    ),
];

/// Seeds the demo catalog if the store holds no entity yet. Returns how many products.
pub async fn seed(app: &App) -> Result<usize, String> {
    if !app.store.is_empty().map_err(|e| e.to_string())? {
        tracing::info!("store is not empty; demo catalog not seeded");
        return Ok(0);
    }
    for (i, (sku, name, desc, price, category, tags)) in PRODUCTS.iter().enumerate() {
        let spec = ProductSpec {
            name: (*name).into(),
            description: Some((*desc).into()),
            price_minor: *price,
            category: (*category).into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        };
        app.router
            .command::<Product>(
                sku,
                ProductCommand::Upsert {
                    spec,
                    by: "demo".into(),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        let stock = 20 + 10 * (i as i64 % 4);
        app.router
            .command::<Stock>(
                sku,
                StockCommand::Adjust {
                    delta: stock,
                    reason: "demo seed".into(),
                    by: "demo".into(),
                    location: crate::domain::location::MAIN.into(),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    tracing::info!(products = PRODUCTS.len(), "demo catalog seeded");
    Ok(PRODUCTS.len())
}
