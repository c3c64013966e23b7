//! The Library plugin's Lambda `bootstrap`: its role (API, commands from
//! SQS, followers on the DynamoDB stream) comes from its environment.
use reventless::prelude::Capabilities;

fn main() -> std::process::ExitCode {
    reventless_aws::lambda::main(library::plugin(), Capabilities::default())
}
