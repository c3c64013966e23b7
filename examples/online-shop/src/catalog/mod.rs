//! The Catalog plugin: categories and products, decided with DCB slices
//! (tags `category:<id>`, `product:<id>`).
mod category;
mod demand;
mod events;
mod import;
mod import_task;
mod orders_extension;
mod product;
mod published;
mod stock;
mod stock_requests;
mod views;

pub use category::{AddCategory, ArchiveCategory, CategoryState, RenameCategory};
pub use demand::{DemandCommand, ProductDemand, ProductDemandRow, ProductDemands};
pub use events::{CatalogError, CatalogEvent};
pub use import::{ImportError, ImportProduct, SupplierProduct};
pub use import_task::ImportProducts;
pub use orders_extension::OrderedItems;
pub use product::{AddProduct, ChangeProductPrice, ProductCommand, ProductLifecycle, ProductState, ProductStatus};
pub use published::{ProductNews, Products as ProductsPoint};
pub use stock::{
    ProductStockRow, ProductStocks, ReceiveStock, StockCommand, StockError, StockEvent, StockReservation, StockState,
};
pub use stock_requests::StockRequest;
pub use views::{Categories, CategoryProductCounts, CategoryRow, ProductRow, Products, ShelfStatus};

use reventless::Plugin;

pub const PLUGIN: &str = "Catalog";

/// Who may change the catalog.
pub const MANAGERS: &[&str] = &["Admin", "Merchandiser"];

/// The Catalog plugin with its extension on `Ordering.Orders` and the
/// stock Ordering reserves through `Catalog.Products` (host it together with
/// the Ordering plugin).
pub fn plugin() -> Plugin {
    with_stock(standalone().extension::<OrderedItems>())
}

/// Stock: received by managers, reserved and released by Ordering's
/// commands to `Catalog.Products`.
fn with_stock(plugin: Plugin) -> Plugin {
    plugin
        .state_change_slice::<ReceiveStock>()
        .state_change_slice::<StockReservation>()
        .read_model::<ProductStocks>()
        .accepts_commands::<ProductsPoint>()
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
        .task::<ImportProducts>()
        .extension_point::<ProductsPoint>()
}
