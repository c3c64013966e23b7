//! `Catalog_ImportProduct`: products from a supplier's feed, in the
//! supplier's vocabulary (sku, title, unit price), become `AddProduct`.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::product::AddProduct;

/// One product as the supplier describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupplierProduct {
    pub sku: String,
    pub title: String,
    pub desc: String,
    /// Cents of `currency`.
    pub unit_price: i64,
    pub currency: String,
    pub category_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ImportError {
    MissingSku,
}

pub struct ImportProduct;

impl InboundTranslationSlice for ImportProduct {
    const NAME: &'static str = "ImportProduct";
    const ROLES: &'static [&'static str] = super::MANAGERS;
    type Input = SupplierProduct;
    type Error = ImportError;

    fn translate(input: &SupplierProduct) -> Result<Vec<Dispatch>, ImportError> {
        if input.sku.trim().is_empty() {
            return Err(ImportError::MissingSku);
        }
        let command = AddProduct {
            product_id: input.sku.trim().to_string(),
            name: input.title.clone(),
            description: input.desc.clone(),
            price_cents: input.unit_price,
            currency: input.currency.clone(),
            category_id: input.category_id.clone(),
        };
        Ok(Dispatch::slice(&command).into_iter().collect())
    }
}
