//! Ordering asks the catalog to hold stock for a placed order and to give
//! it back when the order is cancelled: commands sent to the
//! `Catalog.Products` extension point, which decides them (an `OutOfStock`
//! refusal is the catalog's; the order stands).
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::{OrderLine, OrderingEvent};
use crate::catalog::{ProductsPoint, StockRequest};

/// One order's lines to reserve, or to release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockWork {
    pub order_id: String,
    pub lines: Vec<OrderLine>,
    /// True for a cancelled order's release.
    pub release: bool,
}

/// Sends the catalog a `StockRequest` per order line (`Ordering_RequestStockTodos`);
/// an item is done once its requests are queued for the catalog.
pub struct RequestStock;

impl OutboundTranslationSlice for RequestStock {
    const NAME: &'static str = "RequestStock";
    const CONSUMES: &'static [&'static str] = &["OrderPlaced", "OrderCancelled"];
    type Event = OrderingEvent;
    type Item = StockWork;

    fn collect(event: &OrderingEvent, _: &EventEnvelope) -> Option<(String, StockWork)> {
        let (order_id, lines, release) = match event {
            OrderingEvent::OrderPlaced { order_id, lines, .. } => (order_id, lines, false),
            OrderingEvent::OrderCancelled { order_id, lines, .. } => (order_id, lines, true),
            _ => return None,
        };
        let id = format!("{order_id}:{}", if release { "release" } else { "reserve" });
        Some((id, StockWork { order_id: order_id.clone(), lines: lines.clone(), release }))
    }

    async fn translate(_: &str, work: &StockWork, _: &Capabilities) -> Result<Vec<Dispatch>, String> {
        work.lines
            .iter()
            .map(|line| {
                let (product_id, order_id) = (line.product_id.clone(), work.order_id.clone());
                let request = match work.release {
                    false => StockRequest::ReserveStock { product_id, order_id, quantity: line.quantity },
                    true => StockRequest::ReleaseStock { product_id, order_id },
                };
                Dispatch::to_point::<ProductsPoint>(&request).map_err(|e| e.to_string())
            })
            .collect()
    }
}
