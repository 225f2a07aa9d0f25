//! The `max_cost` guard: asked right before each POST whether one more run fits.
//!
//! FLORA tells a technique's listed `run_cost`, but what a run is charged is known only when
//! it ends (a technique priced by its inputs charges more than it lists). So the guard learns
//! the price: until one run of the batch has been charged, runs go one at a time (the first
//! is the price probe); from then on, each run is priced at the highest charge seen (never
//! below the listed price), and a POST goes out only when everything charged, everything in
//! flight and this run together stay within the limit.

use std::sync::Mutex;

use tokio::sync::watch;

/// What the guard knows.
#[derive(Debug, Default, Clone)]
struct Figures {
    /// USD charged so far (every ended run).
    charged: f64,
    /// Completed runs (their charge is a price seen).
    completed: u32,
    /// The highest charge of one completed run.
    highest: f64,
    /// Runs created (or about to be) and not ended.
    flying: u32,
    /// Runs whose end this process lost track of (their polls gave up): counted as charged
    /// at the current price, never waited for.
    lost: u32,
}

/// The guard's answer before a POST.
#[derive(Debug, PartialEq)]
pub(crate) enum Decision<'a> {
    /// Send it: the run is counted in flight from now (so two POSTs never both take the last
    /// place). Say what became of it with the [`Reserved`]; dropped unsaid, the run is counted
    /// as possibly charged.
    Go(Reserved<'a>),
    /// Do not send: it would take the total past the limit.
    Over {
        /// USD charged so far.
        charged: f64,
        /// The price one run is expected to cost.
        per_run: f64,
        /// Runs created and not ended.
        flying: u32,
    },
}

/// Shared by every item of a running batch.
#[derive(Debug)]
pub(crate) struct CostGuard {
    limit: Option<f64>,
    listed: f64,
    figures: Mutex<Figures>,
    /// Bumped when a run ends or the batch stops: what a waiting POST waits for.
    changed: watch::Sender<u64>,
}

impl CostGuard {
    /// `listed`: the technique's `run_cost` (0 when it has none).
    pub(crate) fn new(limit: Option<f64>, listed: f64) -> CostGuard {
        CostGuard {
            limit,
            listed,
            figures: Mutex::new(Figures::default()),
            changed: watch::Sender::new(0),
        }
    }

    fn figures(&self) -> std::sync::MutexGuard<'_, Figures> {
        self.figures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the journal says at the start of a run: charged runs and runs still in flight.
    pub(crate) fn start(&self, charges: impl Iterator<Item = (f64, bool)>, flying: u32) {
        let mut f = Figures {
            flying,
            ..Figures::default()
        };
        for (charged, completed) in charges {
            f.charged += charged;
            if completed {
                f.completed += 1;
                f.highest = f.highest.max(charged);
            }
        }
        *self.figures() = f;
    }

    /// What one more run is expected to cost: the listed price, or the highest charge seen
    /// when that is more. `None` before any run was charged.
    fn per_run(&self, f: &Figures) -> Option<f64> {
        (f.completed > 0).then(|| self.listed.max(f.highest))
    }

    /// Right before a POST: waits while the price probe is in flight, then says whether one
    /// more run fits. Always `Go` without a limit.
    #[cfg(test)]
    pub(crate) async fn before_post(&self, stopped: impl Fn() -> bool) -> Decision<'_> {
        loop {
            let mut changes = self.subscribe();
            if let Some(d) = self.try_reserve(stopped()) {
                return d;
            }
            let _ = changes.changed().await;
        }
    }

    /// Right before a POST, with the request's place in the window held: whether one more
    /// run fits, reserving its place in flight under one lock (two POSTs never take one last
    /// place). `None` while the price probe is in flight: give the place back and wait for a
    /// change on a receiver taken from [`subscribe`](Self::subscribe) *before* asking, so a
    /// waiting submission never holds a place the probe's polls need. `stopping`: the caller
    /// sends nothing anyway, so it is not kept waiting.
    pub(crate) fn try_reserve(&self, stopping: bool) -> Option<Decision<'_>> {
        let mut f = self.figures();
        let probing = self.limit.is_some() && f.completed == 0 && f.flying > 0;
        if probing && !stopping {
            return None;
        }
        if let Some(limit) = self.limit
            && !probing
        {
            let per_run = self.per_run(&f).unwrap_or(self.listed);
            let committed = f64::from(f.flying + f.lost + 1);
            if f.charged + committed * per_run > limit + 1e-9 {
                return Some(Decision::Over {
                    charged: f.charged,
                    per_run,
                    flying: f.flying,
                });
            }
        }
        f.flying += 1;
        Some(Decision::Go(Reserved::new(self)))
    }

    /// A receiver that sees the next run end (or the batch stop).
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Runs created (or being created) and not ended.
    pub(crate) fn in_flight(&self) -> u32 {
        self.figures().flying
    }

    /// A run ended with this charge.
    pub(crate) fn ended(&self, charged: Option<f64>, completed: bool) {
        if completed && charged.is_none() {
            // A completed run that tells no charge was charged something: it counts at the
            // price (as a run whose end is not seen), never as free, and tells no price.
            self.lost();
            return;
        }
        {
            let mut f = self.figures();
            let c = charged.unwrap_or(0.0);
            f.charged += c;
            f.flying = f.flying.saturating_sub(1);
            if completed {
                f.completed += 1;
                f.highest = f.highest.max(c);
            }
        }
        self.wake();
    }

    /// A run's end will not be seen here (its polls gave up, or its POST's outcome is
    /// unknown): it may still be charged.
    pub(crate) fn lost(&self) {
        {
            let mut f = self.figures();
            f.flying = f.flying.saturating_sub(1);
            f.lost += 1;
        }
        self.wake();
    }

    /// Wakes waiting POSTs (a run ended, or the batch stopped).
    pub(crate) fn wake(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A place in flight taken by [`CostGuard::before_post`].
#[derive(Debug)]
#[must_use = "say whether the POST made a run; dropped, it counts as possibly charged"]
pub(crate) struct Reserved<'a> {
    guard: Option<&'a CostGuard>,
}

impl PartialEq for Reserved<'_> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<'a> Reserved<'a> {
    fn new(guard: &'a CostGuard) -> Self {
        Reserved { guard: Some(guard) }
    }

    /// The run exists (created, replayed or reconciled): it stays in flight until it ends.
    pub(crate) fn made_a_run(mut self) {
        self.guard = None;
    }

    /// No run was made (the request was refused, or never sent): the place is given back.
    pub(crate) fn no_run(mut self) {
        if let Some(g) = self.guard.take() {
            {
                let mut f = g.figures();
                f.flying = f.flying.saturating_sub(1);
            }
            g.wake();
        }
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        if let Some(g) = self.guard.take() {
            g.lost();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// Takes a place and says a run was made.
    async fn run_made(g: &CostGuard) {
        match g.before_post(|| false).await {
            Decision::Go(r) => r.made_a_run(),
            other => panic!("expected Go, got {other:?}"),
        }
    }

    fn is_over(d: &Decision<'_>) -> bool {
        matches!(d, Decision::Over { .. })
    }

    #[tokio::test]
    async fn without_a_limit_every_post_goes() {
        let g = CostGuard::new(None, 0.05);
        for _ in 0..100 {
            run_made(&g).await;
        }
    }

    #[tokio::test]
    async fn the_first_run_goes_alone_and_its_charge_sets_the_price() {
        let g = Arc::new(CostGuard::new(Some(1.0), 0.05));
        run_made(&g).await;
        // The second POST waits for the probe's charge.
        let waiting = {
            let g = g.clone();
            tokio::spawn(async move { run_made(&g).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "it must wait for the first charge");
        g.ended(Some(0.2), true);
        waiting.await.unwrap();
        // Charged 0.2, one in flight, priced at 0.2 (above the listed 0.05): 3 more fit
        // (0.2 + 4 × 0.2 = 1.0), a 5th in flight would not.
        for _ in 0..3 {
            run_made(&g).await;
        }
        assert_eq!(
            g.before_post(|| false).await,
            Decision::Over {
                charged: 0.2,
                per_run: 0.2,
                flying: 4
            }
        );
    }

    #[tokio::test]
    async fn two_posts_at_once_never_both_take_the_last_place() {
        let g = Arc::new(CostGuard::new(Some(0.1), 0.05));
        run_made(&g).await;
        g.ended(Some(0.05), true);
        // 0.05 charged: one more place. Ten ask at once.
        let asks: Vec<_> = (0..10)
            .map(|_| {
                let g = g.clone();
                tokio::spawn(async move {
                    match g.before_post(|| false).await {
                        Decision::Go(r) => {
                            r.made_a_run();
                            true
                        }
                        Decision::Over { .. } => false,
                    }
                })
            })
            .collect();
        let mut went = 0;
        for a in asks {
            went += usize::from(a.await.unwrap());
        }
        assert_eq!(went, 1);
    }

    #[tokio::test]
    async fn a_lower_charge_never_lowers_the_listed_price() {
        let g = CostGuard::new(Some(0.1), 0.05);
        run_made(&g).await;
        g.ended(Some(0.01), true);
        run_made(&g).await;
        // 0.01 + 2 × 0.05 > 0.1
        assert!(is_over(&g.before_post(|| false).await));
    }

    #[tokio::test]
    async fn refused_posts_give_their_place_back_unknown_ones_count_as_charged() {
        let g = CostGuard::new(Some(0.2), 0.05);
        run_made(&g).await;
        g.ended(Some(0.05), true);
        // Refused: no run, the place comes back.
        for _ in 0..10 {
            match g.before_post(|| false).await {
                Decision::Go(r) => r.no_run(),
                other => panic!("{other:?}"),
            }
        }
        // Unknown outcomes (dropped): each counts at the price. 0.05 + 2 × 0.05 + 0.05 fits,
        // then 0.05 + 3 × 0.05 + 0.05 does not.
        for _ in 0..2 {
            let Decision::Go(r) = g.before_post(|| false).await else {
                panic!("expected Go");
            };
            drop(r);
        }
        run_made(&g).await;
        assert!(is_over(&g.before_post(|| false).await));
    }

    #[tokio::test]
    async fn a_failed_run_tells_no_price_so_the_next_goes_alone_too() {
        let g = Arc::new(CostGuard::new(Some(1.0), 0.05));
        run_made(&g).await;
        g.ended(None, false);
        run_made(&g).await;
        let waiting = {
            let g = g.clone();
            tokio::spawn(async move { run_made(&g).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        g.ended(Some(0.05), true);
        waiting.await.unwrap();
    }

    #[tokio::test]
    async fn a_stop_releases_a_waiting_post() {
        let g = Arc::new(CostGuard::new(Some(1.0), 0.05));
        run_made(&g).await;
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waiting = {
            let (g, stopped) = (g.clone(), stopped.clone());
            tokio::spawn(async move {
                let d = g
                    .before_post(|| stopped.load(std::sync::atomic::Ordering::SeqCst))
                    .await;
                if let Decision::Go(r) = d {
                    r.no_run();
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        g.wake();
        waiting.await.unwrap();
    }

    #[tokio::test]
    async fn a_completed_run_without_its_charge_counts_at_the_price_never_as_free() {
        // Limit 0.35 at 0.1 a run: two runs charged, a third completed without a charge.
        let g = CostGuard::new(Some(0.35), 0.1);
        for _ in 0..2 {
            run_made(&g).await;
            g.ended(Some(0.1), true);
        }
        run_made(&g).await;
        g.ended(None, true);
        // 0.2 charged and one run counted at 0.1: a fourth would pass 0.35 (counted as
        // free, it would go).
        assert!(matches!(g.try_reserve(false), Some(Decision::Over { .. })));
    }
}
