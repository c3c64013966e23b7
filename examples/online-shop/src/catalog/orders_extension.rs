//! The catalog's extension on `Ordering.Orders`: ordered items are demand.
use reventless::prelude::*;

use super::demand::DemandCommand;
use crate::ordering::{OrderNews, OrdersPoint};

pub struct OrderedItems;

impl Extension for OrderedItems {
    const NAME: &'static str = "OrderedItems";
    const SOURCE_PLUGIN: &'static str = "Ordering";
    type Point = OrdersPoint;

    fn handle(news: &OrderNews) -> Vec<Dispatch> {
        let command = match news.clone() {
            OrderNews::ItemOrdered { product_id, order_id, .. } => DemandCommand::RecordDemand { product_id, order_id },
            OrderNews::ItemOrderCancelled { product_id, order_id, .. } => {
                DemandCommand::RevokeDemand { product_id, order_id }
            }
        };
        Dispatch::slice(&command).into_iter().collect()
    }
}
