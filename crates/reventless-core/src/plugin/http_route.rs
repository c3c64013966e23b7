//! A plugin's HTTP routes (`Plugin::http_route`): each maps `METHOD /path`
//! below `/hooks/<Plugin>` to one of its inbound translations.
use std::sync::Arc;

use reventless_spec::HttpRoute;

use super::{ComponentKind, ComponentManifest, InboundHandler, PluginError, inbound_audit_table};

/// One registered route and the inbound translation it feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRouteEntry {
    /// Method, path and signature.
    pub route: HttpRoute,
    /// The inbound translation's name (`PaymentWebhook`).
    pub translation: &'static str,
    /// The translation's roles: a request that passed the route's check
    /// acts with them (the signature stands in for a caller's identity).
    pub roles: &'static [&'static str],
}

/// The path a route is served at: `/hooks/<Plugin><path>`.
pub fn hook_path(plugin: &str, path: &str) -> String {
    format!("{}/{plugin}{path}", crate::hooks::HOOKS_PREFIX)
}

/// Refuses a route whose path cannot be served, a method and path twice,
/// or a translation registered twice (by `inbound_translation` as well).
pub(super) fn check_routes(
    plugin: &str,
    routes: &[HttpRouteEntry],
    inbound: &[Arc<dyn InboundHandler>],
) -> Result<(), PluginError> {
    for (index, entry) in routes.iter().enumerate() {
        let invalid = |reason: String| PluginError::InvalidHttpRoute {
            plugin: plugin.to_string(),
            route: entry.route.to_string(),
            reason,
        };
        if let Some(problem) = entry.route.path_problem() {
            return Err(invalid(problem));
        }
        if routes[..index].iter().any(|e| e.route.method == entry.route.method && e.route.path == entry.route.path) {
            return Err(invalid("it is registered twice".into()));
        }
        if inbound.iter().filter(|h| h.name() == entry.translation).count() != 1 {
            return Err(invalid(format!(
                "its inbound translation `{}` is registered twice (`http_route` registers it already)",
                entry.translation
            )));
        }
        if let Some(signature) = &entry.route.signature
            && signature.secret.trim().is_empty()
        {
            return Err(invalid("its signature names no secret".into()));
        }
    }
    Ok(())
}

/// The manifest entries: `name` is `METHOD /hooks/<Plugin>/path`, `commands`
/// the inbound translation, `table` its audit table, `needs` the secret as
/// `secret:<name>` (a deployer grants the read of exactly that secret).
pub(super) fn route_manifests(plugin: &str, routes: &[HttpRouteEntry]) -> Vec<ComponentManifest> {
    routes
        .iter()
        .map(|entry| ComponentManifest {
            kind: ComponentKind::HttpRoute,
            name: format!("{} {}", entry.route.method, hook_path(plugin, &entry.route.path)),
            commands: vec![entry.translation.to_string()],
            consumes: Vec::new(),
            produces: Vec::new(),
            log: None,
            sources: Vec::new(),
            table: Some(inbound_audit_table(plugin, entry.translation)),
            indexes: Vec::new(),
            needs: entry.route.signature.iter().map(|s| format!("{SECRET_NEED}{}", s.secret)).collect(),
            is_async: false,
        })
        .collect()
}

/// How a route's manifest entry names the secret it reads (`secret:<name>`).
pub const SECRET_NEED: &str = "secret:";

/// The secrets a plugin's routes read, from its manifest (what its role
/// must be allowed to read).
pub fn route_secrets(manifest: &super::Manifest) -> Vec<String> {
    let mut secrets: Vec<String> = manifest
        .components
        .iter()
        .filter(|c| c.kind == ComponentKind::HttpRoute)
        .flat_map(|c| c.needs.iter().filter_map(|n| n.strip_prefix(SECRET_NEED)).map(str::to_string))
        .collect();
    secrets.sort();
    secrets.dedup();
    secrets
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests report failures by panicking
    use reventless_spec::{Dispatch, HttpMethod, InboundTranslationSlice, WebhookSignature};

    use super::*;
    use crate::Plugin;

    struct Hook;

    impl InboundTranslationSlice for Hook {
        const NAME: &'static str = "Hook";
        const ROLES: &'static [&'static str] = &["Admin"];
        type Input = serde_json::Value;
        type Error = String;

        fn translate(_: &serde_json::Value) -> Result<Vec<Dispatch>, String> {
            Ok(vec![])
        }
    }

    fn refusal(plugin: Plugin) -> String {
        match plugin.manifest() {
            Err(PluginError::InvalidHttpRoute { route, reason, .. }) => format!("{route}: {reason}"),
            other => panic!("expected a refused route, got {other:?}"),
        }
    }

    #[test]
    fn a_route_is_in_the_manifest_with_its_translation_audit_and_secret() {
        let signed = HttpRoute::post("/payments").signed(WebhookSignature::hmac_sha256("hook-secret"));
        let manifest = Plugin::new("Shop").http_route::<Hook>(signed).manifest().unwrap();
        let route = manifest.components.iter().find(|c| c.kind == ComponentKind::HttpRoute).unwrap();
        assert_eq!(route.name, "POST /hooks/Shop/payments");
        assert_eq!(route.commands, ["Hook"]);
        assert_eq!(route.table.as_deref(), Some("Shop_HookAudit"));
        assert_eq!(route.needs, ["secret:hook-secret"]);
        assert_eq!(route_secrets(&manifest), ["hook-secret"]);
        // The translation is registered once, with its audit table.
        let inbound = manifest.components.iter().filter(|c| c.kind == ComponentKind::InboundTranslationSlice);
        assert_eq!(inbound.count(), 1);
        assert!(manifest.storage.tables.iter().any(|t| t.name == "Shop_HookAudit"));
    }

    #[test]
    fn bad_paths_twice_registered_routes_and_translations_are_refused() {
        let bad = Plugin::new("Shop").http_route::<Hook>(HttpRoute::post("payments"));
        assert!(refusal(bad).contains("must start with `/`"));
        let twice =
            Plugin::new("Shop").http_route::<Hook>(HttpRoute::post("/a")).http_route::<Hook>(HttpRoute::post("/a"));
        assert_eq!(refusal(twice), "POST /a: it is registered twice");
        let other_method = Plugin::new("Shop")
            .http_route::<Hook>(HttpRoute::post("/a"))
            .http_route::<Hook>(HttpRoute::new(HttpMethod::Put, "/a"));
        assert!(other_method.manifest().is_ok(), "one path, two methods");
        let both = Plugin::new("Shop").inbound_translation::<Hook>().http_route::<Hook>(HttpRoute::post("/a"));
        assert!(both.manifest().is_ok(), "registered first by inbound_translation: reused");
        let after = Plugin::new("Shop").http_route::<Hook>(HttpRoute::post("/a")).inbound_translation::<Hook>();
        assert!(refusal(after).contains("registered twice"));
        let unnamed = HttpRoute::post("/a").signed(WebhookSignature::hmac_sha256(" "));
        assert!(refusal(Plugin::new("Shop").http_route::<Hook>(unnamed)).contains("names no secret"));
    }
}
