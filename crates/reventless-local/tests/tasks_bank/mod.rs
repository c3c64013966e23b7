//! A bank whose clerks import account movements from files (the task
//! tests' plugin). Deposits are not idempotent: a record sent twice appends twice.
use reventless_core::{Caller, Plugin};
use reventless_spec::{Aggregate, Command, Dispatch, Event, TaskFormat, TaskSlice};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
enum AccountCommand {
    Open { owner: String },
    Deposit { amount: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[derive(Debug, Serialize)]
enum AccountError {
    AlreadyOpen,
    NotOpen,
}

#[derive(Clone, Default)]
struct AccountState {
    open: bool,
}

/// Deposits are not idempotent: a record sent twice appends twice.
struct Account;

impl Aggregate for Account {
    const NAME: &'static str = "Account";
    const ROLES: &'static [&'static str] = &["Clerk"];
    type Command = AccountCommand;
    type Event = AccountEvent;
    type State = AccountState;
    type Error = AccountError;

    fn decide(_: &str, state: &AccountState, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open { .. } if state.open => Err(AccountError::AlreadyOpen),
            AccountCommand::Open { owner } => Ok(vec![AccountEvent::Opened { owner: owner.clone() }]),
            AccountCommand::Deposit { .. } if !state.open => Err(AccountError::NotOpen),
            AccountCommand::Deposit { amount } => Ok(vec![AccountEvent::Deposited { amount: *amount }]),
        }
    }

    fn evolve(mut state: AccountState, event: &AccountEvent) -> AccountState {
        if let AccountEvent::Opened { .. } = event {
            state.open = true;
        }
        state
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct Movement {
    account: String,
    /// `open` or `deposit`.
    kind: String,
    owner: Option<String>,
    amount: Option<u64>,
}

#[derive(Debug, Serialize)]
enum MovementError {
    UnknownKind { kind: String },
}

struct ImportMovements;

impl TaskSlice for ImportMovements {
    const NAME: &'static str = "ImportMovements";
    const ROLES: &'static [&'static str] = &["Clerk", "Auditor"];
    type Record = Movement;
    type Error = MovementError;

    fn commands(record: &Movement) -> Result<Vec<Dispatch>, MovementError> {
        let command = match record.kind.as_str() {
            "open" => AccountCommand::Open { owner: record.owner.clone().unwrap_or_default() },
            "deposit" => AccountCommand::Deposit { amount: record.amount.unwrap_or(0) },
            other => return Err(MovementError::UnknownKind { kind: other.to_string() }),
        };
        Ok(vec![Dispatch::aggregate::<Account>(&record.account, &command).unwrap()])
    }
}

/// JSON lines only.
struct ImportJsonOnly;

impl TaskSlice for ImportJsonOnly {
    const NAME: &'static str = "ImportJsonOnly";
    const FORMATS: &'static [TaskFormat] = &[TaskFormat::JsonLines];
    type Record = Movement;
    type Error = MovementError;

    fn commands(record: &Movement) -> Result<Vec<Dispatch>, MovementError> {
        ImportMovements::commands(record)
    }
}

pub fn plugin() -> Plugin {
    Plugin::new("Bank").aggregate::<Account>().task::<ImportMovements>().task::<ImportJsonOnly>()
}

#[allow(dead_code)] // the HTTP tests send headers instead
pub fn clerk() -> Caller {
    Caller { user_id: Some("ann".into()), roles: vec!["Clerk".into()] }
}
