//! Where all of one user's SQL and file I/O runs: jobs, one at a time, in the order the actor
//! hands them over, on the job threads of [`crate::pool`] (never on the async workers).
//!
//! The actor never waits for a job: it queues it and takes its next message. While jobs are
//! queued, one pool task drains them back to back, so a user's requests are pipelined (and a
//! burst costs one hand-off, not one per request) yet strictly serialised. Each job answers its
//! caller itself, through the reply port it carries. Threads come from the shared pool, so an
//! idle user costs no thread; a drain gives its thread up after a few jobs, so a busy user
//! cannot keep other users waiting.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::VaultError;
use crate::pool::{self, Pool};
use crate::user_core::UserCore;

/// Jobs a drain runs before it goes to the back of the pool's queue.
const DRAIN_BUDGET: usize = 16;

/// One operation on the user's data.
pub type Job = Box<dyn FnOnce(&mut UserCore) + Send>;

type Open = Box<dyn FnOnce() -> Result<UserCore, VaultError> + Send>;
type Failed = Box<dyn FnOnce(String) + Send>;

enum Task {
    /// Build the core; always the first task.
    Open(Open),
    Job(Job),
}

struct Queue {
    tasks: VecDeque<Task>,
    /// A pool task is draining the queue now (or is queued to).
    draining: bool,
    /// The core could not be opened or a job panicked: nothing runs any more.
    broken: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The user's data; `None` until opened and after a failure.
    core: Mutex<Option<UserCore>>,
    /// Told (once) why the worker broke.
    failed: Mutex<Option<Failed>>,
    /// The span of the actor that started the worker, carried into its jobs.
    span: tracing::Span,
}

/// The actor's handle on its jobs. Once the handle and the draining task are both gone, the
/// core is dropped, and with it the vault's ownership lock.
pub struct Worker {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Jobs run under catch_unwind, so a poisoned lock can only come from a panic that was
    // already turned into a broken worker.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Worker {
    /// Start a worker whose first task opens the user's core with `open`. When opening fails or
    /// a job panics, `failed` is told why, the queued jobs are dropped (their callers learn the
    /// actor restarted) and the core is dropped. Must be called within a tokio runtime.
    pub fn start(
        open: impl FnOnce() -> Result<UserCore, VaultError> + Send + 'static,
        failed: impl FnOnce(String) + Send + 'static,
    ) -> Worker {
        let worker = Worker {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    tasks: VecDeque::new(),
                    draining: false,
                    broken: false,
                }),
                core: Mutex::new(None),
                failed: Mutex::new(Some(Box::new(failed))),
                span: tracing::Span::current(),
            }),
        };
        worker.push(Task::Open(Box::new(open)));
        worker
    }

    /// Queue `job`; false when the worker is broken (the job, and the reply it carries, are
    /// dropped, so its caller learns the actor restarted).
    pub fn run(&self, job: Job) -> bool {
        self.push(Task::Job(job))
    }

    fn push(&self, task: Task) -> bool {
        let mut q = lock(&self.shared.queue);
        if q.broken {
            return false;
        }
        q.tasks.push_back(task);
        if !q.draining {
            q.draining = true;
            Shared::schedule(self.shared.clone());
        }
        true
    }
}

impl Shared {
    fn schedule(shared: Arc<Shared>) {
        Pool::global().spawn(Box::new(move || {
            let span = shared.span.clone();
            span.in_scope(|| shared.drain());
        }));
    }

    /// Run queued tasks back to back until the queue is empty, or until the budget is spent
    /// (then the rest is drained later, after other users' queued work).
    fn drain(self: Arc<Self>) {
        for _ in 0..DRAIN_BUDGET {
            let task = {
                let mut q = lock(&self.queue);
                match q.tasks.pop_front() {
                    Some(task) if !q.broken => task,
                    _ => {
                        q.draining = false;
                        return;
                    }
                }
            };
            let failure = match task {
                // Opening reconciles the whole vault, which may take a while: not a reason to
                // hold other users back.
                Task::Open(open) => match pool::blocking(|| catch_unwind(AssertUnwindSafe(open))) {
                    Ok(Ok(core)) => {
                        *lock(&self.core) = Some(core);
                        None
                    }
                    Ok(Err(e)) => Some(format!("cannot open the vault: {e}")),
                    Err(_) => Some("opening the vault panicked".to_string()),
                },
                Task::Job(job) => {
                    let mut core = lock(&self.core);
                    match core.as_mut() {
                        Some(c) => catch_unwind(AssertUnwindSafe(|| job(c)))
                            .err()
                            .map(|_| "a user operation panicked".to_string()),
                        None => None,
                    }
                }
            };
            if let Some(reason) = failure {
                // A panic may have left the core half-updated: stop using it. The actor is
                // told, dies, and the supervisor starts a fresh one from the files.
                self.break_down(reason);
            }
        }
        Shared::schedule(self);
    }

    fn break_down(&self, reason: String) {
        {
            let mut q = lock(&self.queue);
            q.broken = true;
            q.tasks.clear();
        }
        *lock(&self.core) = None;
        if let Some(tell) = lock(&self.failed).take() {
            tell(reason);
        }
    }
}
