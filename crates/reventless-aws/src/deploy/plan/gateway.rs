//! The platform's gateway: its function, role, public URL and output.
use std::collections::BTreeMap;

use serde_json::json;

use super::functions::function_resources;
use super::names::{Arns, GATEWAY, gateway_function, resource_name};
use super::units::FunctionUnit;
use super::{PLATFORM, Resource, ResourceKind, parameter, tags};
use crate::deploy::config::ProjectConfig;

/// The statement id of the resource-based permission that makes a function
/// URL public (`lambda:InvokeFunctionUrl` by `*`, `FunctionUrlAuthType NONE`).
pub const PUBLIC_URL_STATEMENT: &str = "reventless-public-url";
/// Its companion that AWS requires for function URLs created since October
/// 2025 (`lambda:InvokeFunction` by `*`, only when invoked via the URL).
pub const PUBLIC_URL_INVOKE_STATEMENT: &str = "reventless-public-url-invoke";
/// The statement id that lets API Gateway invoke the gateway for its WebSocket API.
pub const WEBSOCKET_STATEMENT: &str = "reventless-websocket";

/// The platform's WebSocket connections and subscriptions (rows layout, see
/// [`crate::gateway::connections`]).
pub fn connections_table(config: &ProjectConfig) -> String {
    resource_name(config, PLATFORM, "connections", 255)
}

/// The platform's WebSocket API (API Gateway v2; names up to 128 characters).
pub fn websocket_api(config: &ProjectConfig) -> String {
    resource_name(config, PLATFORM, "ws", 128)
}

/// Stands for the id of the WebSocket API named `name` in a planned spec:
/// API Gateway chooses ids, so the plan names the API and the deploy puts
/// its id in once it exists (`Clients::resolve_late`).
pub fn websocket_api_id(name: &str) -> String {
    format!("${{reventless:websocket-api:{name}}}")
}

/// The WebSocket API stage: the reventless stage's name.
fn websocket_stage(config: &ProjectConfig) -> &str {
    &config.stage
}

/// What a read-model function of a stage with a gateway may do to push row
/// changes: read and clean up the connections table, post to exactly this
/// stage's WebSocket connections.
pub(super) fn push_statements(config: &ProjectConfig, arns: &Arns, unit: &FunctionUnit) -> Vec<serde_json::Value> {
    if config.platform.bin.is_none() || unit.group != "AllReadModels" {
        return Vec::new();
    }
    let connections = arns.table(&connections_table(config));
    let api = websocket_api_id(&websocket_api(config));
    let post = format!(
        "arn:aws:execute-api:{}:{}:{api}/{}/POST/@connections/*",
        arns.region,
        arns.account,
        websocket_stage(config)
    );
    vec![
        json!({"Effect": "Allow", "Action": ["dynamodb:Query", "dynamodb:DeleteItem"], "Resource": [connections]}),
        json!({"Effect": "Allow", "Action": ["execute-api:ManageConnections"], "Resource": [post]}),
    ]
}

/// `REVENTLESS_SUBSCRIPTIONS` of a read-model function of a stage with a gateway.
pub(super) fn push_environment(config: &ProjectConfig, unit: &FunctionUnit) -> Option<(String, String)> {
    if config.platform.bin.is_none() || unit.group != "AllReadModels" {
        return None;
    }
    let push = crate::gateway::push::PushConfig { connections: connections_table(config) };
    Some((crate::gateway::push::SUBSCRIPTIONS_ENV.to_string(), serde_json::to_string(&push).unwrap_or_default()))
}

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
    let connections = connections_table(config);
    let statements = vec![
        json!({"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": [arns.table(registry)]}),
        json!({"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [stage_functions]}),
        json!({"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
            "dynamodb:Query"], "Resource": [arns.table(&connections)]}),
    ];
    let gateway_config = crate::gateway::GatewayConfig {
        registry: registry.to_string(),
        auth: config.auth.clone(),
        connections: Some(connections.clone()),
    };
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
        // A page may send its own x-correlation-id and read the one answered.
        spec: json!({"authType": "NONE", "public": true, "cors": {
            "allowOrigins": ["*"], "allowMethods": ["GET", "POST"],
            "allowHeaders": ["authorization", "content-type", "x-correlation-id"],
            "exposeHeaders": ["x-correlation-id"], "maxAge": 86400}}),
    });
    resources.push(parameter(config, PLATFORM, "gateway-function", &function));
    resources.extend(websocket_resources(config, &function, &connections));
    resources
}

/// The WebSocket API on the gateway (subscriptions) and its connections table.
fn websocket_resources(config: &ProjectConfig, function: &str, connections: &str) -> Vec<Resource> {
    let api = websocket_api(config);
    let stage = websocket_stage(config);
    let url = format!("wss://{}.execute-api.{}.amazonaws.com/{stage}", websocket_api_id(&api), config.region);
    vec![
        Resource {
            kind: ResourceKind::Table,
            name: connections.to_string(),
            stack: PLATFORM.into(),
            component: "connections".into(),
            tags: tags(config, PLATFORM, "connections"),
            spec: json!({"layout": "rows", "stream": false}),
        },
        Resource {
            kind: ResourceKind::WebSocketApi,
            name: api.clone(),
            stack: PLATFORM.into(),
            component: GATEWAY.into(),
            tags: tags(config, PLATFORM, GATEWAY),
            spec: json!({
                "routeSelection": "$request.body.type",
                "function": function,
                "routes": ["$connect", "$default", "$disconnect"],
                "stage": stage,
                "connectionsTable": connections,
                "ttlAttribute": crate::gateway::connections::EXPIRES_ATTRIBUTE,
                "invokePermission": WEBSOCKET_STATEMENT,
            }),
        },
        parameter(config, PLATFORM, "websocket-url", &url),
    ]
}
