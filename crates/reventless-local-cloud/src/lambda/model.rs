//! What the Lambda service stores per function, and how the Lambda API
//! renders it (`FunctionConfiguration`, `FunctionUrlConfig`, policies).
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Lambda's ceiling on an unreserved function's concurrency here: a 2-core
/// machine cannot run an account's thousand instances, so invocations past
/// it wait for a free instance instead of being throttled.
pub const DEFAULT_MAX_INSTANCES: usize = 8;

/// Code as uploaded: the zip's hash and where it was unpacked.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    /// Base64 SHA-256 of the zip, as Lambda reports `CodeSha256`.
    pub sha256: String,
    pub size: u64,
    /// The unpacked zip (`LAMBDA_TASK_ROOT`), holding `bootstrap`.
    pub root: PathBuf,
}

/// One function's configuration (what Create/UpdateFunctionConfiguration set).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionRecord {
    pub name: String,
    pub arn: String,
    pub role: String,
    pub runtime: String,
    pub handler: String,
    pub memory_size: i64,
    pub timeout_seconds: i64,
    pub ephemeral_storage_mb: i64,
    pub environment: BTreeMap<String, String>,
    pub architectures: Vec<String>,
    pub layers: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub reserved_concurrency: Option<i64>,
    pub code: Code,
    /// Bumped by every code or configuration change: instances of an older
    /// revision are retired (as Lambda does after an update).
    pub revision: u64,
    pub last_modified: String,
    /// Resource-based policy statements (AddPermission), by statement id.
    pub permissions: BTreeMap<String, Value>,
    pub url: Option<UrlConfig>,
}

/// A function URL.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlConfig {
    /// `AWS_IAM` | `NONE`.
    pub auth_type: String,
    pub cors: Option<Value>,
    /// `http://127.0.0.1:PORT/` once served.
    pub url: String,
    pub created: String,
    pub modified: String,
}

impl FunctionRecord {
    /// `FunctionConfiguration` as the Lambda API answers it.
    pub fn configuration(&self) -> Value {
        let variables: serde_json::Map<String, Value> =
            self.environment.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        json!({
            "FunctionName": self.name,
            "FunctionArn": self.arn,
            "Runtime": self.runtime,
            "Role": self.role,
            "Handler": self.handler,
            "CodeSize": self.code.size,
            "CodeSha256": self.code.sha256,
            "Description": "",
            "Timeout": self.timeout_seconds,
            "MemorySize": self.memory_size,
            "LastModified": self.last_modified,
            "Version": "$LATEST",
            "Environment": {"Variables": variables},
            "EphemeralStorage": {"Size": self.ephemeral_storage_mb},
            "Architectures": self.architectures,
            "Layers": self.layers.iter().map(|arn| json!({"Arn": arn, "CodeSize": 0})).collect::<Vec<_>>(),
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "RevisionId": format!("{:08x}-0000-4000-8000-000000000000", self.revision),
        })
    }

    /// `GetFunction`'s answer.
    pub fn description(&self) -> Value {
        let mut answer = json!({
            "Configuration": self.configuration(),
            "Code": {"RepositoryType": "S3", "Location": format!("file://{}", self.code.root.display())},
            "Tags": self.tags,
        });
        if let Some(reserved) = self.reserved_concurrency {
            answer["Concurrency"] = json!({"ReservedConcurrentExecutions": reserved});
        }
        answer
    }

    /// The resource-based policy document (`GetPolicy`), None without statements.
    pub fn policy(&self) -> Option<Value> {
        (!self.permissions.is_empty()).then(|| {
            json!({"Version": "2012-10-17", "Id": "default", "Statement": self.permissions.values().collect::<Vec<_>>()})
        })
    }

    /// Whether the resource policy lets anyone call the function URL: since
    /// October 2025 AWS requires of an `AuthType NONE` URL two statements for
    /// principal `*`: `lambda:InvokeFunctionUrl` conditioned on
    /// `lambda:FunctionUrlAuthType` = NONE, and `lambda:InvokeFunction`
    /// conditioned on `lambda:InvokedViaFunctionUrl` = true (an unconditioned
    /// `lambda:InvokeFunction` opens direct invocation to anyone, not the URL).
    pub fn url_is_public(&self) -> bool {
        let public = |action: &str, condition: &str, value: &str| {
            self.permissions.values().any(|statement| {
                let principal = &statement["Principal"];
                let anyone = principal == "*" || principal["AWS"] == "*";
                let granted = statement["Action"] == action || statement["Action"] == "lambda:*";
                let conditioned = statement.pointer(condition).and_then(Value::as_str) == Some(value);
                statement["Effect"] == "Allow" && anyone && granted && conditioned
            })
        };
        public("lambda:InvokeFunctionUrl", "/Condition/StringEquals/lambda:FunctionUrlAuthType", "NONE")
            && public("lambda:InvokeFunction", "/Condition/Bool/lambda:InvokedViaFunctionUrl", "true")
    }

    pub fn url_config(&self) -> Option<Value> {
        let url = self.url.as_ref()?;
        let mut answer = json!({
            "FunctionUrl": url.url,
            "FunctionArn": self.arn,
            "AuthType": url.auth_type,
            "CreationTime": url.created,
            "LastModifiedTime": url.modified,
            "InvokeMode": "BUFFERED",
        });
        if let Some(cors) = &url.cors {
            answer["Cors"] = cors.clone();
        }
        Some(answer)
    }
}

/// Lambda's `LastModified` format (`2024-05-01T12:00:00.000+0000`).
pub fn timestamp_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = now.as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}+0000",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        now.subsec_millis()
    )
}

/// `YYYY/MM/DD` of today, as Lambda's log stream names start.
pub fn log_date() -> String {
    let days = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}/{month:02}/{day:02}")
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_422), (2025, 11, 30));
    }
}
