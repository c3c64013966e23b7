//! A plugin's HTTP routes in a deploy: served through the gateway's URL
//! (no resource of their own), run by the plugin's `Api` function, whose
//! role reads the stack's secrets. A route whose signature secret the stack
//! is not given would answer every request 503: the plan says so.
use reventless_core::plugin::{ComponentKind, route_secrets};

use crate::deploy::config::ProjectConfig;

/// The routes of `manifest`, `METHOD /hooks/<Plugin>/<path>` (for the plan's listing).
pub fn routes(manifest: &reventless_core::Manifest) -> Vec<String> {
    manifest.components.iter().filter(|c| c.kind == ComponentKind::HttpRoute).map(|c| c.name.clone()).collect()
}

/// A warning for each secret the stack's routes check signatures with but
/// the stack is not given (`[plugins.<stack>] secrets`).
pub(super) fn route_secret_warnings(
    config: &ProjectConfig,
    stack: &str,
    manifest: &reventless_core::Manifest,
) -> Vec<String> {
    let given = crate::deploy::secrets::stack_secrets(config, stack);
    route_secrets(manifest)
        .into_iter()
        .filter(|secret| !given.contains_key(secret))
        .map(|secret| {
            format!(
                "stack `{stack}`: its routes ({}) check signatures with secret `{secret}`, which the stack is not given: \
                 they answer 503 until `{secret}` is under [secrets] and in `[plugins.{stack}] secrets`",
                routes(manifest).join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests report failures by panicking
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;

    fn manifest() -> reventless_core::Manifest {
        serde_json::from_value(json!({
            "plugin": "Ordering", "version": "1.0.0",
            "components": [{"kind": "HttpRoute", "name": "POST /hooks/Ordering/payments",
                            "commands": ["PaymentWebhook"], "consumes": [], "produces": [],
                            "table": "Ordering_PaymentWebhookAudit",
                            "needs": ["secret:payment-webhook-secret"], "async": false}],
            "storage": {"logs": ["Ordering"], "tables": [], "command_topics": []}
        }))
        .unwrap()
    }

    fn config(secrets: &str) -> ProjectConfig {
        let text = format!(
            "project = \"shop\"\nregion = \"us-east-1\"\n[secrets]\npayment-webhook-secret = \"/shop/pay\"\n\
             [plugins.ordering]\nname = \"Ordering\"\n{secrets}\n[stages.dev]\n"
        );
        ProjectConfig::from_texts(&text, None, "dev", &|_| None, PathBuf::from(".")).unwrap()
    }

    #[test]
    fn a_route_secret_the_stack_is_not_given_is_a_warning() {
        assert_eq!(routes(&manifest()), ["POST /hooks/Ordering/payments"]);
        let warnings = route_secret_warnings(&config(""), "ordering", &manifest());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("`payment-webhook-secret`") && warnings[0].contains("503"), "{}", warnings[0]);
        let given = config("secrets = [\"payment-webhook-secret\"]");
        assert_eq!(route_secret_warnings(&given, "ordering", &manifest()), Vec::<String>::new());
    }
}
