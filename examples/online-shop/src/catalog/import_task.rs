//! `Catalog.ImportProducts`: a supplier's product file (CSV with the header
//! `sku,title,desc,unitPrice,currency,categoryId`, or JSON lines of the same
//! fields) becomes one `AddProduct` per row, through the same translation
//! as the `Catalog_ImportProduct` mutation. Rows of the wrong shape are
//! `MalformedRecord`; an unknown category or a product id already listed
//! are the slice's `CategoryNotFound` / `ProductAlreadyExists`.
use reventless::prelude::*;

use super::import::{ImportError, ImportProduct, SupplierProduct};

pub struct ImportProducts;

impl TaskSlice for ImportProducts {
    const NAME: &'static str = "ImportProducts";
    const ROLES: &'static [&'static str] = super::MANAGERS;
    type Record = SupplierProduct;
    type Error = ImportError;

    fn commands(record: &SupplierProduct) -> Result<Vec<Dispatch>, ImportError> {
        ImportProduct::translate(record)
    }
}
