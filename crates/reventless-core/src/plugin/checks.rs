//! What a plugin's registration is checked for beyond its structure: the
//! event names its components list.
use super::{EventNameTypo, EventSource, PluginError};

/// Refuses a name in a component's `CONSUMES` / `PRODUCES` that is not a
/// variant of its event type (a typo would otherwise fail silently: the
/// component would never see, or never be allowed to append, that event).
pub(super) fn check_event_names(
    plugin: &str,
    component: &str,
    list: &'static str,
    listed: &[String],
    source: &EventSource,
) -> Result<(), PluginError> {
    let Some(name) = listed.iter().find(|name| !source.event_names.contains(&name.as_str())) else {
        return Ok(());
    };
    let closest = source.event_names.iter().min_by_key(|known| edit_distance(name, known));
    let hint = match closest {
        Some(known) if edit_distance(name, known) <= known.len().max(3) / 3 => format!(" (did you mean `{known}`?)"),
        _ => format!(" (its events: {})", source.event_names.join(", ")),
    };
    Err(PluginError::UnknownEventName(Box::new(EventNameTypo {
        plugin: plugin.to_string(),
        component: format!("`{component}`"),
        list,
        name: name.clone(),
        event_type: source.event_type_name,
        hint,
    })))
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb)).min(row[j] + 1).min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}
