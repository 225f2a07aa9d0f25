//! The futures returned by typed runs, as named types.
//!
//! Every generated technique has `run`/`start` methods. Returning these named types
//! instead of `impl Future` means no opaque type per technique: the compiler checks the
//! future (its `Send`ness, its lifetimes) once here, not once per generated struct. The
//! work itself is one boxed, untyped future compiled once in `flora-api`; only the last
//! step (parsing the typed outputs) is generic.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::Error;
use crate::poll::{RunHandle, RunState};
use crate::technique::{Technique, TechniqueRun};
use crate::wire::Run;

type Erased<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// The future of [`Client::run`](crate::Client::run) and of every generated technique's
/// `run`: starts a run, waits for it and parses its typed outputs.
///
/// It is `Send` and `Unpin`, borrows only the client, and does nothing until awaited.
#[must_use = "futures do nothing unless awaited"]
pub struct RunFuture<'a, T> {
    inner: Erased<'a, Run>,
    _technique: PhantomData<fn() -> T>,
}

impl<'a, T> RunFuture<'a, T> {
    pub(crate) fn new(inner: impl Future<Output = Result<Run, Error>> + Send + 'a) -> Self {
        RunFuture {
            inner: Box::pin(inner),
            _technique: PhantomData,
        }
    }
}

impl<T: Technique> Future for RunFuture<'_, T> {
    type Output = Result<TechniqueRun<T::Outputs>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut()
            .inner
            .as_mut()
            .poll(cx)
            .map(|r| r.and_then(TechniqueRun::from_run::<T>))
    }
}

impl<T> fmt::Debug for RunFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunFuture").finish_non_exhaustive()
    }
}

/// The future of [`Client::start`](crate::Client::start) and of every generated
/// technique's `start`: starts a run and resolves to its [`RunHandle`].
///
/// It is `Send` and `Unpin`, borrows only the client, and does nothing until awaited.
#[must_use = "futures do nothing unless awaited"]
pub struct StartFuture<'a, T> {
    inner: Erased<'a, RunState>,
    _technique: PhantomData<fn() -> T>,
}

impl<'a, T> StartFuture<'a, T> {
    pub(crate) fn new(inner: impl Future<Output = Result<RunState, Error>> + Send + 'a) -> Self {
        StartFuture {
            inner: Box::pin(inner),
            _technique: PhantomData,
        }
    }
}

impl<T> Future for StartFuture<'_, T> {
    type Output = Result<RunHandle<T>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut()
            .inner
            .as_mut()
            .poll(cx)
            .map(|r| r.map(RunState::typed))
    }
}

impl<T> fmt::Debug for StartFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send_unpin<F: Send + Unpin>(_: &F) {}

    #[test]
    fn futures_are_send_and_unpin() {
        let run: RunFuture<'static, crate::Untyped> =
            RunFuture::new(async { Err(Error::InvalidInput("x".into())) });
        is_send_unpin(&run);
        let start: StartFuture<'static, crate::Untyped> =
            StartFuture::new(async { Err(Error::InvalidInput("x".into())) });
        is_send_unpin(&start);
        assert_eq!(format!("{run:?}"), "RunFuture { .. }");
    }
}
