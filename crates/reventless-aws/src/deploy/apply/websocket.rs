//! The gateway's WebSocket API (API Gateway v2): the API (found by name),
//! its Lambda proxy integration with the gateway function, the routes
//! `$connect`, `$default` (two-way: the gateway's answer goes back to the
//! client) and `$disconnect`, an auto-deployed stage, the permission for
//! API Gateway to invoke the gateway, and the TTL of the connections table.
//!
//! API Gateway chooses API ids, so a plan names the API and writes
//! [`websocket_api_id`] where its id belongs (the read-model roles' ARN,
//! the `websocket-url` output); [`Clients::resolve_late`] puts the id in.
use std::collections::HashMap;

use aws_sdk_apigatewayv2::types::{IntegrationType, ProtocolType};
use serde_json::{Value, json};

use super::{Clients, DeployError, Existing, aws, code};
use crate::deploy::plan::{Plan, Resource, ResourceKind, WEBSOCKET_STATEMENT};

/// How a placeholder for an API's id starts (see `plan::websocket_api_id`).
const API_ID_MARK: &str = "${reventless:websocket-api:";

/// What exists of one WebSocket API.
struct Found {
    id: String,
    route_selection: Option<String>,
    /// (integration id, the function its URI names)
    integrations: Vec<(String, Option<String>)>,
    /// (route key, route id, target, route response selection)
    routes: Vec<(String, String, Option<String>, Option<String>)>,
    stages: Vec<String>,
}

/// The function an integration URI invokes
/// (`arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function ARN}/invocations`).
fn function_of_uri(uri: &str) -> Option<String> {
    let arn = uri.split("/functions/").nth(1)?.strip_suffix("/invocations")?;
    arn.split("function:").nth(1).map(|rest| rest.split(':').next().unwrap_or(rest).to_string())
}

impl Clients {
    /// The id of the WebSocket API named `name`, when it exists.
    pub async fn websocket_api_id(&self, name: &str) -> Result<Option<String>, DeployError> {
        Ok(self.websocket_apis(name).await?.into_iter().find(|(found, _)| found == name).map(|(_, id)| id))
    }

    /// Every API whose name starts with `prefix`: (name, id).
    async fn websocket_apis(&self, prefix: &str) -> Result<Vec<(String, String)>, DeployError> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            self.count();
            let page =
                self.apigatewayv2.get_apis().set_next_token(token).send().await.map_err(aws("GetApis", prefix))?;
            for api in page.items() {
                if let (Some(name), Some(id)) = (api.name(), api.api_id())
                    && name.starts_with(prefix)
                    && api.protocol_type() == Some(&ProtocolType::Websocket)
                {
                    found.push((name.to_string(), id.to_string()));
                }
            }
            match page.next_token() {
                Some(next) => token = Some(next.to_string()),
                None => return Ok(found),
            }
        }
    }

    /// `resource` with the ids of the WebSocket APIs it names put in; when one
    /// does not exist: an error if `strict` (applying), else `resource` as
    /// planned (a diff then shows it as changed).
    pub async fn resolve_late(&self, resource: &Resource, strict: bool) -> Result<Resource, DeployError> {
        let mut text = resource.spec.to_string();
        if !text.contains(API_ID_MARK) {
            return Ok(resource.clone());
        }
        while let Some(start) = text.find(API_ID_MARK) {
            let Some(end) = text[start..].find('}').map(|at| start + at) else { break };
            let name = text[start + API_ID_MARK.len()..end].to_string();
            match self.websocket_api_id(&name).await? {
                Some(id) => text.replace_range(start..=end, &id),
                None if strict => {
                    return Err(DeployError::Refused(format!(
                        "{} needs the WebSocket API {name}, which does not exist: deploy the platform stack first",
                        resource.name
                    )));
                }
                None => return Ok(resource.clone()),
            }
        }
        let spec = serde_json::from_str(&text).map_err(|e| DeployError::Refused(e.to_string()))?;
        Ok(Resource { spec, ..resource.clone() })
    }

    async fn find_websocket(&self, name: &str) -> Result<Option<Found>, DeployError> {
        let Some(id) = self.websocket_api_id(name).await? else { return Ok(None) };
        self.count();
        let api = self.apigatewayv2.get_api().api_id(&id).send().await.map_err(aws("GetApi", name))?;
        self.count();
        let integrations =
            self.apigatewayv2.get_integrations().api_id(&id).send().await.map_err(aws("GetIntegrations", name))?;
        self.count();
        let routes = self.apigatewayv2.get_routes().api_id(&id).send().await.map_err(aws("GetRoutes", name))?;
        self.count();
        let stages = self.apigatewayv2.get_stages().api_id(&id).send().await.map_err(aws("GetStages", name))?;
        Ok(Some(Found {
            route_selection: api.route_selection_expression().map(str::to_string),
            integrations: integrations
                .items()
                .iter()
                .map(|i| {
                    (i.integration_id().unwrap_or_default().to_string(), i.integration_uri().and_then(function_of_uri))
                })
                .collect(),
            routes: routes
                .items()
                .iter()
                .map(|r| {
                    (
                        r.route_key().unwrap_or_default().to_string(),
                        r.route_id().unwrap_or_default().to_string(),
                        r.target().map(str::to_string),
                        r.route_response_selection_expression().map(str::to_string),
                    )
                })
                .collect(),
            stages: stages.items().iter().filter_map(|s| s.stage_name().map(str::to_string)).collect(),
            id,
        }))
    }

    /// Whether the gateway's resource policy lets API Gateway invoke it.
    async fn websocket_invokable(&self, function: &str) -> Result<bool, DeployError> {
        self.count();
        match self.lambda.get_policy().function_name(function).send().await {
            Ok(output) => {
                let policy: Value = output.policy().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
                let statements = policy.get("Statement").and_then(Value::as_array).cloned().unwrap_or_default();
                Ok(statements.iter().any(|s| s.get("Sid").and_then(Value::as_str) == Some(WEBSOCKET_STATEMENT)))
            }
            Err(error) if code(&error) == Some("ResourceNotFoundException") => Ok(false),
            Err(error) => Err(aws("GetPolicy", function)(error)),
        }
    }

    /// The API in the plan's terms (see [`Resource::spec`] of a `WebSocketApi`).
    pub(super) async fn observe_websocket(&self, resource: &Resource) -> Result<Option<Value>, DeployError> {
        let Some(found) = self.find_websocket(&resource.name).await? else { return Ok(None) };
        let function = resource.spec["function"].as_str().unwrap_or_default();
        let ours: Vec<&String> =
            found.integrations.iter().filter(|(_, f)| f.as_deref() == Some(function)).map(|(id, _)| id).collect();
        let mut routes: Vec<&str> = found
            .routes
            .iter()
            .filter(|(_, _, target, _)| {
                target.as_deref().is_some_and(|t| ours.iter().any(|id| t == format!("integrations/{id}")))
            })
            .map(|(key, _, _, _)| key.as_str())
            .collect();
        routes.sort_unstable();
        let table = resource.spec["connectionsTable"].as_str().unwrap_or_default();
        self.count();
        let ttl = self.dynamodb.describe_time_to_live().table_name(table).send().await;
        let ttl = ttl.ok().and_then(|o| o.time_to_live_description().cloned()).and_then(|d| {
            let enabled = d.time_to_live_status() == Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled);
            enabled.then(|| d.attribute_name().map(str::to_string)).flatten()
        });
        let stage = resource.spec["stage"].as_str().unwrap_or_default();
        let invokable = self.websocket_invokable(function).await?;
        Ok(Some(json!({
            "routeSelection": found.route_selection,
            "function": if ours.is_empty() { None } else { Some(function) },
            "routes": routes,
            "stage": found.stages.iter().any(|s| s == stage).then_some(stage),
            "connectionsTable": table,
            "ttlAttribute": ttl,
            "invokePermission": invokable.then_some(WEBSOCKET_STATEMENT),
        })))
    }

    /// Creates or completes the API: integration, routes, stage, permission, TTL.
    pub(super) async fn ensure_websocket(&self, plan: &Plan, resource: &Resource) -> Result<(), DeployError> {
        let name = resource.name.as_str();
        let spec = &resource.spec;
        let selection = spec["routeSelection"].as_str().unwrap_or("$request.body.type");
        let found = match self.find_websocket(name).await? {
            Some(found) => found,
            None => {
                self.count();
                let tags: HashMap<String, String> = resource.tags.clone().into_iter().collect();
                let created = self
                    .apigatewayv2
                    .create_api()
                    .name(name)
                    .protocol_type(ProtocolType::Websocket)
                    .route_selection_expression(selection)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(aws("CreateApi", name))?;
                let id = created.api_id().unwrap_or_default().to_string();
                Found {
                    id,
                    route_selection: Some(selection.into()),
                    integrations: vec![],
                    routes: vec![],
                    stages: vec![],
                }
            }
        };
        let api = found.id.as_str();
        if found.route_selection.as_deref() != Some(selection) {
            self.count();
            self.apigatewayv2
                .update_api()
                .api_id(api)
                .route_selection_expression(selection)
                .send()
                .await
                .map_err(aws("UpdateApi", name))?;
        }
        let function = spec["function"].as_str().unwrap_or_default();
        let function_arn = format!("arn:aws:lambda:{}:{}:function:{function}", plan.region, plan.account);
        let uri =
            format!("arn:aws:apigateway:{}:lambda:path/2015-03-31/functions/{function_arn}/invocations", plan.region);
        let integration = match found.integrations.iter().find(|(_, f)| f.as_deref() == Some(function)) {
            Some((id, _)) => id.clone(),
            None => {
                self.count();
                let created = self
                    .apigatewayv2
                    .create_integration()
                    .api_id(api)
                    .integration_type(IntegrationType::AwsProxy)
                    .integration_method("POST")
                    .integration_uri(&uri)
                    .send()
                    .await
                    .map_err(aws("CreateIntegration", name))?;
                created.integration_id().unwrap_or_default().to_string()
            }
        };
        let target = format!("integrations/{integration}");
        for key in spec["routes"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            let existing = found.routes.iter().find(|(route_key, _, _, _)| route_key == key);
            // `$default` is two-way: the gateway's answer (connection_ack,
            // pong, error) is the client's next message.
            let two_way = key == "$default";
            match existing {
                Some((_, id, current, selection)) => {
                    if current.as_deref() != Some(target.as_str()) || (two_way && selection.is_none()) {
                        self.count();
                        let mut update = self.apigatewayv2.update_route().api_id(api).route_id(id).target(&target);
                        if two_way {
                            update = update.route_response_selection_expression("$default");
                        }
                        update.send().await.map_err(aws("UpdateRoute", name))?;
                    }
                }
                None => {
                    self.count();
                    let mut create = self.apigatewayv2.create_route().api_id(api).route_key(key).target(&target);
                    if two_way {
                        create = create.route_response_selection_expression("$default");
                    }
                    let created = create.send().await.map_err(aws("CreateRoute", name))?;
                    let id = created.route_id().unwrap_or_default().to_string();
                    if two_way {
                        self.count();
                        self.apigatewayv2
                            .create_route_response()
                            .api_id(api)
                            .route_id(&id)
                            .route_response_key("$default")
                            .send()
                            .await
                            .map_err(aws("CreateRouteResponse", name))?;
                    }
                }
            }
        }
        let stage = spec["stage"].as_str().unwrap_or("default");
        if !found.stages.iter().any(|s| s == stage) {
            self.count();
            self.apigatewayv2
                .create_stage()
                .api_id(api)
                .stage_name(stage)
                .auto_deploy(true)
                .send()
                .await
                .map_err(aws("CreateStage", name))?;
        }
        if !self.websocket_invokable(function).await? {
            self.count();
            let source = format!("arn:aws:execute-api:{}:{}:{api}/*", plan.region, plan.account);
            match self
                .lambda
                .add_permission()
                .function_name(function)
                .statement_id(WEBSOCKET_STATEMENT)
                .action("lambda:InvokeFunction")
                .principal("apigateway.amazonaws.com")
                .source_arn(source)
                .send()
                .await
            {
                Err(error) if code(&error) != Some("ResourceConflictException") => {
                    return Err(aws("AddPermission", function)(error));
                }
                _ => {}
            }
        }
        let table = spec["connectionsTable"].as_str().unwrap_or_default();
        let attribute = spec["ttlAttribute"].as_str().unwrap_or(crate::gateway::connections::EXPIRES_ATTRIBUTE);
        self.count();
        let current = self.dynamodb.describe_time_to_live().table_name(table).send().await;
        let enabled = current.ok().and_then(|o| o.time_to_live_description().cloned()).is_some_and(|d| {
            d.time_to_live_status() == Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled)
                && d.attribute_name() == Some(attribute)
        });
        if !enabled {
            self.count();
            let ttl = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build()
                .map_err(|e| DeployError::Refused(e.to_string()))?;
            self.dynamodb
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(ttl)
                .send()
                .await
                .map_err(aws("UpdateTimeToLive", table))?;
        }
        Ok(())
    }

    /// Deletes the API (its routes, integrations and stages go with it).
    pub(super) async fn remove_websocket(&self, name: &str) -> Result<(), DeployError> {
        let Some(id) = self.websocket_api_id(name).await? else { return Ok(()) };
        self.count();
        match self.apigatewayv2.delete_api().api_id(&id).send().await {
            Err(error) if code(&error) != Some("NotFoundException") => Err(aws("DeleteApi", name)(error)),
            _ => Ok(()),
        }
    }

    /// The stage's WebSocket APIs (`{project}-{stage}-…`).
    pub(super) async fn discover_websockets(&self, prefix: &str) -> Result<Vec<Existing>, DeployError> {
        let apis = self.websocket_apis(prefix).await?;
        Ok(apis
            .into_iter()
            .map(|(name, _)| {
                let stack = name.strip_prefix(prefix).and_then(|rest| rest.split('-').next()).unwrap_or_default();
                Existing::new(ResourceKind::WebSocketApi, &name, stack)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::function_of_uri;

    #[test]
    fn an_integration_uri_names_its_function() {
        let uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:shop-dev-platform-Gateway/invocations";
        assert_eq!(function_of_uri(uri).as_deref(), Some("shop-dev-platform-Gateway"));
        assert_eq!(function_of_uri("http://example.invalid/x"), None);
    }
}
