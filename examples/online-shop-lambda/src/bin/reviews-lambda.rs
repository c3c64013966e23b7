//! The Reviews plugin's Lambda `bootstrap` (a plugin that joins a running
//! shop stage on its own: `reventless deploy --plugin reviews`).
fn main() -> std::process::ExitCode {
    online_shop_lambda::serve(online_shop::reviews::plugin())
}
