//! The Ordering plugin's Lambda `bootstrap`.
fn main() -> std::process::ExitCode {
    online_shop_lambda::serve(online_shop::ordering::plugin())
}
