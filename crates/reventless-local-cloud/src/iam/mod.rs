//! IAM, enforced on what functions do: each function runs with credentials
//! naming its role; each AWS request it makes is checked — action and exact
//! resource ARN — against that role's inline policies (read from the
//! emulator's IAM) before it is forwarded.

/// A refused request, as AWS words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("User: {principal} is not authorized to perform: {action} on resource: {resource}")]
pub struct Denied {
    /// The assumed-role ARN of the caller.
    pub principal: String,
    pub action: String,
    pub resource: String,
}

/// Decides whether a role may perform an action on a resource.
#[async_trait::async_trait]
pub trait Access: Send + Sync + 'static {
    async fn authorize(&self, role_arn: &str, action: &str, resource: &str) -> Result<(), Denied>;
}
