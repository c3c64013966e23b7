//! Three `online-shop dev --postgres URL` processes on one throwaway
//! PostgreSQL database take commands over GraphQL from concurrent clients;
//! the process running the mail follower is killed with SIGKILL mid-load and
//! the load goes on through the survivors. Then: every accepted command has
//! exactly its events in the log and no event is there twice; the read models
//! equal a fold of the log; each placed order's confirmation is delivered
//! exactly once (the shared mail outbox, idempotency key = order id); the
//! killed process's followers moved to a survivor within seconds; commands
//! in flight to it, resent to a survivor with the same ids, took effect once.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
#[path = "multi_process/log_fold.rs"]
mod log_fold;
#[path = "multi_process/processes.rs"]
mod processes;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use online_shop::catalog::CatalogEvent;
use online_shop::ordering::{OrderingEvent, OutboxAttempt, read_outbox};
use reventless::spec::Timestamp;
use reventless_postgres::event_log::PgEventLog;
use reventless_postgres::{PgDatabase, PgOptions};
use tokio::sync::watch;

use log_fold::{decode, fold, once, read_log, row_differences};
use processes::{Api, Outcome, Processes};

const PROCESSES: usize = 3;
const WORKERS: usize = 6;
/// Commands each worker sends; the kill comes after `KILL_AFTER` of them were answered.
const STEPS: usize = 60;
const KILL_AFTER: usize = 120;
/// Clients that send to the process about to be killed, each its next
/// command as soon as the last is answered, until it dies.
const LANES: usize = 12;
const PRODUCTS: usize = 8;
const CUSTOMERS: usize = 24;
/// How long the killed process's followers may take to run elsewhere.
const FAILOVER_LIMIT: Duration = Duration::from_secs(20);
const MERCH: (&str, &str) = ("merch", "Merchandiser");

#[derive(Clone, Debug)]
enum Cmd {
    Register {
        id: String,
    },
    Place {
        order: String,
        customer: String,
        lines: Vec<(String, i64)>,
        express: bool,
    },
    /// A placed order sent again: must be rejected.
    Replace {
        order: String,
        customer: String,
        lines: Vec<(String, i64)>,
        express: bool,
    },
    Cancel {
        order: String,
        customer: String,
    },
}

impl Cmd {
    /// The mutation, its arguments and its caller.
    fn mutation(&self) -> (&'static str, String, (String, String)) {
        let place = |order: &str, customer: &str, lines: &[(String, i64)], express: bool| {
            let lines: Vec<String> =
                lines.iter().map(|(p, q)| format!(r#"{{productId: "{p}", quantity: {q}}}"#)).collect();
            let shipping = if express { "EXPRESS" } else { "STANDARD" };
            format!(
                r#"orderId: "{order}", customerId: "{customer}", lines: [{}], shipping: {shipping}"#,
                lines.join(", ")
            )
        };
        match self {
            Cmd::Register { id } => (
                "Ordering_Customer_Register",
                format!(r#"id: "{id}", name: "Name {id}", email: "{id}@example.org""#),
                (id.clone(), String::new()),
            ),
            Cmd::Place { order, customer, lines, express } | Cmd::Replace { order, customer, lines, express } => {
                ("Ordering_PlaceOrder", place(order, customer, lines, *express), (customer.clone(), String::new()))
            }
            Cmd::Cancel { order, customer } => {
                ("Ordering_CancelOrder", format!(r#"orderId: "{order}""#), (customer.clone(), String::new()))
            }
        }
    }
}

/// One command as the clients saw it: where it went, what it answered and,
/// when that was unknown, the two answers of a survivor to the same command.
#[derive(Clone, Debug)]
struct Sent {
    cmd: Cmd,
    process: usize,
    first: Outcome,
    resent: Vec<Outcome>,
}

impl Sent {
    /// Whether the command took effect, judged by its answers.
    fn took_effect(&self) -> bool {
        let answer = if matches!(self.first, Outcome::Unknown(_)) { self.resent.first() } else { Some(&self.first) };
        match (answer, &self.cmd) {
            (Some(Outcome::Accepted { .. }), _) => true,
            // Rejected as already there: the process that died had done it.
            (Some(Outcome::Rejected(code)), Cmd::Place { .. }) if !self.resent.is_empty() => {
                code == "OrderAlreadyPlaced"
            }
            (Some(Outcome::Rejected(code)), Cmd::Register { .. }) if !self.resent.is_empty() => {
                code == "CustomerAlreadyRegistered"
            }
            _ => false,
        }
    }
}

/// What worker `w` sends at `step`, given the orders it placed so far.
fn plan(w: usize, step: usize, placed: &[Cmd], cancellable: &mut Vec<Cmd>) -> Cmd {
    match step % 10 {
        9 => return Cmd::Register { id: format!("n{w}-{step}") },
        5 if !cancellable.is_empty() => {
            if let Some(Cmd::Place { order, customer, .. }) = cancellable.pop() {
                return Cmd::Cancel { order, customer };
            }
        }
        7 if !placed.is_empty() => {
            if let Cmd::Place { order, customer, lines, express } = placed[step % placed.len()].clone() {
                return Cmd::Replace { order, customer, lines, express };
            }
        }
        _ => {}
    }
    let mut lines = vec![(format!("p{}", step % PRODUCTS), (step % 3) as i64 + 1)];
    if step.is_multiple_of(2) {
        lines.push((format!("p{}", (step + 3) % PRODUCTS), 1));
    }
    Cmd::Place {
        order: format!("o{w}-{step}"),
        customer: format!("c{}", (w * 5 + step) % CUSTOMERS),
        lines,
        express: step.is_multiple_of(3),
    }
}

/// Sends `cmd` to `process`; when the answer is unknown (the process was
/// killed), resends it with the same ids to a survivor, twice. `answered`
/// counts the answers of `process`.
async fn send_resending(api: &Api, process: usize, cmd: Cmd, turn: usize, answered: &watch::Sender<usize>) -> Sent {
    let first = api.send(process, &cmd).await;
    let mut record = Sent { cmd, process, first, resent: Vec::new() };
    if !matches!(record.first, Outcome::Unknown(_)) {
        answered.send_modify(|n| *n += 1);
        return record;
    }
    // Only the killed process may leave an answer unknown: wait until it is marked dead.
    let deadline = Instant::now() + Duration::from_secs(5);
    while api.alive[process].load(SeqCst) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let survivor = api.pick(turn + 1);
    record.resent.push(api.send(survivor, &record.cmd).await);
    record.resent.push(api.send(survivor, &record.cmd).await);
    record
}

/// One client: its commands in order, each to a live process.
async fn worker(api: Api, w: usize, progress: watch::Sender<usize>) -> Vec<Sent> {
    let (mut sent, mut placed, mut cancellable) = (Vec::new(), Vec::new(), Vec::new());
    for step in 0..STEPS {
        let cmd = plan(w, step, &placed, &mut cancellable);
        let record = send_resending(&api, api.pick(w + step), cmd, w + step, &progress).await;
        if record.took_effect()
            && let Cmd::Place { express, .. } = &record.cmd
        {
            placed.push(record.cmd.clone());
            if !express {
                cancellable.push(record.cmd.clone());
            }
        }
        sent.push(record);
    }
    sent
}

/// One client of the process about to be killed: it sends its next command
/// as soon as the last one is answered, so a command is in flight when the
/// process dies; the unanswered one is resent to a survivor.
async fn lane(api: Api, victim: usize, lane: usize, answered: watch::Sender<usize>) -> Vec<Sent> {
    let mut sent = Vec::new();
    for j in 0..STEPS {
        let cmd = if j % 4 == 3 {
            Cmd::Register { id: format!("k{lane}-{j}") }
        } else {
            let lines = vec![(format!("p{}", (lane + j) % PRODUCTS), 1)];
            let customer = format!("c{}", lane % CUSTOMERS);
            Cmd::Place { order: format!("k{lane}-{j}"), customer, lines, express: j.is_multiple_of(2) }
        };
        let record = send_resending(&api, victim, cmd, victim, &answered).await;
        let unanswered = matches!(record.first, Outcome::Unknown(_));
        sent.push(record);
        if unanswered {
            break;
        }
    }
    sent
}

/// Sends a setup command that must be accepted.
async fn accepted(api: &Api, process: usize, caller: (&str, &str), mutation: &str) {
    let answer = api.gql(process, caller, &format!("mutation {{ {mutation} }}")).await.unwrap();
    assert!(answer.to_string().contains("ACCEPTED"), "{mutation}: {answer}");
}

/// A category, products, customers; then until Ordering knows every product.
async fn set_up(api: &Api) {
    accepted(api, 0, MERCH, r#"Catalog_AddCategory(categoryId: "books", name: "Books") { status }"#).await;
    for p in 0..PRODUCTS {
        let product = format!(
            r#"Catalog_AddProduct(productId: "p{p}", name: "P{p}", description: "", priceCents: {}, currency: "EUR", categoryId: "books") {{ status }}"#,
            100 + p
        );
        accepted(api, p % PROCESSES, MERCH, &product).await;
    }
    for c in 0..CUSTOMERS {
        let id = format!("c{c}");
        let register =
            format!(r#"Ordering_Customer_Register(id: "{id}", name: "C{c}", email: "{id}@example.org") {{ status }}"#);
        accepted(api, c % PROCESSES, (&id, ""), &register).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = api.rows(0, "Ordering_AvailableProducts", "id available").await;
        if rows.iter().filter(|row| row["available"] == true).count() == PRODUCTS {
            return;
        }
        assert!(Instant::now() < deadline, "products not synced to Ordering within 20 s: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `process` until `Ordering_Order(id)` is there; returns how long
/// that took from `since`.
async fn wait_for_order(api: &Api, process: usize, order: &str, since: Instant) -> Duration {
    let query = format!(r#"{{ Ordering_Order(id: "{order}") {{ id }} }}"#);
    loop {
        let data = api.query(process, &query).await;
        if !data["Ordering_Order"].is_null() {
            return since.elapsed();
        }
        assert!(since.elapsed() < FAILOVER_LIMIT, "order {order} not in the read model within {FAILOVER_LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_one_killed_mid_load_lose_nothing_and_double_nothing() {
    let started = Instant::now();
    let url = reventless_postgres::testing::shared_cluster().fresh_database().unwrap();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let outbox = dir.path().join("outbox.jsonl");
    // Everything from here on, the processes included, ends with the timeout.
    let scenario = async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
        let mut processes = Processes { children: Vec::new(), bases: Vec::new(), logs: Vec::new() };
        for index in 0..PROCESSES {
            processes.spawn(&url, dir.path(), &outbox);
            processes.wait_healthy(&client, index).await;
        }
        let alive = Arc::new((0..PROCESSES).map(|_| AtomicBool::new(true)).collect::<Vec<_>>());
        let api = Api { client, bases: Arc::new(processes.bases.clone()), alive };
        set_up(&api).await;
        let setup_done = started.elapsed();

        // Load through all three; the kill comes after KILL_AFTER commands.
        let (progress, mut sent_so_far) = watch::channel(0usize);
        let load_started = Instant::now();
        let workers: Vec<_> = (0..WORKERS).map(|w| tokio::spawn(worker(api.clone(), w, progress.clone()))).collect();
        sent_so_far.wait_for(|n| *n >= KILL_AFTER).await.unwrap();

        // The victim: the process that sent the last mail (it holds the mail follower).
        let before = read_outbox(&outbox).unwrap();
        let victim = before.last().and_then(|a| processes.index_of(a.pid)).unwrap_or(0);
        let victim_pid = processes.children[victim].id();
        let (answered, mut victim_answers) = watch::channel(0usize);
        let lanes: Vec<_> = (0..LANES).map(|l| tokio::spawn(lane(api.clone(), victim, l, answered.clone()))).collect();
        victim_answers.wait_for(|n| *n >= LANES).await.unwrap();
        processes.children[victim].kill().unwrap();
        processes.children[victim].wait().unwrap();
        let (killed_at, killed_ms) = (Instant::now(), Timestamp::now().0);
        api.alive[victim].store(false, SeqCst);
        let commands_before_kill = *sent_so_far.borrow();
        let held = processes.followers(victim);
        assert!(!held.is_empty(), "the killed process ran no follower");

        // Its followers run in the survivors; an order placed now is in the read models and confirmed.
        let survivor = api.pick(victim + 1);
        let probe =
            Cmd::Place { order: "probe".into(), customer: "c0".into(), lines: vec![("p0".into(), 1)], express: false };
        let probe_outcome = api.send(survivor, &probe).await;
        assert!(matches!(probe_outcome, Outcome::Accepted { events: 1, .. }), "probe: {probe_outcome:?}");
        let taken_over = loop {
            let running: BTreeSet<String> =
                (0..PROCESSES).filter(|&p| p != victim).flat_map(|p| processes.followers(p)).collect();
            if held.is_subset(&running) {
                break killed_at.elapsed();
            }
            let missing: Vec<&String> = held.difference(&running).collect();
            assert!(
                killed_at.elapsed() < FAILOVER_LIMIT,
                "followers not taken over within {FAILOVER_LIMIT:?}: {missing:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let row_after = wait_for_order(&api, survivor, "probe", killed_at).await;

        let mut sent: Vec<Sent> = Vec::new();
        for lane in lanes {
            sent.extend(lane.await.unwrap());
        }
        let lanes_unanswered = sent.iter().filter(|s| matches!(s.first, Outcome::Unknown(_))).count();
        assert!(lanes_unanswered > 0, "no command was in flight to the killed process");
        for worker in workers {
            sent.extend(worker.await.unwrap());
        }
        sent.push(Sent { cmd: probe, process: survivor, first: probe_outcome, resent: Vec::new() });
        let load_time = load_started.elapsed();
        let checked = verify(&api, &url, &outbox, &sent, victim, victim_pid, killed_ms).await;
        eprintln!(
            "multi-process: {commands} commands ({accepted} accepted, {rejected} rejected, {unanswered} unanswered) by \
             {WORKERS} clients through {PROCESSES} processes in {load:.1} s (setup {setup:.1} s); \
             process {victim} killed after {commands_before_kill} commands while {LANES} more clients were sending to it \
             ({lanes_unanswered} of them unanswered); resent to a survivor: {before_kill} had taken effect before the kill, the rest once after; \
             its {followers} followers running in survivors {taken_over:.2} s after the kill, first survivor mail \
             {first_mail:.2} s, probe order in the read model {row_after:.2} s and confirmed {confirmed_after:.2} s \
             after the kill (behind the mail backlog); log {events} events, {rows} read-model rows == fold(log); mail {attempts} \
             attempts, {delivered} delivered (distinct keys) == placed orders, {again} sent again, senders (pid, mails in a row) {senders:?}; whole test {total:.1} s",
            commands = sent.len(),
            accepted = checked.accepted,
            rejected = checked.rejected,
            unanswered = checked.unanswered,
            load = load_time.as_secs_f64(),
            setup = setup_done.as_secs_f64(),
            before_kill = checked.effect_before_kill,
            followers = held.len(),
            taken_over = taken_over.as_secs_f64(),
            first_mail = checked.first_survivor_mail_ms as f64 / 1000.0,
            row_after = row_after.as_secs_f64(),
            confirmed_after = checked.probe_mail_ms as f64 / 1000.0,
            events = checked.events,
            rows = checked.rows,
            attempts = checked.attempts,
            delivered = checked.delivered,
            again = checked.attempts - checked.delivered,
            senders = checked.senders,
            total = started.elapsed().as_secs_f64(),
        );
    };
    tokio::time::timeout(Duration::from_secs(85), scenario).await.expect("the test ends within 85 s");
}

/// The code a command gets when what it does is already there.
fn already_there(cmd: &Cmd) -> Option<&'static str> {
    match cmd {
        Cmd::Place { .. } | Cmd::Replace { .. } => Some("OrderAlreadyPlaced"),
        Cmd::Register { .. } => Some("CustomerAlreadyRegistered"),
        Cmd::Cancel { .. } => None,
    }
}

/// The answers the clients got are the ones each command should get.
fn check_answers(sent: &[Sent], victim: usize) -> usize {
    let mut in_flight = 0;
    for s in sent {
        let answers = || std::iter::once(&s.first).chain(&s.resent);
        assert!(!answers().any(|a| matches!(a, Outcome::Failed(_))), "a command failed: {s:?}");
        if !matches!(s.first, Outcome::Unknown(_)) {
            match &s.cmd {
                Cmd::Replace { .. } => assert_eq!(s.first, Outcome::Rejected("OrderAlreadyPlaced".into()), "{s:?}"),
                _ => assert!(matches!(s.first, Outcome::Accepted { events: 1, position: Some(_) }), "{s:?}"),
            }
            continue;
        }
        in_flight += 1;
        assert_eq!(s.process, victim, "no answer from a process that was not killed: {s:?}");
        match (already_there(&s.cmd), &s.cmd) {
            (Some(code), Cmd::Replace { .. }) => {
                assert!(s.resent.iter().all(|a| *a == Outcome::Rejected(code.into())), "{s:?}")
            }
            (Some(code), _) => {
                let first = &s.resent[0];
                assert!(
                    matches!(first, Outcome::Accepted { events: 1, .. }) || *first == Outcome::Rejected(code.into()),
                    "resent after no answer: {s:?}"
                );
                assert_eq!(s.resent[1], Outcome::Rejected(code.into()), "sent a third time: {s:?}");
            }
            (None, _) => {
                assert!(matches!(s.resent[0], Outcome::Accepted { .. }), "{s:?}");
                assert!(matches!(s.resent[1], Outcome::Accepted { events: 0, .. }), "{s:?}");
            }
        }
    }
    in_flight
}

/// Whether `event` is the one `cmd` appends.
fn is_event_of(cmd: &Cmd, event: &OrderingEvent) -> bool {
    match (cmd, event) {
        (Cmd::Place { order, .. }, OrderingEvent::OrderPlaced { order_id, .. }) => order == order_id,
        (Cmd::Register { id, .. }, OrderingEvent::CustomerRegistered { customer_id, .. }) => id == customer_id,
        (Cmd::Cancel { order, .. }, OrderingEvent::OrderCancelled { order_id, .. }) => order == order_id,
        _ => false,
    }
}

/// What [`verify`] counted.
struct Checked {
    accepted: usize,
    rejected: usize,
    unanswered: usize,
    /// Unanswered commands the killed process had carried out.
    effect_before_kill: usize,
    events: usize,
    rows: usize,
    attempts: usize,
    delivered: usize,
    /// From the kill to the first mail a survivor sent.
    first_survivor_mail_ms: u64,
    /// From the kill to the probe order's mail.
    probe_mail_ms: u64,
    /// Who sent the mails, in turn: (process id, mails in a row).
    senders: Vec<(u32, usize)>,
}

async fn verify(
    api: &Api,
    url: &str,
    outbox: &Path,
    sent: &[Sent],
    victim: usize,
    victim_pid: u32,
    killed_ms: u64,
) -> Checked {
    let unanswered = check_answers(sent, victim);
    let effective = |pick: fn(&Cmd) -> Option<String>| -> BTreeSet<String> {
        sent.iter().filter(|s| s.took_effect()).filter_map(|s| pick(&s.cmd)).collect()
    };
    let placed = effective(|cmd| match cmd {
        Cmd::Place { order, .. } => Some(order.clone()),
        _ => None,
    });
    let express = effective(|cmd| match cmd {
        Cmd::Place { order, express: true, .. } => Some(order.clone()),
        _ => None,
    });
    let cancelled = effective(|cmd| match cmd {
        Cmd::Cancel { order, .. } => Some(order.clone()),
        _ => None,
    });
    let mut customers = effective(|cmd| match cmd {
        Cmd::Register { id } => Some(id.clone()),
        _ => None,
    });
    customers.extend((0..CUSTOMERS).map(|c| format!("c{c}")));
    let products: BTreeSet<String> = (0..PRODUCTS).map(|p| format!("p{p}")).collect();

    // The followers' work is done when every order is confirmed, shipped if express, and its demand
    // recorded (the mail follower trails the load by 5-15 s: it works item by item).
    let log = PgEventLog::new(PgDatabase::connect(url, PgOptions::default()).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(45);
    let (ordering, catalog) = loop {
        let ordering = decode::<OrderingEvent>(&read_log(&log, "Ordering").await);
        let catalog = decode::<CatalogEvent>(&read_log(&log, "Catalog").await);
        let count = |is: fn(&OrderingEvent) -> bool| ordering.iter().filter(|(_, _, e)| is(e)).count();
        let confirmed = count(|e| matches!(e, OrderingEvent::OrderConfirmationSent { .. }));
        let shipped = count(|e| matches!(e, OrderingEvent::OrderShipped { .. }));
        let demand = catalog.iter().filter(|(_, _, e)| matches!(e, CatalogEvent::DemandRecorded { .. })).count();
        let lines: usize = ordering
            .iter()
            .map(|(_, _, e)| if let OrderingEvent::OrderPlaced { lines, .. } = e { lines.len() } else { 0 })
            .sum();
        if (confirmed >= placed.len() && shipped >= express.len() && demand >= lines) || Instant::now() > deadline {
            break (ordering, catalog);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Each accepted command's event sits at the position it was answered with.
    let at: BTreeMap<u64, &OrderingEvent> = ordering.iter().map(|(position, _, e)| (*position, e)).collect();
    for s in sent {
        for answer in std::iter::once(&s.first).chain(&s.resent) {
            if let Outcome::Accepted { events: 1, position: Some(position) } = answer {
                assert!(
                    at.get(position).is_some_and(|e| is_event_of(&s.cmd, e)),
                    "{s:?}: log has {:?}",
                    at.get(position)
                );
            }
        }
    }
    // Exactly the events of what took effect, none twice.
    let keys = |pick: fn(&OrderingEvent) -> Option<String>| ordering.iter().filter_map(move |(_, _, e)| pick(e));
    use OrderingEvent as E;
    let placed_lines: Vec<(String, String)> = ordering
        .iter()
        .filter_map(
            |(_, _, e)| if let E::OrderPlaced { order_id, lines, .. } = e { Some((order_id, lines)) } else { None },
        )
        .flat_map(|(order, lines)| lines.iter().map(move |l| (l.product_id.clone(), order.clone())))
        .collect();
    let logged_placed = once(
        "OrderPlaced",
        keys(|e| if let E::OrderPlaced { order_id, .. } = e { Some(order_id.clone()) } else { None }),
    );
    assert_eq!(logged_placed, placed, "OrderPlaced events vs orders that took effect");
    let registered =
        keys(|e| if let E::CustomerRegistered { customer_id, .. } = e { Some(customer_id.clone()) } else { None });
    assert_eq!(once("CustomerRegistered", registered), customers);
    let logged_cancelled =
        keys(|e| if let E::OrderCancelled { order_id, .. } = e { Some(order_id.clone()) } else { None });
    assert_eq!(once("OrderCancelled", logged_cancelled), cancelled);
    let shipped = keys(|e| if let E::OrderShipped { order_id } = e { Some(order_id.clone()) } else { None });
    assert_eq!(once("OrderShipped", shipped), express, "express orders shipped by the automation, once");
    let confirmed =
        keys(|e| if let E::OrderConfirmationSent { order_id, .. } = e { Some(order_id.clone()) } else { None });
    assert_eq!(once("OrderConfirmationSent", confirmed), placed, "confirmations recorded, once per order");
    let synced = keys(|e| if let E::ProductSynced { product_id, .. } = e { Some(product_id.clone()) } else { None });
    assert_eq!(once("ProductSynced", synced), products);
    let catalog_keys = |pick: fn(&CatalogEvent) -> Option<String>| catalog.iter().filter_map(move |(_, _, e)| pick(e));
    let added = catalog_keys(|e| {
        if let CatalogEvent::ProductAdded { product_id, .. } = e { Some(product_id.clone()) } else { None }
    });
    assert_eq!(once("ProductAdded", added), products);
    let recorded = catalog_keys(|e| match e {
        CatalogEvent::DemandRecorded { product_id, order_id } => Some(format!("{product_id}/{order_id}")),
        _ => None,
    });
    let expected: BTreeSet<String> = placed_lines.iter().map(|(p, o)| format!("{p}/{o}")).collect();
    assert_eq!(once("DemandRecorded", recorded), expected, "demand recorded by Catalog's extension, once per line");
    let revoked = catalog_keys(|e| match e {
        CatalogEvent::DemandRevoked { product_id, order_id } => Some(format!("{product_id}/{order_id}")),
        _ => None,
    });
    let expected: BTreeSet<String> =
        placed_lines.iter().filter(|(_, o)| cancelled.contains(o)).map(|(p, o)| format!("{p}/{o}")).collect();
    assert_eq!(once("DemandRevoked", revoked), expected);

    // The read models each survivor serves equal the fold of the logs.
    let folded = fold(&ordering, &catalog);
    for process in (0..PROCESSES).filter(|&p| p != victim) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let differences = row_differences(api, process, &folded).await;
            if differences.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "process {process}: rows ≠ fold(log): {:#?}",
                &differences[..differences.len().min(10)]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Mail: at least once, delivered once per idempotency key.
    let attempts: Vec<OutboxAttempt> = read_outbox(outbox).unwrap();
    let delivered: BTreeSet<String> = attempts.iter().map(|a| a.mail.idempotency_key.clone()).collect();
    assert_eq!(delivered, placed, "delivered mails (distinct keys) vs placed orders");
    let resent = attempts.len() - delivered.len();
    assert!(resent <= 1, "{resent} mails sent again; at most the one in flight in the killed process");
    let after_kill = attempts.iter().filter(|a| a.at > killed_ms);
    assert!(after_kill.clone().all(|a| a.pid != victim_pid), "the killed process sent mail after its death");
    assert!(after_kill.count() > 0, "no mail sent by the survivors after the kill");
    let first_survivor_mail = attempts.iter().filter(|a| a.at > killed_ms).map(|a| a.at).min().unwrap();
    let failover_ms = u64::try_from(FAILOVER_LIMIT.as_millis()).unwrap();
    assert!(first_survivor_mail - killed_ms < failover_ms, "no mail within {FAILOVER_LIMIT:?} of the kill");
    let probe_mail = attempts.iter().find(|a| a.mail.idempotency_key == "probe").unwrap().at;
    let answered = |status: fn(&Outcome) -> bool| sent.iter().filter(|s| status(&s.first)).count();
    Checked {
        accepted: answered(|o| matches!(o, Outcome::Accepted { .. })),
        rejected: answered(|o| matches!(o, Outcome::Rejected(_))),
        unanswered,
        effect_before_kill: sent
            .iter()
            .filter(|s| matches!(s.first, Outcome::Unknown(_)))
            .filter(|s| !matches!(s.cmd, Cmd::Replace { .. }))
            .filter(|s| matches!(s.resent[0], Outcome::Rejected(_) | Outcome::Accepted { events: 0, .. }))
            .count(),
        events: ordering.len() + catalog.len(),
        rows: folded.values().map(BTreeMap::len).sum(),
        attempts: attempts.len(),
        delivered: delivered.len(),
        first_survivor_mail_ms: first_survivor_mail - killed_ms,
        senders: attempts.iter().fold(Vec::new(), |mut runs: Vec<(u32, usize)>, attempt| {
            match runs.last_mut() {
                Some((pid, count)) if *pid == attempt.pid => *count += 1,
                _ => runs.push((attempt.pid, 1)),
            }
            runs
        }),
        probe_mail_ms: probe_mail - killed_ms,
    }
}
