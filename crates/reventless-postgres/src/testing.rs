//! Throwaway PostgreSQL clusters for tests and benchmarks: `initdb` in a
//! temporary directory, a loopback port, trust authentication, stopped when
//! dropped — and by a watchdog when the process that started it dies
//! without dropping it (a static, a killed test binary).
//!
//! The server binaries are found through `REVENTLESS_PG_BIN`, then `PATH`,
//! then Debian's `/usr/lib/postgresql/<version>/bin` (the newest). As root
//! the cluster runs as the `postgres` user (PostgreSQL refuses root).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL's server binaries (initdb, pg_ctl) were not found: install Debian's `postgresql` \
         (./scripts/test does) or set REVENTLESS_PG_BIN to their directory"
    )]
    NoBinaries,
    #[error("{step} failed: {message}")]
    Step { step: &'static str, message: String },
}

/// Server settings of a throwaway cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `fsync` and `synchronous_commit`: on by default, so that what is
    /// measured on it is what a durable server does.
    pub durable: bool,
    pub max_connections: u32,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self { durable: true, max_connections: 400 }
    }
}

/// A running cluster; stopped (immediately) on drop.
#[derive(Debug)]
pub struct TestCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    run_as: Option<String>,
    _dir: tempfile::TempDir,
    databases: AtomicU64,
}

impl TestCluster {
    /// Starts a cluster with [`ClusterOptions::default`].
    pub fn start() -> Result<Self, ClusterError> {
        Self::start_with(ClusterOptions::default())
    }

    pub fn start_with(options: ClusterOptions) -> Result<Self, ClusterError> {
        let bin = server_binaries().ok_or(ClusterError::NoBinaries)?;
        let dir = tempfile::Builder::new()
            .prefix("reventless-pg-")
            .tempdir()
            .map_err(|e| ClusterError::Step { step: "creating the cluster directory", message: e.to_string() })?;
        let run_as = is_root().then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            chown(dir.path(), user)?;
        }
        let data = dir.path().join("data");
        let port = free_port()?;
        let mut cluster = Self { bin, data, port, run_as, _dir: dir, databases: AtomicU64::new(0) };
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        let durable = if options.durable { "on" } else { "off" };
        let settings = format!(
            "-p {port} -h 127.0.0.1 -k {socket} -c fsync={durable} -c synchronous_commit={durable} \
             -c full_page_writes={durable} -c max_connections={max}",
            socket = cluster._dir.path().display(),
            max = options.max_connections,
        );
        let log = cluster._dir.path().join("server.log").display().to_string();
        let data = cluster.data.display().to_string();
        if let Err(error) =
            cluster.run("pg_ctl start", &["-D", &data, "-o", &settings, "-l", &log, "-w", "-t", "60", "start"])
        {
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(ClusterError::Step { step: "pg_ctl start", message: format!("{error}\n{server_log}") });
        }
        cluster.spawn_watchdog();
        cluster.port = port;
        Ok(cluster)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of database `name` on it.
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a fresh, empty database and returns its URL (tests that must
    /// not see each other's tables each take one).
    pub fn fresh_database(&self) -> Result<String, ClusterError> {
        let number = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("db{}_{number}", std::process::id());
        let output = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres", "-q", "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .or_else(|_| {
                Command::new("psql")
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &self.port.to_string(),
                        "-U",
                        "postgres",
                        "-d",
                        "postgres",
                        "-q",
                        "-c",
                    ])
                    .arg(format!("CREATE DATABASE {name}"))
                    .output()
            })
            .map_err(|e| ClusterError::Step { step: "psql CREATE DATABASE", message: e.to_string() })?;
        if !output.status.success() {
            let message = String::from_utf8_lossy(&output.stderr).into_owned();
            return Err(ClusterError::Step { step: "psql CREATE DATABASE", message });
        }
        Ok(self.database_url(&name))
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    fn run(&self, step: &'static str, args: &[&str]) -> Result<(), ClusterError> {
        let program = step.split(' ').next().unwrap_or(step);
        let output = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .current_dir(self._dir.path())
            .output()
            .map_err(|e| ClusterError::Step { step, message: e.to_string() })?;
        if output.status.success() {
            return Ok(());
        }
        let message = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        Err(ClusterError::Step { step, message })
    }

    /// Stops the cluster and removes its directory when this process is
    /// gone, dropped or not (watched through `/proc`: `kill -0` on a root
    /// process fails for the `postgres` user).
    fn spawn_watchdog(&self) {
        let stop = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; {pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; \
             rm -rf {dir}",
            pid = std::process::id(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data.display(),
            dir = self._dir.path().display(),
        );
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--", "sh", "-c", &stop]);
                command
            }
            None => {
                let mut command = Command::new("sh");
                command.args(["-c", &stop]);
                command
            }
        };
        // Detached: it outlives this process by design.
        let _ = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = self.run("pg_ctl stop", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// One cluster for the whole test binary (started on first use, stopped by
/// its watchdog when the binary exits).
pub fn shared_cluster() -> &'static TestCluster {
    static CLUSTER: std::sync::OnceLock<TestCluster> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(|| match TestCluster::start() {
        Ok(cluster) => cluster,
        Err(error) => panic!("cannot start a PostgreSQL test cluster: {error}"),
    })
}

/// The directory of `initdb` and `pg_ctl`.
pub fn server_binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("REVENTLESS_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file());
    if let Some(dir) = on_path {
        // A symlink to Debian's directory: use the real one (psql sits beside it).
        return Some(
            std::fs::canonicalize(dir.join("initdb"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or(dir),
        );
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn chown(path: &Path, user: &str) -> Result<(), ClusterError> {
    let status = Command::new("chown")
        .args(["-R", user])
        .arg(path)
        .status()
        .map_err(|e| ClusterError::Step { step: "chown", message: e.to_string() })?;
    if status.success() {
        Ok(())
    } else {
        Err(ClusterError::Step { step: "chown", message: format!("chown {user} {} failed", path.display()) })
    }
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ClusterError::Step { step: "choosing a port", message: e.to_string() })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| ClusterError::Step { step: "choosing a port", message: e.to_string() })
}
