//! The process's global allocator: jemalloc (the default feature `jemalloc`), mimalloc
//! (`--features mimalloc`, which takes precedence over the default) or the system's (glibc
//! malloc, `--no-default-features`). In the library, so that the gateway, its tools and the cost
//! probe (`tests/cost`) allocate alike. None needs `unsafe` here: the crates implement
//! `GlobalAlloc` themselves.
//!
//! Why not the system's: under steady load glibc's malloc lets the process's resident memory
//! grow while the heap in use stays flat — freed memory stays in its per-thread arenas (up to
//! eight per core; the gateway's threads move between runtime work, the offload and the journal
//! writers) — where jemalloc returns it (`load-tests/README.md`, "Memory at steady state").

#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The global allocator this build uses, for the start-up log line.
pub const NAME: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else if cfg!(feature = "jemalloc") {
    "jemalloc"
} else {
    "system"
};
