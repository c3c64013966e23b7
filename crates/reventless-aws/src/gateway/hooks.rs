//! `/hooks/<Plugin>/<path>` through the gateway's URL: forwarded as it came
//! (raw body and headers, no caller) to that plugin's `Api` function, which
//! checks the route's signature with its own secret and answers. The
//! gateway checks no token here: a webhook's sender has none, its
//! signature is its authentication.
use serde_json::{Value, json};

use super::Gateway;
use crate::lambda::http_response;

impl Gateway {
    /// Answers a request to a plugin's route.
    pub(super) async fn hook(&self, payload: &Value) -> Value {
        let path = payload.get("rawPath").and_then(Value::as_str).unwrap_or("/");
        let Some((plugin, _)) = reventless_core::hooks::split_hook_path(path) else {
            return error(404, "NOT_FOUND", "routes are served at /hooks/<Plugin>/<path>");
        };
        let snapshot = match self.snapshot().await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::error!(error, "cannot read the plugin registry");
                return self::error(503, "UNAVAILABLE", "the plugin registry cannot be read");
            }
        };
        let Some(registration) = snapshot.plugins.get(plugin) else {
            return error(404, "NOT_FOUND", &format!("no plugin `{plugin}` is connected"));
        };
        // Whatever identity the client claimed stays behind: a route never
        // acts as a verified user.
        let mut event = payload.clone();
        if let Some(context) = event.get_mut("requestContext").and_then(Value::as_object_mut) {
            context.remove("authorizer");
        }
        if let Some(id) = reventless_core::runtime::current_correlation() {
            event["headers"][reventless_core::runtime::CORRELATION_HEADER] = json!(id);
        }
        match self.apis.call(&registration.api_function, event).await {
            Ok(response) => response,
            Err(error) => {
                tracing::error!(plugin, error, "plugin API call failed");
                self::error(502, "UNAVAILABLE", &format!("plugin `{plugin}` did not answer"))
            }
        }
    }
}

fn error(status: u16, code: &str, message: &str) -> Value {
    http_response(status, &json!({ "error": { "code": code, "message": message } }))
}
