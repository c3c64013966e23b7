//! disintegrate with disintegrate-postgres: a `Registered` event with the
//! domain id `registration_id`, a state query over it, and a `Register`
//! decision made through its `DecisionMaker` (load the state by query,
//! process, append under SERIALIZABLE with the query as the append
//! condition; a lost race is a concurrency or serialization error).
use disintegrate::serde::json::Json;
use disintegrate::{Decision, Event, NoSnapshot, StateMutate, StateQuery};
use disintegrate_postgres::{PgDecisionMaker, PgEventStore};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::drive::{Outcome, Registrar};

/// Padding that brings each event's JSON data to about 100 bytes, as reventless's.
const NOTE: &str = "benchmark payload padding to about one hundred bytes of json......";

#[derive(Debug, Clone, PartialEq, Eq, Event, Serialize, Deserialize)]
#[stream(RegistrationEvent, [Registered])]
pub enum BenchEvent {
    Registered {
        #[id]
        registration_id: String,
        note: String,
    },
}

#[derive(Default, StateQuery, Clone, Serialize, Deserialize)]
#[state_query(RegistrationEvent)]
pub struct Registration {
    #[id]
    registration_id: String,
    registered: bool,
}

impl StateMutate for Registration {
    fn mutate(&mut self, event: Self::Event) {
        let RegistrationEvent::Registered { .. } = event;
        self.registered = true;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("already registered")]
    AlreadyRegistered,
}

pub struct Register {
    registration_id: String,
}

impl Decision for Register {
    type Event = BenchEvent;
    type StateQuery = Registration;
    type Error = RegistrationError;

    fn state_query(&self) -> Registration {
        Registration { registration_id: self.registration_id.clone(), registered: false }
    }

    fn process(&self, state: &Registration) -> Result<Vec<BenchEvent>, RegistrationError> {
        if state.registered {
            return Err(RegistrationError::AlreadyRegistered);
        }
        Ok(vec![BenchEvent::Registered { registration_id: self.registration_id.clone(), note: NOTE.into() }])
    }
}

pub struct Disintegrate {
    decisions: PgDecisionMaker<BenchEvent, Json<BenchEvent>, NoSnapshot>,
    pool: PgPool,
}

impl Disintegrate {
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self, String> {
        let pool = crate::pool::in_schema(url, "bench_disintegrate", pool_size).await?;
        let version: String = sqlx::query_scalar("SHOW server_version_num")
            .fetch_one(&pool)
            .await
            .map_err(|e| format!("reading the server version: {e}"))?;
        let store = if version.parse::<u32>().unwrap_or(0) >= 160_000 {
            // disintegrate's own migrator: tables, epoch functions, domain id columns.
            PgEventStore::try_new(pool.clone(), Json::<BenchEvent>::default())
                .await
                .map_err(|e| format!("disintegrate event store: {e}"))?
        } else {
            sqlx::raw_sql(include_str!("disintegrate_pg15.sql"))
                .execute(&pool)
                .await
                .map_err(|e| format!("creating disintegrate's schema: {e}"))?;
            PgEventStore::new_uninitialized(pool.clone(), Json::<BenchEvent>::default())
        };
        Ok(Self { decisions: disintegrate_postgres::decision_maker(store, NoSnapshot), pool })
    }
}

/// Serialization failures and deadlocks are what SERIALIZABLE reports for a lost race.
fn is_conflict(error: &disintegrate_postgres::Error) -> bool {
    match error {
        disintegrate_postgres::Error::Concurrency => true,
        disintegrate_postgres::Error::Database(sqlx::Error::Database(database)) => {
            matches!(database.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

#[async_trait::async_trait]
impl Registrar for Disintegrate {
    async fn register(&self, id: &str) -> Result<Outcome, String> {
        match self.decisions.make(Register { registration_id: id.to_string() }).await {
            Ok(_) => Ok(Outcome::Registered),
            Err(disintegrate::DecisionError::Domain(RegistrationError::AlreadyRegistered)) => Ok(Outcome::Rejected),
            Err(disintegrate::DecisionError::StateStore(error) | disintegrate::DecisionError::EventStore(error)) => {
                match error.downcast_ref::<disintegrate_postgres::Error>() {
                    Some(error) if is_conflict(error) => Ok(Outcome::Conflict),
                    _ => Err(format!("disintegrate: {error}")),
                }
            }
        }
    }

    async fn stored_twice(&self, prefix: &str) -> Result<u64, String> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT registration_id FROM event WHERE event_type = 'Registered' \
             AND starts_with(registration_id, $1) GROUP BY registration_id HAVING count(*) > 1) twice",
        )
        .bind(prefix)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| format!("counting disintegrate events: {e}"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
