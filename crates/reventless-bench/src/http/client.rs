//! The load generator: one HTTP/1.1 keep-alive connection per client task
//! (hyper's client connection, polled in the same task as its requests, so
//! that a request costs no task hand-off on our side), each answer checked.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::Latencies;

/// What a phase sends, and what counts as a success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `GET /health`.
    Health,
    /// `Ordering_Customer_Register` on a new id per request, the values
    /// written into the query text: `ACCEPTED`.
    Register,
    /// The same mutation as one document with variables, as GraphQL
    /// clients send it (the text repeats, the variables change).
    RegisterVariables,
    /// The 10-row product list on the seeded data: no errors, 10 edges.
    List,
}

pub const REGISTER_DOCUMENT: &str = "mutation Register($id: ID!, $name: String!, $email: String!) { Ordering_Customer_Register(id: $id, name: $name, email: $email) { status errorCode } }";

pub const LIST_QUERY: &str = "{ Catalog_Products(first: 10) { totalCount edges { node { id name priceCents } } } }";

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Health => "GET /health",
            Self::Register => "mutation Ordering_Customer_Register",
            Self::RegisterVariables => "mutation … with variables",
            Self::List => "query Catalog_Products(first: 10)",
        }
    }

    fn request(
        self,
        address: SocketAddr,
        run: &str,
        connection: usize,
        n: u64,
    ) -> Result<Request<Full<Bytes>>, String> {
        let builder = Request::builder().header(hyper::header::HOST, address.to_string());
        let request = match self {
            Self::Health => builder.method(Method::GET).uri("/health").body(Full::new(Bytes::new())),
            Self::Register => {
                let id = format!("{run}-{connection}-{n}");
                let query = format!(
                    r#"mutation {{ Ordering_Customer_Register(id: "{id}", name: "Bench {n}", email: "{id}@example.org") {{ status errorCode }} }}"#
                );
                graphql(builder, &query, &[("x-user-id", "bench-user")])
            }
            Self::RegisterVariables => {
                // Not the ids of the `Register` phase of the same run.
                let id = format!("v{run}-{connection}-{n}");
                let variables =
                    serde_json::json!({"id": id, "name": format!("Bench {n}"), "email": format!("{id}@example.org")});
                graphql_with(builder, REGISTER_DOCUMENT, Some(variables), &[("x-user-id", "bench-user")])
            }
            Self::List => graphql(builder, LIST_QUERY, &[]),
        };
        request.map_err(|e| format!("request: {e}"))
    }

    /// A failure message unless the answer is what the phase expects.
    fn check(self, status: StatusCode, body: &[u8]) -> Result<(), String> {
        let text = || String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
        if !status.is_success() {
            return Err(format!("{}: HTTP {status}: {}", self.name(), text()));
        }
        if self == Self::Health {
            return Ok(());
        }
        let answer: Value =
            serde_json::from_slice(body).map_err(|e| format!("{}: not JSON ({e}): {}", self.name(), text()))?;
        if answer.get("errors").is_some_and(|errors| !errors.is_null()) {
            return Err(format!("{}: GraphQL errors: {}", self.name(), text()));
        }
        let fine = match self {
            Self::Register | Self::RegisterVariables => {
                answer["data"]["Ordering_Customer_Register"]["status"] == "ACCEPTED"
            }
            Self::List => answer["data"]["Catalog_Products"]["edges"].as_array().is_some_and(|edges| edges.len() == 10),
            Self::Health => true,
        };
        if fine { Ok(()) } else { Err(format!("{}: unexpected answer: {}", self.name(), text())) }
    }
}

pub fn graphql(
    builder: hyper::http::request::Builder,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
    graphql_with(builder, query, None, headers)
}

pub fn graphql_with(
    builder: hyper::http::request::Builder,
    query: &str,
    variables: Option<Value>,
    headers: &[(&str, &str)],
) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
    let body = match variables {
        Some(variables) => serde_json::json!({ "query": query, "variables": variables }),
        None => serde_json::json!({ "query": query }),
    }
    .to_string();
    let mut builder =
        builder.method(Method::POST).uri("/graphql").header(hyper::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(Bytes::from(body)))
}

/// One request on a fresh connection (seeding and readiness), its status and body.
pub async fn send_once(address: SocketAddr, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
    let stream = tokio::net::TcpStream::connect(address).await.map_err(|e| format!("connect {address}: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
    let exchange = async {
        let response = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        Ok::<_, String>((status, body))
    };
    tokio::select! {
        answer = exchange => answer,
        closed = connection => Err(format!("the connection closed first: {closed:?}")),
    }
}

/// Requests/s and latencies of one phase.
pub struct Phase {
    pub requests: u64,
    pub per_sec: f64,
    pub latencies: Latencies,
}

/// `connections` keep-alive connections, each sending `kind` back to back
/// for `duration`. The first failed request (transport error, non-2xx,
/// GraphQL error, status other than `ACCEPTED`) stops every connection and
/// is the error.
pub async fn drive(
    address: SocketAddr,
    kind: Kind,
    run: &str,
    connections: usize,
    duration: Duration,
) -> Result<Phase, String> {
    let failed = Arc::new(AtomicBool::new(false));
    // Connect everything first: the clock covers requests only.
    let mut opened = Vec::new();
    for _ in 0..connections {
        let stream = tokio::net::TcpStream::connect(address).await.map_err(|e| format!("connect {address}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        opened.push(stream);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for (index, stream) in opened.into_iter().enumerate() {
        let failed = failed.clone();
        let run = run.to_string();
        tasks.push(tokio::spawn(async move {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            let requests = async {
                let mut latencies = Latencies::default();
                let mut n = 0;
                while Instant::now() < deadline && !failed.load(Ordering::Relaxed) {
                    n += 1;
                    let request = kind.request(address, &run, index, n)?;
                    let begin = Instant::now();
                    sender.ready().await.map_err(|e| format!("connection {index}: {e}"))?;
                    let response =
                        sender.send_request(request).await.map_err(|e| format!("connection {index}: {e}"))?;
                    let status = response.status();
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| format!("connection {index}: body: {e}"))?
                        .to_bytes();
                    latencies.record(begin.elapsed());
                    kind.check(status, &body).map_err(|e| format!("connection {index}, request {n}: {e}"))?;
                }
                Ok::<_, String>(latencies)
            };
            let result = tokio::select! {
                done = requests => done,
                closed = connection => Err(format!("connection {index} closed by the server: {closed:?}")),
            };
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            result
        }));
    }
    let mut all = Latencies::default();
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(latencies)) => all.merge(latencies),
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(error) => {
                first_error.get_or_insert(format!("a client task failed: {error}"));
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    let requests = all.0.len() as u64;
    Ok(Phase { requests, per_sec: requests as f64 / started.elapsed().as_secs_f64(), latencies: all })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_mutation_is_a_failure() {
        let rejected =
            br#"{"data":{"Ordering_Customer_Register":{"status":"REJECTED","errorCode":"CustomerAlreadyRegistered"}}}"#;
        assert!(Kind::Register.check(StatusCode::OK, rejected).is_err());
        let accepted = br#"{"data":{"Ordering_Customer_Register":{"status":"ACCEPTED","errorCode":null}}}"#;
        assert!(Kind::Register.check(StatusCode::OK, accepted).is_ok());
    }

    #[test]
    fn graphql_errors_and_non_2xx_are_failures() {
        assert!(Kind::List.check(StatusCode::OK, br#"{"data":null,"errors":[{"message":"x"}]}"#).is_err());
        assert!(Kind::Health.check(StatusCode::SERVICE_UNAVAILABLE, b"").is_err());
        assert!(Kind::Health.check(StatusCode::OK, b"ok").is_ok());
    }

    #[test]
    fn a_short_list_is_a_failure() {
        let short = br#"{"data":{"Catalog_Products":{"totalCount":3,"edges":[{"node":{}},{"node":{}},{"node":{}}]}}}"#;
        assert!(Kind::List.check(StatusCode::OK, short).is_err());
    }
}
