//! Keeps glibc's allocator from holding on to memory a backup has freed.
//!
//! glibc gives every thread that contends for the heap an arena of its own, up to 8 per
//! core, and a backup's 32 downloads run on as many blocking threads, each freeing
//! MiB-sized message buffers that stay resident in its arena. Measured (docs/BENCHMARKS.md,
//! peak memory): the peak RSS of `strongroom backup` grew with the tenant while its heap did
//! not. Two shared arenas bound what is retained. (A fixed 1 MiB mmap threshold as well
//! saved another ~30 MiB, but mapping every MiB-sized buffer anew doubled the backup's
//! system time, so it is not set.)

/// Arenas the threads share: the CPU work runs on two cores' worth of threads anyway, and
/// every extra arena keeps its own freed memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Sets the allocator's policy; call first in `main`, before threads start.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn bound_retention() {
    // SAFETY: mallopt only changes glibc's malloc parameters; it is called before any other
    // thread exists, and a refused value (return 0) leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Other allocators and platforms keep their defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn bound_retention() {}
