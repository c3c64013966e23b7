//! Everything `reventless emulate` starts, wired together: moto (or a given
//! endpoint), the IAM proxy, the Lambda service, its mapping drivers, the
//! scheduler and the OIDC issuer.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reventless_aws::emulator::{Emulator, REGION, sdk_config_for};

use crate::iam::{Access, Iam, Proxy};
use crate::lambda::{Identities, LambdaOptions, LambdaService};
use crate::mappings::Mappings;
use crate::oidc::Issuer;
use crate::scheduler::Scheduler;
use crate::websocket::WebSockets;

/// moto's account.
pub const ACCOUNT: &str = "123456789012";
/// The audience of the local issuer's tokens (what `emulate` configures the gateway with).
pub const AUDIENCE: &str = "reventless-emulate";

#[derive(Debug, Clone)]
pub struct CloudOptions {
    /// An emulator already running; None: start moto.
    pub endpoint_url: Option<String>,
    /// Where uploaded code is unpacked.
    pub work_dir: PathBuf,
    /// How often the scheduler looks for new schedules.
    pub scheduler_rescan: Duration,
    /// Instances per function without reserved concurrency.
    pub max_instances: usize,
}

impl CloudOptions {
    pub fn new(work_dir: PathBuf) -> Self {
        Self {
            endpoint_url: None,
            work_dir,
            scheduler_rescan: Duration::from_secs(2),
            max_instances: crate::lambda::model::DEFAULT_MAX_INSTANCES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("cannot start the AWS emulator: {0}")]
    Emulator(String),
    #[error("cannot start {what}: {source}")]
    Start { what: &'static str, source: std::io::Error },
}

/// The running local cloud; [`LocalCloud::shutdown`] (or dropping it) stops what it started.
pub struct LocalCloud {
    /// The emulator's endpoint (DynamoDB, SQS, IAM, Logs, SSM, Scheduler).
    pub endpoint_url: String,
    pub sdk: aws_config::SdkConfig,
    pub iam: Arc<Iam>,
    pub proxy: Proxy,
    pub lambda: LambdaService,
    pub mappings: Arc<Mappings>,
    pub scheduler: Scheduler,
    pub issuer: Issuer,
    /// The WebSocket APIs deployed on the emulator, served.
    pub websockets: WebSockets,
    /// The moto process, when we started it (it stops with this process).
    pub emulator: Option<Emulator>,
}

/// Function instances are told who they are through [`Iam`]'s credentials.
struct IamIdentities(Arc<Iam>);

impl Identities for IamIdentities {
    fn credentials_for(&self, role_arn: &str) -> [String; 3] {
        let credentials = self.0.credentials_for(role_arn);
        [credentials.access_key_id, credentials.secret_access_key, credentials.session_token]
    }

    fn role_for_access_key(&self, access_key_id: &str) -> Option<String> {
        self.0.role_for_access_key(access_key_id)
    }
}

impl LocalCloud {
    pub async fn start(options: CloudOptions) -> Result<Self, CloudError> {
        let (endpoint_url, emulator) = match &options.endpoint_url {
            Some(url) => (url.clone(), None),
            None => {
                let emulator = Emulator::start().map_err(|e| CloudError::Emulator(e.to_string()))?;
                (emulator.endpoint.clone(), Some(emulator))
            }
        };
        let sdk = sdk_config_for(&endpoint_url).await;
        let iam = Arc::new(Iam::new(&sdk));
        let access: Arc<dyn Access> = iam.clone();
        let lambda_options = LambdaOptions {
            region: REGION.to_string(),
            account: ACCOUNT.to_string(),
            work_dir: options.work_dir.clone(),
            function_endpoint_url: String::new(),
            max_instances: options.max_instances,
            keep_warm: Duration::from_secs(600),
        };
        let lambda = LambdaService::start(lambda_options, &sdk, Arc::new(IamIdentities(iam.clone())), access.clone())
            .await
            .map_err(|source| CloudError::Start { what: "the Lambda service", source })?;
        let websockets =
            WebSockets::start(&sdk, &lambda.url(), lambda.invoker(), REGION, ACCOUNT, options.scheduler_rescan)
                .await
                .map_err(|source| CloudError::Start { what: "the WebSocket APIs", source })?;
        let proxy = Proxy::start_with_execute_api(
            iam.clone(),
            endpoint_url.clone(),
            lambda.url(),
            Some(websockets.management_url()),
        )
        .await
        .map_err(|source| CloudError::Start { what: "the IAM proxy", source })?;
        // Functions reach every service through the proxy (known only now).
        lambda.set_function_endpoint(&proxy.url());
        let mappings = Arc::new(Mappings::new(sdk.clone(), lambda.invoker(), access.clone()));
        lambda.attach_mappings(mappings.clone());
        let scheduler = Scheduler::start(sdk.clone(), lambda.invoker(), access, options.scheduler_rescan);
        let issuer = Issuer::start(AUDIENCE).map_err(|source| CloudError::Start { what: "the OIDC issuer", source })?;
        Ok(Self { endpoint_url, sdk, iam, proxy, lambda, mappings, scheduler, issuer, websockets, emulator })
    }

    /// `AWS_ENDPOINT_URL_LAMBDA` for the deployer.
    pub fn lambda_url(&self) -> String {
        self.lambda.url()
    }

    /// Stops pollers, schedules and instances (the servers stop when it drops).
    pub fn shutdown(&self) {
        self.scheduler.shutdown();
        self.websockets.shutdown();
        self.mappings.shutdown();
        self.lambda.stop_instances();
    }
}

impl Drop for LocalCloud {
    fn drop(&mut self) {
        self.shutdown();
    }
}
