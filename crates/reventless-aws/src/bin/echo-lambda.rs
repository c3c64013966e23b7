//! The smallest `lambda_runtime` function (answers its input): the
//! reference the plugin binaries' cold start is measured against.
fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(_) => return std::process::ExitCode::FAILURE,
    };
    let echo = lambda_runtime::service_fn(|event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
        Ok::<_, lambda_runtime::Error>(event.payload)
    });
    match runtime.block_on(lambda_runtime::run(echo)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::FAILURE,
    }
}
