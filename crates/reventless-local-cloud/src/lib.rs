//! The local cloud behind `reventless emulate`: what was deployed, running.
//!
//! The deployer's Lambda calls go to our own [`lambda`] service
//! (`AWS_ENDPOINT_URL_LAMBDA`); every other service stays on the emulator
//! (moto). The Lambda service keeps the uploaded zips and runs each
//! `bootstrap` natively under the Runtime API ([`lambda::instances`]), drives
//! the event source mappings against moto's queues and streams exactly as
//! configured ([`mappings`]), serves function URLs on loopback, fires the
//! Scheduler entries it finds ([`scheduler`]) and runs every function with
//! credentials naming its role, so that each AWS request the function makes
//! is checked against that role's policies ([`iam`]) before it reaches moto.
//! A local OIDC issuer ([`oidc`]) signs test tokens for the gateway.
mod cloud;
pub mod iam;
pub mod invoke;
pub mod lambda;
pub mod mappings;
pub mod oidc;
pub mod scheduler;
pub mod stage;
pub mod websocket;

pub use cloud::{ACCOUNT, AUDIENCE, CloudError, CloudOptions, LocalCloud};
pub use invoke::{InvokeFailure, Invoker};
