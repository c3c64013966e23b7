//! JSON-RPC 2.0 framing of MCP messages: what a POSTed body holds (one
//! message or a batch) and the error objects answered for bad ones.
use serde_json::{Map, Value, json};

/// The body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a JSON-RPC request (no `jsonrpc: "2.0"`, no method, a bad id).
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The method's parameters are missing or wrong (also: unknown tool or argument).
pub const INVALID_PARAMS: i64 = -32602;
/// The server failed (a plugin did not answer).
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP's code for a resource URI that names nothing.
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// The caller may not read the resource (a server-defined code).
pub const ACCESS_REFUSED: i64 = -32003;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// One of the codes above.
    pub code: i64,
    /// What went wrong, for a person.
    pub message: String,
    /// More detail for a program (the GraphQL error code, the URI, …).
    pub data: Option<Value>,
}

impl RpcError {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    /// The same error with `data`.
    pub fn with_data(self, data: Value) -> Self {
        Self { data: Some(data), ..self }
    }

    /// The error as a response to the request `id` (`null` when it had none).
    pub fn response(&self, id: Value) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({"jsonrpc": "2.0", "id": id, "error": error})
    }
}

/// A successful response to the request `id`.
pub fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// One message of a body.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request: answered with the same id.
    Request {
        /// The id, a string or a number.
        id: Value,
        /// The method's name.
        method: String,
        /// The named parameters (empty when absent).
        params: Map<String, Value>,
    },
    /// A notification: no answer.
    Notification {
        /// The method's name.
        method: String,
    },
    /// The client's answer to a request of the server's: this server sends
    /// none, so it is taken and dropped.
    Response,
}

/// A message that cannot be served: the id it had when that could be read
/// (else `null`) and the error to answer.
pub type Rejected = Box<(Value, RpcError)>;

/// Reads one message; a bad one gives the error to answer.
pub fn parse_message(value: Value) -> Result<Message, Rejected> {
    let reject = |id: Value, error: RpcError| Box::new((id, error));
    let Value::Object(mut fields) = value else {
        return Err(reject(Value::Null, RpcError::new(INVALID_REQUEST, "a JSON-RPC message must be an object")));
    };
    let id = fields.remove("id");
    let answer_id = id.clone().filter(|id| id.is_string() || id.is_number()).unwrap_or(Value::Null);
    if fields.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(reject(answer_id, RpcError::new(INVALID_REQUEST, "`jsonrpc` must be \"2.0\"")));
    }
    let method = match fields.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => return Err(reject(answer_id, RpcError::new(INVALID_REQUEST, "`method` must be a string"))),
        None if id.is_some() && (fields.contains_key("result") || fields.contains_key("error")) => {
            return Ok(Message::Response);
        }
        None => return Err(reject(answer_id, RpcError::new(INVALID_REQUEST, "a request needs a `method`"))),
    };
    let params = match fields.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params,
        Some(Value::Array(_)) => {
            return Err(reject(
                answer_id,
                RpcError::new(INVALID_PARAMS, "MCP methods take named parameters (an object)"),
            ));
        }
        Some(_) => return Err(reject(answer_id, RpcError::new(INVALID_REQUEST, "`params` must be an object"))),
    };
    match id {
        None => Ok(Message::Notification { method }),
        Some(id @ (Value::String(_) | Value::Number(_))) => Ok(Message::Request { id, method, params }),
        Some(_) => Err(reject(Value::Null, RpcError::new(INVALID_REQUEST, "`id` must be a string or a number"))),
    }
}

/// A string parameter the method needs.
pub fn required_str<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a str, RpcError> {
    match params.get(name) {
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(RpcError::new(INVALID_PARAMS, format!("`{name}` must be a string"))),
        None => Err(RpcError::new(INVALID_PARAMS, format!("missing parameter `{name}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_code(value: Value) -> (Value, i64) {
        let (id, error) = *parse_message(value).unwrap_err();
        (id, error.code)
    }

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let request = parse_message(json!({"jsonrpc": "2.0", "id": 7, "method": "ping"})).unwrap();
        assert_eq!(request, Message::Request { id: json!(7), method: "ping".into(), params: Map::new() });
        let note = parse_message(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).unwrap();
        assert_eq!(note, Message::Notification { method: "notifications/initialized".into() });
        let response = parse_message(json!({"jsonrpc": "2.0", "id": "s1", "result": {}})).unwrap();
        assert_eq!(response, Message::Response);
    }

    #[test]
    fn malformed_messages_get_invalid_request_or_params() {
        assert_eq!(error_code(json!([1])), (Value::Null, INVALID_REQUEST));
        assert_eq!(error_code(json!({"id": 1, "method": "ping"})), (json!(1), INVALID_REQUEST));
        assert_eq!(error_code(json!({"jsonrpc": "1.0", "id": 1, "method": "ping"})), (json!(1), INVALID_REQUEST));
        assert_eq!(error_code(json!({"jsonrpc": "2.0", "id": 1, "method": 5})), (json!(1), INVALID_REQUEST));
        assert_eq!(error_code(json!({"jsonrpc": "2.0", "id": 1})), (json!(1), INVALID_REQUEST));
        assert_eq!(error_code(json!({"jsonrpc": "2.0", "id": {}, "method": "ping"})), (Value::Null, INVALID_REQUEST));
        assert_eq!(error_code(json!({"jsonrpc": "2.0", "id": null, "method": "ping"})), (Value::Null, INVALID_REQUEST));
        let positional = json!({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": [1]});
        assert_eq!(error_code(positional), (json!("a"), INVALID_PARAMS));
        let scalar = json!({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": 3});
        assert_eq!(error_code(scalar), (json!("a"), INVALID_REQUEST));
    }

    #[test]
    fn errors_print_as_json_rpc_errors() {
        let error = RpcError::new(INVALID_PARAMS, "missing parameter `name`").with_data(json!({"x": 1}));
        assert_eq!(
            error.response(json!(3)),
            json!({"jsonrpc": "2.0", "id": 3, "error": {"code": -32602, "message": "missing parameter `name`", "data": {"x": 1}}})
        );
    }
}
