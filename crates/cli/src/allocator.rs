//! Keeps glibc's allocator from holding on to memory a backup has freed.
//!
//! By default glibc serves an allocation above 128 KiB from `mmap` and raises that threshold
//! to the size of every such block freed (up to 32 MiB). A backup frees MiB-sized message
//! buffers from the first second on, so afterwards they come from the heap arenas instead —
//! one arena per thread up to 8 per core, and a backup's 32 downloads run on as many blocking
//! threads — where freed blocks stay resident. Measured (docs/BENCHMARKS.md, peak memory): the
//! peak RSS of `strongroom backup` grew with the tenant while its heap did not; a fixed
//! threshold and two arenas make it flat, for a few page faults per MiB-sized buffer.

/// Buffers of this size and more are mapped and unmapped on their own (MIME batches, chunker
/// lookahead, chunks). Fixing it also stops the dynamic threshold from growing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;

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
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Other allocators and platforms keep their defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn bound_retention() {}
