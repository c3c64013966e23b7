//! A Lambda binary that forgets a capability fails at init in each role
//! that runs the component needing it (the automations' stream function
//! and the heartbeat that retries due items), not item by item; roles that
//! never run it start.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
mod support;

use reventless_aws::lambda::{Handler, HandlerInitError};
use reventless_core::RuntimeError;
use reventless_spec::Capabilities;

#[tokio::test]
async fn roles_running_an_outbound_translation_refuse_to_start_without_its_capability() {
    let deployment = support::Deployment::new("Ordering").await;
    for role in ["OrderingAllAutomationSlices", "OrderingHeartbeat"] {
        let config = deployment.function_config(role);
        let refused = Handler::new(&deployment.config, &config, online_shop::ordering::plugin(), Capabilities::new());
        let Err(HandlerInitError::Runtime(RuntimeError::MissingCapability { component, capability, .. })) = &refused
        else {
            panic!("{role}: expected MissingCapability, got {:?}", refused.err());
        };
        assert_eq!(component, "SendOrderConfirmation");
        assert!(capability.ends_with("EmailService"), "{capability}");
        let message = refused.err().unwrap().to_string();
        assert!(message.contains("SendOrderConfirmation") && message.contains("EmailService"), "{message}");
        let provided = online_shop_lambda::capabilities();
        assert!(Handler::new(&deployment.config, &config, online_shop::ordering::plugin(), provided).is_ok(), "{role}");
    }
    for role in ["OrderingApi", "OrderingAllReadModels", "OrderingStateChanges"] {
        let config = deployment.function_config(role);
        let started = Handler::new(&deployment.config, &config, online_shop::ordering::plugin(), Capabilities::new());
        assert!(started.is_ok(), "{role} never runs the translation: {:?}", started.err());
    }
    // A micro function running another automation only starts without it.
    let mut config = deployment.function_config("OrderingAllAutomationSlices");
    config.components = vec!["AutoShipOrder".into()];
    let started = Handler::new(&deployment.config, &config, online_shop::ordering::plugin(), Capabilities::new());
    assert!(started.is_ok(), "{:?}", started.err());
}

#[tokio::test]
async fn the_local_runtime_refuses_to_start_without_a_needed_capability() {
    let refused = reventless::local::start_in_memory(vec![online_shop::ordering::standalone()]);
    assert!(
        matches!(&refused, Err(RuntimeError::MissingCapability { component, .. }) if component == "SendOrderConfirmation"),
        "{:?}",
        refused.err()
    );
    let (capabilities, _) = online_shop::ordering::local_capabilities();
    let runtime =
        reventless::local::start_in_memory_with(vec![online_shop::ordering::standalone()], capabilities).unwrap();
    runtime.shutdown().await;
}
