//! Customers: `Ordering_Customer_Register(id, name, email)`,
//! `Ordering_Customer_UpdateEmail(id, email)`, `Ordering_Customer_Deactivate(id)`.
//! Decided as DCB slices (tag `customer:<id>`) so that placing an order can
//! check its customer in the same consistency boundary.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::{OrderingError, OrderingEvent};

/// What the customer slices know about one customer.
#[derive(Clone, Debug, Default)]
pub struct CustomerState {
    pub email: Option<String>,
    pub deactivated: bool,
}

pub(crate) fn evolve_customer(mut state: CustomerState, event: &OrderingEvent) -> CustomerState {
    match event {
        OrderingEvent::CustomerRegistered { email, .. } | OrderingEvent::CustomerEmailUpdated { email, .. } => {
            state.email = Some(email.clone());
        }
        OrderingEvent::CustomerDeactivated { .. } => state.deactivated = true,
        _ => {}
    }
    state
}

const CUSTOMER_EVENTS: &[&str] = &["CustomerRegistered", "CustomerEmailUpdated", "CustomerDeactivated"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename = "Customer_Register")]
pub struct RegisterCustomer {
    #[tag("customer")]
    pub id: String,
    pub name: String,
    pub email: String,
}

impl StateChangeSlice for RegisterCustomer {
    const NAME: &'static str = "RegisterCustomer";
    const REQUIRES_USER: bool = true;
    const CONSUMES: &'static [&'static str] = CUSTOMER_EVENTS;
    const PRODUCES: &'static [&'static str] = &["CustomerRegistered"];
    type Command = Self;
    type Event = OrderingEvent;
    type State = CustomerState;
    type Error = OrderingError;

    fn evolve(state: CustomerState, event: &OrderingEvent) -> CustomerState {
        evolve_customer(state, event)
    }

    fn decide(state: &CustomerState, c: &Self) -> Result<Vec<OrderingEvent>, OrderingError> {
        if state.email.is_some() {
            return Err(OrderingError::CustomerAlreadyRegistered);
        }
        Ok(vec![OrderingEvent::CustomerRegistered {
            customer_id: c.id.clone(),
            name: c.name.clone(),
            email: c.email.clone(),
        }])
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename = "Customer_UpdateEmail")]
pub struct UpdateCustomerEmail {
    #[tag("customer")]
    pub id: String,
    pub email: String,
}

impl StateChangeSlice for UpdateCustomerEmail {
    const NAME: &'static str = "UpdateCustomerEmail";
    const REQUIRES_USER: bool = true;
    const CONSUMES: &'static [&'static str] = CUSTOMER_EVENTS;
    const PRODUCES: &'static [&'static str] = &["CustomerEmailUpdated"];
    type Command = Self;
    type Event = OrderingEvent;
    type State = CustomerState;
    type Error = OrderingError;

    fn evolve(state: CustomerState, event: &OrderingEvent) -> CustomerState {
        evolve_customer(state, event)
    }

    fn decide(state: &CustomerState, c: &Self) -> Result<Vec<OrderingEvent>, OrderingError> {
        match &state.email {
            None => Err(OrderingError::CustomerNotFound),
            Some(email) if *email == c.email => Ok(vec![]),
            Some(_) => {
                Ok(vec![OrderingEvent::CustomerEmailUpdated { customer_id: c.id.clone(), email: c.email.clone() }])
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename = "Customer_Deactivate")]
pub struct DeactivateCustomer {
    #[tag("customer")]
    pub id: String,
}

impl StateChangeSlice for DeactivateCustomer {
    const NAME: &'static str = "DeactivateCustomer";
    const REQUIRES_USER: bool = true;
    const CONSUMES: &'static [&'static str] = CUSTOMER_EVENTS;
    const PRODUCES: &'static [&'static str] = &["CustomerDeactivated"];
    type Command = Self;
    type Event = OrderingEvent;
    type State = CustomerState;
    type Error = OrderingError;

    fn evolve(state: CustomerState, event: &OrderingEvent) -> CustomerState {
        evolve_customer(state, event)
    }

    fn decide(state: &CustomerState, c: &Self) -> Result<Vec<OrderingEvent>, OrderingError> {
        if state.email.is_none() {
            return Err(OrderingError::CustomerNotFound);
        }
        if state.deactivated {
            return Err(OrderingError::CustomerAlreadyDeactivated);
        }
        Ok(vec![OrderingEvent::CustomerDeactivated { customer_id: c.id.clone() }])
    }
}
