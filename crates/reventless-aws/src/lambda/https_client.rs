//! The HTTPS client of a function's SDK clients, without the per-client
//! warm-up. The smithy client builds (and drops) a whole TLS connector each
//! time an SDK client is made, only to load its trust anchors early; with
//! a PEM trust store that is one parse of the CA bundle per SDK client
//! (DynamoDB, SQS, SSM, STS, …): 30 % of a plugin's cold start, measured with
//! `perf` (docs/benchmarks.md). The bundle was parsed and checked when the
//! SDK configuration was made ([`super::sdk_config`]), so the connector is
//! built once per timeout setting, on first use, by the inner client.
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::{RuntimeComponents, RuntimeComponentsBuilder};
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::config_bag::ConfigBag;

#[derive(Debug)]
struct WithoutWarmUp(SharedHttpClient);

impl HttpClient for WithoutWarmUp {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_base_client_config(&self, _: &RuntimeComponentsBuilder, _: &ConfigBag) -> Result<(), BoxError> {
        Ok(())
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// `client` without the TLS warm-up each SDK client made from it would run.
pub(crate) fn without_warm_up(client: SharedHttpClient) -> SharedHttpClient {
    WithoutWarmUp(client).into_shared()
}
