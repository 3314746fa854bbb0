//! A warm pool of workers for one plugin.
//!
//! Starting a worker costs a fork, the confinement steps, a `dlopen` and the plugin's `init`;
//! a warm worker answers a call in one round trip. The pool keeps up to
//! [`PoolConfig::max_workers`] workers: a call takes an idle one (or starts one, or waits for
//! one), and gives it back afterwards if the call ended `ok`. Any other outcome retires that
//! worker, so no call ever runs in a process a failed call has touched. Workers idle for longer
//! than [`PoolConfig::idle_timeout`] are retired by a background thread (running the plugin's
//! `shutdown`), so an idle host holds no plugin processes.
//!
//! Streams ([`Pool::call_many`]) keep several requests in flight on one worker and continue on a
//! fresh worker after a failure, so one bad input fails alone.

use crate::outcome::{CallResult, Outcome, Usage};
use crate::plugin::Plugin;
use crate::worker::{Worker, WorkerOptions};
use std::ops::ControlFlow;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Sizing and timing of a [`Pool`].
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most workers alive at once (idle or busy). By default 4.
    pub max_workers: usize,
    /// An idle worker older than this is retired. By default 30 s.
    pub idle_timeout: Duration,
    /// Requests kept in flight per worker in a stream. By default 16.
    pub window: usize,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            max_workers: 4,
            idle_timeout: Duration::from_secs(30),
            window: 16,
        }
    }
}

/// Counters, for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Workers alive now (idle or busy).
    pub live: usize,
    /// Workers idle now.
    pub idle: usize,
    /// Workers started since the pool was made.
    pub started: u64,
    /// Workers retired since the pool was made (failed calls, idle eviction).
    pub retired: u64,
}

/// A pool of warm workers for one plugin. Cheap to share between threads (`&Pool` is enough).
#[derive(Debug)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    plugin: Arc<Plugin>,
    options: WorkerOptions,
    config: PoolConfig,
    state: Mutex<State>,
    /// Signalled when a worker is given back or a slot frees up.
    available: Condvar,
    /// Wakes the eviction thread early (new idle worker, pool closing).
    janitor: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Idle workers and when they became idle, oldest first.
    idle: Vec<(Worker, Instant)>,
    /// Workers alive, idle or checked out, plus starts in progress.
    live: usize,
    stats: PoolStats,
    closed: bool,
}

impl Pool {
    /// A pool for `plugin`, starting workers with `options`. No worker starts until the first
    /// call.
    pub fn new(plugin: Arc<Plugin>, options: WorkerOptions, config: PoolConfig) -> Pool {
        let inner = Arc::new(Inner {
            plugin,
            options,
            config: PoolConfig {
                max_workers: config.max_workers.max(1),
                window: config.window.max(1),
                ..config
            },
            state: Mutex::new(State::default()),
            available: Condvar::new(),
            janitor: Condvar::new(),
        });
        let weak = Arc::downgrade(&inner);
        let name = format!("pool-{}", inner.plugin.manifest().info.name);
        // Without the eviction thread idle workers would live until the pool is dropped;
        // calls still work, so a failure to start it is not fatal.
        let _ = std::thread::Builder::new()
            .name(name)
            .spawn(move || evict_idle_workers(weak));
        Pool { inner }
    }

    /// The plugin this pool runs.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.inner.plugin
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        let state = self.inner.lock();
        PoolStats {
            live: state.live,
            idle: state.idle.len(),
            ..state.stats
        }
    }

    /// Calls `hook` with `input` on a warm worker.
    pub fn call(&self, hook: &str, input: &[u8]) -> CallResult {
        let mut result = None;
        self.call_many(hook, &[input], |_, r| result = Some(r));
        result
            .unwrap_or_else(|| CallResult::failed(Outcome::Crashed, "no result", Usage::default()))
    }

    /// Calls `hook` once per input and hands each result to `sink` in input order, with the
    /// input's index. Requests are pipelined on one worker; after a call that does not end
    /// `ok`, the remaining inputs continue on a fresh worker. Every input gets exactly one
    /// result.
    pub fn call_many(&self, hook: &str, inputs: &[&[u8]], mut sink: impl FnMut(usize, CallResult)) {
        self.call_many_while(hook, inputs, |index, result| {
            sink(index, result);
            ControlFlow::Continue(())
        });
    }

    /// Like [`Pool::call_many`], but `sink` may stop the stream: once it has returned
    /// [`ControlFlow::Break`], no further worker is checked out or started, and the call
    /// returns how many inputs got a result. The break takes effect when the current worker's
    /// stream ends, which is at its first failed call (or at the last input: results of calls
    /// that ran are always handed over). The service breaks after each failure, so that it can
    /// restart the worker with a backoff of its own, or stop feeding a quarantined plugin.
    pub fn call_many_while(
        &self,
        hook: &str,
        inputs: &[&[u8]],
        mut sink: impl FnMut(usize, CallResult) -> ControlFlow<()>,
    ) -> usize {
        let mut done = 0;
        let mut stop = false;
        while done < inputs.len() && !stop {
            let mut worker = match self.inner.checkout() {
                Ok(worker) => worker,
                Err(failure) => {
                    // The worker could not start (or its init failed): that is this input's
                    // result; the next input tries a new worker.
                    stop = sink(done, *failure).is_break();
                    done += 1;
                    continue;
                }
            };
            let rest = inputs.get(done..).unwrap_or_default();
            let offset = done;
            let mut last_ok = true;
            let ran = worker.call_many(hook, rest, self.inner.config.window, |index, result| {
                last_ok = result.status == Outcome::Ok;
                stop |= sink(offset + index, result).is_break();
            });
            done += ran;
            self.inner.checkin(worker, ran == rest.len() && last_ok);
        }
        done
    }

    /// Retires every idle worker now.
    pub fn evict_all_idle(&self) {
        let idle = std::mem::take(&mut self.inner.lock().idle);
        self.inner.retire(
            idle.into_iter().map(|(worker, _)| worker),
            Retire::InBackground,
        );
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let idle = {
            let mut state = self.inner.lock();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        self.inner.janitor.notify_all();
        // Waits for each to be gone, so that a program that drops its pool and exits leaves no
        // worker, cgroup or temporary directory behind.
        self.inner
            .retire(idle.into_iter().map(|(worker, _)| worker), Retire::Wait);
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes an idle worker, or starts one if below the limit, or waits for one.
    fn checkout(&self) -> Result<Worker, Box<CallResult>> {
        let mut state = self.lock();
        loop {
            // Most recently used first: it is the warmest, and the oldest ones age out.
            if let Some((worker, _)) = state.idle.pop() {
                return Ok(worker);
            }
            if state.live < self.config.max_workers {
                state.live += 1;
                state.stats.started += 1;
                drop(state);
                return match Worker::start(&self.plugin, self.options.clone()) {
                    Ok(worker) => Ok(worker),
                    Err(e) => {
                        let mut state = self.lock();
                        state.live -= 1;
                        state.stats.retired += 1;
                        drop(state);
                        self.available.notify_one();
                        Err(Box::new(e.into_result()))
                    }
                };
            }
            state = self
                .available
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Gives a worker back: idle if it is healthy, retired otherwise.
    fn checkin(&self, worker: Worker, healthy: bool) {
        let mut state = self.lock();
        if healthy && worker.is_alive() && !state.closed {
            state.idle.push((worker, Instant::now()));
            drop(state);
            self.janitor.notify_one();
        } else {
            state.live -= 1;
            state.stats.retired += 1;
            drop(state);
            drop(worker);
        }
        self.available.notify_one();
    }

    /// Retires workers taken out of the idle list (outside the lock: `shutdown` may take time).
    fn retire(&self, workers: impl Iterator<Item = Worker>, how: Retire) {
        for worker in workers {
            match how {
                Retire::Wait => drop(worker.retire()),
                Retire::InBackground => drop(worker),
            }
            let mut state = self.lock();
            state.live -= 1;
            state.stats.retired += 1;
        }
        self.available.notify_all();
    }
}

/// Whether retiring a worker waits for its process to be reaped.
#[derive(Clone, Copy)]
enum Retire {
    Wait,
    /// Killed here, reaped (and its cgroup and directory removed) by the background reaper.
    InBackground,
}

/// The eviction thread: retires workers idle longer than the timeout; ends with the pool.
fn evict_idle_workers(pool: Weak<Inner>) {
    loop {
        let Some(inner) = pool.upgrade() else { return };
        let timeout = inner.config.idle_timeout;
        let expired = {
            let mut state = inner.lock();
            if state.closed {
                return;
            }
            let now = Instant::now();
            let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.idle)
                .into_iter()
                .partition(|(_, since)| now.duration_since(*since) >= timeout);
            state.idle = kept;
            if expired.is_empty() {
                // Sleep until the oldest idle worker expires (or a while, if none), unless
                // woken by a new idle worker or the pool closing.
                let wait = state
                    .idle
                    .iter()
                    .map(|(_, since)| timeout.saturating_sub(now.duration_since(*since)))
                    .min()
                    .unwrap_or(timeout);
                let _ = inner.janitor.wait_timeout(state, wait);
                continue;
            }
            expired
        };
        inner.retire(
            expired.into_iter().map(|(worker, _)| worker),
            Retire::InBackground,
        );
    }
}
