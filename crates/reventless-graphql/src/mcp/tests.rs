//! The JSON-RPC layer over a recording executor: bad requests get their
//! codes, good ones become the GraphQL they should.
use std::sync::Mutex;

use super::*;

const SDL: &str = r#"
    enum CommandStatus { ACCEPTED REJECTED PENDING FAILED }
    type CommandOutcome { status: CommandStatus! entityId: ID errorCode: String }
    type ShopCategory { categoryId: String! name: String! }
    type ShopCategoryConnection { edges: [ShopCategoryEdge!]! pageInfo: PageInfo! totalCount: Int! }
    type ShopCategoryEdge { cursor: String! node: ShopCategory! }
    type PageInfo { hasNextPage: Boolean! endCursor: String }
    type Query {
        Shop_Category(id: ID!): ShopCategory
        Shop_Categories(first: Int = 20, after: String): ShopCategoryConnection!
    }
    type Mutation { Shop_AddCategory(categoryId: String!, name: String!): CommandOutcome! }
"#;

/// Answers each request with the next canned response; keeps the requests.
struct Recording {
    answers: Mutex<Vec<Value>>,
    seen: Mutex<Vec<(String, Map<String, Value>)>>,
}

impl Recording {
    fn answering(answers: Vec<Value>) -> Self {
        Self { answers: Mutex::new(answers), seen: Mutex::default() }
    }
}

impl GraphqlExecutor for Recording {
    fn execute<'a>(&'a self, query: String, variables: Map<String, Value>) -> BoxFuture<'a, Value> {
        self.seen.lock().unwrap().push((query, variables));
        let answer = self.answers.lock().unwrap().remove(0);
        Box::pin(async move { answer })
    }
}

async fn post(body: &str, graphql: &Recording) -> HttpAnswer {
    serve_http("POST", body, &Catalog::from_sdl(SDL).unwrap(), graphql).await
}

fn error_code(answer: &HttpAnswer) -> i64 {
    answer.body.as_ref().and_then(|b| b.pointer("/error/code")).and_then(Value::as_i64).unwrap()
}

#[tokio::test]
async fn bad_bodies_get_json_rpc_error_codes() {
    let none = Recording::answering(vec![]);
    let answer = post("{not json", &none).await;
    assert_eq!((answer.status, error_code(&answer)), (400, jsonrpc::PARSE_ERROR));
    assert_eq!(answer.body.unwrap()["id"], Value::Null);
    let answer = post("[]", &none).await;
    assert_eq!((answer.status, error_code(&answer)), (400, jsonrpc::INVALID_REQUEST));
    let answer = post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/nothing"}"#, &none).await;
    assert_eq!((answer.status, error_code(&answer)), (200, jsonrpc::METHOD_NOT_FOUND));
    let answer = post(r#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{}}"#, &none).await;
    assert_eq!(error_code(&answer), jsonrpc::INVALID_PARAMS);
    let answer =
        post(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"Shop_Nothing"}}"#, &none).await;
    assert_eq!(error_code(&answer), jsonrpc::INVALID_PARAMS);
    let unknown_arg = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call",
        "params":{"name":"Shop_AddCategory","arguments":{"categoryId":"b","name":"B","colour":"red"}}}"#;
    assert_eq!(error_code(&post(unknown_arg, &none).await), jsonrpc::INVALID_PARAMS);
    let missing = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"Shop_AddCategory","arguments":{"name":"B"}}}"#;
    let answer = post(missing, &none).await;
    assert_eq!(error_code(&answer), jsonrpc::INVALID_PARAMS);
    assert!(answer.body.unwrap()["error"]["message"].as_str().unwrap().contains("categoryId"));
    let read = r#"{"jsonrpc":"2.0","id":6,"method":"resources/read","params":{"uri":"reventless://Shop/Nothing/1"}}"#;
    assert_eq!(error_code(&post(read, &none).await), jsonrpc::RESOURCE_NOT_FOUND);
    let paging =
        r#"{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"uri":"reventless://Shop/Categories?first=x"}}"#;
    assert_eq!(error_code(&post(paging, &none).await), jsonrpc::INVALID_PARAMS);
    assert!(none.seen.lock().unwrap().is_empty(), "nothing bad reaches the engine");
    let get = serve_http("GET", "", &Catalog::from_sdl(SDL).unwrap(), &none).await;
    assert_eq!(get.status, 405);
}

#[tokio::test]
async fn notifications_are_accepted_without_a_body_and_batches_answer_requests() {
    let none = Recording::answering(vec![]);
    let answer = post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, &none).await;
    assert_eq!(answer, HttpAnswer { status: 202, body: None });
    let batch =
        r#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"p","method":"ping"},5]"#;
    let answer = post(batch, &none).await;
    let body = answer.body.unwrap();
    assert_eq!(body[0], json!({"jsonrpc": "2.0", "id": "p", "result": {}}));
    assert_eq!(body[1]["error"]["code"], jsonrpc::INVALID_REQUEST);
}

#[tokio::test]
async fn initialize_negotiates_a_served_revision() {
    let none = Recording::answering(vec![]);
    let ask = |version: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#
        )
    };
    let answer = post(&ask("2025-03-26"), &none).await.body.unwrap();
    assert_eq!(answer["result"]["protocolVersion"], "2025-03-26");
    assert!(answer["result"]["capabilities"]["tools"].is_object());
    let answer = post(&ask("2099-01-01"), &none).await.body.unwrap();
    assert_eq!(answer["result"]["protocolVersion"], "2025-06-18");
}

#[tokio::test]
async fn a_call_runs_its_mutation_and_a_rejection_is_an_error_result() {
    let rejected =
        json!({"data": {"Shop_AddCategory": {"status": "REJECTED", "errorCode": "AccessRefused", "entityId": null}}});
    let graphql = Recording::answering(vec![rejected]);
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"Shop_AddCategory","arguments":{"categoryId":"b","name":"B"}}}"#;
    let result = post(call, &graphql).await.body.unwrap()["result"].clone();
    assert_eq!(result["isError"], true);
    assert_eq!(result["structuredContent"], json!({"status": "REJECTED", "errorCode": "AccessRefused"}));
    let (query, variables) = graphql.seen.lock().unwrap().remove(0);
    assert_eq!(
        query,
        "mutation Tool($categoryId: String!, $name: String!) { Shop_AddCategory(categoryId: $categoryId, name: $name) { status entityId errorCode } }"
    );
    assert_eq!(Value::Object(variables), json!({"categoryId": "b", "name": "B"}));
}

#[tokio::test]
async fn resources_read_rows_and_pages_and_refusals_are_errors() {
    let row = json!({"data": {"Shop_Category": {"categoryId": "b b", "name": "B"}}});
    let page = json!({"data": {"Shop_Categories": {
        "edges": [{"node": {"categoryId": "a", "name": "A"}}],
        "pageInfo": {"hasNextPage": true, "endCursor": "c/1"}, "totalCount": 2}}});
    let refused = json!({"data": null, "errors": [{"message": "AccessRefused: requires one of the roles Admin", "extensions": {"code": "FORBIDDEN"}}]});
    let graphql = Recording::answering(vec![row, page, refused]);
    let read =
        |uri: &str| format!(r#"{{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{{"uri":"{uri}"}}}}"#);
    let answer = post(&read("reventless://shop/categories/b%20b"), &graphql).await.body.unwrap();
    let text = answer["result"]["contents"][0]["text"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), json!({"categoryId": "b b", "name": "B"}));
    assert_eq!(graphql.seen.lock().unwrap()[0].1["id"], "b b");
    let answer = post(&read("reventless://Shop/Categories?first=1"), &graphql).await.body.unwrap();
    let text: Value = serde_json::from_str(answer["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text["items"], json!([{"categoryId": "a", "name": "A"}]));
    assert_eq!(text["next"], "reventless://Shop/Categories?first=1&after=c%2F1");
    let answer = post(&read("reventless://Shop/Categories/x"), &graphql).await;
    assert_eq!(error_code(&answer), jsonrpc::ACCESS_REFUSED);
}

#[tokio::test]
async fn lists_name_every_tool_resource_and_template() {
    let none = Recording::answering(vec![]);
    let tools = post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, &none).await.body.unwrap();
    assert_eq!(tools["result"]["tools"][0]["name"], "Shop_AddCategory");
    assert_eq!(tools["result"]["tools"][0]["inputSchema"]["required"], json!(["categoryId", "name"]));
    let resources = post(r#"{"jsonrpc":"2.0","id":1,"method":"resources/list"}"#, &none).await.body.unwrap();
    assert_eq!(resources["result"]["resources"][0]["uri"], "reventless://Shop/Categories");
    let templates = post(r#"{"jsonrpc":"2.0","id":1,"method":"resources/templates/list"}"#, &none).await.body.unwrap();
    let uris: Vec<&str> = templates["result"]["resourceTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["uriTemplate"].as_str().unwrap())
        .collect();
    assert_eq!(uris, ["reventless://Shop/Categories/{id}", "reventless://Shop/Categories{?first,after}"]);
}
