//! `resources/list`, `resources/templates/list` and `resources/read`: the
//! read models as `reventless://<Plugin>/<Plural>/{id}` (one row) and
//! `reventless://<Plugin>/<Plural>?first=N&after=CURSOR` (a page).
use serde_json::{Map, Value, json};

use super::jsonrpc::{ACCESS_REFUSED, INTERNAL_ERROR, INVALID_PARAMS, RESOURCE_NOT_FOUND, RpcError, required_str};
use super::tools::first_error;
use super::{Catalog, GraphqlExecutor, ReadModel};

const SCHEME: &str = "reventless://";
const JSON: &str = "application/json";

fn list_uri(model: &ReadModel) -> String {
    format!("{SCHEME}{}/{}", model.plugin, model.plural)
}

/// A resource per read model: its first page.
pub fn list(catalog: &Catalog) -> Value {
    let resources: Vec<Value> = catalog
        .read_models
        .iter()
        .map(|model| {
            let what = model.description.clone().unwrap_or_else(|| format!("{} of {}", model.plural, model.plugin));
            json!({
                "uri": list_uri(model),
                "name": model.list_field,
                "description": format!("{what}: the first page of rows (`?first=N&after=CURSOR` for others)."),
                "mimeType": JSON,
            })
        })
        .collect();
    json!({"resources": resources})
}

/// Per read model: a row by id, and a page.
pub fn templates(catalog: &Catalog) -> Value {
    let mut templates = Vec::new();
    for model in &catalog.read_models {
        if let Some(single) = &model.single_field {
            templates.push(json!({
                "uriTemplate": format!("{}/{{id}}", list_uri(model)),
                "name": single,
                "description": format!("One row of {} of {} by its id.", model.plural, model.plugin),
                "mimeType": JSON,
            }));
        }
        templates.push(json!({
            "uriTemplate": format!("{}{{?first,after}}", list_uri(model)),
            "name": format!("{}_page", model.list_field),
            "description": format!(
                "A page of {} of {}: `first` rows (20 unless given, at most 1000) after the cursor `after` \
                 (the previous page's endCursor).",
                model.plural, model.plugin
            ),
            "mimeType": JSON,
        }));
    }
    json!({"resourceTemplates": templates})
}

/// What a URI names.
#[derive(Debug)]
enum Target<'a> {
    Row(&'a ReadModel, String),
    Page(&'a ReadModel, Map<String, Value>),
}

fn not_found(uri: &str) -> RpcError {
    RpcError::new(RESOURCE_NOT_FOUND, format!("no resource `{uri}`")).with_data(json!({"uri": uri}))
}

fn target<'a>(uri: &str, catalog: &'a Catalog) -> Result<Target<'a>, RpcError> {
    let rest = uri
        .get(..SCHEME.len())
        .filter(|scheme| scheme.eq_ignore_ascii_case(SCHEME))
        .map(|_| &uri[SCHEME.len()..])
        .ok_or_else(|| not_found(uri))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut segments = path.splitn(3, '/');
    let (plugin, plural) = (segments.next().unwrap_or(""), segments.next().unwrap_or(""));
    let model = catalog.read_model(plugin, plural).ok_or_else(|| not_found(uri))?;
    match segments.next().filter(|id| !id.is_empty()) {
        Some(id) if model.single_field.is_some() => {
            let id =
                percent_decode(id).ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("bad escape in `{uri}`")))?;
            Ok(Target::Row(model, id))
        }
        Some(_) => Err(not_found(uri)),
        None => Ok(Target::Page(model, page_variables(uri, query)?)),
    }
}

/// `first` and `after` of a page URI's query.
fn page_variables(uri: &str, query: &str) -> Result<Map<String, Value>, RpcError> {
    let mut variables = Map::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value =
            percent_decode(value).ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("bad escape in `{uri}`")))?;
        match key {
            "first" => {
                let first: i64 = value
                    .parse()
                    .map_err(|_| RpcError::new(INVALID_PARAMS, format!("`first` must be a number, not `{value}`")))?;
                variables.insert("first".into(), json!(first));
            }
            "after" => {
                variables.insert("after".into(), json!(value));
            }
            other => {
                return Err(RpcError::new(INVALID_PARAMS, format!("unknown parameter `{other}` (first, after)")));
            }
        }
    }
    Ok(variables)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Reads a row or a page as the executor's caller.
pub async fn read(
    params: &Map<String, Value>,
    catalog: &Catalog,
    graphql: &dyn GraphqlExecutor,
) -> Result<Value, RpcError> {
    let uri = required_str(params, "uri")?;
    let content = match target(uri, catalog)? {
        Target::Row(model, id) => {
            let field = model.single_field.as_deref().unwrap_or_default();
            let query = format!("query Resource($id: ID!) {{ {field}(id: $id) {{ {} }} }}", model.selection);
            let mut variables = Map::new();
            variables.insert("id".into(), json!(id));
            let response = answer(graphql.execute(query, variables).await, field)?;
            if response.is_null() {
                return Err(not_found(uri));
            }
            response
        }
        Target::Page(model, variables) => {
            let field = &model.list_field;
            let query = format!(
                "query Resource($first: Int, $after: String) {{ {field}(first: $first, after: $after) \
                 {{ edges {{ node {{ {} }} }} pageInfo {{ hasNextPage endCursor }} totalCount }} }}",
                model.selection
            );
            let first = variables.get("first").cloned();
            let page = answer(graphql.execute(query, variables).await, field)?;
            let items: Vec<Value> = page["edges"].as_array().into_iter().flatten().map(|e| e["node"].clone()).collect();
            let end = page.pointer("/pageInfo/endCursor").and_then(Value::as_str);
            let has_next = page.pointer("/pageInfo/hasNextPage").and_then(Value::as_bool).unwrap_or(false);
            let next = end.filter(|_| has_next).map(|end| {
                let size = first.as_ref().map(|f| format!("first={f}&")).unwrap_or_default();
                format!("{}?{size}after={}", list_uri(model), percent_encode(end))
            });
            json!({"items": items, "totalCount": page["totalCount"], "hasNextPage": has_next, "endCursor": end, "next": next})
        }
    };
    let text = serde_json::to_string_pretty(&content).unwrap_or_default();
    Ok(json!({"contents": [{"uri": uri, "mimeType": JSON, "text": text}]}))
}

/// The field's value, or the JSON-RPC error of the response's first error.
fn answer(response: Value, field: &str) -> Result<Value, RpcError> {
    if response.get("errors").and_then(Value::as_array).is_some_and(|e| !e.is_empty()) {
        let (code, message) = first_error(&response);
        let rpc_code = match code.as_str() {
            "FORBIDDEN" => ACCESS_REFUSED,
            "BAD_USER_INPUT" => INVALID_PARAMS,
            _ => INTERNAL_ERROR,
        };
        return Err(RpcError::new(rpc_code, message).with_data(json!({"code": code})));
    }
    Ok(response.pointer(&format!("/data/{field}")).cloned().unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip_and_bad_ones_are_refused() {
        assert_eq!(percent_decode("a%20b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(percent_decode(&percent_encode("x/y z=é")).as_deref(), Some("x/y z=é"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%2"), None);
    }
}
