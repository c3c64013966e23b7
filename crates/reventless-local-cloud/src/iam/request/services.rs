//! Per service: the (action, resource ARN) pairs a request needs — DynamoDB
//! (tables, indexes, streams), SQS, SSM parameters, CloudWatch Logs, Lambda.
use serde_json::Value;

use axum::http::Method;

use super::{Needs, RequestParts, Scope, check};

pub(super) fn table_arn(name: &str, scope: Scope<'_>) -> String {
    if name.starts_with("arn:") {
        name.to_string()
    } else {
        format!("arn:aws:dynamodb:{}:{}:table/{name}", scope.region, scope.account)
    }
}

/// The fields of a DynamoDB request that name what it touches. Read typed,
/// so that items and keys (up to megabytes on every call) are skipped, not
/// built into a tree.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DynamoRequest {
    table_name: Option<String>,
    index_name: Option<String>,
    request_items: Option<std::collections::BTreeMap<String, serde::de::IgnoredAny>>,
    transact_items: Option<Vec<TransactItem>>,
    stream_arn: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TransactItem {
    get: Option<TableOf>,
    put: Option<TableOf>,
    update: Option<TableOf>,
    delete: Option<TableOf>,
    condition_check: Option<TableOf>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TableOf {
    table_name: String,
}

/// A JSON body read as `T`; an empty body is `T::default()`.
pub(super) fn typed_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Option<T> {
    if body.is_empty() { Some(T::default()) } else { serde_json::from_slice(body).ok() }
}

pub(super) fn dynamodb(op: &str, body: DynamoRequest, scope: Scope<'_>) -> Needs {
    let action = format!("dynamodb:{op}");
    let table = body.table_name.as_deref().map(|name| table_arn(name, scope));
    let needs = match op {
        "GetItem"
        | "PutItem"
        | "UpdateItem"
        | "DeleteItem"
        | "DescribeTable"
        | "DescribeTimeToLive"
        | "DescribeContinuousBackups" => table.map(|arn| vec![(action.clone(), arn)]),
        "Query" | "Scan" => table.map(|arn| match &body.index_name {
            Some(index) => vec![(action.clone(), format!("{arn}/index/{index}"))],
            None => vec![(action.clone(), arn)],
        }),
        "BatchGetItem" | "BatchWriteItem" => body
            .request_items
            .filter(|items| !items.is_empty())
            .map(|items| items.keys().map(|name| (action.clone(), table_arn(name, scope))).collect()),
        "TransactWriteItems" | "TransactGetItems" => {
            let write = op == "TransactWriteItems";
            body.transact_items.filter(|items| !items.is_empty()).and_then(|items| {
                items
                    .into_iter()
                    .map(|item| {
                        let (target, action) = match item {
                            TransactItem { get: Some(target), .. } if !write => (target, "dynamodb:GetItem"),
                            TransactItem { put: Some(target), .. } if write => (target, "dynamodb:PutItem"),
                            TransactItem { update: Some(target), .. } if write => (target, "dynamodb:UpdateItem"),
                            TransactItem { delete: Some(target), .. } if write => (target, "dynamodb:DeleteItem"),
                            TransactItem { condition_check: Some(target), .. } if write => {
                                (target, "dynamodb:ConditionCheckItem")
                            }
                            _ => return None,
                        };
                        Some((action.to_string(), table_arn(&target.table_name, scope)))
                    })
                    .collect::<Option<Vec<_>>>()
            })
        }
        "ListTables" => Some(vec![(action.clone(), "*".to_string())]),
        _ => None,
    };
    match needs {
        Some(needs) => check(needs),
        None => Needs::Unknown { action: Some(action) },
    }
}

/// DynamoDB Streams (signed as `dynamodb`): on the stream ARN. `GetRecords`
/// takes an opaque shard iterator, so it is refused here.
pub(super) fn dynamodb_streams(op: &str, body: DynamoRequest, scope: Scope<'_>) -> Needs {
    let action = format!("dynamodb:{op}");
    match (op, body.stream_arn, body.table_name) {
        ("DescribeStream" | "GetShardIterator", Some(stream), _) => check([(action, stream)]),
        ("ListStreams", _, Some(table)) => check([(action, format!("{}/stream/*", table_arn(&table, scope)))]),
        ("ListStreams", _, None) => check([(action, "*".to_string())]),
        _ => Needs::Unknown { action: Some(action) },
    }
}

/// `arn:aws:sqs:REGION:ACCOUNT:NAME` from a queue URL
/// (`…/ACCOUNT/NAME`); the account defaults to the caller's.
pub(super) fn queue_arn_from_url(url: &str, scope: Scope<'_>) -> Option<String> {
    let mut segments = url.trim_end_matches('/').rsplit('/');
    let name = segments.next().filter(|name| !name.is_empty() && !name.contains(':'))?;
    let account = segments.next().filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
    Some(format!("arn:aws:sqs:{}:{}:{name}", scope.region, account.unwrap_or(scope.account)))
}

/// SQS, either protocol; `field` reads a request parameter. IAM's SQS
/// actions are the operation names, except that batches need the single
/// operation's action.
pub(super) fn sqs(op: &str, field: impl Fn(&str) -> Option<String>, scope: Scope<'_>) -> Needs {
    let action = match op {
        "SendMessageBatch" => "SendMessage",
        "DeleteMessageBatch" => "DeleteMessage",
        "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
        other => other,
    };
    let action = format!("sqs:{action}");
    let queue = match op {
        "GetQueueUrl" | "CreateQueue" => field("QueueName").map(|name| {
            let account = field("QueueOwnerAWSAccountId").unwrap_or_else(|| scope.account.to_string());
            format!("arn:aws:sqs:{}:{account}:{name}", scope.region)
        }),
        "ListQueues" => None,
        _ => field("QueueUrl").and_then(|url| queue_arn_from_url(&url, scope)),
    };
    match queue {
        Some(arn) => check([(action, arn)]),
        None => Needs::Unknown { action: Some(action) },
    }
}

/// `arn:aws:ssm:R:A:parameter/NAME` (a leading `/` is not doubled); a
/// version or label selector (`name:3`) is not part of the resource.
pub(super) fn parameter_arn(name: &str, scope: Scope<'_>) -> String {
    if let Some(rest) = name.strip_prefix("arn:") {
        // arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME[:SELECTOR]
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if let [partition, service, region, account, resource] = parts[..] {
            let resource = resource.split(':').next().unwrap_or(resource);
            return format!("arn:{partition}:{service}:{region}:{account}:{resource}");
        }
        return name.to_string();
    }
    let name = name.split(':').next().unwrap_or(name);
    let slash = if name.starts_with('/') { "" } else { "/" };
    format!("arn:aws:ssm:{}:{}:parameter{slash}{name}", scope.region, scope.account)
}

pub(super) fn ssm(op: &str, body: &Value, scope: Scope<'_>) -> Needs {
    let action = format!("ssm:{op}");
    let needs = match op {
        "GetParameters" => {
            body.get("Names").and_then(Value::as_array).filter(|names| !names.is_empty()).and_then(|names| {
                names
                    .iter()
                    .map(|name| name.as_str().map(|name| (action.clone(), parameter_arn(name, scope))))
                    .collect::<Option<Vec<_>>>()
            })
        }
        "GetParametersByPath" => {
            body.get("Path").and_then(Value::as_str).map(|path| vec![(action.clone(), parameter_arn(path, scope))])
        }
        "GetParameter" | "PutParameter" | "DeleteParameter" | "GetParameterHistory" | "LabelParameterVersion" => {
            body.get("Name").and_then(Value::as_str).map(|name| vec![(action.clone(), parameter_arn(name, scope))])
        }
        _ => None,
    };
    match needs {
        Some(needs) => check(needs),
        None => Needs::Unknown { action: Some(action) },
    }
}

pub(super) fn logs(op: &str, body: &Value, scope: Scope<'_>) -> Needs {
    let action = format!("logs:{op}");
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let group =
        field("logGroupName").map(|group| format!("arn:aws:logs:{}:{}:log-group:{group}", scope.region, scope.account));
    let group = group.or_else(|| {
        field("logGroupIdentifier").map(|id| {
            if id.starts_with("arn:") {
                id.trim_end_matches(":*").to_string()
            } else {
                format!("arn:aws:logs:{}:{}:log-group:{id}", scope.region, scope.account)
            }
        })
    });
    let resource = match (op, group, field("logStreamName")) {
        ("CreateLogStream" | "PutLogEvents", Some(group), Some(stream)) => Some(format!("{group}:log-stream:{stream}")),
        ("CreateLogGroup" | "DescribeLogStreams" | "PutRetentionPolicy", Some(group), _) => Some(group),
        _ => None,
    };
    match resource {
        Some(resource) => check([(action, resource)]),
        None => Needs::Unknown { action: Some(action) },
    }
}

/// Lambda's REST API: only invocations are classified.
pub(super) fn lambda(request: &RequestParts<'_>, scope: Scope<'_>) -> Needs {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let invoke = match segments[..] {
        ["2015-03-31", "functions", name, "invocations"] => Some(name),
        ["2021-11-15", "functions", name, "response-streaming-invocations"] => Some(name),
        _ => None,
    };
    match invoke {
        Some(name) if request.method == Method::POST => {
            let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            match function_arn(&name, scope) {
                Some(arn) => check([("lambda:InvokeFunction".to_string(), arn)]),
                None => Needs::Unknown { action: Some("lambda:InvokeFunction".to_string()) },
            }
        }
        _ => Needs::Unknown { action: None },
    }
}

/// The unqualified function ARN from a name, partial ARN or ARN.
pub(super) fn function_arn(name: &str, scope: Scope<'_>) -> Option<String> {
    let parts: Vec<&str> = name.split(':').collect();
    let (region, account, function) = match parts[..] {
        ["arn", _, "lambda", region, account, "function", function, ..] => (region, account, function),
        [account, "function", function, ..] => (scope.region, account, function),
        [function, ..] => (scope.region, scope.account, function),
        [] => return None,
    };
    (!function.is_empty()).then(|| format!("arn:aws:lambda:{region}:{account}:function:{function}"))
}
