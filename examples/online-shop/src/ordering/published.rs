//! `Ordering.Orders`: what ordering tells other plugins, one event per line.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::OrderingEvent;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
#[serde(rename_all_fields = "camelCase")]
pub enum OrderNews {
    ItemOrdered { product_id: String, order_id: String, customer_id: String, quantity: i64 },
    ItemOrderCancelled { product_id: String, order_id: String, customer_id: String, quantity: i64 },
}

pub struct OrdersPoint;

impl ExtensionPoint for OrdersPoint {
    const NAME: &'static str = "Orders";
    type Event = OrderingEvent;
    type Published = OrderNews;

    fn publish(event: &OrderingEvent, _: &EventEnvelope) -> Vec<OrderNews> {
        match event {
            OrderingEvent::OrderPlaced { order_id, customer_id, lines, .. } => lines
                .iter()
                .map(|line| OrderNews::ItemOrdered {
                    product_id: line.product_id.clone(),
                    order_id: order_id.clone(),
                    customer_id: customer_id.clone(),
                    quantity: line.quantity,
                })
                .collect(),
            OrderingEvent::OrderCancelled { order_id, customer_id, lines } => lines
                .iter()
                .map(|line| OrderNews::ItemOrderCancelled {
                    product_id: line.product_id.clone(),
                    order_id: order_id.clone(),
                    customer_id: customer_id.clone(),
                    quantity: line.quantity,
                })
                .collect(),
            _ => vec![],
        }
    }
}
