//! Serving a plugin's HTTP routes (webhooks), the same on every platform:
//! the platform hands over the method, the path below `/hooks/<Plugin>`,
//! the headers and the raw body; [`serve`] checks the route's signature,
//! runs its inbound translation and says what to answer.
//!
//! | Answer | When |
//! |---|---|
//! | 200 `{auditId, outcomes}` | the translation ran (its commands' outcomes, accepted or rejected) |
//! | 400 `MALFORMED_BODY` / `BAD_INPUT` | the body is not JSON / not the translation's input |
//! | 401 `MISSING_SIGNATURE` / `BAD_SIGNATURE` / `STALE_SIGNATURE` / `BAD_SIGNATURE_TIMESTAMP` | nothing ran, nothing was audited |
//! | 404 / 405 | no such plugin or route / another method |
//! | 422 `{error: {code, detail}, auditId}` | the translation refused the input (audited) |
//! | 503 `SECRET_UNAVAILABLE` | the route's secret cannot be read |
pub mod signature;

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::outcome::{Caller, EngineError};
use crate::plugin::{HttpRouteEntry, hook_path};
use crate::runtime::Runtime;

/// Where every plugin's routes are served: `/hooks/<Plugin>/<path>`.
pub const HOOKS_PREFIX: &str = "/hooks";

/// One request to a route, as the platform received it.
#[derive(Debug, Clone, Default)]
pub struct HookRequest {
    /// The method (`POST`).
    pub method: String,
    /// The path below `/hooks/<Plugin>` (`/payments`).
    pub path: String,
    /// The headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The raw body (what the signature covers).
    pub body: Vec<u8>,
}

/// What to answer: a status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct HookAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
}

impl HookAnswer {
    fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self { status, body: json!({ "error": { "code": code, "message": message.into() } }) }
    }
}

/// Splits `/hooks/<Plugin>/<path>` into the plugin and `/<path>`.
pub fn split_hook_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(HOOKS_PREFIX)?.strip_prefix('/')?;
    let (plugin, below) = rest.split_once('/')?;
    (!plugin.is_empty() && !below.is_empty()).then(|| (plugin, &path[HOOKS_PREFIX.len() + 1 + plugin.len()..]))
}

/// Answers one request to a route of `plugin` hosted by `runtime`; `now`
/// is what a signature's timestamp is compared with.
pub async fn serve(runtime: &Runtime, plugin: &str, request: &HookRequest, now: SystemTime) -> HookAnswer {
    let Some(hosted) = runtime.plugins().find(|p| p.name == plugin) else {
        return HookAnswer::error(404, "NOT_FOUND", format!("no plugin `{plugin}` is hosted here"));
    };
    let on_path: Vec<&HttpRouteEntry> = hosted.http_routes.iter().filter(|e| e.route.path == request.path).collect();
    if on_path.is_empty() {
        let known: Vec<String> = hosted.http_routes.iter().map(|e| e.route.to_string()).collect();
        let message = format!("plugin `{plugin}` has no route `{}` (its routes: {})", request.path, list(&known));
        return HookAnswer::error(404, "NOT_FOUND", message);
    }
    let Some(entry) = on_path.iter().find(|e| e.route.method.as_str().eq_ignore_ascii_case(&request.method)) else {
        let allowed: Vec<&str> = on_path.iter().map(|e| e.route.method.as_str()).collect();
        let message = format!("`{}` answers {}", request.path, allowed.join(", "));
        return HookAnswer::error(405, "METHOD_NOT_ALLOWED", message);
    };
    if let Some(scheme) = &entry.route.signature {
        let secret = match runtime.capabilities().secret(&scheme.secret).await {
            Ok(secret) => secret,
            Err(error) => {
                // The error names the secret, never its value.
                tracing::error!(plugin, route = %entry.route, %error, "the route's secret cannot be read");
                return HookAnswer::error(503, "SECRET_UNAVAILABLE", "the route's secret cannot be read");
            }
        };
        let header = |name: &str| request.headers.get(name).map(String::as_str);
        if let Err(error) = signature::verify(scheme, &secret, header, &request.body, now) {
            tracing::warn!(plugin, route = %entry.route, code = error.code(), "webhook signature refused");
            return HookAnswer::error(401, error.code(), error.to_string());
        }
    }
    let input: Value = match serde_json::from_slice(&request.body) {
        Ok(input) => input,
        Err(error) => return HookAnswer::error(400, "MALFORMED_BODY", format!("the body is not JSON: {error}")),
    };
    // The translation is pure: asking it first tells a refusal of the input
    // (422) from a command's rejection (200 with that outcome), which the
    // audited run below records alike.
    let refusal =
        match hosted.inbound.iter().find(|h| h.name() == entry.translation).map(|h| h.translate(input.clone())) {
            Some(Ok(Err(refusal))) => Some(refusal),
            Some(Err(error)) => return engine_error(plugin, error),
            Some(Ok(Ok(_))) | None => None,
        };
    let caller = Caller {
        user_id: Some(format!("hook:{} {}", entry.route.method, hook_path(plugin, &entry.route.path))),
        roles: entry.roles.iter().map(|r| r.to_string()).collect(),
    };
    match runtime.translate_inbound(plugin, entry.translation, input, caller).await {
        Ok(outcome) => match refusal {
            Some((code, detail)) => HookAnswer {
                status: 422,
                body: json!({ "error": { "code": code, "detail": detail }, "auditId": outcome.audit_id }),
            },
            None => HookAnswer { status: 200, body: json!(outcome) },
        },
        Err(error) => engine_error(plugin, error),
    }
}

fn engine_error(plugin: &str, error: EngineError) -> HookAnswer {
    match error {
        EngineError::BadInput { message, .. } => HookAnswer::error(400, "BAD_INPUT", message),
        error => {
            tracing::error!(plugin, %error, "a webhook's translation failed");
            HookAnswer::error(500, "INTERNAL", "the request could not be processed")
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_paths_split_into_plugin_and_route_path() {
        assert_eq!(split_hook_path("/hooks/Ordering/payments"), Some(("Ordering", "/payments")));
        assert_eq!(split_hook_path("/hooks/Ordering/a/b"), Some(("Ordering", "/a/b")));
        assert_eq!(split_hook_path("/hooks/Ordering"), None);
        assert_eq!(split_hook_path("/hooks//payments"), None);
        assert_eq!(split_hook_path("/graphql"), None);
    }
}
