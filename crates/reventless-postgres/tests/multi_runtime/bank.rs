//! The test plugin: accounts (an aggregate), their balances (a read model
//! counting every applied event) and a welcome bonus (an automation whose
//! command is idempotent).
use reventless_core::{CommandRequest, Plugin};
use reventless_spec::{Action, Aggregate, Command, Event, EventEnvelope, ReadModel};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
enum AccountCommand {
    Open { owner: String },
    Deposit { amount: u64, bonus: bool },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
#[serde(rename_all_fields = "camelCase")]
enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64, bonus: bool },
}

#[derive(Debug, Serialize)]
enum AccountError {
    AlreadyOpen,
    NotOpen,
}

#[derive(Clone, Default)]
struct AccountState {
    open: bool,
    bonus_paid: bool,
}

struct Account;

impl Aggregate for Account {
    const NAME: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type State = AccountState;
    type Error = AccountError;

    fn decide(_id: &str, state: &AccountState, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open { .. } if state.open => Err(AccountError::AlreadyOpen),
            AccountCommand::Open { owner } => Ok(vec![AccountEvent::Opened { owner: owner.clone() }]),
            _ if !state.open => Err(AccountError::NotOpen),
            // The bonus is paid once, however often the automation asks.
            AccountCommand::Deposit { bonus: true, .. } if state.bonus_paid => Ok(vec![]),
            AccountCommand::Deposit { amount, bonus } => {
                Ok(vec![AccountEvent::Deposited { amount: *amount, bonus: *bonus }])
            }
        }
    }

    fn evolve(mut state: AccountState, event: &AccountEvent) -> AccountState {
        match event {
            AccountEvent::Opened { .. } => state.open = true,
            AccountEvent::Deposited { bonus, .. } => state.bonus_paid |= bonus,
        }
        state
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BalanceRow {
    pub balance: u64,
    /// Applications of events: a doubly applied event shows here.
    pub movements: u64,
}

struct Balances;

impl ReadModel for Balances {
    const NAME: &'static str = "Balance";
    const PLURAL: &'static str = "Balances";
    const CONSUMES: &'static [&'static str] = &["Opened", "Deposited"];
    type Event = AccountEvent;
    type Row = BalanceRow;

    fn project(event: &AccountEvent, envelope: &EventEnvelope) -> Vec<Action<BalanceRow>> {
        let Some(stream) = &envelope.stream else { return vec![] };
        let id = stream.id.clone();
        vec![match event {
            AccountEvent::Opened { .. } => Action::set(id, BalanceRow { balance: 0, movements: 1 }),
            AccountEvent::Deposited { amount, .. } => {
                let amount = *amount;
                Action::update(id, move |row: &mut BalanceRow| {
                    row.balance += amount;
                    row.movements += 1;
                })
            }
        }]
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct Bonus {
    owner: String,
}

/// Every new account gets a bonus of 10; the bonus deposit resolves the item.
struct WelcomeBonus;

impl reventless_spec::AutomationSlice for WelcomeBonus {
    const NAME: &'static str = "WelcomeBonus";
    const CONSUMES: &'static [&'static str] = &["Opened", "Deposited"];
    type Event = AccountEvent;
    type Item = Bonus;

    fn collect(event: &AccountEvent, envelope: &EventEnvelope) -> Option<(String, Bonus)> {
        match (event, &envelope.stream) {
            (AccountEvent::Opened { owner }, Some(stream)) => Some((stream.id.clone(), Bonus { owner: owner.clone() })),
            _ => None,
        }
    }

    fn resolve(event: &AccountEvent, envelope: &EventEnvelope) -> Option<String> {
        matches!(event, AccountEvent::Deposited { bonus: true, .. })
            .then(|| envelope.stream.as_ref().map(|s| s.id.clone()))
            .flatten()
    }

    fn process(id: &str, _: &Bonus) -> Vec<reventless_spec::Dispatch> {
        let bonus = AccountCommand::Deposit { amount: 10, bonus: true };
        reventless_spec::Dispatch::aggregate::<Account>(id, &bonus).into_iter().collect()
    }
}

pub fn bank() -> Plugin {
    Plugin::new("Bank").aggregate::<Account>().read_model::<Balances>().automation::<WelcomeBonus>()
}

pub const BALANCES: &str = "Bank_Balances";
pub const TODOS: &str = "Bank_WelcomeBonusTodos";
/// The followers' checkpoints: one projection, one automation.
pub const FOLLOWERS: [&str; 2] = ["Bank_Balances@Bank", "Bank_WelcomeBonusTodos@Bank"];

pub fn request(command: &str, id: &str, input: Value) -> CommandRequest {
    CommandRequest::new("Bank", command, input).entity(id)
}
