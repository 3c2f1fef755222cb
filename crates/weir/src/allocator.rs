//! The allocator of the weir binary: mimalloc, told to give freed memory back at once.
//!
//! A job allocates and frees many small objects (JSON values, records); glibc's malloc took a
//! tenth of the event path's CPU, and with mimalloc the path needs a fifth less CPU per file.
//! mimalloc keeps freed memory for a second before returning it, though, and a parallel pass
//! over a large file (pieces allocated on one thread, freed on another) then held three times the
//! memory it uses, past the 64 MiB that `weir process` is allowed; returning it at once keeps the
//! pass at a third of that, at no cost measurable on the event path.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` of mimalloc's `mi_option_e`, in the v3 that libmimalloc-sys builds;
/// the crate does not name it. A test checks that it has the purge delay's default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets mimalloc's options; call first thing in `main`.
pub fn configure() {
    // SAFETY: mi_option_set is not thread safe; this runs before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: reading an option; no other test sets mimalloc options.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(default, 1000, "option 15 should be mimalloc v3's purge delay (default 1000 ms)");
        super::configure();
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) }, 0);
    }
}
