//! The shop's seed data (`online-shop seed [--sample]`): categories and
//! products, customers, then orders once the products reached Ordering, then
//! some fulfilment. Deterministic: the same data on every run.
use reventless::prelude::*;
use reventless::{Caller, Seed, SeedSize};

use crate::catalog::{self, AddCategory, AddProduct};
use crate::ordering::{self, CancelOrder, LineRequest, PlaceOrder, RegisterCustomer, ShipOrder, Shipping};

const CATEGORIES: [(&str, &str); 8] = [
    ("books", "Books"),
    ("games", "Games"),
    ("music", "Music"),
    ("garden", "Garden"),
    ("kitchen", "Kitchen"),
    ("sports", "Sports"),
    ("toys", "Toys"),
    ("office", "Office"),
];

const ADJECTIVES: [&str; 8] = ["Classic", "Compact", "Deluxe", "Eco", "Handmade", "Pocket", "Vintage", "Wooden"];
const FIRST_NAMES: [&str; 10] = ["Ada", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gia", "Hugo", "Iris", "Jon"];
const LAST_NAMES: [&str; 4] = ["Meyer", "Okafor", "Silva", "Tanaka"];

/// How many of each the two sizes hold.
struct Counts {
    categories: usize,
    products_per_category: usize,
    customers: usize,
    orders: usize,
}

impl Counts {
    fn of(size: SeedSize) -> Self {
        match size {
            SeedSize::Full => Counts { categories: 8, products_per_category: 8, customers: 20, orders: 150 },
            SeedSize::Sample => Counts { categories: 4, products_per_category: 4, customers: 8, orders: 40 },
        }
    }
}

/// A small deterministic generator (xorshift), so seeds need no randomness crate.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % sides as u64) as usize
    }
}

fn request<C: Command>(plugin: &str, command: &C, caller: &Caller) -> Option<CommandRequest> {
    let dispatch = Dispatch::slice(command).ok()?;
    Some(CommandRequest::new(plugin, dispatch.command, dispatch.input).caller(caller.clone()))
}

fn user(id: &str, roles: &[&str]) -> Caller {
    Caller { user_id: Some(id.to_string()), roles: roles.iter().map(|role| role.to_string()).collect() }
}

pub fn product_id(category: usize, index: usize) -> String {
    format!("{}-{}", CATEGORIES[category].0, index + 1)
}

pub fn customer_id(index: usize) -> String {
    format!("customer-{:02}", index + 1)
}

pub fn order_id(index: usize) -> String {
    format!("order-{:03}", index + 1)
}

/// The shop's seed data of the given size.
pub fn seed(size: SeedSize) -> Seed {
    let counts = Counts::of(size);
    let merchandiser = user("seed-merchandiser", catalog::MANAGERS);
    let fulfilment = user("seed-fulfilment", &["Fulfilment"]);
    let mut dice = Dice(0x5eed_cafe_f00d);

    let mut catalog_requests = Vec::new();
    let mut products = Vec::new();
    for (category, (category_id, name)) in CATEGORIES.iter().take(counts.categories).enumerate() {
        let add = AddCategory { category_id: category_id.to_string(), name: name.to_string() };
        catalog_requests.extend(request(catalog::PLUGIN, &add, &merchandiser));
        for index in 0..counts.products_per_category {
            let product_id = product_id(category, index);
            let adjective = ADJECTIVES[index % ADJECTIVES.len()];
            let add = AddProduct {
                product_id: product_id.clone(),
                name: format!("{adjective} {} item {}", name.to_lowercase(), index + 1),
                description: format!("A {} piece from our {} range.", adjective.to_lowercase(), name.to_lowercase()),
                price_cents: 199 + 100 * dice.roll(60) as i64,
                currency: "EUR".into(),
                category_id: category_id.to_string(),
            };
            catalog_requests.extend(request(catalog::PLUGIN, &add, &merchandiser));
            products.push(product_id);
        }
    }

    let customers: Vec<String> = (0..counts.customers).map(customer_id).collect();
    let customer_requests = customers
        .iter()
        .enumerate()
        .filter_map(|(index, id)| {
            let first = FIRST_NAMES[index % FIRST_NAMES.len()];
            let last = LAST_NAMES[index % LAST_NAMES.len()];
            let register = RegisterCustomer {
                id: id.clone(),
                name: format!("{first} {last}"),
                email: format!("{}.{}@example.org", first.to_lowercase(), last.to_lowercase()),
            };
            request(ordering::PLUGIN, &register, &user(id, &[]))
        })
        .collect();

    let mut order_requests = Vec::new();
    let mut standard_orders = Vec::new();
    for index in 0..counts.orders {
        let customer = &customers[dice.roll(customers.len())];
        let mut lines: Vec<LineRequest> = Vec::new();
        for _ in 0..1 + dice.roll(3) {
            let product_id = products[dice.roll(products.len())].clone();
            if lines.iter().all(|line| line.product_id != product_id) {
                lines.push(LineRequest { product_id, quantity: 1 + dice.roll(3) as i64 });
            }
        }
        let shipping = if index % 5 == 4 { Shipping::Express } else { Shipping::Standard };
        if shipping == Shipping::Standard {
            standard_orders.push(order_id(index));
        }
        let place = PlaceOrder { order_id: order_id(index), customer_id: customer.clone(), lines, shipping };
        order_requests.extend(request(ordering::PLUGIN, &place, &user(customer, &[])));
    }

    // Every third standard order ships, every tenth is cancelled by an admin.
    let mut fulfilment_requests = Vec::new();
    for (index, order_id) in standard_orders.iter().enumerate() {
        let order_id = order_id.clone();
        if index % 3 == 0 {
            fulfilment_requests.extend(request(ordering::PLUGIN, &ShipOrder { order_id }, &fulfilment));
        } else if index % 10 == 1 {
            fulfilment_requests.extend(request(
                ordering::PLUGIN,
                &CancelOrder { order_id },
                &user("seed-admin", &["Admin"]),
            ));
        }
    }

    Seed::new()
        .phase("catalog", catalog_requests)
        .phase("customers", customer_requests)
        .phase("orders", order_requests)
        .phase("fulfilment", fulfilment_requests)
        .already_present(&[
            "CategoryAlreadyExists",
            "ProductAlreadyExists",
            "CustomerAlreadyRegistered",
            "OrderAlreadyPlaced",
            "OrderAlreadyShipped",
            "OrderAlreadyCancelled",
        ])
}
