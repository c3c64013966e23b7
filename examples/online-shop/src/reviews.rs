//! The Reviews plugin: customers rate products. Small on purpose — one
//! aggregate and one read model — it is the plugin the deploy tests add to a
//! running shop stage and remove again (`Reviews_Review_Submit(id, …)`,
//! `Reviews_Review(id)`, `Reviews_Reviews(filter: {productId})`).
use reventless::Plugin;
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

pub const PLUGIN: &str = "Reviews";

/// The best rating (the worst is 1).
pub const MAX_RATING: i64 = 5;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
pub enum ReviewCommand {
    /// `Reviews_Review_Submit(id, productId, rating, text)`: once per review id.
    Submit { product_id: String, rating: i64, text: String },
    /// `Reviews_Review_Withdraw(id)`: withdrawing twice changes nothing.
    Withdraw,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
pub enum ReviewEvent {
    ReviewSubmitted { product_id: String, rating: i64, text: String },
    ReviewWithdrawn,
}

#[derive(Debug, Serialize)]
pub enum ReviewError {
    ReviewAlreadySubmitted,
    ReviewNotFound,
    RatingOutOfRange,
}

/// What a review's stream says: `None` before it was submitted, else withdrawn or not.
pub struct Review;

impl Aggregate for Review {
    const NAME: &'static str = "Review";
    const REQUIRES_USER: bool = true;
    type Command = ReviewCommand;
    type Event = ReviewEvent;
    type State = Option<bool>;
    type Error = ReviewError;

    fn decide(_id: &str, state: &Option<bool>, command: &ReviewCommand) -> Result<Vec<ReviewEvent>, ReviewError> {
        match (command, state) {
            (ReviewCommand::Submit { .. }, Some(_)) => Err(ReviewError::ReviewAlreadySubmitted),
            (ReviewCommand::Submit { rating, .. }, None) if !(1..=MAX_RATING).contains(rating) => {
                Err(ReviewError::RatingOutOfRange)
            }
            (ReviewCommand::Submit { product_id, rating, text }, None) => Ok(vec![ReviewEvent::ReviewSubmitted {
                product_id: product_id.clone(),
                rating: *rating,
                text: text.clone(),
            }]),
            (ReviewCommand::Withdraw, None) => Err(ReviewError::ReviewNotFound),
            (ReviewCommand::Withdraw, Some(true)) => Ok(vec![]),
            (ReviewCommand::Withdraw, Some(false)) => Ok(vec![ReviewEvent::ReviewWithdrawn]),
        }
    }

    fn evolve(_: Option<bool>, event: &ReviewEvent) -> Option<bool> {
        Some(matches!(event, ReviewEvent::ReviewWithdrawn))
    }
}

/// A row of `Reviews_Reviews`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRow {
    pub id: String,
    pub product_id: String,
    pub rating: i64,
    pub text: String,
    pub withdrawn: bool,
}

/// Every review, listed per product.
pub struct Reviews;

impl ReadModel for Reviews {
    const NAME: &'static str = "Review";
    const PLURAL: &'static str = "Reviews";
    const CONSUMES: &'static [&'static str] = &["ReviewSubmitted", "ReviewWithdrawn"];
    const INDEXES: &'static [&'static str] = &["productId"];
    type Event = ReviewEvent;
    type Row = ReviewRow;

    fn project(event: &ReviewEvent, envelope: &EventEnvelope) -> Vec<Action<ReviewRow>> {
        let id = envelope.stream.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        vec![match event {
            ReviewEvent::ReviewSubmitted { product_id, rating, text } => Action::set(
                id.clone(),
                ReviewRow { id, product_id: product_id.clone(), rating: *rating, text: text.clone(), withdrawn: false },
            ),
            ReviewEvent::ReviewWithdrawn => Action::update(id, |row: &mut ReviewRow| row.withdrawn = true),
        }]
    }
}

/// The Reviews plugin.
pub fn plugin() -> Plugin {
    Plugin::new(PLUGIN).version(env!("CARGO_PKG_VERSION")).aggregate::<Review>().read_model::<Reviews>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(rating: i64) -> ReviewCommand {
        ReviewCommand::Submit { product_id: "p1".into(), rating, text: "fine".into() }
    }

    #[test]
    fn a_review_is_submitted_once_rated_one_to_five_and_withdrawn_once() {
        assert!(matches!(Review::decide("r1", &None, &submit(0)), Err(ReviewError::RatingOutOfRange)));
        assert!(matches!(Review::decide("r1", &None, &submit(6)), Err(ReviewError::RatingOutOfRange)));
        let submitted = Review::decide("r1", &None, &submit(4)).unwrap();
        assert_eq!(
            submitted,
            vec![ReviewEvent::ReviewSubmitted { product_id: "p1".into(), rating: 4, text: "fine".into() }]
        );
        let state = Review::evolve(None, &submitted[0]);
        assert!(matches!(Review::decide("r1", &state, &submit(4)), Err(ReviewError::ReviewAlreadySubmitted)));
        let withdrawn = Review::decide("r1", &state, &ReviewCommand::Withdraw).unwrap();
        assert_eq!(withdrawn, vec![ReviewEvent::ReviewWithdrawn]);
        let state = Review::evolve(state, &withdrawn[0]);
        assert_eq!(Review::decide("r1", &state, &ReviewCommand::Withdraw).unwrap(), vec![]);
        assert!(matches!(Review::decide("r2", &None, &ReviewCommand::Withdraw), Err(ReviewError::ReviewNotFound)));
    }
}
