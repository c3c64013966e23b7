//! Extension points that take commands: a publisher's public commands, which
//! other plugins send to it and the publisher decides with its own internal
//! command (see [`ExtensionPointCommands`]).
use crate::{Command, Dispatch, ExtensionPoint, Message, WireError, from_wire, to_wire};

/// The commands an extension point accepts from other plugins: a public
/// command type (part of the publisher's contract, like
/// [`ExtensionPoint::Published`]) and how the publisher decides each one,
/// by mapping it to one of its own internal commands. The internal
/// command's decision is the outcome: a rejection appends nothing.
///
/// Delivery is asynchronous and at least once, in order per entity (the
/// public command's first scalar tag): the internal commands must be
/// idempotent (e.g. keyed by an order id), and a redelivered message whose
/// command already ran is not run again.
pub trait ExtensionPointCommands: ExtensionPoint {
    /// The plugin publishing the point (its command queue receives them).
    const PLUGIN: &'static str;
    /// The plugins allowed to send these commands (any plugin when empty).
    const SENDERS: &'static [&'static str] = &[];
    /// The public commands (an enum: one variant per command).
    type Command: Command;

    /// The publisher's internal command that decides `command`.
    fn dispatch(command: &Self::Command) -> Result<Dispatch, WireError>;
}

/// The name a [`Dispatch`] to an extension point carries:
/// `<Plugin>.<Point>.<Command>` (a plugin's own commands never contain a dot).
pub fn point_command_name(plugin: &str, point: &str, command: &str) -> String {
    format!("{plugin}.{point}.{command}")
}

/// A command name addressed to an extension point, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointCommandName<'a> {
    /// The publishing plugin (`Catalog`).
    pub plugin: &'a str,
    /// The point within it (`Products`).
    pub point: &'a str,
    /// The public command's wire name (`ReserveStock`).
    pub command: &'a str,
}

impl<'a> PointCommandName<'a> {
    /// `Catalog.Products.ReserveStock` → its parts; `None` for a plugin's own command.
    pub fn parse(name: &'a str) -> Option<Self> {
        let mut parts = name.splitn(3, '.');
        let (plugin, point, command) = (parts.next()?, parts.next()?, parts.next()?);
        let valid = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        (valid(plugin) && valid(point) && valid(command)).then_some(Self { plugin, point, command })
    }

    /// The point's full name, `<Plugin>.<Point>`.
    pub fn point_name(&self) -> String {
        format!("{}.{}", self.plugin, self.point)
    }
}

impl Dispatch {
    /// A command to another plugin's extension point `P` (from an
    /// automation, extension or translation of the sending plugin, which
    /// declares it with `Plugin::sends_to::<P>()`). It is queued on the
    /// publisher's command queue, in order per the command's first scalar
    /// tag, and decided there.
    pub fn to_point<P: ExtensionPointCommands>(command: &P::Command) -> Result<Self, WireError> {
        let (name, input) = to_wire(command)?;
        let group = command.tag_set().scalar.first().map(|tag| tag.to_string());
        Ok(Self { command: point_command_name(P::PLUGIN, P::NAME, name), entity_id: group, input })
    }
}

/// How the publisher decides one public command received in wire form: the
/// internal command, or why the input is not one of the point's commands
/// (an unknown name or a wrong shape).
pub fn decide_point_command<P: ExtensionPointCommands>(
    name: &str,
    input: serde_json::Value,
) -> Result<Dispatch, WireError> {
    let command: P::Command = from_wire("command", name, input)?;
    P::dispatch(&command)
}

/// Whether `sender` may send `P`'s commands.
pub fn may_send<P: ExtensionPointCommands>(sender: &str) -> bool {
    P::SENDERS.is_empty() || P::SENDERS.contains(&sender)
}

/// The wire names of `P`'s public commands.
pub fn point_commands<P: ExtensionPointCommands>() -> &'static [&'static str] {
    <P::Command as Message>::NAMES
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;
    use crate::{self as spec, EventEnvelope};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, spec::Event)]
    enum Internal {
        Reserved { product_id: String },
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, spec::Command)]
    #[serde(rename_all_fields = "camelCase")]
    enum StockRequest {
        Reserve {
            #[tag]
            product_id: String,
            order_id: String,
        },
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, spec::Command)]
    #[serde(rename_all = "camelCase")]
    struct HoldStock {
        #[tag]
        product_id: String,
        order_id: String,
    }

    struct Products;

    impl ExtensionPoint for Products {
        const NAME: &'static str = "Products";
        type Event = Internal;
        type Published = Internal;
        fn publish(event: &Internal, _: &EventEnvelope) -> Vec<Internal> {
            vec![event.clone()]
        }
    }

    impl ExtensionPointCommands for Products {
        const PLUGIN: &'static str = "Catalog";
        const SENDERS: &'static [&'static str] = &["Ordering"];
        type Command = StockRequest;
        fn dispatch(command: &StockRequest) -> Result<Dispatch, WireError> {
            let StockRequest::Reserve { product_id, order_id } = command.clone();
            Dispatch::slice(&HoldStock { product_id, order_id })
        }
    }

    #[test]
    fn a_dispatch_to_a_point_names_plugin_point_and_command_and_groups_by_tag() {
        let request = StockRequest::Reserve { product_id: "p1".into(), order_id: "o1".into() };
        let dispatch = Dispatch::to_point::<Products>(&request).unwrap();
        assert_eq!(dispatch.command, "Catalog.Products.Reserve");
        assert_eq!(dispatch.entity_id.as_deref(), Some("product:p1"));
        assert_eq!(dispatch.input, json!({"productId": "p1", "orderId": "o1"}));
        let parsed = PointCommandName::parse(&dispatch.command).unwrap();
        assert_eq!((parsed.plugin, parsed.point, parsed.command), ("Catalog", "Products", "Reserve"));
        assert_eq!(parsed.point_name(), "Catalog.Products");
        assert_eq!(PointCommandName::parse("Account_Open"), None);
        assert_eq!(PointCommandName::parse("Catalog..Reserve"), None);
    }

    #[test]
    fn the_publisher_maps_a_public_command_to_its_internal_one() {
        let internal =
            decide_point_command::<Products>("Reserve", json!({"productId": "p1", "orderId": "o1"})).unwrap();
        assert_eq!(internal.command, "HoldStock");
        assert_eq!(internal.input, json!({"productId": "p1", "orderId": "o1"}));
    }

    #[test]
    fn unknown_commands_and_wrong_shapes_are_typed_errors() {
        let unknown = decide_point_command::<Products>("Steal", json!({}));
        assert!(matches!(unknown, Err(WireError::UnknownName { ref name, .. }) if name == "Steal"), "{unknown:?}");
        let shape = decide_point_command::<Products>("Reserve", json!({"productId": 5}));
        assert!(matches!(shape, Err(WireError::InvalidData { .. })), "{shape:?}");
    }

    #[test]
    fn only_listed_senders_may_send() {
        assert!(may_send::<Products>("Ordering"));
        assert!(!may_send::<Products>("Reviews"));
        assert_eq!(point_commands::<Products>(), &["Reserve"]);
    }
}
