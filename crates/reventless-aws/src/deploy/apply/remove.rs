//! Removing a resource that exists (missing is fine).
use super::{Clients, DeployError, Existing, aws, code};
use crate::deploy::config::{DEPLOYED_FROM, ProjectConfig};
use crate::deploy::plan::{ResourceKind, parameter_path, registry_table, stack_names};
use crate::gateway::Registry;

impl Clients {
    /// Removes one resource (missing is fine).
    pub async fn remove(&self, existing: &Existing) -> Result<(), DeployError> {
        let name = existing.name.as_str();
        self.count();
        let gone = |c: Option<&str>| {
            c.is_some_and(|c| c.contains("NotFound") || c.contains("NoSuchEntity") || c.contains("NonExistent"))
        };
        match existing.kind {
            ResourceKind::Table => {
                // Checked here for a clear answer (DeleteTable's own refusal is
                // a bare ValidationException); see `unprotect_table`.
                if self.deletion_protected(name).await? {
                    return Err(DeployError::Refused(format!(
                        "table {name} has deletion protection on: not deleted (--allow-data-loss turns it off and deletes it)"
                    )));
                }
                self.count();
                match self.dynamodb.delete_table().table_name(name).send().await {
                    Err(error) if !gone(code(&error)) => return Err(aws("DeleteTable", name)(error)),
                    _ => {}
                }
            }
            ResourceKind::Queue => {
                if let Ok(url) = self.sqs.get_queue_url().queue_name(name).send().await {
                    self.count();
                    self.sqs
                        .delete_queue()
                        .queue_url(url.queue_url().unwrap_or_default())
                        .send()
                        .await
                        .map_err(aws("DeleteQueue", name))?;
                }
            }
            ResourceKind::LogGroup => match self.logs.delete_log_group().log_group_name(name).send().await {
                Err(error) if !gone(code(&error)) => return Err(aws("DeleteLogGroup", name)(error)),
                _ => {}
            },
            ResourceKind::Role => {
                let _ = self.iam.delete_role_policy().role_name(name).policy_name("reventless").send().await;
                self.count();
                match self.iam.delete_role().role_name(name).send().await {
                    Err(error) if !gone(code(&error)) => return Err(aws("DeleteRole", name)(error)),
                    _ => {}
                }
            }
            ResourceKind::Function => match self.lambda.delete_function().function_name(name).send().await {
                Err(error) if !gone(code(&error)) => return Err(aws("DeleteFunction", name)(error)),
                _ => {}
            },
            ResourceKind::EventSourceMapping => {
                if let Some(uuid) = &existing.id {
                    match self.lambda.delete_event_source_mapping().uuid(uuid).send().await {
                        Err(error) if !gone(code(&error)) => return Err(aws("DeleteEventSourceMapping", name)(error)),
                        _ => {}
                    }
                }
            }
            ResourceKind::FunctionUrl => {
                match self.lambda.delete_function_url_config().function_name(name).send().await {
                    Err(error) if !gone(code(&error)) => return Err(aws("DeleteFunctionUrlConfig", name)(error)),
                    _ => {}
                }
                // The public grants outlive the URL: one created later would be public at once.
                self.ensure_public_url(name, false).await?;
            }
            ResourceKind::Parameter => match self.ssm.delete_parameter().name(name).send().await {
                Err(error) if !gone(code(&error)) => return Err(aws("DeleteParameter", name)(error)),
                _ => {}
            },
            ResourceKind::WebSocketApi => self.remove_websocket(name).await?,
            ResourceKind::Bucket => self.remove_bucket(name).await?,
            ResourceKind::Schedule => match self.scheduler.delete_schedule().name(name).send().await {
                Err(error) if !gone(code(&error)) => return Err(aws("DeleteSchedule", name)(error)),
                _ => {}
            },
        }
        Ok(())
    }

    /// Removes one resource whose data the user allowed to lose
    /// (`--allow-data-loss`): a table's deletion protection is turned off
    /// first, with a progress line. The flag is that consent, given per run
    /// by the person deploying; protection still guards the table against
    /// every other deletion (a deploy or destroy without the flag, the
    /// console, other tools), and a second flag would only be typed along.
    pub async fn remove_losing_data(
        &self,
        existing: &Existing,
        progress: &(dyn Fn(String) + Sync),
    ) -> Result<(), DeployError> {
        if existing.kind == ResourceKind::Table && self.unprotect_table(&existing.name).await? {
            progress(format!("deletion protection of table {} turned off (--allow-data-loss)", existing.name));
        }
        self.remove(existing).await
    }

    /// After removing plugin stacks (pruned or destroyed one by one): they
    /// leave the gateway (their registry rows go), and a stack whose tables
    /// are all gone loses its `deployed-from` output (while a table is kept,
    /// the output keeps the stack its source's to remove later).
    pub async fn finish_removal(
        &self,
        config: &ProjectConfig,
        stacks: &[String],
        progress: &(dyn Fn(String) + Sync),
    ) -> Result<(), DeployError> {
        for plugin in self.disconnect(config, stacks).await? {
            progress(format!("plugin {plugin} disconnected from the gateway (its registry row is gone)"));
        }
        for stack in stacks {
            let names = stack_names(config, stack);
            let mut kept = false;
            for table in [&names.stores.events_table, &names.stores.rows_table] {
                self.count();
                match self.dynamodb.describe_table().table_name(table.as_str()).send().await {
                    Ok(_) => kept = true,
                    Err(error) if code(&error) == Some("ResourceNotFoundException") => {}
                    Err(error) => return Err(aws("DescribeTable", table)(error)),
                }
            }
            if !kept {
                let output = parameter_path(config, stack, DEPLOYED_FROM);
                self.remove(&Existing::new(ResourceKind::Parameter, &output, stack)).await?;
            }
        }
        Ok(())
    }

    /// Disconnects removed plugin stacks from the gateway: deletes the
    /// registry rows whose API function is one of `stacks`' (a row names its
    /// plugin, not its stack). Run after their functions are gone, so that no
    /// heartbeat writes a row again. Answers the plugins disconnected.
    pub async fn disconnect(&self, config: &ProjectConfig, stacks: &[String]) -> Result<Vec<String>, DeployError> {
        if stacks.is_empty() {
            return Ok(Vec::new());
        }
        let table = registry_table(config);
        let registry = Registry::with_client(self.dynamodb.clone(), &table);
        let refused = |call: &str| {
            let call = call.to_string();
            let table = table.clone();
            move |error: reventless_core::store::StoreError| DeployError::Aws {
                call,
                name: table,
                message: error.to_string(),
            }
        };
        self.count();
        let registrations = registry.list().await.map_err(refused("Query"))?;
        let prefix = format!("{}-{}-", config.project, config.stage);
        let mut disconnected = Vec::new();
        for registration in registrations {
            let stack = registration.api_function.strip_prefix(&prefix).and_then(|rest| rest.split('-').next());
            if stack.is_some_and(|stack| stacks.iter().any(|s| s == stack)) {
                self.count();
                registry.remove(&registration.plugin).await.map_err(refused("DeleteItem"))?;
                disconnected.push(registration.plugin);
            }
        }
        Ok(disconnected)
    }
}
