//! The platform's gateway: its function, role, public URL and output.
use std::collections::BTreeMap;

use serde_json::json;

use super::functions::function_resources;
use super::names::{Arns, GATEWAY, gateway_function};
use super::units::FunctionUnit;
use super::{PLATFORM, Resource, ResourceKind, parameter, tags};
use crate::deploy::config::ProjectConfig;

/// The statement id of the resource-based permission that makes a function
/// URL public (`lambda:InvokeFunctionUrl` by `*`, `FunctionUrlAuthType NONE`).
pub const PUBLIC_URL_STATEMENT: &str = "reventless-public-url";
/// Its companion that AWS requires for function URLs created since October
/// 2025 (`lambda:InvokeFunction` by `*`, only when invoked via the URL).
pub const PUBLIC_URL_INVOKE_STATEMENT: &str = "reventless-public-url-invoke";

/// The gateway: reads the registry, invokes the stage's functions (the
/// registered plugins' API functions), and is served at a public URL (it
/// verifies end users' tokens itself, see [`crate::gateway::auth`]).
pub(super) fn gateway_resources(config: &ProjectConfig, arns: &Arns, registry: &str) -> Vec<Resource> {
    let function = gateway_function(config);
    // By name prefix, not the exact `Api` functions of the plugins in this
    // plan: a plugin deployed later on its own (`deploy --plugin`) never
    // updates the platform's role, yet must be served from its first
    // heartbeat without redeploying the platform. The prefix is still a
    // named resource, never `*`: only this stage's functions
    // (`{project}-{stage}-…`, which no function name shortening cuts: project
    // ≤ 20, stage ≤ 10 characters), and only those the registry names — which
    // only this stage's heartbeat roles can write — are invoked.
    let stage_functions = arns.function(&format!("{}-{}-*", config.project, config.stage));
    let statements = vec![
        json!({"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": [arns.table(registry)]}),
        json!({"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [stage_functions]}),
    ];
    let gateway_config = crate::gateway::GatewayConfig { registry: registry.to_string(), auth: config.auth.clone() };
    let environment = BTreeMap::from([(
        crate::gateway::GATEWAY_ENV.to_string(),
        serde_json::to_string(&gateway_config).unwrap_or_default(),
    )]);
    let unit = FunctionUnit::whole(GATEWAY, GATEWAY.to_string());
    let mut resources = function_resources(config, arns, PLATFORM, &unit, &function, statements, environment);
    resources.push(Resource {
        kind: ResourceKind::FunctionUrl,
        name: function.clone(),
        stack: PLATFORM.into(),
        component: GATEWAY.into(),
        tags: tags(config, PLATFORM, GATEWAY),
        // Browsers on any origin may call it: callers prove who they are with
        // a bearer token, never with cookies, so `*` without credentials is safe.
        spec: json!({"authType": "NONE", "public": true, "cors": {
            "allowOrigins": ["*"], "allowMethods": ["GET", "POST"],
            "allowHeaders": ["authorization", "content-type"], "maxAge": 86400}}),
    });
    resources.push(parameter(config, PLATFORM, "gateway-function", &function));
    resources
}
