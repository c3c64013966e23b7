//! Category slices: each command type decides itself over the events tagged
//! with its category.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::{CatalogError, CatalogEvent};

/// What the category slices know about one category.
#[derive(Clone, Debug, Default)]
pub struct CategoryState {
    name: Option<String>,
    archived: bool,
}

fn evolve_category(mut state: CategoryState, event: &CatalogEvent) -> CategoryState {
    match event {
        CatalogEvent::CategoryAdded { name, .. } | CatalogEvent::CategoryRenamed { name, .. } => {
            state.name = Some(name.clone());
        }
        CatalogEvent::CategoryArchived { .. } => state.archived = true,
        _ => {}
    }
    state
}

/// `Catalog_AddCategory(categoryId, name)`: a category id is used once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct AddCategory {
    #[tag]
    pub category_id: String,
    pub name: String,
}

impl StateChangeSlice for AddCategory {
    const NAME: &'static str = "AddCategory";
    const ROLES: &'static [&'static str] = super::MANAGERS;
    const CONSUMES: &'static [&'static str] = &["CategoryAdded"];
    const PRODUCES: &'static [&'static str] = &["CategoryAdded"];
    type Command = Self;
    type Event = CatalogEvent;
    type State = CategoryState;
    type Error = CatalogError;

    fn evolve(state: CategoryState, event: &CatalogEvent) -> CategoryState {
        evolve_category(state, event)
    }

    fn decide(state: &CategoryState, command: &Self) -> Result<Vec<CatalogEvent>, CatalogError> {
        if state.name.is_some() {
            return Err(CatalogError::CategoryAlreadyExists);
        }
        Ok(vec![CatalogEvent::CategoryAdded { category_id: command.category_id.clone(), name: command.name.clone() }])
    }
}

/// `Catalog_RenameCategory(categoryId, name)`: the same name changes nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct RenameCategory {
    #[tag]
    pub category_id: String,
    pub name: String,
}

impl StateChangeSlice for RenameCategory {
    const NAME: &'static str = "RenameCategory";
    const ROLES: &'static [&'static str] = super::MANAGERS;
    const CONSUMES: &'static [&'static str] = &["CategoryAdded", "CategoryRenamed"];
    const PRODUCES: &'static [&'static str] = &["CategoryRenamed"];
    type Command = Self;
    type Event = CatalogEvent;
    type State = CategoryState;
    type Error = CatalogError;

    fn evolve(state: CategoryState, event: &CatalogEvent) -> CategoryState {
        evolve_category(state, event)
    }

    fn decide(state: &CategoryState, command: &Self) -> Result<Vec<CatalogEvent>, CatalogError> {
        match &state.name {
            None => Err(CatalogError::CategoryNotFound),
            Some(name) if *name == command.name => Ok(vec![]),
            Some(_) => Ok(vec![CatalogEvent::CategoryRenamed {
                category_id: command.category_id.clone(),
                name: command.name.clone(),
            }]),
        }
    }
}

/// `Catalog_ArchiveCategory(categoryId)`: archiving twice changes nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveCategory {
    #[tag]
    pub category_id: String,
}

impl StateChangeSlice for ArchiveCategory {
    const NAME: &'static str = "ArchiveCategory";
    const ROLES: &'static [&'static str] = super::MANAGERS;
    const CONSUMES: &'static [&'static str] = &["CategoryAdded", "CategoryArchived"];
    const PRODUCES: &'static [&'static str] = &["CategoryArchived"];
    type Command = Self;
    type Event = CatalogEvent;
    type State = CategoryState;
    type Error = CatalogError;

    fn evolve(state: CategoryState, event: &CatalogEvent) -> CategoryState {
        evolve_category(state, event)
    }

    fn decide(state: &CategoryState, command: &Self) -> Result<Vec<CatalogEvent>, CatalogError> {
        if state.name.is_none() {
            return Err(CatalogError::CategoryNotFound);
        }
        if state.archived {
            return Ok(vec![]);
        }
        Ok(vec![CatalogEvent::CategoryArchived { category_id: command.category_id.clone() }])
    }
}
