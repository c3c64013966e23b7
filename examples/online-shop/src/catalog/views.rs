//! The catalog's query side: Products and Categories (state-view slices).
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::CatalogEvent;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShelfStatus {
    Listed,
    Archived,
    Discontinued,
}

/// A row of `Catalog_Products`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub currency: String,
    pub category_id: String,
    pub shelf_status: ShelfStatus,
}

/// `Catalog_Product(id)` / `Catalog_Products`.
pub struct Products;

impl ReadModel for Products {
    const NAME: &'static str = "Product";
    const PLURAL: &'static str = "Products";
    const CONSUMES: &'static [&'static str] =
        &["ProductAdded", "ProductPriceChanged", "ProductArchived", "ProductUnarchived", "ProductDiscontinued"];
    const INDEXES: &'static [&'static str] = &["categoryId", "shelfStatus"];
    type Event = CatalogEvent;
    type Row = ProductRow;

    fn project(event: &CatalogEvent, _: &EventEnvelope) -> Vec<Action<ProductRow>> {
        let shelve =
            |id: &String, status| Action::update(id.clone(), move |row: &mut ProductRow| row.shelf_status = status);
        let action = match event {
            CatalogEvent::ProductAdded { product_id, name, description, price_cents, currency, category_id } => {
                Action::set(
                    product_id.clone(),
                    ProductRow {
                        id: product_id.clone(),
                        name: name.clone(),
                        description: description.clone(),
                        price_cents: *price_cents,
                        currency: currency.clone(),
                        category_id: category_id.clone(),
                        shelf_status: ShelfStatus::Listed,
                    },
                )
            }
            CatalogEvent::ProductPriceChanged { product_id, price_cents, currency } => {
                let (price_cents, currency) = (*price_cents, currency.clone());
                Action::update(product_id.clone(), move |row: &mut ProductRow| {
                    row.price_cents = price_cents;
                    row.currency = currency;
                })
            }
            CatalogEvent::ProductArchived { product_id } => shelve(product_id, ShelfStatus::Archived),
            CatalogEvent::ProductUnarchived { product_id } => shelve(product_id, ShelfStatus::Listed),
            CatalogEvent::ProductDiscontinued { product_id } => shelve(product_id, ShelfStatus::Discontinued),
            _ => Action::Ignore,
        };
        vec![action]
    }
}

/// A row of `Catalog_Categories`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CategoryRow {
    pub id: String,
    pub name: String,
    pub archived: bool,
}

/// `Catalog_Category(id)` / `Catalog_Categories`.
pub struct Categories;

impl ReadModel for Categories {
    const NAME: &'static str = "Category";
    const PLURAL: &'static str = "Categories";
    const CONSUMES: &'static [&'static str] = &["CategoryAdded", "CategoryRenamed", "CategoryArchived"];
    const INDEXES: &'static [&'static str] = &["archived"];
    type Event = CatalogEvent;
    type Row = CategoryRow;

    fn project(event: &CatalogEvent, _: &EventEnvelope) -> Vec<Action<CategoryRow>> {
        let action = match event {
            CatalogEvent::CategoryAdded { category_id, name } => Action::set(
                category_id.clone(),
                CategoryRow { id: category_id.clone(), name: name.clone(), archived: false },
            ),
            CatalogEvent::CategoryRenamed { category_id, name } => {
                let name = name.clone();
                Action::update(category_id.clone(), move |row: &mut CategoryRow| row.name = name)
            }
            CatalogEvent::CategoryArchived { category_id } => {
                Action::update(category_id.clone(), |row: &mut CategoryRow| row.archived = true)
            }
            _ => Action::Ignore,
        };
        vec![action]
    }
}

/// `Catalog_CategoryProductCount(id)`: products added per category, also
/// shown as `productCount` on `Catalog_Category` rows.
pub struct CategoryProductCounts;

impl Counter for CategoryProductCounts {
    const NAME: &'static str = "CategoryProductCount";
    const PLURAL: &'static str = "CategoryProductCounts";
    const CONSUMES: &'static [&'static str] = &["ProductAdded"];
    const SHOWN_ON: Option<(&'static str, &'static str)> = Some(("Category", "productCount"));
    type Event = CatalogEvent;

    fn count(event: &CatalogEvent, _: &EventEnvelope) -> Vec<(String, i64)> {
        match event {
            CatalogEvent::ProductAdded { category_id, .. } => vec![(category_id.clone(), 1)],
            _ => vec![],
        }
    }
}
