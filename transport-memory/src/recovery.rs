//! Reconnection of connections the broker dropped, on a task that sleeps only on tokio
//! time, so a paused clock drives it.

use std::sync::Arc;
use std::time::Duration;

use backon::{Backoff, BackoffBuilder as _, ExponentialBuilder};
use tokio::runtime::Handle;

use crate::broker::Shared;
use crate::connection::Phase;
use crate::ids::ConnectionId;
use crate::state::State;

/// The first wait after a failed attempt.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The waits after failed attempts, on backon's exponential backoff: 100 ms doubling,
/// capped at 2 s, forever.
fn backoff() -> impl Backoff {
    ExponentialBuilder::new()
        .with_min_delay(INITIAL_BACKOFF)
        .with_max_delay(MAX_BACKOFF)
        .with_factor(2.0)
        .without_max_times()
        .build()
        .map(whole_micros)
}

/// `delay` rounded to the microsecond: backon grows delays in `f32` seconds, which
/// leaves nanoseconds of noise (200.000003 ms for 100 ms doubled).
fn whole_micros(delay: Duration) -> Duration {
    let micros = (delay.as_nanos() + 500) / 1000;
    Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

/// Spawns the recovery task of `conn` on the connection's runtime, or the current one.
/// Without any runtime, the next call through the connection asks again.
pub(crate) fn spawn(shared: &Arc<Shared>, conn: ConnectionId) {
    let runtime = shared.with(|state| {
        state
            .connection_mut(conn)
            .and_then(|c| c.runtime.clone())
            .or_else(|| Handle::try_current().ok())
            .or_else(|| {
                if let Some(c) = state.connection_mut(conn) {
                    c.recovering = false;
                }
                None
            })
    });
    if let Some(runtime) = runtime {
        runtime.spawn(run(Arc::clone(shared), conn));
    }
}

async fn run(shared: Arc<Shared>, conn: ConnectionId) {
    let mut waits = None;
    while let Some(failed) = shared.with(|state| attempt(state, conn)) {
        // A task that takes over from an earlier one (which had no runtime to run on)
        // goes on from the attempt the connection is at.
        let waits = waits.get_or_insert_with(|| {
            backoff().skip(usize::try_from(failed.saturating_sub(1)).unwrap_or(usize::MAX))
        });
        tokio::time::sleep(waits.next().unwrap_or(MAX_BACKOFF)).await;
    }
}

/// One reconnection attempt. Returns the number of the attempt that failed, or `None`
/// when done (recovered, or the connection is gone or no longer reconnecting).
fn attempt(state: &mut State, conn: ConnectionId) -> Option<u32> {
    let available = state.available;
    let c = state.connection_mut(conn)?;
    let Phase::Reconnecting { attempt, .. } = c.phase else {
        c.recovering = false;
        return None;
    };
    if !available {
        tracing::debug!(connection = %conn, attempt, "reconnection failed: broker unavailable");
        c.set_phase(Phase::Reconnecting {
            attempt: attempt + 1,
            reason: "broker unavailable".to_owned(),
        });
        return Some(attempt);
    }
    state.recover(conn);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_up_to_2s() {
        let waits: Vec<Duration> = backoff().take(8).collect();
        let expected = [100, 200, 400, 800, 1600, 2000, 2000, 2000].map(Duration::from_millis);
        assert_eq!(waits, expected);
        assert_eq!(backoff().nth(1000), Some(MAX_BACKOFF));
    }

    #[test]
    fn rounding_keeps_microseconds() {
        assert_eq!(
            whole_micros(Duration::from_nanos(200_000_003)),
            Duration::from_millis(200)
        );
        assert_eq!(
            whole_micros(Duration::from_nanos(1_499)),
            Duration::from_micros(1)
        );
        assert_eq!(
            whole_micros(Duration::from_nanos(1_500)),
            Duration::from_micros(2)
        );
    }
}
