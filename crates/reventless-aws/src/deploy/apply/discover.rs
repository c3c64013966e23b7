//! Discovering what exists of a stage (listing by name prefix, checking by tag).
use super::{Clients, DeployError, Existing, aws};
use crate::deploy::config::{DEPLOYED_FROM, ProjectConfig};
use crate::deploy::plan::{PLATFORM, ResourceKind, TAG_PLUGIN, TAG_STAGE};

impl Clients {
    /// Every SSM parameter under `path` (recursively), name → value.
    pub async fn parameters_under(&self, path: &str) -> Result<Vec<(String, String)>, DeployError> {
        let mut parameters = Vec::new();
        let mut token = None;
        loop {
            self.count();
            let page = self
                .ssm
                .get_parameters_by_path()
                .path(path)
                .recursive(true)
                .set_next_token(token)
                .send()
                .await
                .map_err(aws("GetParametersByPath", path))?;
            for parameter in page.parameters() {
                let name = parameter.name().unwrap_or_default().to_string();
                parameters.push((name, parameter.value().unwrap_or_default().to_string()));
            }
            match page.next_token() {
                Some(next) => token = Some(next.to_string()),
                None => return Ok(parameters),
            }
        }
    }

    /// Plugin stack → the source that deployed it, for every plugin stack of
    /// the stage that records one (its `deployed-from` output).
    pub async fn deployed_from(&self, config: &ProjectConfig) -> Result<Vec<(String, String)>, DeployError> {
        let path = format!("/reventless/{}/{}/", config.project, config.stage);
        let mut found = Vec::new();
        for (name, value) in self.parameters_under(&path).await? {
            let Some(rest) = name.strip_prefix(&path) else { continue };
            if let Some((stack, key)) = rest.split_once('/')
                && key == DEPLOYED_FROM
                && stack != PLATFORM
            {
                found.push((stack.to_string(), value));
            }
        }
        Ok(found)
    }

    /// The plugin stacks a full deploy of `config` prunes: deployed from its
    /// `source` and no longer in its file. Stacks of other sources sharing the
    /// stage (another project directory) and stacks recording no source are
    /// never touched.
    pub async fn removed_stacks(&self, config: &ProjectConfig) -> Result<Vec<String>, DeployError> {
        Ok(self
            .deployed_from(config)
            .await?
            .into_iter()
            .filter(|(stack, source)| *source == config.source && !config.plugins.contains_key(stack))
            .map(|(stack, _)| stack)
            .collect())
    }

    /// Every resource of the stage that exists (found by name prefix and
    /// checked by tag where the service lists tags).
    pub async fn discover(&self, project: &str, stage: &str) -> Result<Vec<Existing>, DeployError> {
        let prefix = format!("{project}-{stage}-");
        let stack_of = |name: &str| {
            name.strip_prefix(&prefix).and_then(|rest| rest.split('-').next()).unwrap_or_default().to_string()
        };
        let mut found = Vec::new();
        // Tables (tag-checked).
        let mut start = None;
        loop {
            self.count();
            let page = self
                .dynamodb
                .list_tables()
                .set_exclusive_start_table_name(start)
                .send()
                .await
                .map_err(aws("ListTables", "-"))?;
            for name in page.table_names().iter().filter(|n| n.starts_with(&prefix)) {
                self.count();
                let described =
                    self.dynamodb.describe_table().table_name(name).send().await.map_err(aws("DescribeTable", name))?;
                let arn = described.table().and_then(|t| t.table_arn()).unwrap_or_default().to_string();
                self.count();
                let tags = self
                    .dynamodb
                    .list_tags_of_resource()
                    .resource_arn(&arn)
                    .send()
                    .await
                    .map_err(aws("ListTagsOfResource", name))?;
                let tagged = tags.tags().iter().any(|t| t.key() == TAG_STAGE && t.value() == stage);
                let stack = tags.tags().iter().find(|t| t.key() == TAG_PLUGIN).map(|t| t.value().to_string());
                if tagged {
                    found.push(Existing::new(ResourceKind::Table, name, &stack.unwrap_or_else(|| stack_of(name))));
                }
            }
            match page.last_evaluated_table_name() {
                Some(last) => start = Some(last.to_string()),
                None => break,
            }
        }
        // Queues.
        self.count();
        let queues = self.sqs.list_queues().queue_name_prefix(&prefix).send().await.map_err(aws("ListQueues", "-"))?;
        for url in queues.queue_urls() {
            let name = url.rsplit('/').next().unwrap_or_default();
            found.push(Existing::new(ResourceKind::Queue, name, &stack_of(name)));
        }
        // Log groups.
        self.count();
        let groups = self
            .logs
            .describe_log_groups()
            .log_group_name_prefix(format!("/aws/lambda/{prefix}"))
            .send()
            .await
            .map_err(aws("DescribeLogGroups", "-"))?;
        for group in groups.log_groups() {
            let name = group.log_group_name().unwrap_or_default();
            found.push(Existing::new(ResourceKind::LogGroup, name, &stack_of(name.trim_start_matches("/aws/lambda/"))));
        }
        // Roles (the tagging API does not list them: by path).
        self.count();
        let roles = self
            .iam
            .list_roles()
            .path_prefix(format!("/reventless/{project}/{stage}/"))
            .send()
            .await
            .map_err(aws("ListRoles", "-"))?;
        for role in roles.roles() {
            found.push(Existing::new(ResourceKind::Role, role.role_name(), &stack_of(role.role_name())));
        }
        // Functions, their mappings and URLs.
        let mut marker = None;
        loop {
            self.count();
            let page =
                self.lambda.list_functions().set_marker(marker).send().await.map_err(aws("ListFunctions", "-"))?;
            for function in page.functions() {
                let Some(name) = function.function_name().filter(|n| n.starts_with(&prefix)) else { continue };
                let stack = stack_of(name);
                found.push(Existing::new(ResourceKind::Function, name, &stack));
                self.count();
                if let Ok(mappings) = self.lambda.list_event_source_mappings().function_name(name).send().await {
                    for mapping in mappings.event_source_mappings() {
                        let source = if mapping.event_source_arn().is_some_and(|a| a.starts_with("arn:aws:sqs")) {
                            "commands"
                        } else {
                            "events"
                        };
                        let mut existing =
                            Existing::new(ResourceKind::EventSourceMapping, &format!("{name}:{source}"), &stack);
                        existing.id = mapping.uuid().map(str::to_string);
                        found.push(existing);
                    }
                }
                self.count();
                if self.lambda.get_function_url_config().function_name(name).send().await.is_ok() {
                    found.push(Existing::new(ResourceKind::FunctionUrl, name, &stack));
                }
            }
            match page.next_marker() {
                Some(next) => marker = Some(next.to_string()),
                None => break,
            }
        }
        // Heartbeat schedules (the tagging API does not list them: by name).
        self.count();
        let schedules =
            self.scheduler.list_schedules().name_prefix(&prefix).send().await.map_err(aws("ListSchedules", "-"))?;
        for schedule in schedules.schedules() {
            if let Some(name) = schedule.name().filter(|n| n.starts_with(&prefix)) {
                found.push(Existing::new(ResourceKind::Schedule, name, &stack_of(name)));
            }
        }
        // Parameters.
        let path = format!("/reventless/{project}/{stage}/");
        for (name, _) in self.parameters_under(&path).await? {
            let stack = name.strip_prefix(&path).and_then(|rest| rest.split('/').next()).unwrap_or_default();
            found.push(Existing::new(ResourceKind::Parameter, &name, stack));
        }
        found.extend(self.discover_websockets(&prefix).await?);
        found.extend(self.discover_buckets(project, stage).await?);
        Ok(found)
    }
}
