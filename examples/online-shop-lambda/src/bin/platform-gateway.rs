//! The shop's platform gateway `bootstrap`: one GraphQL endpoint serving
//! every plugin that registered with the stage's platform.
fn main() -> std::process::ExitCode {
    reventless_aws::gateway::main()
}
