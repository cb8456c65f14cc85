//! CPU priority of background work. In `storytime serve` the pipeline's
//! workers and the engines they start run at a lower priority than the
//! front end, so answering a request (an upload, a Slack acknowledgement,
//! which Slack wants within 3 seconds) never queues behind pages being
//! read: the workers use what the front end leaves idle, which on a quiet
//! machine is everything.

/// Nice value of background threads and engine processes (0 is normal, 19
/// the lowest).
pub const BACKGROUND_NICE: i32 = 10;

/// A runtime whose threads (async and blocking alike) run at the background
/// priority.
pub fn background_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("storytime-worker")
        .on_thread_start(lower_this_thread)
        .enable_all()
        .build()
}

/// Lowers the calling thread to the background priority (on Linux a nice
/// value belongs to one thread; in a child between fork and exec that is
/// the whole process). A failure leaves it at normal priority.
#[cfg(unix)]
#[allow(unsafe_code)]
pub fn lower_this_thread() {
    // SAFETY: setpriority takes plain integers and touches no memory of
    // ours; `who = 0` names the calling thread. It is async-signal-safe, so
    // this may also run between fork and exec.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
    }
}

#[cfg(not(unix))]
pub fn lower_this_thread() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[allow(unsafe_code)]
    fn nice() -> i32 {
        // SAFETY: getpriority takes plain integers; 0 is the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[test]
    fn the_background_runtime_runs_async_and_blocking_work_niced() {
        let ours = nice();
        let runtime = background_runtime().unwrap();
        let on_worker = runtime.block_on(runtime.spawn(async { nice() })).unwrap();
        let on_blocking = runtime.block_on(runtime.spawn_blocking(nice)).unwrap();
        assert_eq!(on_worker, BACKGROUND_NICE.max(ours));
        assert_eq!(on_blocking, BACKGROUND_NICE.max(ours));
        assert_eq!(nice(), ours, "the thread that built the runtime keeps its priority");
    }
}
