//! `POST /tasks/<Plugin>/<Task>` on the dev server: raw and multipart
//! uploads run the task in the caller's name; an unknown task, a missing
//! role and a malformed body are JSON errors and execute nothing; the runs
//! are rows GraphQL lists.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::net::SocketAddr;

use reventless_core::Runtime;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod tasks_bank;

async fn serve(runtime: &Runtime) -> SocketAddr {
    let schema = reventless_graphql::build_schema(runtime).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served =
        reventless_local::server::serve(runtime.clone(), schema, Default::default(), listener, std::future::pending());
    tokio::spawn(served);
    address
}

/// One HTTP/1.1 POST (the connection closes after it); the status and the JSON body.
async fn post(address: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request =
        format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
    (status, body)
}

const CLERK: &[(&str, &str)] = &[("x-user-id", "ann"), ("x-user-roles", "Clerk")];
const FILE: &str = "account,kind,owner,amount\na1,open,Ann,\na1,deposit,,5\na1,deposit,,many\n";

async fn event_count(runtime: &Runtime) -> usize {
    runtime.stores().events.read_all("Bank", 0, 10_000).await.unwrap().len()
}

fn multipart(boundary: &str, file_name: &str, content: &str) -> Vec<u8> {
    format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nmonthly\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: text/csv\r\n\r\n{content}\r\n--{boundary}--\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_raw_body_runs_the_task_and_answers_the_run() {
    let runtime = reventless_local::start_in_memory(vec![tasks_bank::plugin()]).unwrap();
    let server = serve(&runtime).await;
    let headers = [CLERK, &[("content-type", "text/csv")]].concat();
    let (status, run) = post(server, "/tasks/Bank/ImportMovements", &headers, FILE.as_bytes()).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "COMPLETED");
    assert_eq!(
        (run["recordsRead"].as_u64(), run["accepted"].as_u64(), run["rejected"].as_u64()),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(run["rejectedRecords"][0]["line"], 4);
    assert_eq!(run["rejectedRecords"][0]["code"], "MalformedRecord");
    assert_eq!(run["startedBy"], "ann");
    assert_eq!(event_count(&runtime).await, 2);

    // The same run id again: the completed run, nothing executed.
    let run_id = run["runId"].as_str().unwrap();
    let path = format!("/tasks/Bank/ImportMovements?runId={run_id}&format=csv");
    let (status, again) = post(server, &path, CLERK, FILE.as_bytes()).await;
    assert_eq!((status, &again["runId"], &again["accepted"]), (200, &json!(run_id), &json!(2)));
    assert_eq!(event_count(&runtime).await, 2);

    // The runs are rows the API lists like a read model's.
    let query = json!({"query": format!(
        "{{ Bank_ImportMovementsRun(id: \"{run_id}\") {{ status recordsRead rejectedRecords {{ line code }} }} \
           Bank_ImportMovementsRuns {{ edges {{ node {{ id status }} }} }} }}"
    )});
    let graphql_headers = [CLERK, &[("content-type", "application/json")]].concat();
    let (status, answer) = post(server, "/graphql", &graphql_headers, query.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    assert_eq!(answer["data"]["Bank_ImportMovementsRun"]["status"], "COMPLETED");
    assert_eq!(answer["data"]["Bank_ImportMovementsRun"]["rejectedRecords"][0]["code"], "MalformedRecord");
    assert_eq!(answer["data"]["Bank_ImportMovementsRuns"]["edges"][0]["node"]["id"], run_id);
}

#[tokio::test]
async fn a_multipart_upload_takes_the_file_part_and_its_name() {
    let runtime = reventless_local::start_in_memory(vec![tasks_bank::plugin()]).unwrap();
    let server = serve(&runtime).await;
    let content_type = "multipart/form-data; boundary=XyZ";
    let headers = [CLERK, &[("content-type", content_type)]].concat();
    let body = multipart("XyZ", "movements.csv", FILE);
    let (status, run) = post(server, "/tasks/Bank/ImportMovements?runId=m1", &headers, &body).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!((run["runId"].as_str(), run["sourceName"].as_str()), (Some("m1"), Some("movements.csv")));
    assert_eq!((run["accepted"].as_u64(), run["rejected"].as_u64()), (Some(2), Some(1)));
    assert_eq!(event_count(&runtime).await, 2);
}

#[tokio::test]
async fn unknown_tasks_missing_roles_and_malformed_bodies_execute_nothing() {
    let runtime = reventless_local::start_in_memory(vec![tasks_bank::plugin()]).unwrap();
    let server = serve(&runtime).await;
    let csv = [CLERK, &[("content-type", "text/csv")]].concat();

    let (status, body) = post(server, "/tasks/Bank/Nope", &csv, FILE.as_bytes()).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("UnknownTask")), "{body}");
    let (status, body) = post(server, "/tasks/Shop/ImportMovements", &csv, FILE.as_bytes()).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("UnknownPlugin")), "{body}");

    let guest = [("x-user-id", "eve"), ("x-user-roles", "Guest"), ("content-type", "text/csv")];
    let (status, body) = post(server, "/tasks/Bank/ImportMovements?runId=g1", &guest, FILE.as_bytes()).await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("AccessRefused")), "{body}");
    let anonymous = [("content-type", "text/csv")];
    let (status, _) = post(server, "/tasks/Bank/ImportMovements", &anonymous, FILE.as_bytes()).await;
    assert_eq!(status, 403);

    // A multipart body without its boundary, and one without a file part.
    let broken = [CLERK, &[("content-type", "multipart/form-data")]].concat();
    let (status, body) = post(server, "/tasks/Bank/ImportMovements", &broken, FILE.as_bytes()).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("MalformedBody")), "{body}");
    let no_file = b"--B\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--B--\r\n";
    let headers = [CLERK, &[("content-type", "multipart/form-data; boundary=B")]].concat();
    let (status, body) = post(server, "/tasks/Bank/ImportMovements", &headers, no_file).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("MalformedBody")), "{body}");

    // No format to be told, and a format the task does not read.
    let (status, body) = post(server, "/tasks/Bank/ImportMovements", CLERK, FILE.as_bytes()).await;
    assert_eq!((status, &body["error"]["code"]), (415, &json!("UnknownFormat")), "{body}");
    let (status, body) = post(server, "/tasks/Bank/ImportJsonOnly?name=m.csv", CLERK, FILE.as_bytes()).await;
    assert_eq!((status, &body["error"]["code"]), (415, &json!("UnsupportedFormat")), "{body}");

    // A CSV file whose header is not text: the run fails (422), nothing appended.
    let (status, body) = post(server, "/tasks/Bank/ImportMovements?name=b.csv", CLERK, b"\xff\xfe,\x00\n1,2\n").await;
    assert_eq!((status, &body["status"]), (422, &json!("FAILED")), "{body}");
    assert!(body["error"].as_str().unwrap().contains("header"), "{body}");

    assert_eq!(event_count(&runtime).await, 0, "nothing executed");
}
