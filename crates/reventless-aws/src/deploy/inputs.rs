//! Getting each plugin stack's `bootstrap`, its manifest and its zip.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reventless_core::Manifest;

use super::apply::{CodeZip, DeployError};
use super::config::ProjectConfig;
use super::plan::PLATFORM;
use super::run::Inputs;
use crate::package::{BuildRequest, describe, zip_bytes};

/// Where the plugin binaries come from.
#[derive(Debug, Clone)]
pub enum Bootstraps {
    /// Build each with `cargo zigbuild` in the project's workspace.
    Build,
    /// Already built: `<dir>/<bin>`.
    Dir(PathBuf),
    /// Already built, per stack.
    Paths(BTreeMap<String, PathBuf>),
}

/// The binary name of a stack (`bin`, default `<stack>-lambda`).
pub fn bin_of(config: &ProjectConfig, stack: &str) -> String {
    config.plugins.get(stack).and_then(|s| s.bin.clone()).unwrap_or_else(|| format!("{stack}-lambda"))
}

/// Builds (or finds) every stack's binary, asks it for its manifest and zips
/// it. Builds run one after the other (cargo locks the target directory);
/// manifests and zips run in parallel, one thread per stack.
pub fn prepare(
    config: ProjectConfig,
    bootstraps: &Bootstraps,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Inputs, DeployError> {
    // Without it cargo fails mid-way with "no such command: `zigbuild`".
    let builds = !config.plugins.is_empty() || config.platform.bin.is_some();
    if matches!(bootstraps, Bootstraps::Build) && builds {
        check_zigbuild()?;
    }
    let mut binaries = Vec::new();
    for (stack, plugin) in &config.plugins {
        let bin = bin_of(&config, stack);
        let binary = locate(&config, bootstraps, stack, plugin.package.clone(), &bin, progress)?;
        binaries.push((stack.clone(), bin, binary, true));
    }
    if let Some(bin) = config.platform.bin.clone() {
        let binary = locate(&config, bootstraps, PLATFORM, config.platform.package.clone(), &bin, progress)?;
        binaries.push((PLATFORM.to_string(), bin, binary, false));
    }
    let prepared: Vec<Result<Prepared, DeployError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = binaries
            .iter()
            .map(|(stack, bin, binary, plugin)| {
                scope.spawn(move || {
                    let manifest = if *plugin { Some(manifest_of(binary)?) } else { None };
                    Ok(Prepared { stack: stack.clone(), manifest, code: zip_code(binary, stack, bin, progress)? })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| Err(DeployError::Refused("preparing a stack panicked".into())))
            })
            .collect()
    });
    let mut manifests = BTreeMap::new();
    let mut code = BTreeMap::new();
    for result in prepared {
        let prepared = result?;
        if let Some(manifest) = prepared.manifest {
            manifests.insert(prepared.stack.clone(), manifest);
        }
        code.insert(prepared.stack, prepared.code);
    }
    Ok(Inputs { config, manifests, code })
}

/// One stack's binary, ready: its manifest (plugin stacks) and its zip.
struct Prepared {
    stack: String,
    manifest: Option<Manifest>,
    code: CodeZip,
}

/// What a plugin binary says of itself (`<binary> manifest`).
fn manifest_of(binary: &Path) -> Result<Manifest, DeployError> {
    let output = std::process::Command::new(binary)
        .arg("manifest")
        .output()
        .map_err(|e| DeployError::Refused(format!("cannot run {} manifest: {e}", binary.display())))?;
    if !output.status.success() {
        return Err(DeployError::Refused(format!(
            "{} manifest failed: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| DeployError::Refused(format!("{} printed no manifest: {e}", binary.display())))
}

/// A stack's `bootstrap`: built, or where the caller said it is.
fn locate(
    config: &ProjectConfig,
    bootstraps: &Bootstraps,
    stack: &str,
    package: Option<String>,
    bin: &str,
    progress: &dyn Fn(String),
) -> Result<PathBuf, DeployError> {
    match bootstraps {
        Bootstraps::Build => {
            progress(format!("building {bin} for {} (cargo zigbuild)", config.architecture.lambda_name()));
            let request = BuildRequest {
                workspace: workspace_root(&config.root),
                package,
                bin: bin.to_string(),
                architecture: config.architecture,
                target_dir: None,
            };
            request.build().map_err(|e| DeployError::Refused(e.to_string()))
        }
        Bootstraps::Dir(dir) => Ok(dir.join(bin)),
        Bootstraps::Paths(paths) => paths
            .get(stack)
            .cloned()
            .ok_or_else(|| DeployError::Refused(format!("no bootstrap given for stack `{stack}`"))),
    }
}

/// The cargo subcommand that builds Lambda binaries (glibc pinned by zig).
const ZIGBUILD: &str = "cargo-zigbuild";

/// Where cargo would find `cargo-zigbuild`, looking where cargo looks for
/// subcommands: `cargo_home/bin`, then each directory of `path` (`PATH`).
pub fn find_zigbuild(path: Option<&std::ffi::OsStr>, cargo_home: Option<&Path>) -> Option<PathBuf> {
    let name = format!("{ZIGBUILD}{}", std::env::consts::EXE_SUFFIX);
    let home_bin = cargo_home.map(|home| home.join("bin"));
    let dirs = home_bin.into_iter().chain(path.into_iter().flat_map(std::env::split_paths));
    dirs.map(|dir| dir.join(&name)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else { return false };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        metadata.is_file()
    }
}

/// Refuses a build up front, saying what to install, when cargo-zigbuild is missing.
fn check_zigbuild() -> Result<(), DeployError> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    if find_zigbuild(std::env::var_os("PATH").as_deref(), cargo_home.as_deref()).is_some() {
        return Ok(());
    }
    Err(DeployError::Refused(format!(
        "building the Lambda binaries needs {ZIGBUILD}, which is not installed (not in $CARGO_HOME/bin nor on \
         PATH): install it with `pip install ziglang` and `cargo install cargo-zigbuild`, or skip the build with \
         `--bootstrap-dir <dir>` holding binaries built elsewhere"
    )))
}

/// The deterministic zip of a `bootstrap`.
fn zip_code(binary: &Path, stack: &str, bin: &str, progress: &(dyn Fn(String) + Sync)) -> Result<CodeZip, DeployError> {
    let bytes = zip_bytes(binary, &[]).map_err(|e| DeployError::Refused(e.to_string()))?;
    let package = describe(&bytes, &PathBuf::from(format!("{stack}.zip")));
    progress(format!("{stack}: {bin} ({} bytes zipped, sha256 {})", package.bytes, &package.sha256[..12]));
    Ok(CodeZip { package, bytes: Arc::new(bytes) })
}

/// The cargo workspace holding the project (the nearest ancestor with a `Cargo.lock`).
pub fn workspace_root(start: &std::path::Path) -> PathBuf {
    let start = if start.as_os_str().is_empty() { std::path::Path::new(".") } else { start };
    let mut dir = start.canonicalize().unwrap_or_else(|_| start.to_path_buf());
    loop {
        if dir.join("Cargo.lock").exists() {
            return dir;
        }
        if !dir.pop() {
            return start.to_path_buf();
        }
    }
}
