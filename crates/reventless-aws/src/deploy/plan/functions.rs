//! A function with its role and log group.
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::names::{Arns, ROLE_NAME_MAX};
use super::units::FunctionUnit;
use super::{Resource, ResourceKind, tags};
use crate::deploy::config::ProjectConfig;
use crate::shorten;

/// A function with its role (trusting Lambda, `statements` plus writing its
/// own logs) and its log group.
pub(super) fn function_resources(
    config: &ProjectConfig,
    arns: &Arns,
    stack: &str,
    unit: &FunctionUnit,
    function: &str,
    mut statements: Vec<Value>,
    environment: BTreeMap<String, String>,
) -> Vec<Resource> {
    let tuning = config.tuning(stack, &[unit.group, &unit.name]);
    let component = unit.name.as_str();
    statements.insert(
        0,
        json!({"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": [arns.log_group(function)]}),
    );
    let mut variables = tuning.env_vars.clone();
    if let Some(level) = &tuning.log_level {
        variables.insert(crate::lambda::logging::LEVEL_ENV.to_string(), level.clone());
    }
    variables.extend(environment);
    let role = shorten(function, ROLE_NAME_MAX);
    vec![
        Resource {
            kind: ResourceKind::Role,
            name: role.clone(),
            stack: stack.to_string(),
            component: component.into(),
            tags: tags(config, stack, component),
            spec: json!({"trust": "lambda.amazonaws.com", "policy": {"Version": "2012-10-17", "Statement": statements}}),
        },
        Resource {
            kind: ResourceKind::LogGroup,
            name: format!("/aws/lambda/{function}"),
            stack: stack.to_string(),
            component: component.into(),
            tags: tags(config, stack, component),
            spec: json!({"retentionDays": tuning.log_retention_days}),
        },
        Resource {
            kind: ResourceKind::Function,
            name: function.to_string(),
            stack: stack.to_string(),
            component: component.into(),
            tags: tags(config, stack, component),
            spec: json!({
                "role": role,
                "memorySize": tuning.memory_size,
                "timeout": tuning.timeout,
                "ephemeralStorageMb": tuning.ephemeral_storage_mb,
                "reservedConcurrency": tuning.reserved_concurrency,
                "architecture": config.architecture.lambda_name(),
                "layers": config.layers,
                "environment": variables,
            }),
        },
    ]
}
