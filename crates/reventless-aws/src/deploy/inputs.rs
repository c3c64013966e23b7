//! Getting each plugin stack's `bootstrap`, its manifest and its zip.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reventless_core::Manifest;
use sha2::Digest;

use super::apply::{CodeZip, DeployError};
use super::config::ProjectConfig;
use super::plan::PLATFORM;
use super::run::Inputs;
use crate::package::{BinTarget, BuildRequest, PROFILE, describe, profile_flags, zip_bytes};

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

/// What prepared inputs are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `deploy`: each stack's Lambda binary (cross-built with cargo-zigbuild
    /// unless given), its manifest and its zip.
    Deploy,
    /// `plan`, `status`: only the plugins' manifests, from binaries built for
    /// this machine (plain `cargo build`, incremental: cargo's freshness
    /// check is the cache); nothing is cross-built, so no zip exists and the
    /// code is not compared — unless binaries are given (`--bootstrap-dir`).
    Inspect,
}

/// Builds (or finds) every stack's binary, asks it for its manifest and zips
/// it (what a deploy of the whole stage needs).
pub fn prepare(
    config: ProjectConfig,
    bootstraps: &Bootstraps,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Inputs, DeployError> {
    prepare_for(config, bootstraps, Purpose::Deploy, None, progress)
}

/// The stacks a command is about: `only` (a plugin stack or the platform),
/// or every plugin stack and the platform when it has a binary.
fn selected(config: &ProjectConfig, only: Option<&str>) -> Result<Vec<(String, Option<String>, String)>, DeployError> {
    let platform =
        || config.platform.bin.clone().map(|bin| (PLATFORM.to_string(), config.platform.package.clone(), bin));
    let plugin = |stack: &String| (stack.clone(), config.plugins[stack].package.clone(), bin_of(config, stack));
    match only {
        None => Ok(config.plugins.keys().map(plugin).chain(platform()).collect()),
        Some(PLATFORM) => Ok(platform().into_iter().collect()),
        Some(stack) if config.plugins.contains_key(stack) => Ok(vec![plugin(&stack.to_string())]),
        Some(other) => Err(DeployError::Refused(format!(
            "no plugin stack `{other}` in this project file (known: {})",
            config.plugins.keys().cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Builds (or finds) the binaries of the stacks selected by `only` (all when
/// `None`) as `purpose` needs them: their manifests, and for a deploy their
/// zips. Every binary is built in one cargo invocation (one freshness check,
/// one link pass); manifests and zips run in parallel, one thread per stack.
pub fn prepare_for(
    config: ProjectConfig,
    bootstraps: &Bootstraps,
    purpose: Purpose,
    only: Option<&str>,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Inputs, DeployError> {
    let stacks = selected(&config, only)?;
    let building = matches!(bootstraps, Bootstraps::Build);
    // Without it cargo fails mid-way with "no such command: `zigbuild`".
    if building && purpose == Purpose::Deploy && !stacks.is_empty() {
        check_zigbuild()?;
    }
    let cargo = if building && !stacks.is_empty() { Some(cargo_workspace(&config.root)?) } else { None };
    let mut found = match &cargo {
        Some(cargo) => build(cargo, &config, &stacks, purpose, progress)?,
        None => stacks
            .iter()
            .map(|(stack, _, bin)| {
                let binary = locate(bootstraps, stack, bin)?;
                let plugin = stack != PLATFORM;
                Ok((stack.clone(), Found { manifest_from: plugin.then(|| binary.clone()), lambda: Some(binary) }))
            })
            .collect::<Result<BTreeMap<_, _>, DeployError>>()?,
    };
    let zips = cargo.as_ref().map(|cargo| cargo.target_directory.join(ZIP_CACHE));
    let binaries: Vec<(String, String, Found)> = stacks
        .into_iter()
        .filter_map(|(stack, _, bin)| found.remove(&stack).map(|found| (stack, bin, found)))
        .collect();
    let prepared: Vec<Result<Prepared, DeployError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = binaries
            .iter()
            .map(|(stack, bin, found)| {
                let zips = zips.as_deref();
                scope.spawn(move || {
                    let manifest = found.manifest_from.as_deref().map(manifest_of).transpose()?;
                    let code = found
                        .lambda
                        .as_deref()
                        .map(|binary| zip_code(binary, stack, bin, zips, progress))
                        .transpose()?;
                    Ok(Prepared { stack: stack.clone(), manifest, code })
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
        if let Some(zip) = prepared.code {
            code.insert(prepared.stack, zip);
        }
    }
    Ok(Inputs { config, manifests, code })
}

/// A stack's binaries: the Lambda one (deploys) and the one to ask for the manifest.
struct Found {
    lambda: Option<PathBuf>,
    manifest_from: Option<PathBuf>,
}

/// Builds what `purpose` needs of the stacks, each kind in one cargo
/// invocation: for a deploy every Lambda binary (which also answer the
/// manifest when they run on this machine); otherwise, or when they do not
/// run here, the plugin stacks' binaries for this machine, for the manifest.
fn build(
    cargo: &CargoWorkspace,
    config: &ProjectConfig,
    stacks: &[(String, Option<String>, String)],
    purpose: Purpose,
    progress: &dyn Fn(String),
) -> Result<BTreeMap<String, Found>, DeployError> {
    let target =
        |(_, package, bin): &(String, Option<String>, String)| BinTarget { package: package.clone(), bin: bin.clone() };
    let names = |targets: &[BinTarget]| targets.iter().map(|t| t.bin.as_str()).collect::<Vec<_>>().join(", ");
    let refused = |e: crate::package::PackageError| DeployError::Refused(e.to_string());
    let lambdas = if purpose == Purpose::Deploy {
        let request = cargo.request(config, stacks.iter().map(target).collect());
        progress(format!(
            "building {} for {} (cargo zigbuild)",
            names(&request.bins),
            config.architecture.lambda_name()
        ));
        Some(request.build().map_err(refused)?)
    } else {
        None
    };
    let is_plugin = |stack: &str| stack != PLATFORM;
    let lambda_answers_manifest = lambdas.is_some() && runs_here(config.architecture);
    let native = if lambda_answers_manifest {
        BTreeMap::new()
    } else {
        let plugins: Vec<BinTarget> = stacks.iter().filter(|s| is_plugin(&s.0)).map(target).collect();
        if plugins.is_empty() {
            BTreeMap::new()
        } else {
            progress(format!("building {} for this machine (cargo build), for the manifests", names(&plugins)));
            cargo.request(config, plugins).build_native().map_err(refused)?
        }
    };
    let mut found = BTreeMap::new();
    for (stack, _, bin) in stacks {
        let lambda = lambdas.as_ref().and_then(|built| built.get(bin).cloned());
        let manifest_from = match is_plugin(stack) {
            false => None,
            true if lambda_answers_manifest => lambda.clone(),
            true => native.get(bin).cloned(),
        };
        if let Some(binary) = &manifest_from {
            progress(format!("{stack}: manifest from {}", binary.display()));
        }
        found.insert(stack.clone(), Found { lambda, manifest_from });
    }
    Ok(found)
}

/// Whether a Lambda binary of `architecture` runs on this machine (Linux, same CPU).
fn runs_here(architecture: crate::package::Architecture) -> bool {
    cfg!(target_os = "linux") && architecture.target().starts_with(std::env::consts::ARCH)
}

/// One stack's binary, ready: its manifest (plugin stacks) and its zip (deploys).
struct Prepared {
    stack: String,
    manifest: Option<Manifest>,
    code: Option<CodeZip>,
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

/// A stack's `bootstrap` where the caller said it is.
fn locate(bootstraps: &Bootstraps, stack: &str, bin: &str) -> Result<PathBuf, DeployError> {
    match bootstraps {
        Bootstraps::Build => Err(DeployError::Refused(format!("no build of stack `{stack}`"))),
        Bootstraps::Dir(dir) => Ok(dir.join(bin)),
        Bootstraps::Paths(paths) => paths
            .get(stack)
            .cloned()
            .ok_or_else(|| DeployError::Refused(format!("no bootstrap given for stack `{stack}`"))),
    }
}

/// The cargo workspace of a project, as cargo sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CargoWorkspace {
    pub root: PathBuf,
    /// Where cargo puts what it builds (`CARGO_TARGET_DIR`, `build.target-dir`
    /// of a cargo config, or `<root>/target`).
    pub target_directory: PathBuf,
    /// The keys the workspace's own `[profile.lambda]` sets.
    pub profile_keys: Vec<String>,
}

impl CargoWorkspace {
    fn request(&self, config: &ProjectConfig, bins: Vec<BinTarget>) -> BuildRequest {
        BuildRequest {
            workspace: self.root.clone(),
            bins,
            architecture: config.architecture,
            cargo_args: profile_flags(&self.profile_keys),
            locked: self.root.join("Cargo.lock").exists(),
        }
    }
}

/// Asks cargo (`cargo metadata --no-deps`, run where the project file is)
/// for the workspace root and target directory.
pub fn cargo_workspace(project_dir: &Path) -> Result<CargoWorkspace, DeployError> {
    let dir = if project_dir.as_os_str().is_empty() { Path::new(".") } else { project_dir };
    let output = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(dir)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| DeployError::Refused(format!("cannot run cargo metadata in {}: {e}", dir.display())))?;
    if !output.status.success() {
        return Err(DeployError::Refused(format!(
            "cargo metadata failed in {} (is the project file inside a cargo workspace?): {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| DeployError::Refused(format!("cargo metadata printed no metadata: {e}")))?;
    let path = |key: &str| {
        metadata[key]
            .as_str()
            .map(PathBuf::from)
            .ok_or_else(|| DeployError::Refused(format!("cargo metadata has no `{key}`")))
    };
    let root = path("workspace_root")?;
    let profile_keys = lambda_profile_keys(&root.join("Cargo.toml"))?;
    Ok(CargoWorkspace { target_directory: path("target_directory")?, root, profile_keys })
}

/// The keys of the `[profile.lambda]` in a workspace's `Cargo.toml`.
fn lambda_profile_keys(manifest: &Path) -> Result<Vec<String>, DeployError> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| DeployError::Refused(format!("cannot read {}: {e}", manifest.display())))?;
    let value: toml::Table =
        toml::from_str(&text).map_err(|e| DeployError::Refused(format!("{}: {e}", manifest.display())))?;
    let profile = value.get("profile").and_then(|p| p.get(PROFILE)).and_then(toml::Value::as_table);
    Ok(profile.map(|table| table.keys().cloned().collect()).unwrap_or_default())
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

/// Where built zips are kept, under the cargo target directory: a zip is
/// deterministic, so the one made of the same binary is that binary's zip.
const ZIP_CACHE: &str = "reventless-lambda-zips";

/// The deterministic zip of a `bootstrap`; taken from `cache` (a directory)
/// when it holds the zip of a binary with the same SHA-256.
fn zip_code(
    binary: &Path,
    stack: &str,
    bin: &str,
    cache: Option<&Path>,
    progress: &(dyn Fn(String) + Sync),
) -> Result<CodeZip, DeployError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| DeployError::Refused(format!("cannot read {}: {e}", path.display())))
    };
    let binary_sha: String = sha2::Sha256::digest(read(binary)?).iter().map(|b| format!("{b:02x}")).collect();
    let cached = cache.map(|dir| dir.join(format!("{bin}-{binary_sha}.zip")));
    let bytes = match cached.as_deref().map(std::fs::read) {
        Some(Ok(bytes)) => bytes,
        _ => {
            let bytes = zip_bytes(binary, &[]).map_err(|e| DeployError::Refused(e.to_string()))?;
            if let (Some(dir), Some(path)) = (cache, &cached) {
                store_zip(dir, bin, path, &bytes);
            }
            bytes
        }
    };
    let package = describe(&bytes, &PathBuf::from(format!("{stack}.zip")));
    progress(format!("{stack}: {bin} ({} bytes zipped, sha256 {})", package.bytes, &package.sha256[..12]));
    Ok(CodeZip { package, bytes: Arc::new(bytes) })
}

/// Keeps `bytes` as the cached zip at `path`, replacing the binary's older
/// zips. A cache that cannot be written only costs the next deploy a zip.
fn store_zip(dir: &Path, bin: &str, path: &Path, bytes: &[u8]) {
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let prefix = format!("{bin}-");
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(".zip"));
            // `<bin>-<64 hex>.zip` only: another binary's name may extend this one's.
            if rest.is_some_and(|sha| sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    // Written whole under another name, then renamed: a reader never sees half a zip.
    let partial = path.with_extension("zip.partial");
    if std::fs::write(&partial, bytes).is_ok() {
        let _ = std::fs::rename(&partial, path);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_s_zip_is_made_once_and_replaced_when_the_binary_changes() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("catalog-lambda");
        let cache = dir.path().join(ZIP_CACHE);
        std::fs::write(&binary, b"first build").unwrap();
        let first = zip_code(&binary, "catalog", "catalog-lambda", Some(&cache), &|_| {}).unwrap();
        let cached: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().map(|e| e.path()).collect();
        assert_eq!(cached.len(), 1);
        assert_eq!(std::fs::read(&cached[0]).unwrap(), *first.bytes, "the cache holds the zip");

        // Taken from the cache: what is there is what is uploaded.
        let again = zip_code(&binary, "catalog", "catalog-lambda", Some(&cache), &|_| {}).unwrap();
        assert_eq!(again.package.sha256, first.package.sha256);

        // Another binary of a name that extends this one's keeps its own zip.
        std::fs::write(dir.path().join("other"), b"x").unwrap();
        zip_code(&dir.path().join("other"), "x", "catalog-lambda-x", Some(&cache), &|_| {}).unwrap();

        std::fs::write(&binary, b"second build").unwrap();
        let second = zip_code(&binary, "catalog", "catalog-lambda", Some(&cache), &|_| {}).unwrap();
        assert_ne!(second.package.sha256, first.package.sha256);
        assert_eq!(second.package.sha256, describe(&zip_bytes(&binary, &[]).unwrap(), Path::new("c")).sha256);
        let mut names: Vec<String> = std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "the old zip of catalog-lambda is gone, catalog-lambda-x's stays: {names:?}");
        assert!(names.iter().any(|n| n.starts_with("catalog-lambda-x-")));
    }
}
