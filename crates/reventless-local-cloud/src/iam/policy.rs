//! Identity-policy evaluation, as AWS does it for one account: an explicit
//! `Deny` wins, otherwise some `Allow` is needed, otherwise the request is
//! implicitly denied.
//!
//! What is not modelled, and how it fails: a statement with a `Condition`
//! cannot be evaluated here (we have no request context), so an `Allow` with
//! a condition grants nothing and a `Deny` with a condition always applies —
//! both err on the side of refusing. Policy variables (`${aws:username}`) are
//! matched literally. The deployer writes neither.
use serde_json::Value;

/// One parsed policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

/// Patterns a value must match (`Action`, `Resource`) or must not match
/// (`NotAction`, `NotResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Patterns {
    Any(Vec<String>),
    None(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    effect: Effect,
    actions: Patterns,
    resources: Patterns,
    /// The statement has a non-empty `Condition` (see the module doc).
    conditional: bool,
}

/// A policy document we cannot read; the role it belongs to is refused
/// everything rather than judged on part of its policies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed policy document: {0}")]
pub struct MalformedPolicy(String);

/// The outcome of evaluating a role's policies for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A `Deny` statement matched.
    ExplicitDeny,
    /// No identity-based policy allows it.
    NoAllow,
    /// The identity policies allow it, the permissions boundary does not.
    NoBoundaryAllow,
}

impl Decision {
    /// The reason AWS appends to its AccessDenied message.
    pub fn reason(self, action: &str) -> String {
        match self {
            Decision::Allow => String::new(),
            Decision::ExplicitDeny => "with an explicit deny in an identity-based policy".to_string(),
            Decision::NoAllow => format!("because no identity-based policy allows the {action} action"),
            Decision::NoBoundaryAllow => format!("because no permissions boundary allows the {action} action"),
        }
    }
}

/// Everything that decides what a role may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolePolicies {
    /// Inline and attached managed policies.
    pub identity: Vec<Policy>,
    /// The role's permissions boundary, when it has one.
    pub boundary: Option<Policy>,
}

impl RolePolicies {
    pub fn decide(&self, action: &str, resource: &str) -> Decision {
        let mut allowed = false;
        for policy in &self.identity {
            match policy.effect_on(action, resource) {
                Some(Effect::Deny) => return Decision::ExplicitDeny,
                Some(Effect::Allow) => allowed = true,
                None => {}
            }
        }
        let bounded = match &self.boundary {
            None => true,
            Some(boundary) => match boundary.effect_on(action, resource) {
                Some(Effect::Deny) => return Decision::ExplicitDeny,
                Some(Effect::Allow) => true,
                None => false,
            },
        };
        match (allowed, bounded) {
            (true, true) => Decision::Allow,
            (false, _) => Decision::NoAllow,
            (true, false) => Decision::NoBoundaryAllow,
        }
    }
}

impl Policy {
    /// Parses a document (`Statement` may be one object or a list).
    pub fn parse(document: &str) -> Result<Policy, MalformedPolicy> {
        let value: Value = serde_json::from_str(document).map_err(|e| MalformedPolicy(e.to_string()))?;
        let statements = match &value["Statement"] {
            Value::Array(items) => items.iter().map(Statement::parse).collect::<Result<Vec<_>, _>>()?,
            object @ Value::Object(_) => vec![Statement::parse(object)?],
            _ => return Err(MalformedPolicy("no Statement".to_string())),
        };
        Ok(Policy { statements })
    }

    /// `Deny` if some deny statement applies, else `Allow` if some
    /// unconditional allow statement applies, else None.
    fn effect_on(&self, action: &str, resource: &str) -> Option<Effect> {
        let mut allowed = false;
        for statement in &self.statements {
            if !statement.applies(action, resource) {
                continue;
            }
            match statement.effect {
                Effect::Deny => return Some(Effect::Deny),
                Effect::Allow if !statement.conditional => allowed = true,
                Effect::Allow => {}
            }
        }
        allowed.then_some(Effect::Allow)
    }
}

impl Statement {
    fn parse(value: &Value) -> Result<Statement, MalformedPolicy> {
        let effect = match value["Effect"].as_str() {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => return Err(MalformedPolicy(format!("Effect {other:?}"))),
        };
        let actions = patterns(value, "Action", "NotAction")?;
        let resources = patterns(value, "Resource", "NotResource")?;
        let conditional = match &value["Condition"] {
            Value::Null => false,
            Value::Object(conditions) => !conditions.is_empty(),
            _ => return Err(MalformedPolicy("Condition is not an object".to_string())),
        };
        Ok(Statement { effect, actions, resources, conditional })
    }

    fn applies(&self, action: &str, resource: &str) -> bool {
        let action_matches = |pattern: &String| glob(pattern.as_bytes(), action.as_bytes(), true);
        let resource_matches = |pattern: &String| glob(pattern.as_bytes(), resource.as_bytes(), false);
        let action_in = match &self.actions {
            Patterns::Any(patterns) => patterns.iter().any(action_matches),
            Patterns::None(patterns) => !patterns.iter().any(action_matches),
        };
        action_in
            && match &self.resources {
                Patterns::Any(patterns) => patterns.iter().any(resource_matches),
                Patterns::None(patterns) => !patterns.iter().any(resource_matches),
            }
    }
}

/// Exactly one of `positive` / `negative`, a string or a list of strings.
fn patterns(statement: &Value, positive: &str, negative: &str) -> Result<Patterns, MalformedPolicy> {
    let list = |value: &Value| -> Result<Vec<String>, MalformedPolicy> {
        match value {
            Value::String(one) => Ok(vec![one.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_string).ok_or_else(|| MalformedPolicy(format!("{item} is not a string")))
                })
                .collect(),
            other => Err(MalformedPolicy(format!("{other} is not a string or a list"))),
        }
    };
    match (statement.get(positive), statement.get(negative)) {
        (Some(values), None) => Ok(Patterns::Any(list(values)?)),
        (None, Some(values)) => Ok(Patterns::None(list(values)?)),
        _ => Err(MalformedPolicy(format!("a statement needs exactly one of {positive} and {negative}"))),
    }
}

/// IAM wildcard matching: `*` any run of characters (also none), `?` one
/// character. Actions compare ASCII case-insensitively, resources exactly.
fn glob(pattern: &[u8], text: &[u8], ignore_case: bool) -> bool {
    let same = |a: u8, b: u8| if ignore_case { a.eq_ignore_ascii_case(&b) } else { a == b };
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and where in the text it was tried last.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(b'?') => {
                p += 1;
                t += char_len(text[t]);
            }
            Some(&c) if same(c, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry.
                Some((star_p, star_t)) => {
                    let next = star_t + char_len(text[star_t]);
                    star = Some((star_p, next));
                    p = star_p + 1;
                    t = next;
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Bytes of the UTF-8 character starting with `lead` (so that `?` matches a
/// character, not a byte).
fn char_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/shop-dev-orders-events";

    fn role(statements: Value) -> RolePolicies {
        let document = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        RolePolicies { identity: vec![Policy::parse(&document).unwrap()], boundary: None }
    }

    #[test]
    fn wildcards_in_patterns() {
        assert!(glob(b"arn:aws:dynamodb:*:*:table/shop-*", TABLE.as_bytes(), false));
        assert!(glob(b"*", b"", false));
        assert!(glob(b"a*b*c", b"aXXbYYbc", false));
        assert!(!glob(b"a*b*c", b"aXXbYYbd", false));
        assert!(glob(b"table/t?", b"table/t1", false));
        assert!(!glob(b"table/t?", b"table/t12", false));
        assert!(!glob(b"table/t?", b"table/t", false));
        assert!(glob(b"p/?", "p/é".as_bytes(), false));
        assert!(!glob(b"table/Orders", b"table/orders", false), "resources are case-sensitive");
        assert!(glob(b"DynamoDB:getitem", b"dynamodb:GetItem", true), "actions are not");
        assert!(glob(b"dynamodb:Get*", b"dynamodb:GetItem", true));
        assert!(!glob(b"dynamodb:Get*", b"dynamodb:PutItem", true));
    }

    #[test]
    fn exact_arns_and_wildcard_actions() {
        let policies = role(json!([
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": [TABLE]},
            {"Effect": "Allow", "Action": "sqs:*", "Resource": "arn:aws:sqs:us-east-1:123456789012:q-?"},
        ]));
        assert_eq!(policies.decide("dynamodb:PutItem", TABLE), Decision::Allow);
        assert_eq!(policies.decide("DYNAMODB:putitem", TABLE), Decision::Allow);
        assert_eq!(policies.decide("dynamodb:DeleteItem", TABLE), Decision::NoAllow);
        assert_eq!(policies.decide("dynamodb:PutItem", &format!("{TABLE}/index/by_log")), Decision::NoAllow);
        assert_eq!(policies.decide("dynamodb:PutItem", &format!("{TABLE}2")), Decision::NoAllow);
        assert_eq!(policies.decide("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q-1"), Decision::Allow);
        assert_eq!(policies.decide("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q-12"), Decision::NoAllow);
    }

    #[test]
    fn log_group_grants_cover_its_streams() {
        let policies = role(json!({"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn:*"}));
        let stream = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn:log-stream:2024/01/01/[$LATEST]ab";
        assert_eq!(policies.decide("logs:PutLogEvents", stream), Decision::Allow);
        let other = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn2:log-stream:x";
        assert_eq!(policies.decide("logs:PutLogEvents", other), Decision::NoAllow);
    }

    #[test]
    fn not_action_and_not_resource() {
        let policies = role(json!([
            {"Effect": "Allow", "NotAction": "dynamodb:Delete*", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "NotResource": [TABLE, "arn:aws:sqs:*"]},
        ]));
        assert_eq!(policies.decide("dynamodb:PutItem", TABLE), Decision::Allow);
        assert_eq!(policies.decide("dynamodb:DeleteItem", TABLE), Decision::NoAllow);
        assert_eq!(policies.decide("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q"), Decision::Allow);
        assert_eq!(policies.decide("dynamodb:PutItem", &format!("{TABLE}-other")), Decision::ExplicitDeny);
    }

    #[test]
    fn explicit_deny_wins_across_policies() {
        let allow =
            Policy::parse(&json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}).to_string())
                .unwrap();
        let deny = Policy::parse(
            &json!({"Statement": [{"Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": TABLE}]}).to_string(),
        )
        .unwrap();
        let policies = RolePolicies { identity: vec![deny, allow], boundary: None };
        assert_eq!(policies.decide("dynamodb:PutItem", TABLE), Decision::ExplicitDeny);
        assert_eq!(policies.decide("dynamodb:GetItem", TABLE), Decision::Allow);
    }

    #[test]
    fn a_conditional_statement_does_not_grant_but_still_denies() {
        let policies = role(json!([
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE,
             "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["a"]}}},
            {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE, "Condition": {}},
        ]));
        assert_eq!(policies.decide("dynamodb:GetItem", TABLE), Decision::NoAllow);
        assert_eq!(policies.decide("dynamodb:PutItem", TABLE), Decision::Allow, "an empty Condition is none");
        let denying = role(json!([
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "dynamodb:GetItem", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ]));
        assert_eq!(denying.decide("dynamodb:GetItem", TABLE), Decision::ExplicitDeny);
    }

    #[test]
    fn a_permissions_boundary_limits_the_grants() {
        let mut policies = role(json!({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}));
        policies.boundary = Some(
            Policy::parse(
                &json!({"Statement": {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}}).to_string(),
            )
            .unwrap(),
        );
        assert_eq!(policies.decide("dynamodb:GetItem", TABLE), Decision::Allow);
        assert_eq!(policies.decide("dynamodb:PutItem", TABLE), Decision::NoBoundaryAllow);
    }

    #[test]
    fn no_policies_deny_everything_and_malformed_ones_are_errors() {
        assert_eq!(RolePolicies::default().decide("sts:GetCallerIdentity", "*"), Decision::NoAllow);
        assert!(Policy::parse("{").is_err());
        assert!(Policy::parse(r#"{"Statement": [{"Effect": "Allow", "Resource": "*"}]}"#).is_err());
        assert!(Policy::parse(r#"{"Statement": [{"Effect": "Permit", "Action": "*", "Resource": "*"}]}"#).is_err());
        assert!(
            Policy::parse(
                r#"{"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"}]}"#
            )
            .is_err()
        );
    }
}
