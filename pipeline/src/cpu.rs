//! Where CPU-heavy work runs: decoding and preparing photos, hashing pixels,
//! joining audio.
//!
//! Work done for a caller who is waiting (an upload being answered, `storytime
//! narrate`) runs on tokio's blocking pool at normal priority. Work done by the
//! pipeline's background workers runs on a few threads of lower scheduling
//! priority, so that on a busy machine answering requests (an upload, a Slack
//! acknowledgement) never queues behind pages being read. Those threads touch
//! no database or lock that a request could wait on, so the lower priority
//! cannot turn into a wait elsewhere.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

tokio::task_local! {
    static BACKGROUND: ();
}

/// Nice value of the background threads (0 is normal, 19 the lowest).
const BACKGROUND_NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A runtime for the pipeline's workers whose threads all run at lower
/// priority, so that in a process that also answers requests (`storytime
/// serve`) the workers use the CPU only when the front end leaves it idle.
pub fn background_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("storytime-bg")
        .on_thread_start(lower_this_threads_priority)
        .enable_all()
        .build()
}

/// The work panicked or its thread went away.
#[derive(Debug, thiserror::Error)]
#[error("the work stopped: {0}")]
pub struct Stopped(String);

/// Runs `f` (and everything it awaits) as background work: CPU-heavy steps
/// inside it go to the low-priority threads.
pub async fn in_background<F: Future>(f: F) -> F::Output {
    BACKGROUND.scope((), f).await
}

/// Runs CPU-heavy `f` off the async threads: on the low-priority threads
/// within [`in_background`], on the blocking pool otherwise.
pub async fn run<T, F>(f: F) -> Result<T, Stopped>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if BACKGROUND.try_with(|_| ()).is_ok()
        && let Some(pool) = pool()
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(catch_unwind(AssertUnwindSafe(f)));
        });
        if pool.send(job).is_ok() {
            return match result.await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(panic)) => Err(Stopped(panic_message(&panic))),
                Err(_) => Err(Stopped("the background thread went away".into())),
            };
        }
        return Err(Stopped("the background threads are gone".into()));
    }
    tokio::task::spawn_blocking(f).await.map_err(|e| Stopped(e.to_string()))
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".into())
}

/// The low-priority threads, one per core, started on first use; `None`
/// if no thread could be started (then the blocking pool does the work).
fn pool() -> Option<&'static mpsc::Sender<Job>> {
    static POOL: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut started = 0;
        for n in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new().name(format!("storytime-cpu-{n}")).spawn(move || {
                lower_this_threads_priority();
                loop {
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if spawned.is_ok() {
                started += 1;
            }
        }
        (started > 0).then_some(jobs)
    })
    .as_ref()
}

/// On Linux a nice value belongs to a thread, so this lowers only the
/// calling thread. A failure leaves it at normal priority.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_this_threads_priority() {
    // SAFETY: setpriority takes plain integers and touches no memory of ours;
    // `who = 0` names the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn background_work_runs_on_the_low_priority_threads() {
        let name = || std::thread::current().name().unwrap_or("").to_owned();
        let foreground = run(name).await.unwrap();
        assert!(!foreground.starts_with("storytime-cpu"), "{foreground}");
        let background = in_background(run(name)).await.unwrap();
        assert!(background.starts_with("storytime-cpu"), "{background}");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_background_threads_are_niced() {
        #[allow(unsafe_code)]
        // SAFETY: getpriority takes plain integers; 0 is the calling thread.
        let nice = in_background(run(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) })).await.unwrap();
        assert_eq!(nice, BACKGROUND_NICE);
    }

    #[tokio::test]
    async fn a_panic_is_an_error_not_a_crash() {
        let err = in_background(run(|| -> u8 { panic!("bad page") })).await.unwrap_err();
        assert!(err.to_string().contains("bad page"), "{err}");
        assert_eq!(in_background(run(|| 7)).await.unwrap(), 7, "the thread survives");
    }
}
