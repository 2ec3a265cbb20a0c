//! Reconnection of connections the broker dropped, on a task that sleeps only on tokio
//! time, so a paused clock drives it.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

use crate::broker::Shared;
use crate::connection::Phase;
use crate::ids::ConnectionId;
use crate::state::State;

/// The first wait after a failed attempt.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The wait after the `failed`-th failed attempt: 100 ms doubling, capped at 2 s.
pub(crate) fn backoff(failed: u32) -> Duration {
    let factor = 1u32 << failed.saturating_sub(1).min(16);
    INITIAL_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
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
    loop {
        match shared.with(|state| attempt(state, conn)) {
            Some(wait) => tokio::time::sleep(wait).await,
            None => return,
        }
    }
}

/// One reconnection attempt. Returns how long to wait before the next, or `None` when
/// done (recovered, or the connection is gone or no longer reconnecting).
fn attempt(state: &mut State, conn: ConnectionId) -> Option<Duration> {
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
        return Some(backoff(attempt));
    }
    state.recover(conn);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_up_to_2s() {
        let waits: Vec<u64> = (1..=8).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(backoff(1000), MAX_BACKOFF);
    }
}
