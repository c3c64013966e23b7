//! cqrs-es with postgres-es: a `Registration` aggregate whose `Register`
//! command succeeds once per aggregate id, executed through
//! `CqrsFramework::execute` (load the aggregate's events, handle, commit with
//! the next sequence number; a lost race is `AggregateConflict`).
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateError, DomainEvent};
use postgres_es::PostgresCqrs;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::drive::{Outcome, Registrar};

/// Padding that brings each event's JSON data to about 100 bytes, as reventless's.
const NOTE: &str = "benchmark payload padding to about one hundred bytes of json......";

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Registration {
    registered: bool,
}

#[derive(Debug)]
pub enum RegistrationCommand {
    Register,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RegistrationEvent {
    Registered { note: String },
}

impl DomainEvent for RegistrationEvent {
    fn event_type(&self) -> String {
        "Registered".into()
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("already registered")]
    AlreadyRegistered,
}

impl Aggregate for Registration {
    const TYPE: &'static str = "Registration";
    type Command = RegistrationCommand;
    type Event = RegistrationEvent;
    type Error = RegistrationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: RegistrationCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), RegistrationError> {
        let RegistrationCommand::Register = command;
        if self.registered {
            return Err(RegistrationError::AlreadyRegistered);
        }
        sink.write(RegistrationEvent::Registered { note: NOTE.into() }, self).await;
        Ok(())
    }

    fn apply(&mut self, event: RegistrationEvent) {
        let RegistrationEvent::Registered { .. } = event;
        self.registered = true;
    }
}

pub struct CqrsEs {
    cqrs: PostgresCqrs<Registration>,
    pool: PgPool,
}

impl CqrsEs {
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self, String> {
        let pool = crate::pool::in_schema(url, "bench_cqrs_es", pool_size).await?;
        sqlx::raw_sql(include_str!("postgres_es.sql"))
            .execute(&pool)
            .await
            .map_err(|e| format!("creating postgres-es's events table: {e}"))?;
        let cqrs = postgres_es::postgres_cqrs(pool.clone(), Vec::new(), ());
        Ok(Self { cqrs, pool })
    }
}

#[async_trait::async_trait]
impl Registrar for CqrsEs {
    async fn register(&self, id: &str) -> Result<Outcome, String> {
        match self.cqrs.execute(id, RegistrationCommand::Register).await {
            Ok(()) => Ok(Outcome::Registered),
            Err(AggregateError::UserError(RegistrationError::AlreadyRegistered)) => Ok(Outcome::Rejected),
            Err(AggregateError::AggregateConflict) => Ok(Outcome::Conflict),
            Err(other) => Err(format!("cqrs-es: {other}")),
        }
    }

    async fn stored_twice(&self, prefix: &str) -> Result<u64, String> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT aggregate_id FROM events WHERE aggregate_type = $1 \
             AND starts_with(aggregate_id, $2) GROUP BY aggregate_id HAVING count(*) > 1) twice",
        )
        .bind(Registration::TYPE)
        .bind(prefix)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| format!("counting cqrs-es events: {e}"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
