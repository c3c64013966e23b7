//! The platform gateway's Lambda `bootstrap`: one GraphQL URL serving every
//! plugin registered with the stage.
fn main() -> std::process::ExitCode {
    reventless_aws::gateway::main()
}
