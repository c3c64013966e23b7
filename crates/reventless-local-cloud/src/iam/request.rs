//! What an AWS request asks for: who signed it (SigV4 credential scope) and
//! which (action, resource ARN) pairs IAM must allow for it — for the calls
//! functions make through the AWS SDK for Rust. A request we cannot read is
//! [`Needs::Unknown`]: the proxy refuses it rather than guessing.
use axum::http::{HeaderMap, Method};
use serde_json::Value;

mod s3;
mod services;
pub use s3::virtual_host_bucket;
use services::*;

/// The SigV4 credential scope of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub access_key_id: String,
    pub region: String,
    /// The signing name (`dynamodb`, `sqs`, `ssm`, `logs`, `lambda`, `sts`).
    pub service: String,
}

/// The parts of an HTTP request classification looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// One permission a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub action: String,
    pub resource: String,
}

/// How a service words its errors, so that the SDK reads our refusals as
/// the service's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// awsJson (`X-Amz-Target`): `__type` is `prefix` + code.
    Json { type_prefix: &'static str, content_type: &'static str, query_compatible: bool },
    /// awsQuery (form body): XML `ErrorResponse`.
    Query,
    /// restJson (Lambda): `x-amzn-ErrorType` header.
    RestJson,
    /// restXml (S3): an XML `Error` document.
    RestXml,
}

/// What must be true for the request to go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs {
    /// Every pair must be allowed.
    Check(Vec<Need>),
    /// STS `GetCallerIdentity`: allowed for everyone, answered locally.
    CallerIdentity,
    /// We cannot tell what the request needs; `action` when we know it.
    Unknown { action: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub protocol: Protocol,
    pub needs: Needs,
}

const JSON_10: &str = "application/x-amz-json-1.0";
const JSON_11: &str = "application/x-amz-json-1.1";

/// The credential scope from `Authorization: AWS4-HMAC-SHA256
/// Credential=AKID/DATE/REGION/SERVICE/aws4_request, …`, or from a presigned
/// URL's `X-Amz-Credential`.
pub fn signature(headers: &HeaderMap, query: Option<&str>) -> Option<Signature> {
    let scope = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(authorization) => authorization
            .strip_prefix("AWS4-HMAC-SHA256")?
            .split(',')
            .find_map(|part| part.trim().strip_prefix("Credential="))?
            .to_string(),
        None => form_urlencoded::parse(query?.as_bytes())
            .find(|(key, _)| key == "X-Amz-Credential")
            .map(|(_, value)| value.into_owned())?,
    };
    let mut parts = scope.split('/');
    let access_key_id = parts.next().filter(|k| !k.is_empty())?.to_string();
    let _date = parts.next()?;
    let region = parts.next()?.to_string();
    let service = parts.next()?.to_string();
    Some(Signature { access_key_id, region, service })
}

/// The session token a request carries (header, or presigned query).
pub fn session_token<'a>(headers: &'a HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header: Option<&'a str> = headers.get("x-amz-security-token").and_then(|v| v.to_str().ok());
    from_header.map(str::to_string).or_else(|| {
        form_urlencoded::parse(query?.as_bytes())
            .find(|(key, _)| key == "X-Amz-Security-Token")
            .map(|(_, value)| value.into_owned())
    })
}

/// What the request needs, in `account` (the caller's: the role's account)
/// and the signed region.
pub fn classify(request: &RequestParts<'_>, signature: &Signature, account: &str) -> Classification {
    let target = request.headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let scope = Scope { region: &signature.region, account };
    match (signature.service.as_str(), target) {
        ("dynamodb", Some(target)) => {
            let protocol = json_protocol("com.amazonaws.dynamodb.v20120810#", JSON_10, false);
            let body = || typed_body::<DynamoRequest>(request.body);
            let needs = match target.split_once('.') {
                Some(("DynamoDB_20120810", op)) => {
                    body().map_or_else(|| unknown("dynamodb", op), |b| dynamodb(op, b, scope))
                }
                Some(("DynamoDBStreams_20120810", op)) => {
                    body().map_or_else(|| unknown("dynamodb", op), |b| dynamodb_streams(op, b, scope))
                }
                Some((_, op)) => unknown("dynamodb", op),
                None => Needs::Unknown { action: None },
            };
            Classification { protocol, needs }
        }
        ("sqs", Some(target)) => {
            let protocol = json_protocol("com.amazon.coral.service#", JSON_10, true);
            let needs = match (target.split_once('.'), json_body(request.body)) {
                (Some(("AmazonSQS", op)), Some(body)) => {
                    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
                    sqs(op, field, scope)
                }
                (Some((_, op)), _) => unknown("sqs", op),
                (None, _) => Needs::Unknown { action: None },
            };
            Classification { protocol, needs }
        }
        ("sqs", None) => {
            let params = query_params(request);
            let field = |name: &str| params.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
            let needs = match field("Action") {
                Some(op) => {
                    // The old query API names the queue by the request path.
                    let by_path = || {
                        let path = request.path.trim_matches('/');
                        (path.split('/').count() == 2).then(|| format!("https://sqs/{path}"))
                    };
                    sqs(&op, |name| field(name).or_else(|| (name == "QueueUrl").then(by_path).flatten()), scope)
                }
                None => Needs::Unknown { action: None },
            };
            Classification { protocol: Protocol::Query, needs }
        }
        ("ssm", Some(target)) => {
            let protocol = json_protocol("", JSON_11, false);
            let needs = match (target.split_once('.'), json_body(request.body)) {
                (Some(("AmazonSSM", op)), Some(body)) => ssm(op, &body, scope),
                (Some((_, op)), _) => unknown("ssm", op),
                (None, _) => Needs::Unknown { action: None },
            };
            Classification { protocol, needs }
        }
        ("logs", Some(target)) => {
            let protocol = json_protocol("", JSON_11, false);
            let needs = match (target.split_once('.'), json_body(request.body)) {
                (Some(("Logs_20140328", op)), Some(body)) => logs(op, &body, scope),
                (Some((_, op)), _) => unknown("logs", op),
                (None, _) => Needs::Unknown { action: None },
            };
            Classification { protocol, needs }
        }
        ("lambda", _) => Classification { protocol: Protocol::RestJson, needs: lambda(request, scope) },
        ("s3", _) => Classification { protocol: Protocol::RestXml, needs: s3::s3(request) },
        ("execute-api", _) => {
            let need = crate::websocket::management_need(request.method, request.path, scope.region, scope.account);
            let needs =
                need.map_or(Needs::Unknown { action: Some("execute-api:ManageConnections".into()) }, |n| check([n]));
            Classification { protocol: Protocol::RestJson, needs }
        }
        ("sts", target) => {
            let (protocol, op) = match target {
                Some(target) => {
                    (json_protocol("", JSON_10, true), target.split_once('.').map(|(_, op)| op.to_string()))
                }
                None => {
                    let params = query_params(request);
                    (Protocol::Query, params.into_iter().find(|(key, _)| key == "Action").map(|(_, value)| value))
                }
            };
            let needs = match op.as_deref() {
                Some("GetCallerIdentity") => Needs::CallerIdentity,
                Some(op) => unknown("sts", op),
                None => Needs::Unknown { action: None },
            };
            Classification { protocol, needs }
        }
        (service, Some(target)) => Classification {
            protocol: json_protocol("", JSON_11, false),
            needs: target.split_once('.').map_or(Needs::Unknown { action: None }, |(_, op)| unknown(service, op)),
        },
        (service, None) => {
            let action = query_params(request).into_iter().find(|(key, _)| key == "Action").map(|(_, op)| op);
            let protocol = if action.is_some() { Protocol::Query } else { Protocol::RestJson };
            Classification { protocol, needs: Needs::Unknown { action: action.map(|op| format!("{service}:{op}")) } }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Scope<'a> {
    region: &'a str,
    account: &'a str,
}

fn json_protocol(type_prefix: &'static str, content_type: &'static str, query_compatible: bool) -> Protocol {
    Protocol::Json { type_prefix, content_type, query_compatible }
}

fn unknown(service: &str, op: &str) -> Needs {
    Needs::Unknown { action: Some(format!("{service}:{op}")) }
}

fn json_body(body: &[u8]) -> Option<Value> {
    if body.is_empty() { Some(Value::Object(Default::default())) } else { serde_json::from_slice(body).ok() }
}

/// Form parameters of a query-protocol request: the URL's and the body's.
fn query_params(request: &RequestParts<'_>) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> =
        form_urlencoded::parse(request.query.unwrap_or("").as_bytes()).into_owned().collect();
    let form = request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form || (request.method == Method::POST && request.body.first().is_some_and(|b| *b != b'{')) {
        params.extend(form_urlencoded::parse(request.body).into_owned());
    }
    params
}

fn check(needs: impl IntoIterator<Item = (String, String)>) -> Needs {
    Needs::Check(needs.into_iter().map(|(action, resource)| Need { action, resource }).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20250101/us-east-1/SERVICE/aws4_request, \
                        SignedHeaders=host;x-amz-date, Signature=abc";
    const ACCOUNT: &str = "123456789012";
    const PREFIX: &str = "arn:aws:dynamodb:us-east-1:123456789012:table";

    fn headers(service: &str, target: Option<&str>, content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(&AUTH.replace("SERVICE", service)).unwrap());
        headers.insert("content-type", HeaderValue::from_str(content_type).unwrap());
        if let Some(target) = target {
            headers.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
        }
        headers
    }

    fn run(method: Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Classification {
        let signature = signature(headers, None).unwrap();
        let parts = RequestParts { method: &method, path, query: None, headers, body };
        classify(&parts, &signature, ACCOUNT)
    }

    fn json_call(service: &str, target: &str, body: Value) -> Needs {
        let headers = headers(service, Some(target), JSON_10);
        run(Method::POST, "/", &headers, body.to_string().as_bytes()).needs
    }

    fn pairs(needs: Needs) -> Vec<(String, String)> {
        match needs {
            Needs::Check(needs) => needs.into_iter().map(|n| (n.action, n.resource)).collect(),
            other => panic!("not classified: {other:?}"),
        }
    }

    fn pair(action: &str, resource: &str) -> (String, String) {
        (action.to_string(), resource.to_string())
    }

    #[test]
    fn reads_the_credential_scope() {
        let signature = signature(&headers("dynamodb", None, JSON_10), None).unwrap();
        assert_eq!(signature.access_key_id, "ASIAEXAMPLE");
        assert_eq!(signature.region, "us-east-1");
        assert_eq!(signature.service, "dynamodb");
        assert_eq!(super::signature(&HeaderMap::new(), None), None);
        let presigned =
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20250101%2Feu-west-1%2Fsqs%2Faws4_request";
        let signature = super::signature(&HeaderMap::new(), Some(presigned)).unwrap();
        assert_eq!((signature.access_key_id.as_str(), signature.service.as_str()), ("AKID", "sqs"));
    }

    #[test]
    fn dynamodb_items_and_indexes() {
        let needs = json_call("dynamodb", "DynamoDB_20120810.PutItem", json!({"TableName": "t", "Item": {}}));
        assert_eq!(pairs(needs), [pair("dynamodb:PutItem", &format!("{PREFIX}/t"))]);
        let needs =
            json_call("dynamodb", "DynamoDB_20120810.Query", json!({"TableName": "events", "IndexName": "by_log"}));
        assert_eq!(pairs(needs), [pair("dynamodb:Query", &format!("{PREFIX}/events/index/by_log"))]);
        let needs = json_call("dynamodb", "DynamoDB_20120810.Scan", json!({"TableName": "events"}));
        assert_eq!(pairs(needs), [pair("dynamodb:Scan", &format!("{PREFIX}/events"))]);
        let arn = "arn:aws:dynamodb:eu-west-1:210987654321:table/other";
        let needs = json_call("dynamodb", "DynamoDB_20120810.GetItem", json!({"TableName": arn}));
        assert_eq!(pairs(needs), [pair("dynamodb:GetItem", arn)]);
        let stream = format!("{PREFIX}/events/stream/2025-01-01T00:00:00.000");
        let needs = json_call("dynamodb", "DynamoDBStreams_20120810.DescribeStream", json!({"StreamArn": stream}));
        assert_eq!(pairs(needs), [pair("dynamodb:DescribeStream", &stream)]);
        let needs = json_call("dynamodb", "DynamoDBStreams_20120810.GetRecords", json!({"ShardIterator": "x"}));
        assert_eq!(needs, Needs::Unknown { action: Some("dynamodb:GetRecords".to_string()) });
    }

    #[test]
    fn dynamodb_batches_need_one_pair_per_table() {
        let needs = json_call(
            "dynamodb",
            "DynamoDB_20120810.BatchWriteItem",
            json!({"RequestItems": {"a": [{"PutRequest": {}}], "b": [{"DeleteRequest": {}}]}}),
        );
        assert_eq!(
            pairs(needs),
            [
                pair("dynamodb:BatchWriteItem", &format!("{PREFIX}/a")),
                pair("dynamodb:BatchWriteItem", &format!("{PREFIX}/b"))
            ]
        );
        let needs = json_call("dynamodb", "DynamoDB_20120810.BatchGetItem", json!({"RequestItems": {"a": {}}}));
        assert_eq!(pairs(needs), [pair("dynamodb:BatchGetItem", &format!("{PREFIX}/a"))]);
    }

    #[test]
    fn transactions_need_each_items_own_action() {
        let needs = json_call(
            "dynamodb",
            "DynamoDB_20120810.TransactWriteItems",
            json!({"TransactItems": [
                {"Put": {"TableName": "events", "Item": {}}},
                {"Update": {"TableName": "rows", "Key": {}}},
                {"Delete": {"TableName": "rows", "Key": {}}},
                {"ConditionCheck": {"TableName": "events", "Key": {}}},
            ]}),
        );
        assert_eq!(
            pairs(needs),
            [
                pair("dynamodb:PutItem", &format!("{PREFIX}/events")),
                pair("dynamodb:UpdateItem", &format!("{PREFIX}/rows")),
                pair("dynamodb:DeleteItem", &format!("{PREFIX}/rows")),
                pair("dynamodb:ConditionCheckItem", &format!("{PREFIX}/events")),
            ]
        );
        let needs = json_call(
            "dynamodb",
            "DynamoDB_20120810.TransactGetItems",
            json!({"TransactItems": [{"Get": {"TableName": "a"}}, {"Get": {"TableName": "b"}}]}),
        );
        assert_eq!(
            pairs(needs),
            [pair("dynamodb:GetItem", &format!("{PREFIX}/a")), pair("dynamodb:GetItem", &format!("{PREFIX}/b"))]
        );
        // An item we cannot read makes the whole transaction unclassifiable.
        let needs = json_call(
            "dynamodb",
            "DynamoDB_20120810.TransactWriteItems",
            json!({"TransactItems": [{"Put": {"TableName": "a"}}, {"Frobnicate": {"TableName": "a"}}]}),
        );
        assert_eq!(needs, Needs::Unknown { action: Some("dynamodb:TransactWriteItems".to_string()) });
    }

    #[test]
    fn unknown_operations_are_not_guessed() {
        let needs = json_call("dynamodb", "DynamoDB_20120810.CreateTable", json!({"TableName": "t"}));
        assert_eq!(needs, Needs::Unknown { action: Some("dynamodb:CreateTable".to_string()) });
        let needs = json_call("dynamodb", "DynamoDB_20120810.PutItem", json!({"Item": {}}));
        assert_eq!(needs, Needs::Unknown { action: Some("dynamodb:PutItem".to_string()) });
        let needs = json_call("kinesis", "Kinesis_20131202.PutRecord", json!({}));
        assert_eq!(needs, Needs::Unknown { action: Some("kinesis:PutRecord".to_string()) });
        let headers = headers("dynamodb", Some("DynamoDB_20120810.PutItem"), JSON_10);
        assert!(matches!(run(Method::POST, "/", &headers, b"not json").needs, Needs::Unknown { .. }));
    }

    #[test]
    fn sqs_json_protocol() {
        let url = "http://localhost:5000/123456789012/shop-dev-orders-commands.fifo";
        let arn = "arn:aws:sqs:us-east-1:123456789012:shop-dev-orders-commands.fifo";
        let needs = json_call("sqs", "AmazonSQS.SendMessage", json!({"QueueUrl": url, "MessageBody": "x"}));
        assert_eq!(pairs(needs), [pair("sqs:SendMessage", arn)]);
        let needs = json_call("sqs", "AmazonSQS.SendMessageBatch", json!({"QueueUrl": url, "Entries": []}));
        assert_eq!(pairs(needs), [pair("sqs:SendMessage", arn)]);
        let needs = json_call("sqs", "AmazonSQS.DeleteMessageBatch", json!({"QueueUrl": url, "Entries": []}));
        assert_eq!(pairs(needs), [pair("sqs:DeleteMessage", arn)]);
        let needs = json_call("sqs", "AmazonSQS.ChangeMessageVisibilityBatch", json!({"QueueUrl": url}));
        assert_eq!(pairs(needs), [pair("sqs:ChangeMessageVisibility", arn)]);
        let needs = json_call("sqs", "AmazonSQS.GetQueueUrl", json!({"QueueName": "shop-dev-orders-commands.fifo"}));
        assert_eq!(pairs(needs), [pair("sqs:GetQueueUrl", arn)]);
        let needs = json_call(
            "sqs",
            "AmazonSQS.ReceiveMessage",
            json!({"QueueUrl": "https://sqs.us-east-1.amazonaws.com/210987654321/q"}),
        );
        assert_eq!(pairs(needs), [pair("sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:210987654321:q")]);
        let classification = run(
            Method::POST,
            "/",
            &headers("sqs", Some("AmazonSQS.GetQueueAttributes"), JSON_10),
            json!({"QueueUrl": url}).to_string().as_bytes(),
        );
        assert_eq!(classification.protocol, json_protocol("com.amazon.coral.service#", JSON_10, true));
        assert_eq!(pairs(classification.needs), [pair("sqs:GetQueueAttributes", arn)]);
    }

    #[test]
    fn sqs_query_protocol() {
        let headers = headers("sqs", None, "application/x-www-form-urlencoded; charset=utf-8");
        let body = "Action=SendMessage&Version=2012-11-05&QueueUrl=http%3A%2F%2Flocalhost%3A5000%2F123456789012%2Fq1&MessageBody=hi";
        let classification = run(Method::POST, "/", &headers, body.as_bytes());
        assert_eq!(classification.protocol, Protocol::Query);
        assert_eq!(pairs(classification.needs), [pair("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q1")]);
        let body = "Action=DeleteMessageBatch&Version=2012-11-05";
        let needs = run(Method::POST, "/123456789012/q2", &headers, body.as_bytes()).needs;
        assert_eq!(pairs(needs), [pair("sqs:DeleteMessage", "arn:aws:sqs:us-east-1:123456789012:q2")]);
        let needs = run(Method::POST, "/", &headers, b"Action=ListQueues").needs;
        assert_eq!(needs, Needs::Unknown { action: Some("sqs:ListQueues".to_string()) });
    }

    #[test]
    fn ssm_parameter_arns() {
        let needs = json_call(
            "ssm",
            "AmazonSSM.GetParameter",
            json!({"Name": "/reventless/shop/dev/x", "WithDecryption": true}),
        );
        assert_eq!(
            pairs(needs),
            [pair("ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/reventless/shop/dev/x")]
        );
        let needs = json_call("ssm", "AmazonSSM.GetParameters", json!({"Names": ["plain", "/a/b:3"]}));
        assert_eq!(
            pairs(needs),
            [
                pair("ssm:GetParameters", "arn:aws:ssm:us-east-1:123456789012:parameter/plain"),
                pair("ssm:GetParameters", "arn:aws:ssm:us-east-1:123456789012:parameter/a/b"),
            ]
        );
        let needs = json_call("ssm", "AmazonSSM.GetParametersByPath", json!({"Path": "/reventless/shop"}));
        assert_eq!(
            pairs(needs),
            [pair("ssm:GetParametersByPath", "arn:aws:ssm:us-east-1:123456789012:parameter/reventless/shop")]
        );
        let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/a/b";
        let needs = json_call("ssm", "AmazonSSM.GetParameter", json!({"Name": format!("{arn}:label")}));
        assert_eq!(pairs(needs), [pair("ssm:GetParameter", arn)]);
    }

    #[test]
    fn logs_stream_arns() {
        let needs = json_call(
            "logs",
            "Logs_20140328.PutLogEvents",
            json!({"logGroupName": "/aws/lambda/fn", "logStreamName": "2025/01/01/[$LATEST]abc", "logEvents": []}),
        );
        assert_eq!(
            pairs(needs),
            [pair(
                "logs:PutLogEvents",
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn:log-stream:2025/01/01/[$LATEST]abc"
            )]
        );
        let needs = json_call("logs", "Logs_20140328.CreateLogGroup", json!({"logGroupName": "/aws/lambda/fn"}));
        assert_eq!(
            pairs(needs),
            [pair("logs:CreateLogGroup", "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn")]
        );
        let needs = json_call("logs", "Logs_20140328.CreateLogStream", json!({"logGroupName": "g"}));
        assert_eq!(needs, Needs::Unknown { action: Some("logs:CreateLogStream".to_string()) });
    }

    #[test]
    fn lambda_invocations() {
        let headers = headers("lambda", None, "application/json");
        let function = "arn:aws:lambda:us-east-1:123456789012:function:shop-dev-orders-Api";
        for name in [
            "shop-dev-orders-Api",
            "shop-dev-orders-Api:live",
            "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ashop-dev-orders-Api",
            "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ashop-dev-orders-Api%3A7",
            "123456789012%3Afunction%3Ashop-dev-orders-Api",
        ] {
            let classification =
                run(Method::POST, &format!("/2015-03-31/functions/{name}/invocations"), &headers, b"{}");
            assert_eq!(classification.protocol, Protocol::RestJson);
            assert_eq!(pairs(classification.needs), [pair("lambda:InvokeFunction", function)], "{name}");
        }
        let other = "arn%3Aaws%3Alambda%3Aeu-west-1%3A210987654321%3Afunction%3Ax";
        let needs = run(Method::POST, &format!("/2015-03-31/functions/{other}/invocations"), &headers, b"{}").needs;
        assert_eq!(pairs(needs), [pair("lambda:InvokeFunction", "arn:aws:lambda:eu-west-1:210987654321:function:x")]);
        let needs = run(Method::GET, "/2015-03-31/functions/x", &headers, b"").needs;
        assert_eq!(needs, Needs::Unknown { action: None });
    }

    #[test]
    fn sts_caller_identity_needs_nothing() {
        let headers = headers("sts", None, "application/x-www-form-urlencoded");
        assert_eq!(
            run(Method::POST, "/", &headers, b"Action=GetCallerIdentity&Version=2011-06-15").needs,
            Needs::CallerIdentity
        );
        assert_eq!(
            run(Method::POST, "/", &headers, b"Action=AssumeRole&Version=2011-06-15").needs,
            Needs::Unknown { action: Some("sts:AssumeRole".to_string()) }
        );
    }
}
