//! Getting each plugin stack's `bootstrap`, its manifest and its zip.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use reventless_core::Manifest;

use super::apply::{CodeZip, DeployError};
use super::config::ProjectConfig;
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

/// Builds (or finds) every stack's binary, asks it for its manifest and zips it.
pub fn prepare(
    config: ProjectConfig,
    bootstraps: &Bootstraps,
    progress: &dyn Fn(String),
) -> Result<Inputs, DeployError> {
    let mut manifests = BTreeMap::new();
    let mut code = BTreeMap::new();
    for (stack, plugin) in &config.plugins {
        let bin = bin_of(&config, stack);
        let binary = match bootstraps {
            Bootstraps::Build => {
                progress(format!("building {bin} for {} (cargo zigbuild)", config.architecture.lambda_name()));
                let workspace = workspace_root(&config.root);
                let request = BuildRequest {
                    workspace,
                    package: plugin.package.clone(),
                    bin: bin.clone(),
                    architecture: config.architecture,
                    target_dir: None,
                };
                request.build().map_err(|e| DeployError::Refused(e.to_string()))?
            }
            Bootstraps::Dir(dir) => dir.join(&bin),
            Bootstraps::Paths(paths) => paths
                .get(stack)
                .cloned()
                .ok_or_else(|| DeployError::Refused(format!("no bootstrap given for stack `{stack}`")))?,
        };
        let output = std::process::Command::new(&binary)
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
        let manifest: Manifest = serde_json::from_slice(&output.stdout)
            .map_err(|e| DeployError::Refused(format!("{} printed no manifest: {e}", binary.display())))?;
        let bytes = zip_bytes(&binary, &[]).map_err(|e| DeployError::Refused(e.to_string()))?;
        let package = describe(&bytes, &PathBuf::from(format!("{stack}.zip")));
        progress(format!("{stack}: {} ({} bytes zipped, sha256 {})", bin, package.bytes, &package.sha256[..12]));
        manifests.insert(stack.clone(), manifest);
        code.insert(stack.clone(), CodeZip { package, bytes: Arc::new(bytes) });
    }
    Ok(Inputs { config, manifests, code })
}

/// The cargo workspace holding the project (the nearest ancestor with a `Cargo.lock`).
fn workspace_root(start: &std::path::Path) -> PathBuf {
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
