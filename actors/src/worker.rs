//! The user actor's own thread: where all of one user's SQL and file I/O runs, one job at a
//! time, in the order the actor hands them over.
//!
//! The actor never waits for a job: it queues it and takes its next message, so one user's
//! requests are pipelined (the thread is never idle while work is queued) yet still strictly
//! serialised. Each job answers its caller itself, through the reply port it carries.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

use crate::error::VaultError;
use crate::user_actor::UserCore;

/// One operation on the user's data.
pub type Job = Box<dyn FnOnce(&mut UserCore) + Send>;

/// Stack of a worker thread: SQLite and the YAML parser need well under this.
const STACK_BYTES: usize = 1024 * 1024;

/// The handle the actor keeps; dropping it lets the thread finish the queued jobs and exit.
pub struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Start the thread: it first runs `open` to build the user's core, then jobs until the
    /// handle is dropped. When opening fails or a job panics, `failed` is told why and the
    /// thread exits, dropping the core (and with it the vault's ownership lock).
    pub fn start(
        name: String,
        open: impl FnOnce() -> Result<UserCore, VaultError> + Send + 'static,
        failed: impl FnOnce(String) + Send + 'static,
    ) -> std::io::Result<Worker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let span = tracing::Span::current();
        std::thread::Builder::new()
            .name(name)
            .stack_size(STACK_BYTES)
            .spawn(move || {
                let _entered = span.enter();
                let mut core = match catch_unwind(AssertUnwindSafe(open)) {
                    Ok(Ok(core)) => core,
                    Ok(Err(e)) => return failed(format!("cannot open the vault: {e}")),
                    Err(_) => return failed("opening the vault panicked".into()),
                };
                while let Ok(job) = queue.recv() {
                    // A panic may have left the core half-updated: stop using it. The actor
                    // is told, dies, and the supervisor starts a fresh one from the files.
                    if catch_unwind(AssertUnwindSafe(|| job(&mut core))).is_err() {
                        return failed("a user operation panicked".into());
                    }
                }
            })?;
        Ok(Worker { jobs })
    }

    /// Queue `job`; false when the thread is gone (the job, and the reply it carries, are
    /// dropped, so its caller learns the actor restarted).
    pub fn run(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }
}
