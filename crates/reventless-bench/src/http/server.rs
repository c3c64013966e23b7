//! The shop's dev server as a child process — what a user runs
//! (`online-shop dev`) — on a port the kernel picks on 127.0.0.1, in a fresh
//! temporary directory; killed when dropped.
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// Lines of the server's log kept for an error message.
const KEPT_LINES: usize = 40;

pub struct ShopServer {
    child: Child,
    pub address: SocketAddr,
    /// The server's last log lines (stderr), for error messages.
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

/// The `online-shop` binary: given, or beside this executable (both are
/// built into `target/release` by `cargo build --release`).
pub fn shop_binary(given: Option<PathBuf>) -> Result<PathBuf, String> {
    let path = match given {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this executable: {e}"))?
            .with_file_name("online-shop"),
    };
    if !path.is_file() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p online-shop` or pass --shop-bin PATH",
            path.display()
        ));
    }
    Ok(path)
}

impl ShopServer {
    /// Starts `online-shop dev` on `127.0.0.1:0` (SQLite, synchronous NORMAL,
    /// in a fresh directory, or `--memory`) and waits for its listen line.
    pub fn start(binary: &Path, memory: bool) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let mut command = Command::new(binary);
        command.arg("dev").arg("--listen").arg("127.0.0.1:0");
        if memory {
            command.arg("--memory");
        } else {
            command.arg("--data").arg(dir.path().join("data")).arg("--synchronous").arg("NORMAL");
        }
        let mut child = command
            .current_dir(dir.path())
            // The listen line is parsed: no colour codes in it.
            .env("NO_COLOR", "1")
            .env("REVENTLESS_SECRET_MAIL_API_KEY", "dev-key")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            return Err("the server's stderr was not captured".into());
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = mpsc::channel();
        let kept = log.clone();
        // Drains the log for the server's whole life (a full pipe would block it).
        let drained = std::thread::Builder::new().name("shop-log".into()).spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = listen_address(&line)
                    && let Some(found) = found.take()
                {
                    let _ = found.send(address);
                }
                if let Ok(mut kept) = kept.lock() {
                    if kept.len() == KEPT_LINES {
                        kept.remove(0);
                    }
                    kept.push(line);
                }
            }
        });
        let mut server = Self { child, address: SocketAddr::from(([127, 0, 0, 1], 0)), log, _dir: dir };
        drained.map_err(|e| format!("log thread: {e}"))?;
        match address.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => server.address = address,
            Err(_) => return Err(format!("the server did not start within 60 s:\n{}", server.log_tail())),
        }
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the server has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("the server exited ({status}):\n{}", self.log_tail())),
            Err(e) => Err(format!("cannot watch the server: {e}")),
        }
    }

    pub fn log_tail(&self) -> String {
        self.log.lock().map(|lines| lines.join("\n")).unwrap_or_default()
    }
}

impl Drop for ShopServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `… GraphQL at http://127.0.0.1:PORT/graphql, …` → the address.
fn listen_address(line: &str) -> Option<SocketAddr> {
    let start = line.find("GraphQL at http://")? + "GraphQL at http://".len();
    let rest = &line[start..];
    rest[..rest.find('/')?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_line_gives_the_address() {
        let line = "2026-12-01T10:00:00Z  INFO reventless::dev: GraphQL at http://127.0.0.1:41234/graphql, \
                    GraphiQL at http://127.0.0.1:41234/ storage=\"memory\"";
        assert_eq!(listen_address(line), Some("127.0.0.1:41234".parse().expect("address")));
        assert_eq!(listen_address("INFO starting"), None);
    }
}
