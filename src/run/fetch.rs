//! Provider calls as a run makes them: keeping the provider's pace, waiting out rate limits for
//! the whole run, retrying transient failures with capped, jittered back-off, stopping new calls
//! when the run is cancelled, and giving up on a provider that stays down.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::provider::{Pace, ProviderError};

/// The longest a single rate-limit wait may last, whatever the provider asks.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(300);
/// Rate-limit answers one call may get before its entry fails.
const MAX_RATE_LIMIT_WAITS: u32 = 10;
/// Tries of a call that fails transiently, the first included.
const MAX_TRIES: usize = 3;
/// Entries in a row that failed transiently, after their retries, before the run gives up on
/// the provider: it is down, and further calls would only wait out their timeouts.
pub const DOWN_AFTER: u32 = 5;

/// Why a call gave no answer.
#[derive(Debug)]
pub enum CallError {
    Provider(ProviderError),
    /// The run was cancelled before the call was made.
    Cancelled,
    /// The provider was given up on before the call was made.
    ProviderDown,
}

/// The calls of one run, sharing its rate-limit pause, its cancellation and its count of
/// failures in a row.
pub struct Calls {
    provider: String,
    /// No call starts before this instant: a rate limit pauses the whole run, not one task.
    paused_until: Mutex<Option<Instant>>,
    failures_in_a_row: AtomicU32,
    /// The last transient failure, kept for the reason the run gives when it gives up.
    last_failure: Mutex<Option<String>>,
    cancel: CancellationToken,
    down: CancellationToken,
    /// The first retry's delay; later ones double, up to ten times this, with jitter.
    first_backoff: Duration,
    /// The provider's `requestsPerMinute`: every try, retries included, waits its turn.
    pace: Option<Pace>,
}

impl Calls {
    pub fn new(provider: &str, cancel: CancellationToken) -> Calls {
        Calls {
            provider: provider.to_string(),
            paused_until: Mutex::new(None),
            failures_in_a_row: AtomicU32::new(0),
            last_failure: Mutex::new(None),
            cancel,
            down: CancellationToken::new(),
            first_backoff: Duration::from_millis(250),
            pace: None,
        }
    }

    /// The calls, each waiting for its turn at the provider's pace first.
    pub fn paced(self, pace: Option<Pace>) -> Calls {
        Calls { pace, ..self }
    }

    /// Whether the run gave up on its provider; the reason names the last failure.
    pub fn gave_up(&self) -> Option<String> {
        self.down.is_cancelled().then(|| {
            let last = self.last_failure.lock().expect("failure lock").clone();
            format!(
                "provider `{}` stayed down: {DOWN_AFTER} entries in a row failed after {MAX_TRIES} tries each; last error: {}",
                self.provider,
                last.unwrap_or_default()
            )
        })
    }

    /// Makes one call, as many times as the rules above allow.
    pub async fn call<T, F, Fut>(&self, mut attempt: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.first_backoff)
            .with_max_delay(self.first_backoff * 10)
            .with_max_times(MAX_TRIES - 1)
            .with_jitter()
            .build();
        let mut rate_limited = 0;
        loop {
            self.wait_for_pause().await?;
            self.wait_for_turn().await?;
            let error = match attempt().await {
                Ok(answer) => {
                    self.failures_in_a_row.store(0, Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(error) => error,
            };
            match &error {
                ProviderError::RateLimited { retry_after, .. }
                    if rate_limited < MAX_RATE_LIMIT_WAITS =>
                {
                    rate_limited += 1;
                    self.pause(*retry_after);
                }
                e if e.is_transient() => match backoff.next() {
                    Some(delay) => {
                        tracing::debug!(provider = %self.provider, error = %e, ?delay, "retrying");
                        self.sleep(delay).await?;
                    }
                    None => {
                        *self.last_failure.lock().expect("failure lock") = Some(e.to_string());
                        let in_a_row = self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                        if in_a_row >= DOWN_AFTER {
                            self.down.cancel();
                        }
                        return Err(CallError::Provider(error));
                    }
                },
                _ => {
                    // The provider answered, even if not with metadata: it is up.
                    self.failures_in_a_row.store(0, Ordering::Relaxed);
                    return Err(CallError::Provider(error));
                }
            }
        }
    }

    /// Pauses every call of the run for `wait`, or longer if a pause is already going.
    fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait.min(MAX_RATE_LIMIT_WAIT);
        let mut paused = self.paused_until.lock().expect("pause lock");
        if paused.is_none_or(|p| p < until) {
            tracing::warn!(provider = %self.provider, wait_s = wait.as_secs_f64(), "provider asked to wait; the run pauses");
            *paused = Some(until);
        }
    }

    async fn wait_for_pause(&self) -> Result<(), CallError> {
        loop {
            self.check()?;
            let until = *self.paused_until.lock().expect("pause lock");
            match until {
                Some(until) if until > Instant::now() => {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        () = self.cancel.cancelled() => return Err(CallError::Cancelled),
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Waits until the provider's pace lets one more call through.
    async fn wait_for_turn(&self) -> Result<(), CallError> {
        let Some(pace) = &self.pace else { return Ok(()) };
        tokio::select! {
            () = pace.until_ready() => self.check(),
            () = self.cancel.cancelled() => Err(CallError::Cancelled),
        }
    }

    async fn sleep(&self, delay: Duration) -> Result<(), CallError> {
        tokio::select! {
            () = tokio::time::sleep(delay) => self.check(),
            () = self.cancel.cancelled() => Err(CallError::Cancelled),
        }
    }

    fn check(&self) -> Result<(), CallError> {
        if self.cancel.is_cancelled() {
            Err(CallError::Cancelled)
        } else if self.down.is_cancelled() {
            Err(CallError::ProviderDown)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    fn timeout() -> ProviderError {
        ProviderError::Timeout {
            provider: "p".into(),
            method: "metadata/series/get".into(),
            timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_is_retried_with_back_off() {
        let calls = Calls::new("p", CancellationToken::new());
        let tries = AtomicUsize::new(0);
        let started = Instant::now();
        let answer = calls
            .call(|| async {
                match tries.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(timeout()),
                    _ => Ok(42),
                }
            })
            .await;
        assert_eq!(answer.unwrap(), 42);
        assert_eq!(tries.load(Ordering::SeqCst), 3);
        assert!(started.elapsed() >= Duration::from_millis(500), "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_not_retried() {
        let calls = Calls::new("p", CancellationToken::new());
        let tries = AtomicUsize::new(0);
        let answer: Result<(), _> = calls
            .call(|| async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(ProviderError::NotFound {
                    provider: "p".into(),
                    kind: "series",
                    external_id: "x".into(),
                })
            })
            .await;
        assert!(matches!(answer, Err(CallError::Provider(ProviderError::NotFound { .. }))));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_pauses_every_call_of_the_run() {
        let calls = Arc::new(Calls::new("p", CancellationToken::new()));
        let limited = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let first = {
            let (calls, limited) = (calls.clone(), limited.clone());
            tokio::spawn(async move {
                calls
                    .call(|| {
                        let limited = limited.clone();
                        async move {
                            if limited.fetch_add(1, Ordering::SeqCst) == 0 {
                                Err(ProviderError::RateLimited {
                                    provider: "p".into(),
                                    retry_after: Duration::from_secs(30),
                                })
                            } else {
                                Ok(())
                            }
                        }
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        // A second call started during the pause waits for its end.
        calls.call(|| async { Ok::<_, ProviderError>(()) }).await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(30), "{:?}", started.elapsed());
        first.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_provider_that_stays_down_is_given_up_on() {
        let calls = Calls::new("p", CancellationToken::new());
        for _ in 0..DOWN_AFTER {
            let failed = calls.call(|| async { Err::<(), _>(timeout()) }).await;
            assert!(matches!(failed, Err(CallError::Provider(_))));
        }
        let after = calls.call(|| async { Ok::<_, ProviderError>(()) }).await;
        assert!(matches!(after, Err(CallError::ProviderDown)), "no new calls once given up");
        let reason = calls.gave_up().unwrap();
        assert!(reason.starts_with("provider `p` stayed down: 5 entries in a row"), "{reason}");
        assert!(reason.contains("did not answer"), "{reason}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_run_makes_no_new_call_and_stops_waiting() {
        let cancel = CancellationToken::new();
        let calls = Calls::new("p", cancel.clone());
        calls.pause(Duration::from_secs(100));
        let waiting = calls.call(|| async { Ok::<_, ProviderError>(()) });
        let canceller = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            cancel.cancel();
        };
        let (result, ()) = tokio::join!(waiting, canceller);
        assert!(matches!(result, Err(CallError::Cancelled)));
    }

    #[tokio::test]
    async fn paced_calls_are_spaced_evenly_retries_included() {
        // 1,200 a minute: one call every 50 ms, the first at once.
        let calls = Calls::new("p", CancellationToken::new()).paced(crate::provider::pace(1200));
        let tries = AtomicUsize::new(0);
        let started = std::time::Instant::now();
        for _ in 0..2 {
            calls.call(|| async { Ok::<_, ProviderError>(()) }).await.unwrap();
        }
        // A transient failure's retry waits for its turn as well as for its back-off.
        calls
            .call(|| async {
                match tries.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(timeout()),
                    _ => Ok(()),
                }
            })
            .await
            .unwrap();
        calls.call(|| async { Ok::<_, ProviderError>(()) }).await.unwrap();
        // Five tries: four spaces of 50 ms between them.
        assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_cancelled_run_stops_waiting_for_its_turn() {
        let cancel = CancellationToken::new();
        // One a minute: the second call would wait a minute.
        let calls = Calls::new("p", cancel.clone()).paced(crate::provider::pace(1));
        calls.call(|| async { Ok::<_, ProviderError>(()) }).await.unwrap();
        let made = AtomicUsize::new(0);
        let waiting = calls.call(|| async {
            made.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ProviderError>(())
        });
        let canceller = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        };
        let (result, ()) = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(waiting, canceller)
        })
        .await
        .expect("a cancel ends the wait for a turn");
        assert!(matches!(result, Err(CallError::Cancelled)));
        assert_eq!(made.load(Ordering::SeqCst), 0, "the waiting call was never made");
    }
}
