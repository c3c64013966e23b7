//! The CLI every plugin binary embeds: `manifest` now; `dev` and the Lambda
//! role join it as the platforms grow.
use std::io::Write;

use clap::{Parser, Subcommand};
use reventless_core::{Manifest, Plugin, PluginError};

/// Why the application could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Runtime(#[from] reventless_core::RuntimeError),
    #[error(transparent)]
    Store(#[from] reventless_core::StoreError),
    #[error("{path}:{line}: {message}")]
    Script { path: String, line: usize, message: String },
    #[error("{failed} of {total} commands failed (see above)")]
    CommandsFailed { failed: usize, total: usize },
}

#[derive(Parser, Debug)]
#[command(about = "A reventless application", version)]
struct Cli {
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(Subcommand, Debug)]
enum AppCommand {
    /// Run commands from a JSON-lines file on the local platform and show the
    /// outcomes and the resulting read-model rows.
    ///
    /// Each line: {"plugin": "Catalog", "command": "AddCategory", "entityId": null, "input": {...}};
    /// blank lines and lines starting with # are skipped.
    Script {
        /// The JSON-lines file of commands.
        file: std::path::PathBuf,
        /// Print one JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the manifest of every plugin (components, event types, storage) as JSON.
    Manifest {
        /// Only this plugin.
        #[arg(long)]
        plugin: Option<String>,
    },
}

/// A composition root: the plugins of one application and its command line.
pub struct App {
    plugins: Vec<Plugin>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("plugins", &self.plugins.iter().map(Plugin::name).collect::<Vec<_>>()).finish()
    }
}

impl App {
    pub fn new() -> Self {
        Self { plugins: Vec::new() }
    }

    pub fn plugin(mut self, plugin: Plugin) -> Self {
        self.plugins.push(plugin);
        self
    }

    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    /// Every plugin's manifest, as printed by `manifest`.
    pub fn manifests(&self, only: Option<&str>) -> Result<Vec<Manifest>, AppError> {
        let manifests = self
            .plugins
            .iter()
            .filter(|p| only.is_none_or(|name| p.name().eq_ignore_ascii_case(name)))
            .map(Plugin::manifest)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(manifests)
    }

    /// Parses the process arguments and runs the chosen command.
    pub fn run(self) -> Result<(), AppError> {
        let cli = Cli::parse();
        match cli.command {
            AppCommand::Script { file, json } => {
                let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
                runtime.block_on(crate::script::run_script(self.plugins, &file, json))?;
            }
            AppCommand::Manifest { plugin } => {
                let manifests = self.manifests(plugin.as_deref())?;
                let mut out = std::io::stdout().lock();
                serde_json::to_writer_pretty(&mut out, &manifests)?;
                writeln!(out)?;
            }
        }
        Ok(())
    }
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}
