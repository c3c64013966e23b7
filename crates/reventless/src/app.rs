//! The CLI every plugin binary embeds: `manifest` now; `dev` and the Lambda
//! role join it as the platforms grow.
use std::io::Write;

use clap::{Parser, Subcommand};
use reventless_core::{Manifest, Plugin, PluginError};

/// Why the application could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A plugin's registration is inconsistent.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Writing output (or reading a file) failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// JSON could not be written or read.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The runtime refused to start or failed.
    #[error(transparent)]
    Runtime(#[from] reventless_core::RuntimeError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] reventless_core::StoreError),
    /// The local platform (SQLite) could not start.
    #[error(transparent)]
    Start(#[from] reventless_local::StartError),
    /// The PostgreSQL platform could not start.
    #[error(transparent)]
    Postgres(#[from] reventless_postgres::StartError),
    /// The GraphQL schema could not be built.
    #[error(transparent)]
    Api(#[from] reventless_graphql::BuildError),
    /// A replay failed.
    #[error(transparent)]
    Replay(#[from] reventless_core::runtime::replay::ReplayError),
    /// `dev` could not listen.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
    /// A line of a `script` file is not a command.
    #[error("{path}:{line}: {message}")]
    Script {
        /// The file.
        path: String,
        /// Its line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// `seed` without `App::seed`.
    #[error("this application has no seed data (App::seed)")]
    NoSeed,
    /// `task` names no task as `Plugin.Task`.
    #[error("`{0}` is not a task name: write Plugin.Task (e.g. Catalog.ImportProducts)")]
    TaskName(String),
    /// `task`'s file cannot be opened.
    #[error("cannot open {}: {source}", path.display())]
    TaskFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// A task could not run (nothing ran).
    #[error(transparent)]
    Task(#[from] reventless_core::task::TaskError),
    /// A task run failed (running it again with its run id resumes it).
    #[error("task run {run_id} failed: {error}")]
    TaskFailed {
        /// The run.
        run_id: String,
        /// Why.
        error: String,
    },
    /// Commands of `seed` or `script` failed.
    #[error("{failed} of {total} commands failed (see above)")]
    CommandsFailed {
        /// How many failed.
        failed: usize,
        /// How many were sent.
        total: usize,
    },
}

#[derive(Parser, Debug)]
#[command(about = "A reventless application", version)]
struct Cli {
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(Subcommand, Debug)]
enum AppCommand {
    /// Run the local platform with its GraphQL API (GraphiQL at `/`), until Ctrl-C.
    Dev {
        /// Address to listen on (loopback unless you say otherwise).
        #[arg(long, default_value = reventless_local::server::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        storage: StorageArgs,
        /// Serve GraphiQL from this directory (made by `scripts/fetch-graphiql DIR`) instead of a CDN.
        #[arg(long, env = "REVENTLESS_GRAPHIQL_ASSETS")]
        graphiql_assets: Option<std::path::PathBuf>,
    },
    /// Run commands from a JSON-lines file on the local platform and show the
    /// outcomes and the resulting read-model rows.
    ///
    /// Each line: {"plugin": "Catalog", "command": "AddCategory", "entityId": null, "input": {...}};
    /// blank lines and lines starting with # are skipped.
    Script {
        /// The JSON-lines file of commands.
        file: std::path::PathBuf,
        #[command(flatten)]
        storage: StorageArgs,
        /// Print one JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Load the application's seed data through the public command path
    /// (phase by phase, waiting for cross-plugin effects in between); seeding
    /// again reports what is already present.
    Seed {
        /// The small sample instead of the full data set.
        #[arg(long)]
        sample: bool,
        #[command(flatten)]
        storage: StorageArgs,
        /// Print one JSON object per phase instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a read model from its first event into a new table and switch
    /// to it when caught up; a `dev` process on the same database keeps
    /// serving the old rows until then.
    Replay {
        /// The read model: `Plugin.ReadModel` (e.g. `Shop.Orders`).
        read_model: String,
        #[command(flatten)]
        storage: StorageArgs,
        /// Print progress and the outcome as JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a file task: each record (CSV row or JSON line) of FILE becomes
    /// the task's commands; rejected records are listed with their codes.
    /// Exits non-zero when the run failed; `--run-id` of a failed or
    /// interrupted run resumes it.
    Task {
        /// The task: `Plugin.Task` (e.g. `Catalog.ImportProducts`).
        task: String,
        /// The file (`.csv` with a header row, or `.jsonl`).
        file: std::path::PathBuf,
        #[command(flatten)]
        storage: StorageArgs,
        /// Resume (or re-report) this run instead of starting a new one.
        #[arg(long)]
        run_id: Option<String>,
        /// The user id the commands are sent as.
        #[arg(long, default_value = "cli")]
        user: String,
        /// The caller's roles, comma-separated (default: the task's roles).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Print the run row as JSON instead of a summary.
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

/// Where the local platform keeps its data.
#[derive(clap::Args, Debug, Clone)]
pub struct StorageArgs {
    /// Directory of the SQLite database (`local.db` inside it).
    #[arg(long, default_value = ".reventless", conflicts_with = "memory")]
    pub data: std::path::PathBuf,
    /// Keep everything in memory (gone when the process ends).
    #[arg(long)]
    pub memory: bool,
    /// SQLite `synchronous` level: NORMAL (default) or FULL.
    #[arg(long, default_value = "NORMAL")]
    pub synchronous: reventless_local::sqlite::Synchronous,
    /// A PostgreSQL database (`postgres://user:password@host:port/db`) shared
    /// by any number of processes of this application: each serves the API
    /// and runs commands; each projection, automation and extension runs in
    /// one of them at a time.
    #[arg(
        long,
        env = "REVENTLESS_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL",
        conflicts_with_all = ["memory", "data"]
    )]
    pub postgres: Option<String>,
}

impl StorageArgs {
    /// Starts the plugins on the chosen storage.
    pub async fn start(
        &self,
        plugins: Vec<Plugin>,
        capabilities: reventless_spec::Capabilities,
    ) -> Result<reventless_core::Runtime, AppError> {
        if let Some(url) = &self.postgres {
            // Secrets as on the local platform: the environment, then `.reventless/secrets.toml`.
            let data = std::path::Path::new(reventless_local::DATA_DIR);
            let capabilities = reventless_local::secrets::provide(capabilities, data);
            let (runtime, _db) = reventless_postgres::start_postgres(url, plugins, capabilities).await?;
            return Ok(runtime);
        }
        if self.memory {
            return Ok(reventless_local::start_in_memory_with(plugins, capabilities)?);
        }
        let options = reventless_local::sqlite::SqliteOptions { synchronous: self.synchronous };
        let path = self.data.join("local.db");
        let (runtime, _db) = reventless_local::start_sqlite_with(path, options, plugins, capabilities).await?;
        Ok(runtime)
    }

    /// The storage in words (a database URL without its password).
    pub fn describe(&self) -> String {
        if let Some(url) = &self.postgres {
            return match reventless_postgres::describe_url(url) {
                Ok(target) => format!("postgres {target}"),
                Err(_) => "postgres (invalid URL)".into(),
            };
        }
        if self.memory {
            "memory".into()
        } else {
            format!("sqlite {} (synchronous {})", self.data.join("local.db").display(), self.synchronous.as_str())
        }
    }
}

/// A composition root: the plugins of one application and its command line.
pub struct App {
    plugins: Vec<Plugin>,
    capabilities: reventless_spec::Capabilities,
    seed: Option<SeedSource>,
}

type SeedSource = Box<dyn Fn(crate::SeedSize) -> crate::Seed>;

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("plugins", &self.plugins.iter().map(Plugin::name).collect::<Vec<_>>()).finish()
    }
}

impl App {
    /// An application without plugins.
    pub fn new() -> Self {
        Self { plugins: Vec::new(), capabilities: reventless_spec::Capabilities::new(), seed: None }
    }

    /// Hosts `plugin` too.
    pub fn plugin(mut self, plugin: Plugin) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// The external services the plugins' outbound translations use.
    pub fn capabilities(mut self, capabilities: reventless_spec::Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// The data `seed` loads (without it, `seed` says there is none).
    pub fn seed(mut self, seed: impl Fn(crate::SeedSize) -> crate::Seed + 'static) -> Self {
        self.seed = Some(Box::new(seed));
        self
    }

    /// The hosted plugins.
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
            AppCommand::Dev { listen, storage, graphiql_assets } => {
                let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
                let options = reventless_local::server::ServerOptions { graphiql_assets };
                runtime.block_on(crate::dev::run_dev(self.plugins, self.capabilities, &storage, listen, options))?;
            }
            AppCommand::Script { file, storage, json } => {
                let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
                runtime.block_on(crate::script::run_script(self.plugins, self.capabilities, &storage, &file, json))?;
            }
            AppCommand::Seed { sample, storage, json } => {
                let seed_source = self.seed.ok_or(AppError::NoSeed)?;
                let size = if sample { crate::SeedSize::Sample } else { crate::SeedSize::Full };
                let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
                let seed = seed_source(size);
                runtime.block_on(crate::seed::run_seed(self.plugins, self.capabilities, &storage, seed, size, json))?;
            }
            AppCommand::Replay { read_model, storage, json } => {
                let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
                let replay = crate::replay::run_replay(self.plugins, self.capabilities, &storage, &read_model, json);
                runtime.block_on(replay)?;
            }
            AppCommand::Task { task, file, storage, run_id, user, roles, json } => {
                let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
                let caller = crate::task::TaskCaller { user, roles };
                let args = crate::task::TaskArgs { task, file, run_id, caller, json };
                runtime.block_on(crate::task::run_task_file(self.plugins, self.capabilities, &storage, args))?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser;

    use super::{AppCommand, Cli};

    fn storage(args: &[&str]) -> super::StorageArgs {
        match Cli::try_parse_from(args).unwrap().command {
            AppCommand::Dev { storage, .. }
            | AppCommand::Script { storage, .. }
            | AppCommand::Seed { storage, .. }
            | AppCommand::Replay { storage, .. }
            | AppCommand::Task { storage, .. } => storage,
            AppCommand::Manifest { .. } => panic!("no storage"),
        }
    }

    #[test]
    fn postgres_is_chosen_by_url_and_described_without_its_password() {
        let url = "postgres://shop:s3cret@db.internal:6543/shop";
        for args in [
            vec!["app", "dev", "--postgres", url],
            vec!["app", "seed", "--sample", "--postgres", url],
            vec!["app", "script", "commands.jsonl", "--postgres", url],
            vec!["app", "replay", "Shop.Orders", "--postgres", url],
        ] {
            let chosen = storage(&args);
            assert_eq!(chosen.postgres.as_deref(), Some(url));
            assert_eq!(chosen.describe(), "postgres db.internal:6543/shop");
        }
        let broken = storage(&["app", "dev", "--postgres", "postgres://a:b@host:notaport/db"]);
        assert_eq!(broken.describe(), "postgres (invalid URL)", "never the URL itself");
    }

    #[test]
    fn postgres_conflicts_with_memory_and_data() {
        for other in [["--memory", ""], ["--data", "dir"]] {
            let mut args = vec!["app", "dev", "--postgres", "postgres://localhost/shop"];
            args.extend(other.iter().filter(|a| !a.is_empty()));
            let error = Cli::try_parse_from(&args).unwrap_err();
            assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict, "{args:?}");
        }
    }
}
