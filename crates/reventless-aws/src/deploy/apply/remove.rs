//! Removing a resource that exists (missing is fine).
use super::{Clients, DeployError, Existing, aws, code};
use crate::deploy::plan::ResourceKind;

impl Clients {
    /// Removes one resource (missing is fine).
    pub async fn remove(&self, existing: &Existing) -> Result<(), DeployError> {
        let name = existing.name.as_str();
        self.count();
        let gone = |c: Option<&str>| {
            c.is_some_and(|c| c.contains("NotFound") || c.contains("NoSuchEntity") || c.contains("NonExistent"))
        };
        match existing.kind {
            ResourceKind::Table => match self.dynamodb.delete_table().table_name(name).send().await {
                Err(error) if !gone(code(&error)) => return Err(aws("DeleteTable", name)(error)),
                _ => {}
            },
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
            ResourceKind::Schedule => match self.scheduler.delete_schedule().name(name).send().await {
                Err(error) if !gone(code(&error)) => return Err(aws("DeleteSchedule", name)(error)),
                _ => {}
            },
        }
        Ok(())
    }
}
