//! The process's global allocator: the system's (glibc malloc) unless the build chose jemalloc
//! (`--features jemalloc`) or mimalloc (`--features mimalloc`). In the library, so that the
//! gateway, its tools and the cost probe (`tests/cost`) allocate alike. Neither needs `unsafe`
//! here: the crates implement `GlobalAlloc` themselves.

#[cfg(all(feature = "jemalloc", feature = "mimalloc"))]
compile_error!(
    "choose one global allocator: the features `jemalloc` and `mimalloc` exclude each other"
);

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The global allocator this build uses, for the start-up log line.
pub const NAME: &str = if cfg!(feature = "jemalloc") {
    "jemalloc"
} else if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "system"
};
