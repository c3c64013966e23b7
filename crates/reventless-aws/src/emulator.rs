//! The AWS emulator (moto) for tests: started once per test process on a
//! free loopback port, stopped when the process ends. It runs through
//! `emulator/moto_serial.py`, which applies DynamoDB requests one at a time
//! (moto's threaded server does not make conditional writes atomic). Installing it is the
//! test command's job (`pip install 'moto[server]'`); a missing emulator is
//! an error, never a skip.
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// The region every emulator client uses.
pub const REGION: &str = "us-east-1";

/// A running moto server.
#[derive(Debug)]
pub struct Emulator {
    pub endpoint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot find a free port: {0}")]
    Port(std::io::Error),
    #[error("cannot start moto_server (pip install 'moto[server]'): {0}")]
    Spawn(std::io::Error),
    #[error("moto_server did not answer on {0} within 30 s")]
    NotReady(SocketAddr),
}

static EMULATOR: OnceLock<Result<Emulator, String>> = OnceLock::new();

impl Emulator {
    /// The process's emulator, started on first use.
    pub fn shared() -> Result<&'static Emulator, String> {
        EMULATOR.get_or_init(|| Emulator::start().map_err(|e| e.to_string())).as_ref().map_err(Clone::clone)
    }

    /// Starts a new moto server; it stops when this process ends (a watcher
    /// shell kills it once our pid is gone, so crashed tests leave nothing).
    pub fn start() -> Result<Emulator, EmulatorError> {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(EmulatorError::Port)?.port();
        // The python that has moto (`pip install 'moto[server]'`).
        let python = std::env::var("REVENTLESS_PYTHON").unwrap_or_else(|_| "python3".to_string());
        // The launcher travels inside the binary: an installed `reventless`
        // (emulate) has no source tree to read it from.
        let launcher = std::env::temp_dir().join(format!("reventless-moto-serial-{}.py", std::process::id()));
        std::fs::write(&launcher, include_str!("../emulator/moto_serial.py")).map_err(EmulatorError::Spawn)?;
        let launcher = launcher.display();
        let script = format!(
            "{python} {launcher} {port} >/dev/null 2>&1 & m=$!; \\
             while kill -0 {pid} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; kill $m 2>/dev/null",
            pid = std::process::id()
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(EmulatorError::Spawn)?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(EmulatorError::NotReady(address));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Emulator { endpoint: format!("http://{address}") })
    }

    /// SDK configuration pointing at the emulator (fixed test credentials).
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint).await
    }
}

/// SDK configuration for an endpoint (the emulator), with static credentials.
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "reventless-emulator"))
        .load()
        .await
}
