use std::process::ExitCode;

/// mimalloc rather than the system allocator: glibc's arenas are shared between the
/// runtime's threads, so requests freeing and allocating at once wait on each other's
/// locks (futex calls on the request path), and fragmented free lists are consolidated
/// on large allocations (see docs/benchmarks.md, "The hot path").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tenantry::cli::main().await
}
