//! SQL of DCB reads: index-driven selects per query item, built for the
//! query's shape (the statement is cached per connection, the values are
//! parameters). Append conditions are checked by `check.rs`.
use reventless_spec::{Query, QueryItem, Tag};
use tokio_postgres::types::ToSql;

/// A statement's parameters; `$1` is always the log, `$2` the position read
/// after, `$3` the limit (NULL: none).
pub(crate) struct Args(Vec<Box<dyn ToSql + Sync + Send>>);

impl Args {
    pub(crate) fn new(log: &str, after: i64, limit: Option<i64>) -> Self {
        Self(vec![Box::new(log.to_string()), Box::new(after), Box::new(limit)])
    }

    fn push(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(value));
        format!("${}", self.0.len())
    }

    fn text(&mut self, text: &str) -> String {
        format!("{}::text", self.push(text.to_string()))
    }

    fn texts(&mut self, texts: &[String]) -> String {
        format!("{}::text[]", self.push(texts.to_vec()))
    }

    pub(crate) fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(|value| value.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

const LOG: &str = "$1::text";
const AFTER: &str = "$2::bigint";
const LIMIT: &str = "$3::bigint";

/// The columns a read decodes (see `row::decode`), of the event aliased `e`.
pub(crate) const EVENT_COLUMNS: &str =
    "e.position, e.event_id, e.type, e.tags, e.data, e.meta, e.recorded_at, e.stream_id, e.version";

/// The selects that find one query item's event positions after `$2`, each
/// in position order and cut at `$3`. An item with tags is driven by its
/// first tag, looked up twice: in the tag index (events that carry it) and
/// in the stream index (an aggregate's events carry their entity tag as
/// their stream, without a tag row). An item without tags reads the log, by
/// type when it names types (one ordered index range per type).
fn item_sources(item: &QueryItem, args: &mut Args) -> Vec<String> {
    let types = |args: &mut Args, column: &str| {
        if item.types.is_empty() {
            return String::new();
        }
        format!(" AND {column} = ANY({})", args.texts(&item.types))
    };
    // The other tags of the item: a tag row, or the event's own stream.
    let rest_tags = |args: &mut Args, rest: &[Tag], position: &str| {
        let mut sql = String::new();
        for tag in rest {
            let (tag_arg, key_arg, id_arg) =
                (args.text(&tag.to_string()), args.text(tag.key()), args.text(tag.value()));
            sql.push_str(&format!(
                " AND (EXISTS (SELECT 1 FROM event_tag tn WHERE tn.log = {LOG} AND tn.tag = {tag_arg} \
                 AND tn.position = {position}) \
                 OR EXISTS (SELECT 1 FROM event en WHERE en.log = {LOG} AND en.position = {position} \
                 AND en.stream_type = {key_arg} AND en.stream_id = {id_arg}))"
            ));
        }
        sql
    };
    let Some((first, rest)) = item.tags.split_first() else {
        if item.types.is_empty() {
            return vec![format!(
                "SELECT e.position FROM event e WHERE e.log = {LOG} AND e.position > {AFTER} \
                 ORDER BY e.position LIMIT {LIMIT}"
            )];
        }
        return item
            .types
            .iter()
            .map(|event_type| {
                let type_arg = args.text(event_type);
                format!(
                    "SELECT e.position FROM event e WHERE e.log = {LOG} AND e.type = {type_arg} \
                     AND e.position > {AFTER} ORDER BY e.position LIMIT {LIMIT}"
                )
            })
            .collect();
    };
    let first_arg = args.text(&first.to_string());
    let tag_types = types(args, "t0.type");
    let tagged = format!(
        "SELECT t0.position FROM event_tag t0 WHERE t0.log = {LOG} AND t0.tag = {first_arg} \
         AND t0.position > {AFTER}{tag_types}{} ORDER BY t0.position LIMIT {LIMIT}",
        rest_tags(args, rest, "t0.position")
    );
    let (key_arg, id_arg) = (args.text(first.key()), args.text(first.value()));
    let stream_types = types(args, "e.type");
    // Within one stream, version order is position order (and the index's).
    let streamed = format!(
        "SELECT e.position FROM event e WHERE e.log = {LOG} AND e.stream_type = {key_arg} \
         AND e.stream_id = {id_arg} AND e.position > {AFTER}{stream_types}{} ORDER BY e.version LIMIT {LIMIT}",
        rest_tags(args, rest, "e.position")
    );
    vec![tagged, streamed]
}

/// The positions of `query`'s events as one select (`None`: no items), and
/// whether it may yield a position twice (an event matching two selects).
fn positions_sql(query: &Query, args: &mut Args) -> Option<(String, bool)> {
    let selects: Vec<String> =
        query.items.iter().flat_map(|item| item_sources(item, args)).map(|select| format!("({select})")).collect();
    match selects.len() {
        0 => None,
        1 => selects.into_iter().next().map(|select| (select, false)),
        _ => Some((selects.join(" UNION ALL "), true)),
    }
}

/// The events of `log` matching `query` after `after`, at most `limit`, in
/// position order. `None` for a query without items (nothing matches).
pub(crate) fn read_sql(log: &str, query: &Query, after: i64, limit: Option<i64>) -> Option<(String, Args)> {
    let mut args = Args::new(log, after, limit);
    let (positions, merge) = positions_sql(query, &mut args)?;
    let distinct = if merge { "DISTINCT " } else { "" };
    // The matching positions first (at most `limit`), then their rows by key.
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM (SELECT {distinct}m.position FROM ({positions}) m \
         ORDER BY m.position LIMIT {LIMIT}) p JOIN event e ON e.log = {LOG} AND e.position = p.position \
         ORDER BY e.position"
    );
    Some((sql, args))
}
