//! The Catalog plugin: categories and products, decided with DCB slices
//! (tags `category:<id>`, `product:<id>`).
mod category;
mod demand;
mod events;
mod import;
mod orders_extension;
mod product;
mod published;
mod views;

pub use category::{AddCategory, ArchiveCategory, CategoryState, RenameCategory};
pub use demand::{DemandCommand, ProductDemand, ProductDemandRow, ProductDemands};
pub use events::{CatalogError, CatalogEvent};
pub use import::{ImportError, ImportProduct, SupplierProduct};
pub use orders_extension::OrderedItems;
pub use product::{AddProduct, ChangeProductPrice, ProductCommand, ProductLifecycle, ProductState, ProductStatus};
pub use published::{ProductNews, Products as ProductsPoint};
pub use views::{Categories, CategoryProductCounts, CategoryRow, ProductRow, Products, ShelfStatus};

use reventless::Plugin;

pub const PLUGIN: &str = "Catalog";

/// Who may change the catalog.
pub const MANAGERS: &[&str] = &["Admin", "Merchandiser"];

/// The Catalog plugin with its extension on `Ordering.Orders` (host it
/// together with the Ordering plugin).
pub fn plugin() -> Plugin {
    standalone().extension::<OrderedItems>()
}

/// The Catalog plugin without its extension on `Ordering.Orders`.
pub fn standalone() -> Plugin {
    Plugin::new(PLUGIN)
        .version(env!("CARGO_PKG_VERSION"))
        .state_change_slice::<AddCategory>()
        .state_change_slice::<RenameCategory>()
        .state_change_slice::<ArchiveCategory>()
        .state_change_slice::<AddProduct>()
        .state_change_slice::<ChangeProductPrice>()
        .state_change_slice::<ProductLifecycle>()
        .state_change_slice::<ProductDemand>()
        .read_model::<Products>()
        .read_model::<Categories>()
        .counter::<CategoryProductCounts>()
        .read_model::<ProductDemands>()
        .inbound_translation::<ImportProduct>()
        .extension_point::<ProductsPoint>()
}
