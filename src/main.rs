use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tenantry::cli::main().await
}
