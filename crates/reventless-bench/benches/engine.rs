//! Micro-benchmarks of the engine's hot pure steps (no I/O).
use criterion::{Criterion, criterion_group, criterion_main};
use reventless_spec::{Query, QueryItem, Tag, to_wire};

fn tag(text: &str) -> Tag {
    text.parse().expect("tag")
}

fn query_matching(c: &mut Criterion) {
    let query = Query::none()
        .item(QueryItem::new().types(["CategoryAdded", "CategoryArchived"]).tags([tag("category:books")]))
        .item(QueryItem::new().types(["ProductAdded"]).tags([tag("product:p1")]));
    let tags = [tag("product:p1"), tag("category:books")];
    c.bench_function("query/matches (2 items, 2 tags)", |b| {
        b.iter(|| std::hint::black_box(query.matches(std::hint::black_box("ProductAdded"), &tags)))
    });
}

fn wire(c: &mut Criterion) {
    let event = reventless_bench_workload::event();
    c.bench_function("message/to_wire (~100 byte event)", |b| b.iter(|| std::hint::black_box(to_wire(&event))));
}

mod reventless_bench_workload {
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, reventless_spec::Event)]
    pub enum CounterEvent {
        Added { amount: u64, note: String },
    }

    pub fn event() -> CounterEvent {
        CounterEvent::Added {
            amount: 1,
            note: "benchmark payload padding to about one hundred bytes of json......".into(),
        }
    }
}

criterion_group!(benches, query_matching, wire);
criterion_main!(benches);
