//! Layer 1 of reventless: what a user writes.
//!
//! A plugin's domain is plain Rust types plus these traits:
//! - [`Aggregate`]: command → events on one entity stream, with optimistic concurrency.
//! - [`StateChangeSlice`]: a DCB decision over the events matching the command's tags.
//! - [`ReadModel`]: a projection of events into query rows.
//!
//! Commands and events derive [`Message`] through `#[derive(Command)]` /
//! `#[derive(Event)]`, which supplies their stable wire names and DCB tags.
#![warn(missing_docs)]
// The derive macros name this crate as `::reventless_spec` or through the facade.
extern crate self as reventless_spec;

mod component;
mod envelope;
mod http_route;
mod message;
mod point_commands;
mod query;
mod schedule;
mod secret;
mod tag;
mod task;
mod version;

/// A read model over DCB events is a state-view slice; the trait is the same.
pub use component::ReadModel as StateViewSlice;
pub use component::{
    Action, Aggregate, AutomationSlice, Capabilities, CountRow, Counter, CounterView, Dispatch, Extension,
    ExtensionPoint, InboundTranslationSlice, Need, OutboundTranslationSlice, Owner, ReadModel, ShownOn,
    StateChangeSlice, TodoRow, TodoStatus, Update, default_decision_query, entity_tag, entity_tag_key,
};
pub use envelope::{EventEnvelope, EventMeta, NewEvent, StreamPosition, Timestamp};
pub use http_route::{
    DEFAULT_SIGNATURE_HEADER, DEFAULT_SIGNATURE_TOLERANCE, DEFAULT_TIMESTAMP_HEADER, HttpMethod, HttpRoute,
    WebhookSignature,
};
pub use message::{Command, DomainError, Event, Message, WireError, from_wire, to_wire};
pub use point_commands::{
    ExtensionPointCommands, PointCommandName, decide_point_command, may_send, point_command_name, point_commands,
};
pub use query::{AppendCondition, Query, QueryItem};
pub use reventless_macros::{Command, Event};
pub use schedule::{
    Cron, RowFuture, RowReader, Schedule, ScheduleContext, ScheduleExpression, ScheduleExpressionError,
};
pub use schemars;
pub use secret::{SECRET_TTL, SecretError, SecretFuture, SecretSource, SecretValue, Secrets};
pub use tag::{Tag, TagParseError, TagSet, TagValue};
pub use task::{TaskFormat, TaskSlice};
pub use version::{FIRST_VERSION, Upcaster, decode_envelope, decode_stored, upcast, upcast_envelope};

#[cfg(test)]
mod derive_tests {
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use crate::{self as spec, Message, Tag, from_wire, to_wire};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, spec::Event)]
    enum ShopEvent {
        ProductAdded {
            #[tag]
            product_id: String,
            #[tag]
            category_id: String,
            name: String,
        },
        #[serde(rename = "OrderPlacedV1")]
        OrderPlaced {
            #[tag("order")]
            id: String,
            #[tag]
            product_ids: Vec<String>,
        },
        Reset,
        Renamed(#[tag("product")] String, String),
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, spec::Command)]
    #[serde(rename_all = "camelCase")]
    struct AddCategory {
        #[tag]
        category_id: String,
        display_name: String,
    }

    fn tag(text: &str) -> Tag {
        text.parse().unwrap()
    }

    #[test]
    fn names_come_from_variants_and_serde_renames() {
        assert_eq!(ShopEvent::NAMES, &["ProductAdded", "OrderPlacedV1", "Reset", "Renamed"]);
        assert_eq!(ShopEvent::Reset.name(), "Reset");
        assert_eq!(AddCategory::NAMES, &["AddCategory"]);
    }

    #[test]
    fn tags_come_from_marked_fields() {
        let added = ShopEvent::ProductAdded { product_id: "p1".into(), category_id: "c1".into(), name: "x".into() };
        assert_eq!(added.tags(), vec![tag("product:p1"), tag("category:c1")]);
        let placed = ShopEvent::OrderPlaced { id: "o1".into(), product_ids: vec!["p1".into(), "p2".into()] };
        let set = placed.tag_set();
        assert_eq!(set.scalar, vec![tag("order:o1")]);
        assert_eq!(set.many, vec![tag("product:p1"), tag("product:p2")]);
        assert_eq!(ShopEvent::Renamed("p9".into(), "n".into()).tags(), vec![tag("product:p9")]);
    }

    #[test]
    fn wire_form_round_trips_every_variant_shape() {
        let events = [
            ShopEvent::ProductAdded { product_id: "p1".into(), category_id: "c1".into(), name: "x".into() },
            ShopEvent::OrderPlaced { id: "o1".into(), product_ids: vec!["p1".into()] },
            ShopEvent::Reset,
            ShopEvent::Renamed("p".into(), "n".into()),
        ];
        for event in events {
            let (name, data) = to_wire(&event).unwrap();
            assert_eq!(from_wire::<ShopEvent>("event", name, data).unwrap(), event);
        }
        let (name, data) = to_wire(&ShopEvent::OrderPlaced { id: "o".into(), product_ids: vec![] }).unwrap();
        assert_eq!((name, data), ("OrderPlacedV1", json!({"id": "o", "product_ids": []})));
        // A struct with one field is not mistaken for an enum variant.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, spec::Command)]
        struct Archive {
            #[tag]
            id: String,
        }
        let archive = Archive { id: "a".into() };
        let (name, data) = to_wire(&archive).unwrap();
        assert_eq!((name, &data), ("Archive", &json!({"id": "a"})));
        assert_eq!(from_wire::<Archive>("command", name, data).unwrap(), archive);
        let command = AddCategory { category_id: "c1".into(), display_name: "Books".into() };
        let (name, data) = to_wire(&command).unwrap();
        assert_eq!(data, json!({"categoryId": "c1", "displayName": "Books"}));
        assert_eq!(from_wire::<AddCategory>("command", name, data).unwrap(), command);
    }

    #[test]
    fn bad_wire_input_is_a_typed_error() {
        let unknown = from_wire::<ShopEvent>("event", "Nope", json!({}));
        assert!(matches!(unknown, Err(crate::WireError::UnknownName { .. })));
        let wrong_type = from_wire::<ShopEvent>("event", "OrderPlacedV1", json!({"id": 5, "product_ids": []}));
        assert!(matches!(wrong_type, Err(crate::WireError::InvalidData { .. })));
    }

    #[test]
    fn domain_errors_have_code_and_detail() {
        use crate::DomainError;
        #[derive(Debug, Serialize)]
        enum OrderError {
            ProductsNotAvailable { missing: Vec<String> },
            OrderNotFound,
        }
        let error = OrderError::ProductsNotAvailable { missing: vec!["p1".into()] };
        assert_eq!(error.code(), "ProductsNotAvailable");
        assert_eq!(error.detail(), json!({"missing": ["p1"]}));
        assert_eq!(OrderError::OrderNotFound.code(), "OrderNotFound");
        assert_eq!(OrderError::OrderNotFound.detail(), serde_json::Value::Null);
    }

    #[test]
    fn entity_tags_use_the_snake_case_aggregate_name() {
        assert_eq!(crate::entity_tag_key("Member"), "member");
        assert_eq!(crate::entity_tag_key("OrderLine"), "order_line");
        assert_eq!(crate::entity_tag("OrderLine", "o1:2").unwrap().to_string(), "order_line:o1:2");
    }

    #[test]
    fn default_query_ands_scalar_tags_and_ors_collection_tags() {
        #[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema, spec::Command)]
        struct Place {
            #[tag]
            customer_id: String,
            #[tag]
            product_ids: Vec<String>,
        }
        let command = Place { customer_id: "c".into(), product_ids: vec!["p1".into(), "p2".into()] };
        let query = crate::default_decision_query(&command, &["A"]);
        assert_eq!(query.items.len(), 3);
        assert_eq!(query.items[0].tags, vec![tag("customer:c")]);
        assert_eq!(query.items[2].tags, vec![tag("product:p2")]);
        assert!(query.items.iter().all(|item| item.types == vec!["A".to_string()]));
        assert_eq!(crate::default_decision_query(&command, &[]), crate::Query::none());
    }
}
