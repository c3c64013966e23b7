//! Cold start of Lambda binaries under a local Runtime API: spawn → first
//! response posted (median of N), peak RSS (VmHWM) and zip size, for a plugin
//! binary side by side with the minimal `lambda_runtime` echo built the same way.
//!
//! `lambda-cold-start --plugin PATH --role CatalogApi --plugin-name Catalog --echo PATH [--runs 10] [--json]`
use std::path::PathBuf;
use std::time::Duration;

use reventless_aws::package::zip_bootstrap;
use reventless_aws::runtime_api::RuntimeApi;
use serde_json::{Value, json};

struct Args {
    plugin: PathBuf,
    plugin_name: String,
    role: String,
    echo: PathBuf,
    runs: usize,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut plugin, mut echo, mut runs, mut json) = (None, None, 10, false);
    let (mut plugin_name, mut role) = ("Catalog".to_string(), "CatalogApi".to_string());
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--plugin" => plugin = Some(PathBuf::from(value()?)),
            "--plugin-name" => plugin_name = value()?,
            "--role" => role = value()?,
            "--echo" => echo = Some(PathBuf::from(value()?)),
            "--runs" => runs = value()?.parse().map_err(|_| "--runs takes a number")?,
            "--json" => json = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        plugin: plugin.ok_or("--plugin PATH is required")?,
        echo: echo.ok_or("--echo PATH is required")?,
        plugin_name,
        role,
        runs,
        json,
    })
}

struct Sample {
    millis: f64,
    peak_rss_kib: u64,
}

/// Starts the binary `runs` times; each run answers one HTTP health request.
async fn measure(binary: &std::path::Path, env: &[(&str, String)], runs: usize) -> Result<Vec<Sample>, String> {
    // The Api answers a health check; other groups an empty batch.
    let api = env.iter().any(|(key, value)| *key == "REVENTLESS_CONFIG" && value.contains("Api\""));
    let request = if api {
        json!({
            "version": "2.0", "rawPath": "/health", "rawQueryString": "", "headers": {},
            "requestContext": {"http": {"method": "GET", "path": "/health"}}, "isBase64Encoded": false
        })
    } else {
        json!({ "Records": [] })
    };
    let mut samples = Vec::new();
    for _ in 0..runs {
        let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
        let function = api.spawn(binary, env).map_err(|e| format!("{}: {e}", binary.display()))?;
        api.invoke(request.clone(), Duration::from_secs(30)).await.map_err(|e| e.to_string())?;
        let answered = api.answered_at().first().copied().ok_or("no answer recorded")?;
        let millis = answered.duration_since(function.started).as_secs_f64() * 1000.0;
        let peak_rss_kib = function.peak_rss_kib().unwrap_or(0);
        function.stop();
        samples.push(Sample { millis, peak_rss_kib });
    }
    Ok(samples)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn summary(name: &str, binary: &std::path::Path, samples: &[Sample]) -> Result<Value, String> {
    let dir = std::env::temp_dir().join(format!("reventless-cold-start-{}", std::process::id()));
    let package = zip_bootstrap(binary, &[], &dir.join(format!("{name}.zip"))).map_err(|e| e.to_string())?;
    let binary_bytes = std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
    Ok(json!({
        "binary": name,
        "coldStartMedianMs": median(samples.iter().map(|s| s.millis).collect()),
        "coldStartMinMs": samples.iter().map(|s| s.millis).fold(f64::INFINITY, f64::min),
        "peakRssKiB": samples.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0),
        "binaryBytes": binary_bytes,
        "zipBytes": package.bytes,
    }))
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let config = json!({
        "role": args.role,
        "plugin": args.plugin_name,
        "stores": {"events_table": "events", "rows_table": "rows", "queue_prefix": "cold-"},
    });
    let plugin_env = vec![
        ("REVENTLESS_CONFIG", config.to_string()),
        // What Lambda sets for every function (its role's session, its region).
        ("AWS_ACCESS_KEY_ID", "cold".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "start".to_string()),
        ("AWS_SESSION_TOKEN", "session".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
    ];
    let plugin = measure(&args.plugin, &plugin_env, args.runs).await?;
    let echo = measure(&args.echo, &[], args.runs).await?;
    let plugin = summary("plugin", &args.plugin, &plugin)?;
    let echo = summary("echo", &args.echo, &echo)?;
    let ratio = plugin["coldStartMedianMs"].as_f64().unwrap_or(0.0) / echo["coldStartMedianMs"].as_f64().unwrap_or(1.0);
    if args.json {
        println!("{}", json!({"runs": args.runs, "role": args.role, "plugin": plugin, "echo": echo, "ratio": ratio}));
        return Ok(());
    }
    println!("cold start: spawn → first response posted, median of {} runs (role {})", args.runs, args.role);
    println!(
        "{:<8} {:>10} {:>10} {:>12} {:>12} {:>10}",
        "binary", "median ms", "min ms", "peak RSS KiB", "binary B", "zip B"
    );
    for row in [&plugin, &echo] {
        println!(
            "{:<8} {:>10.2} {:>10.2} {:>12} {:>12} {:>10}",
            row["binary"].as_str().unwrap_or_default(),
            row["coldStartMedianMs"].as_f64().unwrap_or(0.0),
            row["coldStartMinMs"].as_f64().unwrap_or(0.0),
            row["peakRssKiB"],
            row["binaryBytes"],
            row["zipBytes"]
        );
    }
    println!("plugin / echo cold start: {ratio:.2}×");
    Ok(())
}
