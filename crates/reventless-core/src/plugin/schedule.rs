//! The type-erased handler of a [`Schedule`]: its parsed expression and the
//! commands of one firing; and its entry in the manifest.
use std::marker::PhantomData;
use std::sync::Arc;

use reventless_spec::{Dispatch, Schedule, ScheduleContext, ScheduleExpression};
use serde::{Deserialize, Serialize};

use super::{BoxFuture, ComponentKind, ComponentManifest};

/// A registered schedule (type-erased).
pub trait ScheduleHandler: Send + Sync {
    /// The schedule's name (`CancelUnpaidOrders`).
    fn name(&self) -> &'static str;
    /// Its expression as written (`rate(5 minutes)`).
    fn expression(&self) -> &'static str;
    /// The commands of one firing.
    fn fire(&self, context: ScheduleContext) -> BoxFuture<Result<Vec<Dispatch>, String>>;
}

pub(super) struct ScheduleOf<S>(pub(super) PhantomData<fn() -> S>);

impl<S: Schedule> ScheduleHandler for ScheduleOf<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn expression(&self) -> &'static str {
        S::EXPRESSION
    }

    fn fire(&self, context: ScheduleContext) -> BoxFuture<Result<Vec<Dispatch>, String>> {
        Box::pin(async move { S::fire(&context).await })
    }
}

/// A schedule as the manifest lists it: deployers create one scheduler
/// entry per schedule from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleManifest {
    /// The schedule's name.
    pub name: String,
    /// `rate(...)` or `cron(...)`, as EventBridge Scheduler writes it (UTC).
    pub expression: String,
}

/// A checked schedule: its handler and parsed expression.
#[derive(Clone)]
pub struct ResolvedSchedule {
    /// The schedule.
    pub handler: Arc<dyn ScheduleHandler>,
    /// Its expression, parsed.
    pub expression: ScheduleExpression,
}

impl std::fmt::Debug for ResolvedSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedSchedule").field("name", &self.handler.name()).finish_non_exhaustive()
    }
}

/// The component entry of a schedule.
pub(super) fn schedule_component(handler: &dyn ScheduleHandler) -> ComponentManifest {
    ComponentManifest {
        kind: ComponentKind::Schedule,
        name: handler.name().to_string(),
        commands: Vec::new(),
        consumes: Vec::new(),
        produces: Vec::new(),
        log: None,
        sources: Vec::new(),
        table: None,
        indexes: Vec::new(),
        needs: Vec::new(),
        is_async: false,
    }
}
