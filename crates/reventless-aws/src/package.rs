//! Lambda packaging: build a plugin binary for Lambda's Linux (glibc pinned
//! to 2.17 through cargo-zigbuild, so Amazon Linux 2023's 2.34 runs it) and
//! zip it as `bootstrap`, deterministically: fixed timestamps, sorted entries,
//! fixed modes, so the same binary always gives the same SHA-256 (Lambda's
//! `CodeSha256`) and unchanged code is never uploaded again.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

/// The cargo profile Lambda binaries are built with. The CLI defines it
/// itself ([`LAMBDA_PROFILE`], passed as `--config profile.lambda.<key>=…`),
/// so a project needs no `[profile.lambda]` of its own; a project that has
/// one keeps every key it sets (see [`profile_flags`]).
pub const PROFILE: &str = "lambda";

/// The settings of [`PROFILE`]: small, fast-loading binaries; panics keep
/// unwinding, so a panicking handler fails its invocation, not its container.
pub const LAMBDA_PROFILE: [(&str, &str); 6] = [
    ("inherits", "\"release\""),
    ("debug", "false"),
    ("strip", "true"),
    ("lto", "true"),
    ("codegen-units", "1"),
    ("panic", "\"unwind\""),
];

/// The `--config` arguments defining [`PROFILE`], leaving out the keys the
/// project's own `[profile.lambda]` sets (`user_keys`). Cargo merges a
/// profile from `--config` into the manifest's key by key, `--config`
/// winning: passing only the missing keys keeps the project's choices.
pub fn profile_flags(user_keys: &[String]) -> Vec<String> {
    LAMBDA_PROFILE
        .iter()
        .filter(|(key, _)| !user_keys.iter().any(|user| user == key))
        .flat_map(|(key, value)| ["--config".to_string(), format!("profile.{PROFILE}.{key}={value}")])
        .collect()
}

/// Lambda's instruction set architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    #[default]
    X86_64,
    Arm64,
}

impl Architecture {
    /// The Rust target (zigbuild's glibc suffix pins the oldest glibc the binary needs).
    pub fn target(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64-unknown-linux-gnu",
            Self::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// How Lambda names it.
    pub fn lambda_name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }
}

impl std::str::FromStr for Architecture {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "x86_64" | "amd64" => Ok(Self::X86_64),
            "arm64" | "aarch64" => Ok(Self::Arm64),
            other => Err(format!("unknown architecture `{other}` (x86_64 or arm64)")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot run {program}: {source} (install it: pip install ziglang && cargo install cargo-zigbuild)")]
    Spawn { program: String, source: std::io::Error },
    #[error("building {bins} failed ({status})")]
    Build { bins: String, status: std::process::ExitStatus },
    #[error("cargo built {bin} but reported no executable for it")]
    NoExecutable { bin: String },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cannot write the zip: {0}")]
    Zip(#[from] zip::result::ZipError),
}

/// A built zip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub path: PathBuf,
    pub bytes: u64,
    /// SHA-256 in hex.
    pub sha256: String,
    /// SHA-256 in base64, as Lambda reports `CodeSha256`.
    pub code_sha256: String,
}

/// One binary to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinTarget {
    /// The package holding it, when the name alone is ambiguous.
    pub package: Option<String>,
    pub bin: String,
}

/// What to build: every binary of a stage in one cargo invocation, so cargo
/// checks freshness and links in one pass (and shares the dependencies'
/// compilation) instead of once per binary.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The workspace root (where `cargo` runs).
    pub workspace: PathBuf,
    pub bins: Vec<BinTarget>,
    pub architecture: Architecture,
    /// Extra cargo arguments (the `--config` flags of [`profile_flags`]).
    pub cargo_args: Vec<String>,
    /// Whether to pass `--locked` (the workspace has a `Cargo.lock`).
    pub locked: bool,
}

impl BuildRequest {
    /// `cargo zigbuild --profile lambda --target <triple>.2.17 --bin <bin>…`
    /// (cargo's messages as JSON on stdout, its diagnostics on stderr).
    pub fn command(&self) -> Command {
        let mut command = self.cargo("zigbuild");
        command.args(["--profile", PROFILE, "--target"]).arg(format!("{}.2.17", self.architecture.target()));
        command
    }

    /// `cargo build --bin <bin>…` for this machine (dev profile): binaries
    /// that can print their manifest, without cross-compiling anything.
    pub fn native_command(&self) -> Command {
        self.cargo("build")
    }

    fn cargo(&self, subcommand: &str) -> Command {
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command.current_dir(&self.workspace).arg(subcommand);
        if self.locked {
            command.arg("--locked");
        }
        command.arg("--message-format=json-render-diagnostics");
        for target in &self.bins {
            command.args(["--bin", &target.bin]);
        }
        // `-p` for each package named; a binary without one is looked up in
        // every member (naming only some packages would hide it).
        if self.bins.iter().all(|target| target.package.is_some()) {
            let mut packages: Vec<&str> = self.bins.iter().filter_map(|target| target.package.as_deref()).collect();
            packages.sort_unstable();
            packages.dedup();
            for package in packages {
                command.args(["--package", package]);
            }
        } else {
            command.arg("--workspace");
        }
        command.args(&self.cargo_args);
        command
    }

    /// Builds the Lambda binaries (cargo's own progress goes to stderr);
    /// answers where cargo put each, by binary name.
    pub fn build(&self) -> Result<BTreeMap<String, PathBuf>, PackageError> {
        run_for_executables(self.command(), "cargo zigbuild", &self.bins)
    }

    /// Builds the binaries for this machine; answers where cargo put each.
    pub fn build_native(&self) -> Result<BTreeMap<String, PathBuf>, PackageError> {
        run_for_executables(self.native_command(), "cargo build", &self.bins)
    }
}

/// Runs a cargo build whose messages are JSON on stdout and answers the
/// executable it reports for each of `bins` (wherever the target directory
/// is: `CARGO_TARGET_DIR`, `build.target-dir`, or `<workspace>/target`).
fn run_for_executables(
    mut command: Command,
    program: &str,
    bins: &[BinTarget],
) -> Result<BTreeMap<String, PathBuf>, PackageError> {
    let names = || bins.iter().map(|target| target.bin.as_str()).collect::<Vec<_>>().join(", ");
    let output = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|source| PackageError::Spawn { program: program.into(), source })?;
    if !output.status.success() {
        return Err(PackageError::Build { bins: names(), status: output.status });
    }
    let messages = String::from_utf8_lossy(&output.stdout);
    bins.iter()
        .map(|target| {
            executable_in(&messages, &target.bin)
                .map(|path| (target.bin.clone(), path))
                .ok_or_else(|| PackageError::NoExecutable { bin: target.bin.clone() })
        })
        .collect()
}

/// The executable of `bin` among cargo's JSON messages.
pub fn executable_in(messages: &str, bin: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == bin)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
}

/// Zips `binary` as `bootstrap` (mode 755) plus `extra` files (mode 644),
/// entries sorted, timestamps fixed at 1980-01-01, compression fixed, into
/// `out`.
pub fn zip_bootstrap(binary: &Path, extra: &[(String, Vec<u8>)], out: &Path) -> Result<Package, PackageError> {
    let bytes = zip_bytes(binary, extra)?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|source| PackageError::Write { path: parent.display().to_string(), source })?;
    }
    std::fs::write(out, &bytes).map_err(|source| PackageError::Write { path: out.display().to_string(), source })?;
    Ok(describe(&bytes, out))
}

/// The deterministic zip of [`zip_bootstrap`], in memory.
pub fn zip_bytes(binary: &Path, extra: &[(String, Vec<u8>)]) -> Result<Vec<u8>, PackageError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| PackageError::Read { path: path.display().to_string(), source })
    };
    let mut entries: Vec<(String, Vec<u8>, u32)> = vec![("bootstrap".into(), read(binary)?, 0o755)];
    entries.extend(extra.iter().map(|(name, bytes)| (name.clone(), bytes.clone(), 0o644)));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut writer = zip::ZipWriter::new(&mut buffer);
        for (name, bytes, mode) in &entries {
            let options = SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .compression_level(Some(6))
                .last_modified_time(zip::DateTime::default())
                .unix_permissions(*mode);
            writer.start_file(name.as_str(), options)?;
            writer.write_all(bytes).map_err(|source| PackageError::Write { path: name.clone(), source })?;
        }
        writer.finish()?;
    }
    Ok(buffer.into_inner())
}

/// Size and hashes of zip `bytes` (kept at, or named, `path`).
pub fn describe(bytes: &[u8], path: &Path) -> Package {
    let digest = Sha256::digest(bytes);
    Package {
        path: path.to_path_buf(),
        bytes: bytes.len() as u64,
        sha256: digest.iter().map(|byte| format!("{byte:02x}")).collect(),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(bins: &[(Option<&str>, &str)]) -> BuildRequest {
        BuildRequest {
            workspace: PathBuf::from("/w"),
            bins: bins
                .iter()
                .map(|(package, bin)| BinTarget { package: package.map(String::from), bin: bin.to_string() })
                .collect(),
            architecture: Architecture::X86_64,
            cargo_args: vec![],
            locked: true,
        }
    }

    fn args(command: &Command) -> Vec<String> {
        command.get_args().map(|arg| arg.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn a_stage_s_binaries_are_built_by_one_cargo_invocation() {
        let shop =
            request(&[(Some("shop"), "catalog-lambda"), (Some("shop"), "ordering-lambda"), (Some("shop"), "gw")]);
        let args = args(&shop.command());
        assert_eq!(args[..2], ["zigbuild", "--locked"]);
        let bins: Vec<&str> = args.windows(2).filter(|w| w[0] == "--bin").map(|w| w[1].as_str()).collect();
        assert_eq!(bins, ["catalog-lambda", "ordering-lambda", "gw"]);
        let packages: Vec<&str> = args.windows(2).filter(|w| w[0] == "--package").map(|w| w[1].as_str()).collect();
        assert_eq!(packages, ["shop"], "each package named once");
        assert!(args.ends_with(&[
            "--profile".into(),
            "lambda".into(),
            "--target".into(),
            "x86_64-unknown-linux-gnu.2.17".into()
        ]));
    }

    #[test]
    fn a_binary_without_a_package_is_looked_up_in_the_whole_workspace() {
        let mixed = request(&[(Some("shop"), "catalog-lambda"), (None, "ordering-lambda")]);
        let args = args(&mixed.native_command());
        assert!(args.contains(&"--workspace".to_string()), "{args:?}");
        assert!(!args.contains(&"--package".to_string()), "naming one package would hide the other binary: {args:?}");
    }

    #[test]
    fn every_binary_s_executable_is_found_in_cargo_s_messages() {
        let messages = [
            r#"{"reason":"compiler-artifact","target":{"name":"a"},"executable":"/t/a"}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"dep"},"executable":null}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"b"},"executable":"/t/b"}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        assert_eq!(executable_in(&messages, "a"), Some(PathBuf::from("/t/a")));
        assert_eq!(executable_in(&messages, "b"), Some(PathBuf::from("/t/b")));
        assert_eq!(executable_in(&messages, "dep"), None);
    }
}
