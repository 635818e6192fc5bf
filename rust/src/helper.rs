//! One helper thread kept by a network's workspaces, so that a single image can use a second
//! core without starting a thread per run (starting one costs tens to hundreds of microseconds
//! on a virtual machine, as much as the whole run).
//!
//! There is no global pool: each network's [`crate::engine::Workspaces`] starts its own helper
//! on the first run that wants it, and the helper ends with the workspaces. A forked child
//! inherits the helper's bookkeeping but not its thread: [`HelperSlot::take`] notices the new
//! process id and starts a fresh helper. Between runs the helper spins for a short while (a
//! loop of batch-1 runs reuses it without a wake-up), then sleeps.
//!
//! [`Helper::join`] runs one closure on the helper and another on the calling thread and
//! returns when both are done; the closures may borrow from the caller's stack.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

/// How long an idle helper spins before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// A job for the helper: a borrowed closure whose lifetime [`Helper::join`] erases (see the
/// SAFETY note there), and the thread to wake when it is done.
struct Job {
    f: *const (dyn Fn() + Sync),
    caller: Thread,
}

// SAFETY: the closure behind `f` is `Sync`, so calling it from the helper thread through a
// shared pointer is allowed; `Helper::join` keeps it alive until the helper is done with it.
unsafe impl Send for Job {}

struct Shared {
    job: Mutex<Option<Job>>,
    /// Jobs posted and jobs finished; the helper runs job `posted` while `done < posted`.
    posted: AtomicU64,
    done: AtomicU64,
    /// A panic of the last job (its message), for the caller to report.
    panicked: AtomicBool,
    shutdown: AtomicBool,
}

/// The helper thread of one network's workspaces.
pub(crate) struct Helper {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The process that started the thread (a forked child has none).
    pid: u32,
}

impl Helper {
    fn start() -> Option<Helper> {
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            posted: AtomicU64::new(0),
            done: AtomicU64::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("snnfast-helper".into())
            .spawn(move || serve(&s))
            .ok()?;
        Some(Helper {
            shared,
            thread: Some(thread),
            pid: std::process::id(),
        })
    }

    /// Run `theirs` on the helper thread and `ours` on this one; return when both are done.
    /// Returns `false` (after `ours` finished) if `theirs` panicked; a panic of `ours` resumes
    /// here, after the helper is done.
    pub(crate) fn join(&self, theirs: &(dyn Fn() + Sync), ours: impl FnOnce()) -> bool {
        let sh = &*self.shared;
        // SAFETY (lifetime erasure): the helper calls `theirs` only between this post and its
        // `done` store, and this function does not return or unwind before it has seen that
        // store (the wait below runs even when `ours` panics), so the closure outlives every
        // use of the pointer.
        let f: *const (dyn Fn() + Sync + 'static) = unsafe {
            std::mem::transmute::<*const (dyn Fn() + Sync + '_), *const (dyn Fn() + Sync + 'static)>(
                theirs,
            )
        };
        let n = sh.posted.load(Ordering::Relaxed) + 1;
        *lock(&sh.job) = Some(Job {
            f,
            caller: std::thread::current(),
        });
        sh.posted.store(n, Ordering::Release);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
        let ours = catch_unwind(AssertUnwindSafe(ours));
        let start = Instant::now();
        while sh.done.load(Ordering::Acquire) < n {
            if start.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::park_timeout(Duration::from_millis(1));
            }
        }
        if let Err(p) = ours {
            resume_unwind(p);
        }
        !sh.panicked.swap(false, Ordering::Relaxed)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            // In a forked child the thread does not exist: nothing to wake or wait for.
            if self.pid == std::process::id() {
                t.thread().unpark();
                let _ = t.join();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The helper's loop: wait for a job (spinning a while, then sleeping), run it, report.
fn serve(sh: &Shared) {
    let mut seen = 0u64;
    loop {
        let idle = Instant::now();
        while sh.posted.load(Ordering::Acquire) == seen {
            if sh.shutdown.load(Ordering::Acquire) {
                return;
            }
            if idle.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::park_timeout(Duration::from_millis(100));
            }
        }
        seen += 1;
        let job = lock(&sh.job).take();
        if let Some(job) = job {
            // SAFETY: `Helper::join` keeps the closure alive until `done` reaches `seen`.
            let f = unsafe { &*job.f };
            if catch_unwind(AssertUnwindSafe(f)).is_err() {
                sh.panicked.store(true, Ordering::Relaxed);
            }
            sh.done.store(seen, Ordering::Release);
            job.caller.unpark();
        } else {
            sh.done.store(seen, Ordering::Release);
        }
    }
}

/// Where a network's workspaces keep their helper: started on first use, restarted in a
/// forked child, and lent to one run at a time.
#[derive(Default)]
pub(crate) struct HelperSlot(Mutex<Option<Helper>>);

/// A helper lent to one run.
pub(crate) struct Lent<'a>(MutexGuard<'a, Option<Helper>>);

impl Lent<'_> {
    pub(crate) fn helper(&self) -> &Helper {
        self.0.as_ref().expect("a lent slot holds a helper")
    }
}

impl HelperSlot {
    /// The helper, if no other run is using it and a thread can be started.
    pub(crate) fn take(&self) -> Option<Lent<'_>> {
        let mut g = match self.0.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        if g.as_ref().is_some_and(|h| h.pid != std::process::id()) {
            *g = None; // inherited from the parent process: its thread is not here
        }
        if g.is_none() {
            *g = Some(Helper::start()?);
        }
        Some(Lent(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn join_runs_both_closures_and_borrows() {
        let slot = HelperSlot::default();
        let count = AtomicUsize::new(0);
        let data = [1usize, 2, 3];
        for round in 0..200 {
            let lent = slot.take().expect("a helper");
            let theirs = || {
                count.fetch_add(data.iter().sum::<usize>(), Ordering::Relaxed);
            };
            let ok = lent.helper().join(&theirs, || {
                count.fetch_add(10, Ordering::Relaxed);
            });
            assert!(ok);
            assert_eq!(count.load(Ordering::Relaxed), (round + 1) * 16);
            if round % 50 == 0 {
                std::thread::sleep(Duration::from_millis(2)); // let the helper go to sleep
            }
        }
    }

    #[test]
    fn a_second_run_gets_no_helper_while_one_is_lent() {
        let slot = HelperSlot::default();
        let first = slot.take().expect("a helper");
        assert!(slot.take().is_none());
        drop(first);
        assert!(slot.take().is_some());
    }

    #[test]
    fn a_panicking_job_is_reported_and_the_helper_survives() {
        let slot = HelperSlot::default();
        let lent = slot.take().unwrap();
        let boom = || panic!("job fails");
        assert!(!lent.helper().join(&boom, || ()));
        let fine = || ();
        assert!(lent.helper().join(&fine, || ()));
    }
}
