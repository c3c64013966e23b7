//! Product slices. Adding a product spans two entities: the product (must be
//! new) and its category (must exist and not be archived), so its query has
//! one item per entity.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::{CatalogError, CatalogEvent, check_price};

/// Where a product is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProductStatus {
    #[default]
    Unknown,
    Listed,
    Archived,
    Discontinued,
}

/// What the product slices know about one product (and, for `AddProduct`, its category).
#[derive(Clone, Debug, Default)]
pub struct ProductState {
    status: ProductStatus,
    price: Option<(i64, String)>,
    category_exists: bool,
    category_archived: bool,
}

fn evolve_product(mut state: ProductState, event: &CatalogEvent) -> ProductState {
    match event {
        CatalogEvent::CategoryAdded { .. } => state.category_exists = true,
        CatalogEvent::CategoryArchived { .. } => state.category_archived = true,
        CatalogEvent::ProductAdded { price_cents, currency, .. } => {
            state.status = ProductStatus::Listed;
            state.price = Some((*price_cents, currency.clone()));
        }
        CatalogEvent::ProductPriceChanged { price_cents, currency, .. } => {
            state.price = Some((*price_cents, currency.clone()));
        }
        CatalogEvent::ProductArchived { .. } => state.status = ProductStatus::Archived,
        CatalogEvent::ProductUnarchived { .. } => state.status = ProductStatus::Listed,
        CatalogEvent::ProductDiscontinued { .. } => state.status = ProductStatus::Discontinued,
        CatalogEvent::CategoryRenamed { .. }
        | CatalogEvent::DemandRecorded { .. }
        | CatalogEvent::DemandRevoked { .. } => {}
    }
    state
}

/// `Catalog_AddProduct(productId, name, description, priceCents, currency, categoryId)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct AddProduct {
    #[tag]
    pub product_id: String,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub currency: String,
    #[tag]
    pub category_id: String,
}

impl StateChangeSlice for AddProduct {
    const NAME: &'static str = "AddProduct";
    const ROLES: &'static [&'static str] = super::MANAGERS;
    const CONSUMES: &'static [&'static str] = &["CategoryAdded", "CategoryArchived", "ProductAdded"];
    const PRODUCES: &'static [&'static str] = &["ProductAdded"];
    type Command = Self;
    type Event = CatalogEvent;
    type State = ProductState;
    type Error = CatalogError;

    /// The category's events OR the product's, not events carrying both tags.
    fn query(command: &Self) -> Query {
        let category = Tag::new("category", &command.category_id).expect("literal key");
        let product = Tag::new("product", &command.product_id).expect("literal key");
        Query::none()
            .item(QueryItem::new().types(["CategoryAdded", "CategoryArchived"]).tags([category]))
            .item(QueryItem::new().types(["ProductAdded"]).tags([product]))
    }

    fn evolve(state: ProductState, event: &CatalogEvent) -> ProductState {
        evolve_product(state, event)
    }

    fn decide(state: &ProductState, command: &Self) -> Result<Vec<CatalogEvent>, CatalogError> {
        if state.status != ProductStatus::Unknown {
            return Err(CatalogError::ProductAlreadyExists);
        }
        if !state.category_exists || state.category_archived {
            return Err(CatalogError::CategoryNotFound);
        }
        check_price(command.price_cents, &command.currency)?;
        Ok(vec![CatalogEvent::ProductAdded {
            product_id: command.product_id.clone(),
            name: command.name.clone(),
            description: command.description.clone(),
            price_cents: command.price_cents,
            currency: command.currency.clone(),
            category_id: command.category_id.clone(),
        }])
    }
}

/// `Catalog_ChangeProductPrice(productId, priceCents, currency)`: the same
/// price changes nothing; a discontinued product's price is frozen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct ChangeProductPrice {
    #[tag]
    pub product_id: String,
    pub price_cents: i64,
    pub currency: String,
}

impl StateChangeSlice for ChangeProductPrice {
    const NAME: &'static str = "ChangeProductPrice";
    const ROLES: &'static [&'static str] = super::MANAGERS;
    const CONSUMES: &'static [&'static str] = &["ProductAdded", "ProductPriceChanged", "ProductDiscontinued"];
    const PRODUCES: &'static [&'static str] = &["ProductPriceChanged"];
    type Command = Self;
    type Event = CatalogEvent;
    type State = ProductState;
    type Error = CatalogError;

    fn evolve(state: ProductState, event: &CatalogEvent) -> ProductState {
        evolve_product(state, event)
    }

    fn decide(state: &ProductState, command: &Self) -> Result<Vec<CatalogEvent>, CatalogError> {
        match state.status {
            ProductStatus::Unknown => return Err(CatalogError::ProductNotFound),
            ProductStatus::Discontinued => return Err(CatalogError::ProductIsDiscontinued),
            ProductStatus::Listed | ProductStatus::Archived => {}
        }
        check_price(command.price_cents, &command.currency)?;
        if state.price.as_ref() == Some(&(command.price_cents, command.currency.clone())) {
            return Ok(vec![]);
        }
        Ok(vec![CatalogEvent::ProductPriceChanged {
            product_id: command.product_id.clone(),
            price_cents: command.price_cents,
            currency: command.currency.clone(),
        }])
    }
}

/// The shelf life of a product: `Catalog_ArchiveProduct`,
/// `Catalog_UnarchiveProduct`, `Catalog_DiscontinueProduct(productId)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
pub enum ProductCommand {
    ArchiveProduct {
        #[tag]
        product_id: String,
    },
    UnarchiveProduct {
        #[tag]
        product_id: String,
    },
    DiscontinueProduct {
        #[tag]
        product_id: String,
    },
}

/// One slice decides all three shelf commands: they share their state.
pub struct ProductLifecycle;

impl StateChangeSlice for ProductLifecycle {
    const NAME: &'static str = "ProductLifecycle";
    const ROLES: &'static [&'static str] = super::MANAGERS;
    const CONSUMES: &'static [&'static str] =
        &["ProductAdded", "ProductArchived", "ProductUnarchived", "ProductDiscontinued"];
    const PRODUCES: &'static [&'static str] = &["ProductArchived", "ProductUnarchived", "ProductDiscontinued"];
    type Command = ProductCommand;
    type Event = CatalogEvent;
    type State = ProductState;
    type Error = CatalogError;

    fn evolve(state: ProductState, event: &CatalogEvent) -> ProductState {
        evolve_product(state, event)
    }

    fn decide(state: &ProductState, command: &ProductCommand) -> Result<Vec<CatalogEvent>, CatalogError> {
        use ProductStatus::{Archived, Discontinued, Listed, Unknown};
        let event = match (command, state.status) {
            (_, Unknown) => return Err(CatalogError::ProductNotFound),
            (ProductCommand::DiscontinueProduct { .. }, Discontinued) => return Ok(vec![]),
            (ProductCommand::DiscontinueProduct { product_id }, Listed | Archived) => {
                CatalogEvent::ProductDiscontinued { product_id: product_id.clone() }
            }
            (_, Discontinued) => return Err(CatalogError::ProductIsDiscontinued),
            (ProductCommand::ArchiveProduct { .. }, Archived) | (ProductCommand::UnarchiveProduct { .. }, Listed) => {
                return Ok(vec![]);
            }
            (ProductCommand::ArchiveProduct { product_id }, Listed) => {
                CatalogEvent::ProductArchived { product_id: product_id.clone() }
            }
            (ProductCommand::UnarchiveProduct { product_id }, Archived) => {
                CatalogEvent::ProductUnarchived { product_id: product_id.clone() }
            }
        };
        Ok(vec![event])
    }
}
