//! The allocator of the weir binary: mimalloc, told to give freed memory back at once.
//!
//! A job allocates and frees many small objects (JSON values, records); glibc's malloc took a
//! tenth of the event path's CPU, and with mimalloc the path needs a fifth less CPU per file.
//! mimalloc keeps freed memory for a second before returning it, though, and a parallel pass
//! over a large file (pieces allocated on one thread, freed on another) then held three times the
//! memory it uses, past the 64 MiB that `weir process` is allowed; returning it at once keeps the
//! pass at a third of that, at no cost measurable on the event path.
//!
//! mimalloc also asks for transparent huge pages (`madvise(MADV_HUGEPAGE)` on its arenas), which
//! a kernel in `madvise` mode (most distributions) then gives it: a 2 MiB page is resident as a
//! whole once one byte of it is touched, and memory freed inside it is not given back. A
//! PostgreSQL load of 2M rows under `weir run` peaked at 58 to 69 MiB with them, 92 MiB after
//! three loads (more huge pages touched each time); without them at about 35 MiB, the same after
//! any number of loads. So the process turns them off for itself (`PR_SET_THP_DISABLE`, which
//! also covers the arena mimalloc reserved before `main`) and tells mimalloc not to ask.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` of mimalloc's `mi_option_e`, in the v3 that libmimalloc-sys builds;
/// the crate does not name it. A test checks that it has the purge delay's default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// `mi_option_allow_thp` of mimalloc v3's `mi_option_e` (not named by the crate either); a test
/// checks its default.
const ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Sets mimalloc's options and turns transparent huge pages off for the process; call first
/// thing in `main`.
pub fn configure() {
    // SAFETY: mi_option_set is not thread safe; this runs before any other thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(ALLOW_THP, 0);
    }
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and touches no memory of ours.
    // It fails only on kernels without THP, where there is nothing to turn off.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    /// One test: `configure` changes what the reads of the defaults see.
    #[test]
    fn the_options_set_are_the_purge_delay_and_allow_thp_and_huge_pages_are_off() {
        // SAFETY: reading options; no other test sets mimalloc options.
        let (delay, thp) = unsafe {
            (
                libmimalloc_sys::mi_option_get(super::PURGE_DELAY),
                libmimalloc_sys::mi_option_get(super::ALLOW_THP),
            )
        };
        assert_eq!(delay, 1000, "option 15 should be mimalloc v3's purge delay (default 1000 ms)");
        assert_eq!(thp, 1, "option 43 should be mimalloc v3's allow_thp (default 1)");
        super::configure();
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) }, 0);
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(super::ALLOW_THP) }, 0);
        // SAFETY: PR_GET_THP_DISABLE takes no argument.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) }, 1);
    }
}
