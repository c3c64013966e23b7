//! The deploy half: project configuration, the plan (pure), reading what
//! exists, the diff, and applying it with idempotent `ensure_*` calls.
pub mod apply;
pub mod config;
pub mod destroy;
pub mod health;
pub mod inputs;
pub mod lock;
pub mod logs;
pub mod plan;
pub mod replay;
pub mod run;
pub mod secrets;
pub mod status;
pub mod tasks;

/// The SDK configuration loader of a deploy (region from the project file;
/// credentials from the environment's usual chain).
pub type ConfigLoader = aws_config::ConfigLoader;

pub fn config_loader(region: &str) -> ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new(region.to_string()))
}
