//! CPU priority. In `storytime serve` two kinds of work share the cores:
//!
//! - the front end (HTTP handlers, and the journal write that makes a
//!   Slack acknowledgement durable) runs at normal priority;
//! - everything else runs at idle priority (`SCHED_IDLE` on Linux, nice 19
//!   elsewhere): the pipeline's workers, the engines they start, and the
//!   database's threads (the one that moves the queue journal into SQLite
//!   and runs queries, and the checkpoint). They get only CPU time the
//!   front end does not want, which on a quiet machine is all of it.
//!
//! So a burst of Slack events (Slack wants an answer within 3 seconds)
//! never queues behind pages being read or rows being written; those wait
//! instead. A request that needs the database (an upload submitting its
//! job, a status query) waits its turn with the pipeline's work, which is
//! measured by `scripts/bench`.

/// Nice value of background work where idle scheduling does not exist.
pub const BACKGROUND_NICE: i32 = 19;

/// A runtime whose threads (async and blocking alike) run at the background
/// priority. Processes started from them inherit it (see
/// [`lower_this_thread`]).
pub fn background_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("storytime-worker")
        .on_thread_start(lower_this_thread)
        .enable_all()
        .build()
}

/// Puts the calling thread at the background priority. On Linux a
/// scheduling policy and a nice value belong to one thread, and a child
/// process inherits those of the thread that started it; Rust starts
/// children with `posix_spawn` (no copy of our address space, which would
/// stall every thread of the process while it is made), so engines need
/// nothing run between fork and exec. A failure leaves the thread as it was.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn lower_this_thread() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: takes plain values (the parameter is read during the call
    // only); 0 names the calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        set_nice(BACKGROUND_NICE);
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
pub fn lower_this_thread() {
    set_nice(BACKGROUND_NICE);
}

#[cfg(not(unix))]
pub fn lower_this_thread() {}

#[cfg(unix)]
#[allow(unsafe_code)]
fn set_nice(nice: i32) {
    // SAFETY: setpriority takes plain integers; `who = 0` is the calling
    // thread on Linux (the process elsewhere).
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, nice);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[allow(unsafe_code)]
    fn policy() -> i32 {
        // SAFETY: takes a plain integer; 0 is the calling thread.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn the_background_runtime_runs_async_and_blocking_work_at_idle_priority() {
        let ours = policy();
        let runtime = background_runtime().unwrap();
        let on_worker = runtime.block_on(runtime.spawn(async { policy() })).unwrap();
        let on_blocking = runtime.block_on(runtime.spawn_blocking(policy)).unwrap();
        assert_eq!(on_worker, libc::SCHED_IDLE);
        assert_eq!(on_blocking, libc::SCHED_IDLE);
        assert_eq!(policy(), ours, "the thread that built the runtime keeps its priority");
    }
}
