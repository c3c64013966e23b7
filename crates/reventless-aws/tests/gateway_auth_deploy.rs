//! The gateway's public function URL on the emulator (moto): created with
//! `AuthType NONE` and the resource-policy grants, read back (a missing
//! grant or another auth type is drift), restored and withdrawn idempotently.
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::io::Write;

use reventless_aws::deploy::apply::{Clients, Existing, changed_fields};
use reventless_aws::deploy::plan::{PUBLIC_URL_INVOKE_STATEMENT, PUBLIC_URL_STATEMENT, Plan, Resource, ResourceKind};
use reventless_aws::emulator::Emulator;
use serde_json::json;

fn zipped_bootstrap() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("bootstrap", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(b"#!/bin/sh\n").unwrap();
    zip.finish().unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_url_grant_is_created_read_back_restored_and_withdrawn() {
    let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
    let sdk = emulator.sdk_config().await;
    let clients = Clients::new(&sdk);
    let function = format!("gw-{}", uuid::Uuid::now_v7().simple());
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let role = clients.iam.create_role().role_name(&function).assume_role_policy_document(trust.to_string());
    let role_arn = role.send().await.unwrap().role().unwrap().arn().to_string();
    clients
        .lambda
        .create_function()
        .function_name(&function)
        .role(role_arn)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(zipped_bootstrap().into()).build())
        .send()
        .await
        .unwrap();
    let plan = Plan {
        project: "shop".into(),
        stage: "dev".into(),
        region: "us-east-1".into(),
        account: "123456789012".into(),
        resources: Vec::new(),
        warnings: Vec::new(),
    };
    let url = |spec: serde_json::Value| Resource {
        kind: ResourceKind::FunctionUrl,
        name: function.clone(),
        stack: "platform".into(),
        component: "Gateway".into(),
        tags: Default::default(),
        spec,
    };
    let public = url(json!({"authType": "NONE", "public": true}));
    assert_eq!(clients.observe(&public).await.unwrap(), None);

    clients.ensure(&plan, &public, None, false).await.unwrap();
    let observed = clients.observe(&public).await.unwrap().unwrap();
    assert_eq!(observed, public.spec, "created public and read back");
    clients.ensure(&plan, &public, None, true).await.unwrap(); // again: nothing to add, no conflict

    // Someone removes the grant: drift, and the deploy restores it.
    clients
        .lambda
        .remove_permission()
        .function_name(&function)
        .statement_id(PUBLIC_URL_STATEMENT)
        .send()
        .await
        .unwrap();
    let drifted = clients.observe(&public).await.unwrap().unwrap();
    assert_eq!(changed_fields(&public.spec, &drifted), vec!["public"]);
    clients.ensure(&plan, &public, None, true).await.unwrap();
    assert_eq!(clients.observe(&public).await.unwrap().unwrap(), public.spec);

    // Back behind IAM: the auth type is read back and the grants are withdrawn.
    let private = url(json!({"authType": "AWS_IAM", "public": false}));
    assert_eq!(
        changed_fields(&private.spec, &clients.observe(&private).await.unwrap().unwrap()),
        vec!["authType", "public"]
    );
    clients.ensure(&plan, &private, None, true).await.unwrap();
    assert_eq!(clients.observe(&private).await.unwrap().unwrap(), private.spec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_public_url_withdraws_its_grants() {
    let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
    let clients = Clients::new(&emulator.sdk_config().await);
    let function = format!("gw-{}", uuid::Uuid::now_v7().simple());
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let role = clients.iam.create_role().role_name(&function).assume_role_policy_document(trust.to_string());
    let role_arn = role.send().await.unwrap().role().unwrap().arn().to_string();
    clients
        .lambda
        .create_function()
        .function_name(&function)
        .role(role_arn)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(zipped_bootstrap().into()).build())
        .send()
        .await
        .unwrap();
    let plan = Plan {
        project: "shop".into(),
        stage: "dev".into(),
        region: "us-east-1".into(),
        account: "123456789012".into(),
        resources: Vec::new(),
        warnings: Vec::new(),
    };
    let public = Resource {
        kind: ResourceKind::FunctionUrl,
        name: function.clone(),
        stack: "platform".into(),
        component: "Gateway".into(),
        tags: Default::default(),
        spec: json!({"authType": "NONE", "public": true}),
    };
    clients.ensure(&plan, &public, None, false).await.unwrap();
    let existing =
        Existing { kind: ResourceKind::FunctionUrl, name: function.clone(), stack: "platform".into(), id: None };
    clients.remove(&existing).await.unwrap();
    assert_eq!(clients.observe(&public).await.unwrap(), None, "the URL is gone");
    let policy = match clients.lambda.get_policy().function_name(&function).send().await {
        Ok(output) => output.policy().unwrap_or_default().to_string(),
        Err(_) => String::new(), // no policy at all
    };
    for sid in [PUBLIC_URL_STATEMENT, PUBLIC_URL_INVOKE_STATEMENT] {
        assert!(!policy.contains(sid), "{sid} outlived the URL: {policy}");
    }
    clients.remove(&existing).await.unwrap(); // again: nothing left, no error
}
