//! `reventless-bench-peers SYSTEM WORKLOAD --url URL [--clients N] [--millis D] [--races R] [--groups G] [--prefix P] [--pool N]`
//!
//! Runs one measurement of a peer (`cqrs-es` or `disintegrate`) registering
//! ids on PostgreSQL, the way its users would (its own schema setup, its
//! command path, its concurrency error retried as a user retries it), and
//! prints one JSON object on stdout. `reventless-bench --postgres` runs it.
//!
//! Workloads: `distinct` — each client registers new ids for `--millis`;
//! `race` — `--clients` clients race to register the same id, `--races`
//! times (`--groups` such races side by side); afterwards the events table
//! is counted for ids stored twice.
mod cqrs;
mod disintegrate_peer;
mod drive;
mod pool;

use std::process::ExitCode;
use std::time::Duration;

use drive::Registrar;

/// What a run was asked to do.
#[derive(Debug)]
struct Args {
    system: String,
    workload: String,
    url: String,
    clients: usize,
    duration: Duration,
    races: usize,
    groups: usize,
    prefix: String,
    pool: u32,
}

fn parse(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let system = raw.next().ok_or("missing SYSTEM (cqrs-es | disintegrate)")?;
    let workload = raw.next().ok_or("missing WORKLOAD (distinct | race)")?;
    let mut args = Args {
        system,
        workload,
        url: String::new(),
        clients: 1,
        duration: Duration::from_secs(2),
        races: 1000,
        groups: 1,
        prefix: "p".into(),
        pool: 16,
    };
    while let Some(flag) = raw.next() {
        let value = raw.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|_| format!("{flag}: not a number: {value}"));
        match flag.as_str() {
            "--url" => args.url = value.clone(),
            "--clients" => args.clients = usize::try_from(number()?).map_err(|e| e.to_string())?,
            "--millis" => args.duration = Duration::from_millis(number()?),
            "--races" => args.races = usize::try_from(number()?).map_err(|e| e.to_string())?,
            "--groups" => args.groups = usize::try_from(number()?).map_err(|e| e.to_string())?,
            "--pool" => args.pool = u32::try_from(number()?).map_err(|e| e.to_string())?,
            "--prefix" => args.prefix = value.clone(),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.url.is_empty() {
        return Err("--url is required".into());
    }
    if args.clients == 0 || args.groups == 0 {
        return Err("--clients and --groups must be at least 1".into());
    }
    Ok(args)
}

async fn run(args: Args) -> Result<serde_json::Value, String> {
    let registrar: std::sync::Arc<dyn Registrar> = match args.system.as_str() {
        "cqrs-es" => std::sync::Arc::new(cqrs::CqrsEs::connect(&args.url, args.pool).await?),
        "disintegrate" => std::sync::Arc::new(disintegrate_peer::Disintegrate::connect(&args.url, args.pool).await?),
        other => return Err(format!("unknown system {other} (cqrs-es | disintegrate)")),
    };
    match args.workload.as_str() {
        "distinct" => drive::distinct(registrar, &args.prefix, args.clients, args.duration).await,
        "race" => drive::race(registrar, &args.prefix, args.clients, args.races, args.groups).await,
        other => Err(format!("unknown workload {other} (distinct | race)")),
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drive::Outcome;

    fn args(line: &str) -> Result<Args, String> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_a_run_and_refuses_bad_input() {
        let parsed = args("cqrs-es race --url postgres://x --clients 8 --races 10 --prefix r1").unwrap();
        assert_eq!((parsed.clients, parsed.races, parsed.prefix.as_str()), (8, 10, "r1"));
        assert!(args("cqrs-es race").unwrap_err().contains("--url"));
        assert!(args("cqrs-es race --url u --clients x").unwrap_err().contains("not a number"));
        assert!(args("cqrs-es race --url u --clients 0").unwrap_err().contains("at least 1"));
        assert!(args("cqrs-es race --url u --groups 0").unwrap_err().contains("at least 1"));
        assert!(args("cqrs-es race --url u --bogus 1").unwrap_err().contains("unknown flag"));
    }

    #[test]
    fn races_are_shared_out_without_gaps_or_overlaps() {
        assert_eq!(drive::shares(10, 3), vec![0..4, 4..8, 8..10]);
        assert_eq!(drive::shares(2, 8), vec![0..1, 1..2]);
        assert_eq!(drive::shares(5, 1), vec![0..5]);
        assert!(drive::shares(0, 4).is_empty());
    }

    #[test]
    fn outcome_names_are_stable() {
        assert_eq!(Outcome::Registered.name(), "registered");
        assert_eq!(Outcome::Rejected.name(), "rejected");
        assert_eq!(Outcome::Conflict.name(), "conflict");
    }
}
