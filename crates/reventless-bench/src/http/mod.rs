//! `reventless-bench --http`: what a user of the local platform sees. The
//! shop's dev server (`online-shop dev`, a child process; SQLite NORMAL in a
//! fresh directory, or `--memory`) is driven over HTTP/1.1 keep-alive with
//! 1 and 64 connections: `GET /health`, `Ordering_Customer_Register`
//! mutations on new ids (values in the query text, and as variables), and the 10-row product list — all on the same
//! server in the same run, each line divided by `/health` at the same
//! connection count. Any failed request fails the run.
mod client;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hyper::Request;
use serde::Serialize;

use crate::postgres::cpu;
use crate::report::load_average;
use client::Kind;
use server::ShopServer;

pub struct Options {
    pub memory: bool,
    pub shop_bin: Option<PathBuf>,
    pub duration: Duration,
    pub json: bool,
    pub wrk: bool,
}

#[derive(Serialize)]
struct HttpLine {
    kind: &'static str,
    name: String,
    backend: &'static str,
    synchronous: &'static str,
    server: &'static str,
    connections: usize,
    requests: u64,
    per_sec: f64,
    p50_us: u32,
    p99_us: u32,
    /// `GET /health` on the same server at the same connection count.
    health_per_sec: f64,
    ratio_to_health: f64,
    /// CPU cores used on average during the phase by the load generator
    /// (this process) and by the server: on 2 cores they compete.
    client_cores: f64,
    server_cores: f64,
    load_avg_1m: f64,
}

const SERVER: &str = "online-shop dev (child process)";
/// Products seeded, in two categories.
const PRODUCTS: usize = 16;

pub async fn run(options: Options) -> Result<(), String> {
    let binary = server::shop_binary(options.shop_bin.clone())?;
    let mut shop = ShopServer::start(&binary, options.memory)?;
    let address = shop.address;
    let with_log =
        |error: String, shop: &ShopServer| format!("{error}\nlast lines of the server's log:\n{}", shop.log_tail());
    seed(address).await.map_err(|e| with_log(e, &shop))?;
    // Unmeasured warm-up of every path (first-use allocations, page cache).
    for kind in [Kind::Health, Kind::Register, Kind::RegisterVariables, Kind::List] {
        client::drive(address, kind, "warm", 4, Duration::from_millis(500)).await.map_err(|e| with_log(e, &shop))?;
    }
    let (backend, synchronous) = if options.memory { ("memory", "-") } else { ("sqlite", "NORMAL") };
    let micros_per_tick = cpu::micros_per_tick();
    if !options.json {
        println!(
            "{SERVER} on http://{address}, {backend} {synchronous}, {} s per phase, HTTP/1.1 keep-alive",
            options.duration.as_secs_f64()
        );
        println!(
            "{:<38} {:>5} {:>9} {:>8} {:>8} {:>9} {:>8} {:>7} {:>7} {:>5}",
            "request", "conns", "req/s", "p50 µs", "p99 µs", "health/s", "×health", "cli cpu", "srv cpu", "load"
        );
    }
    for connections in [1, 64] {
        let mut health = 0.0;
        for kind in [Kind::Health, Kind::Register, Kind::RegisterVariables, Kind::List] {
            let client_before = cpu::client_ticks();
            let server_before = cpu::server_ticks(shop.pid());
            let started = Instant::now();
            let run = format!("b{connections}");
            let mut phase = client::drive(address, kind, &run, connections, options.duration)
                .await
                .map_err(|e| with_log(format!("{} with {connections} connections: {e}", kind.name()), &shop))?;
            let elapsed = started.elapsed().as_secs_f64();
            shop.check_alive()?;
            let cores = |before: Option<u64>, after: Option<u64>| match (before, after) {
                (Some(before), Some(after)) => (after.saturating_sub(before)) as f64 * micros_per_tick / 1e6 / elapsed,
                _ => 0.0,
            };
            if kind == Kind::Health {
                health = phase.per_sec;
            }
            let line = HttpLine {
                kind: "http",
                name: kind.name().into(),
                backend,
                synchronous,
                server: SERVER,
                connections,
                requests: phase.requests,
                per_sec: phase.per_sec,
                p50_us: phase.latencies.percentile(0.5),
                p99_us: phase.latencies.percentile(0.99),
                health_per_sec: health,
                ratio_to_health: if health > 0.0 { phase.per_sec / health } else { 0.0 },
                client_cores: cores(client_before, cpu::client_ticks()),
                server_cores: cores(server_before, cpu::server_ticks(shop.pid())),
                load_avg_1m: load_average(),
            };
            print(&line, options.json);
        }
    }
    if options.wrk {
        wrk_health(address, options.duration, options.json).await;
    }
    Ok(())
}

fn print(line: &HttpLine, json: bool) {
    if json {
        println!("{}", serde_json::to_string(line).unwrap_or_default());
    } else {
        println!(
            "{:<38} {:>5} {:>9.0} {:>8} {:>8} {:>9.0} {:>8.3} {:>7.2} {:>7.2} {:>5.2}",
            line.name,
            line.connections,
            line.per_sec,
            line.p50_us,
            line.p99_us,
            line.health_per_sec,
            line.ratio_to_health,
            line.client_cores,
            line.server_cores,
            line.load_avg_1m
        );
    }
}

/// Two categories and `PRODUCTS` products through the API (as a
/// Merchandiser), then waits until the product list shows them all.
async fn seed(address: SocketAddr) -> Result<(), String> {
    let merchandiser = [("x-user-id", "bench-merch"), ("x-user-roles", "Merchandiser")];
    let mut mutations = Vec::new();
    for category in ["books", "games"] {
        mutations.push(format!(
            r#"mutation {{ Catalog_AddCategory(categoryId: "{category}", name: "{category}") {{ status errorCode }} }}"#
        ));
    }
    for product in 0..PRODUCTS {
        let category = if product % 2 == 0 { "books" } else { "games" };
        let price = 199 + 100 * product;
        mutations.push(format!(
            r#"mutation {{ Catalog_AddProduct(productId: "p{product}", name: "Product {product}", description: "A product of the benchmark.", priceCents: {price}, currency: "EUR", categoryId: "{category}") {{ status errorCode }} }}"#
        ));
    }
    for mutation in mutations {
        let request = client::graphql(
            Request::builder().header(hyper::header::HOST, address.to_string()),
            &mutation,
            &merchandiser,
        )
        .map_err(|e| format!("seed request: {e}"))?;
        let (status, body) = client::send_once(address, request).await?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() || !text.contains("\"ACCEPTED\"") {
            return Err(format!("seeding failed: HTTP {status}: {text}"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = client::graphql(
            Request::builder().header(hyper::header::HOST, address.to_string()),
            client::LIST_QUERY,
            &[],
        )
        .map_err(|e| format!("list request: {e}"))?;
        let (_, body) = client::send_once(address, request).await?;
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if answer["data"]["Catalog_Products"]["totalCount"].as_u64() == Some(PRODUCTS as u64) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the seeded products did not show in the list within 30 s: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `wrk` on `/health` with 64 connections, when installed: whether our load
/// generator is the bottleneck (printed beside, not a line of the table).
async fn wrk_health(address: SocketAddr, duration: Duration, json: bool) {
    let seconds = duration.as_secs().max(1);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("wrk")
            .args(["-t2", "-c64", &format!("-d{seconds}s"), "--latency", &format!("http://{address}/health")])
            .output()
    })
    .await;
    let text = match output {
        Ok(Ok(output)) if output.status.success() => String::from_utf8_lossy(&output.stdout).into_owned(),
        Ok(Ok(output)) => format!("wrk failed: {}", String::from_utf8_lossy(&output.stderr)),
        Ok(Err(_)) => "wrk is not installed: no comparison with it in this run".into(),
        Err(error) => format!("wrk: {error}"),
    };
    let rate = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse::<f64>().ok());
    match (json, rate) {
        (true, Some(rate)) => println!(
            "{}",
            serde_json::json!({"kind": "wrk", "name": "GET /health (wrk -t2 -c64)", "connections": 64, "per_sec": rate, "load_avg_1m": load_average()})
        ),
        (true, None) => println!("{}", serde_json::json!({"kind": "wrk", "skipped": text.trim()})),
        (false, Some(rate)) => println!("wrk -t2 -c64 GET /health: {rate:.0} req/s (load {:.2})", load_average()),
        (false, None) => println!("{}", text.trim()),
    }
}
