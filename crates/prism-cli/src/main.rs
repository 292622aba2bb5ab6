//! The `prism` binary: parses the command line and hands over to [`prism_cli`].

use std::process::ExitCode;

/// mimalloc instead of glibc malloc: the planes allocate and free many small buffers per request
/// across threads, where glibc's arenas spent about a quarter of the data plane's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    prism_cli::main()
}
