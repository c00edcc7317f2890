//! The threads that run users' jobs: one shared set, about one running thread per core.
//!
//! Why not tokio's blocking pool: it gives every concurrent job a thread of its own, so each
//! request pays for waking a sleeping thread and putting it back to sleep, which on a small
//! machine costs more than a note read itself. Here at most `cores` threads run jobs at once;
//! a thread that finishes one user's jobs takes the next user's from the queue without
//! sleeping, so under load hand-offs mostly disappear.
//!
//! A job that waits on something other than the CPU — an fsync, the client's answer to a
//! request, a response stream the client does not read, a long reindex — wraps the wait in
//! [`blocking`]: while it waits it does not count as running, and a spare thread takes the
//! queued work, so one slow disk or client never holds back other users. Spare threads exit
//! after a while without work.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

/// Work for the pool: a drain of one user's queue.
pub type Runnable = Box<dyn FnOnce() + Send>;

/// How long a thread beyond the core count waits for work before it exits.
const SPARE_KEEP_ALIVE: Duration = Duration::from_secs(5);

struct State {
    ready: VecDeque<Runnable>,
    /// Threads alive (running, blocked or idle).
    threads: usize,
    /// Threads waiting for work.
    idle: usize,
    /// Threads inside [`blocking`]: alive and busy, but not using a core.
    blocked: usize,
}

impl State {
    fn running(&self) -> usize {
        self.threads - self.idle - self.blocked
    }
}

/// The pool; one per process (see [`Pool::global`]).
pub struct Pool {
    state: Mutex<State>,
    work: Condvar,
    /// Threads allowed to run jobs at once.
    cores: usize,
}

thread_local! {
    /// Set on the pool's own threads, so [`blocking`] knows it has something to give back.
    static POOL: Cell<Option<&'static Pool>> = const { Cell::new(None) };
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state is a handful of counters changed under the lock in single steps, and jobs
    // never run while it is held: a poisoned lock still holds consistent numbers.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pool {
    /// The process's pool, sized to the machine's cores (at least two).
    pub fn global() -> &'static Pool {
        static GLOBAL: OnceLock<Pool> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            Pool::new(cores.max(2))
        })
    }

    fn new(cores: usize) -> Pool {
        Pool {
            state: Mutex::new(State {
                ready: VecDeque::new(),
                threads: 0,
                idle: 0,
                blocked: 0,
            }),
            work: Condvar::new(),
            cores,
        }
    }

    /// Queue `job`; it runs on a pool thread as soon as one is free.
    pub fn spawn(&'static self, job: Runnable) {
        let mut s = lock(&self.state);
        s.ready.push_back(job);
        self.find_runner(&mut s);
    }

    /// Make sure someone will take the queued work: a running thread (nothing to do), an
    /// idle one (woken), or a new one, as long as fewer than `cores` run.
    fn find_runner(&'static self, s: &mut State) {
        if s.ready.is_empty() || s.running() >= self.cores {
            return;
        }
        if s.idle > 0 {
            self.work.notify_one();
            return;
        }
        s.threads += 1;
        let started = std::thread::Builder::new()
            .name("vault-jobs".into())
            .spawn(move || self.serve());
        if let Err(e) = started {
            s.threads -= 1;
            // The queued work still runs once a current thread frees up.
            tracing::error!(error = %e, "could not start a job thread");
        }
    }

    /// A pool thread: take jobs while this thread is needed, sleep when there are none, leave
    /// when it has been spare for a while.
    fn serve(&'static self) {
        POOL.with(|p| p.set(Some(self)));
        let mut s = lock(&self.state);
        loop {
            // A thread that came back from `blocking` may make one too many running: the
            // surplus one rests instead of taking work.
            if s.running() <= self.cores {
                if let Some(job) = s.ready.pop_front() {
                    drop(s);
                    job();
                    s = lock(&self.state);
                    continue;
                }
            }
            s.idle += 1;
            let (guard, timeout) = self
                .work
                .wait_timeout(s, SPARE_KEEP_ALIVE)
                .unwrap_or_else(PoisonError::into_inner);
            s = guard;
            s.idle -= 1;
            if timeout.timed_out() && s.ready.is_empty() && s.threads > self.cores {
                s.threads -= 1;
                return;
            }
        }
    }
}

/// Run `wait` (something that waits on other than the CPU) without holding back the pool:
/// while it runs, this thread does not count as running and queued work gets a thread.
/// Outside the pool's threads it simply runs `wait`.
pub fn blocking<T>(wait: impl FnOnce() -> T) -> T {
    let Some(pool) = POOL.with(Cell::get) else {
        return wait();
    };
    {
        let mut s = lock(&pool.state);
        s.blocked += 1;
        pool.find_runner(&mut s);
    }
    let out = wait();
    lock(&pool.state).blocked -= 1;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};

    fn leak(cores: usize) -> &'static Pool {
        Box::leak(Box::new(Pool::new(cores)))
    }

    #[test]
    fn runs_every_job() {
        let pool = leak(2);
        let (tx, rx) = mpsc::channel();
        for i in 0..100 {
            let tx = tx.clone();
            pool.spawn(Box::new(move || tx.send(i).unwrap()));
        }
        let mut got: Vec<i32> = (0..100)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        got.sort();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn never_runs_more_jobs_than_cores_at_once() {
        let pool = leak(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        for _ in 0..20 {
            let (running, most, tx) = (running.clone(), most.clone(), tx.clone());
            pool.spawn(Box::new(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
                tx.send(()).unwrap();
            }));
        }
        for _ in 0..20 {
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_blocked_job_lets_queued_work_run() {
        // One core: without `blocking`, the second job would wait for the first, which waits
        // for the second — a deadlock.
        let pool = leak(1);
        let (answer_tx, answer_rx) = mpsc::channel::<u32>();
        let (done_tx, done_rx) = mpsc::channel();
        pool.spawn(Box::new(move || {
            let got = blocking(|| answer_rx.recv_timeout(Duration::from_secs(5)));
            done_tx.send(got).unwrap();
        }));
        pool.spawn(Box::new(move || answer_tx.send(7).unwrap()));
        assert_eq!(
            done_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            Ok(7)
        );
    }

    #[test]
    fn blocking_outside_the_pool_just_runs() {
        assert_eq!(blocking(|| 3), 3);
    }
}
