//! Checks of a plan before anything is deployed: oversized role policies,
//! misspelt tuning keys.
use super::{PLATFORM, PlanError, Resource, ResourceKind};
use crate::deploy::config::ProjectConfig;

/// IAM's limit on the inline policies of one role, in characters without
/// whitespace (`PutRolePolicy` answers `LimitExceeded` past it).
pub const ROLE_POLICY_MAX: usize = 10_240;

/// A warning for each role whose policy IAM would refuse as too large (it
/// lists every queue and table its function uses: many components under
/// `micro`, or many plugins, grow it).
pub(super) fn oversized_policies(resources: &[Resource]) -> Vec<String> {
    resources
        .iter()
        .filter(|r| r.kind == ResourceKind::Role)
        .filter_map(|role| {
            let size = serde_json::to_string(&role.spec["policy"]).map(|text| text.len()).unwrap_or(0);
            (size > ROLE_POLICY_MAX).then(|| {
                format!(
                    "role {} has a {size}-character policy, over IAM's {ROLE_POLICY_MAX} for a role: the deploy of it will fail (split the plugin, or choose a consolidation with fewer resources per function)",
                    role.name
                )
            })
        })
        .collect()
}

/// A tuning key under `groups` must name a group or a function of the stack
/// (or be `default`): a misspelt one would silently tune nothing.
pub(super) fn check_tuning_keys(config: &ProjectConfig, stack: &str, known: &[&str]) -> Result<(), PlanError> {
    let configured =
        if stack == PLATFORM { Some(&config.platform.groups) } else { config.plugins.get(stack).map(|s| &s.groups) };
    for key in configured.into_iter().flat_map(|groups| groups.keys()) {
        if key != "default" && !known.contains(&key.as_str()) {
            let mut names: Vec<&str> = known.to_vec();
            names.sort_unstable();
            names.dedup();
            return Err(PlanError::UnknownTuningKey {
                stack: stack.to_string(),
                key: key.clone(),
                known: names.join(", "),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn role(name: &str, queues: usize) -> Resource {
        let arns: Vec<String> =
            (0..queues).map(|i| format!("arn:aws:sqs:us-east-1:123456789012:shop-dev-big-Queue{i:04}.fifo")).collect();
        Resource {
            kind: ResourceKind::Role,
            name: name.into(),
            stack: "big".into(),
            component: name.into(),
            tags: BTreeMap::new(),
            spec: json!({"trust": "lambda.amazonaws.com", "policy": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": arns}]}}),
        }
    }

    #[test]
    fn a_role_policy_over_iams_limit_is_a_plan_warning() {
        let small = role("shop-dev-big-Small", 10);
        let large = role("shop-dev-big-Large", 200);
        let warnings = oversized_policies(&[small, large]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("shop-dev-big-Large") && warnings[0].contains("10240"), "{}", warnings[0]);
    }
}
