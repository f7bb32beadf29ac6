//! A file truncated while a window of it is mapped: the reads past its new end must not kill the
//! process.
//!
//! On Linux, reading a mapped page that lies past the end of its file raises `SIGBUS`, whose
//! default action ends the process. Another process may truncate an input at any moment (an
//! export being rewritten in place), and `Input` can only compare the file's size between
//! windows. So each mapped window is registered here while it is read, and a `SIGBUS` handler
//! replaces the pages of a registered window from the faulting one to the window's end with
//! zero-filled anonymous pages, so that the read that faulted runs again and finds zeros. The
//! check of the window goes on over bytes that are no longer the file's, and `Input` reports the
//! change of size before the next window or at the end, as it does without maps; the run's
//! verdict is that error, not those bytes'. A `SIGBUS` at an address outside every registered
//! window is not ours: the handler puts back the action that was there before and returns, and
//! the fault, raised again, takes that action.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// Windows that may be registered at once (a run maps one or two at a time; many validators in
/// one process share these). A window that finds no free slot is read unprotected.
const SLOTS: usize = 64;

/// A registered window: its address range and whether a read of it faulted. `claimed` reserves
/// the slot; `generation` is odd while the range is being written (a sequence lock), so that the
/// handler, which may run on any thread at any time, never pairs the start of one window with the
/// end of another.
struct Slot {
    claimed: AtomicBool,
    generation: AtomicUsize,
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    claimed: AtomicBool::new(false),
    generation: AtomicUsize::new(0),
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};

impl Slot {
    /// Sets the range, under the sequence lock.
    fn set(&self, start: usize, end: usize) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.start.store(start, Ordering::SeqCst);
        self.end.store(end, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The range, when no write of it was under way while it was read.
    fn range(&self) -> Option<(usize, usize)> {
        let before = self.generation.load(Ordering::SeqCst);
        if before % 2 == 1 {
            return None;
        }
        let (start, end) = (
            self.start.load(Ordering::SeqCst),
            self.end.load(Ordering::SeqCst),
        );
        (self.generation.load(Ordering::SeqCst) == before && start != 0).then_some((start, end))
    }
}

static WINDOWS: [Slot; SLOTS] = [FREE; SLOTS];
static INSTALL: Once = Once::new();
/// The page size, read when the handler is installed.
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// The action for `SIGBUS` before ours, which a fault that is not in a window is passed to.
static mut PREVIOUS: Option<libc::sigaction> = None;

/// A window's registration; dropping it (before the window is unmapped) frees its slot.
#[derive(Debug)]
pub(crate) struct Guard {
    slot: Option<usize>,
}

impl Guard {
    /// Whether a read of the window faulted (and read zeros from there on): the file was cut
    /// short under it, or its pages could not be read (an I/O error also raises `SIGBUS`).
    pub fn faulted(&self) -> bool {
        self.slot
            .is_some_and(|i| WINDOWS[i].faulted.load(Ordering::SeqCst))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            WINDOWS[i].set(0, 0);
            WINDOWS[i].claimed.store(false, Ordering::SeqCst);
        }
    }
}

/// Registers the mapped bytes `window` (a page-aligned mapping of a file) for the handler.
pub(crate) fn register(window: &[u8]) -> Guard {
    INSTALL.call_once(install);
    let start = window.as_ptr() as usize;
    let end = start + window.len();
    if window.is_empty() {
        return Guard { slot: None };
    }
    for (i, slot) in WINDOWS.iter().enumerate() {
        if slot
            .claimed
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            slot.faulted.store(false, Ordering::SeqCst);
            slot.set(start, end);
            return Guard { slot: Some(i) };
        }
    }
    Guard { slot: None }
}

fn install() {
    // SAFETY: sysconf and sigaction are called with valid arguments; the handler only reads the
    // slots (atomics), calls mmap and sigaction, and stores nothing but through them. `PREVIOUS`
    // is written once, here, before the handler can run (it is installed after the write).
    unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE);
        if page > 0 {
            PAGE.store(page as usize, Ordering::SeqCst);
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
        action.sa_sigaction = handler as Handler as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        let mut previous: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
            return;
        }
        *std::ptr::addr_of_mut!(PREVIOUS) = Some(previous);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler; the rest is as in
    // `install`. mmap and sigaction are system calls, safe to make in a signal handler; a
    // previous handler is called as the kernel would have called it.
    unsafe {
        // A fault the kernel raised (a signal sent by a process has a code of 0 or below, and
        // no fault address).
        let addr = (*info).si_addr() as usize;
        if (*info).si_code > 0 {
            let page = PAGE.load(Ordering::SeqCst);
            for slot in &WINDOWS {
                let Some((start, end)) = slot.range() else {
                    continue;
                };
                if (start..end).contains(&addr) {
                    let from = addr - addr % page;
                    let zeros = libc::mmap(
                        from as *mut libc::c_void,
                        end - from,
                        libc::PROT_READ,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                        -1,
                        0,
                    );
                    if zeros != libc::MAP_FAILED {
                        slot.faulted.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        }
        // Not a window's: what was there before takes it. A handler is called; the default
        // action (or ignoring, which the kernel does not allow for a fault) is put back, and
        // the fault, raised again on return, takes it.
        match *std::ptr::addr_of!(PREVIOUS) {
            Some(previous)
                if previous.sa_sigaction != libc::SIG_DFL
                    && previous.sa_sigaction != libc::SIG_IGN =>
            {
                if previous.sa_flags & libc::SA_SIGINFO != 0 {
                    type Action =
                        extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
                    let action: Action = std::mem::transmute(previous.sa_sigaction);
                    action(signal, info, context);
                } else {
                    type Plain = extern "C" fn(libc::c_int);
                    let action: Plain = std::mem::transmute(previous.sa_sigaction);
                    action(signal);
                }
            }
            _ => {
                libc::signal(signal, libc::SIG_DFL);
                // A signal a process sent is not raised again by returning: it is raised here
                // (held until the handler returns), and a fault's comes first all the same.
                libc::raise(signal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_window_truncated_under_its_reader_reads_zeros_past_the_new_end() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let text = b"{\"email\":\"a@example.com\"}\n".repeat(20_000);
        file.write_all(&text).unwrap();
        file.flush().unwrap();
        // SAFETY: the test owns the file; the truncation below is what is being tested.
        let map = unsafe { memmap2::Mmap::map(file.as_file()).unwrap() };
        let guard = register(&map);
        assert!(guard.slot.is_some());
        assert!(!guard.faulted());
        file.as_file().set_len(1000).unwrap();
        // Without the handler, this read past the new end would end the process.
        let sum: u64 = map.iter().map(|&b| u64::from(b)).sum();
        let kept: u64 = text[..1000].iter().map(|&b| u64::from(b)).sum();
        assert_eq!(sum, kept);
        assert_eq!(map[map.len() - 1], 0);
        assert!(guard.faulted());
        let slot = guard.slot.unwrap();
        drop(guard);
        drop(map);
        // The slot is free again.
        assert_eq!(WINDOWS[slot].start.load(Ordering::SeqCst), 0);
    }
}
