//! The nameko-rs benchmark client: runs the scenarios through a [`ClusterRpcProxy`] and a
//! [`StandaloneDispatcher`], as the Python client does through nameko's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use nameko::prelude::*;

use crate::cli::ClientApi;
use crate::echo::{EVENT_SOURCE, EVENT_TYPE, EchoClient, SERVICE};
use crate::error::{BenchError, Result};
use crate::scenario::{self, Scenario, Sizes};
use crate::stats::RunFigures;

/// How long the event scenario waits for the handler to catch up.
const EVENT_DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Drives the `echo` service.
#[derive(Debug)]
pub struct Load {
    echo: RpcProxy,
    typed: EchoClient,
    api: ClientApi,
    events: StandaloneDispatcher,
    blob: Arc<str>,
}

impl Load {
    /// A client of `echo` through `proxy`, dispatching events through `events`, calling
    /// through `RpcProxy::call` or the typed client as `api` says.
    #[must_use]
    pub fn new(proxy: &ClusterRpcProxy, events: StandaloneDispatcher, api: ClientApi) -> Self {
        Self {
            echo: proxy.service(SERVICE),
            typed: proxy.client(),
            api,
            events,
            blob: Arc::from(scenario::blob()),
        }
    }

    /// One `echo` call, through the API chosen. The typed client takes its argument by
    /// value: the payload is cloned for it, inside the measured time; `call` with keyword
    /// arguments sends what the typed client sends.
    async fn echo(&self, payload: &Value) -> std::result::Result<Value, RpcError> {
        match self.api {
            ClientApi::Call => self.echo.call("echo", (payload,)).await,
            ClientApi::Typed => self.typed.echo(payload.clone()).await,
            ClientApi::Kwargs => {
                self.echo
                    .call("echo", CallArgs::new().kwarg("value", payload))
                    .await
            }
        }
    }

    /// Runs `warmup` unmeasured calls, then the measured ones.
    ///
    /// # Errors
    ///
    /// A failed call, or a reply that is not the payload sent.
    pub async fn run(&self, scenario: Scenario, sizes: &Sizes) -> Result<RunFigures> {
        let n = sizes.calls(scenario);
        let (latencies, elapsed) = match scenario {
            Scenario::Seq => {
                self.sequential(sizes.warmup, false).await?;
                self.sequential(n, false).await?
            }
            Scenario::Seq10k => {
                self.sequential(sizes.warmup, true).await?;
                self.sequential(n, true).await?
            }
            Scenario::Pipe => {
                self.pipelined(sizes.warmup, sizes.inflight).await?;
                self.pipelined(n, sizes.inflight).await?
            }
            Scenario::Event => {
                self.events(sizes.warmup).await?;
                self.events(n).await?
            }
        };
        Ok(RunFigures::from_latencies(&latencies, elapsed))
    }

    async fn sequential(&self, n: usize, large: bool) -> Result<(Vec<Duration>, Duration)> {
        let mut latencies = Vec::with_capacity(n);
        let started = Instant::now();
        for i in 0..n {
            let payload = if large {
                scenario::large(i, &self.blob)
            } else {
                scenario::small(i)
            };
            let sent = Instant::now();
            let back = self.echo(&payload).await?;
            latencies.push(sent.elapsed());
            if back != payload {
                return Err(BenchError::new(format!("echo mismatch at call {i}")));
            }
        }
        Ok((latencies, started.elapsed()))
    }

    /// Keeps `inflight` calls going from this one task (as `buffer_unordered` would), so
    /// that the figures are those of the calls, not of spawning a task per call.
    async fn pipelined(&self, n: usize, inflight: usize) -> Result<(Vec<Duration>, Duration)> {
        let call = |i: usize| async move {
            let payload = scenario::small(i);
            let sent = Instant::now();
            let back = self.echo(&payload).await;
            let latency = sent.elapsed();
            match back {
                Ok(back) if back == payload => Ok(latency),
                Ok(_) => Err(BenchError::new(format!("echo mismatch at call {i}"))),
                Err(e) => Err(BenchError::from(e)),
            }
        };
        let mut latencies = Vec::with_capacity(n);
        let mut running = FuturesUnordered::new();
        let mut next = 0;
        let started = Instant::now();
        loop {
            while next < n && running.len() < inflight.max(1) {
                running.push(call(next));
                next += 1;
            }
            match running.next().await {
                Some(latency) => latencies.push(latency?),
                None => break,
            }
        }
        Ok((latencies, started.elapsed()))
    }

    /// Dispatches `n` events one after the other, then waits until the handler has seen
    /// them all; the latencies are those of the dispatches (publish and confirm).
    async fn events(&self, n: usize) -> Result<(Vec<Duration>, Duration)> {
        let before: u64 = self.echo.call("pings_seen", ()).await?;
        let target = before + n as u64;
        let mut latencies = Vec::with_capacity(n);
        let started = Instant::now();
        for i in 0..n {
            let sent = Instant::now();
            self.events
                .dispatch(EVENT_SOURCE, EVENT_TYPE, scenario::small(i))
                .await?;
            latencies.push(sent.elapsed());
        }
        loop {
            let seen: u64 = self.echo.call("pings_seen", ()).await?;
            if seen >= target {
                break;
            }
            if started.elapsed() > EVENT_DRAIN_TIMEOUT {
                return Err(BenchError::new(format!(
                    "the handler saw {} of {n} events",
                    seen.saturating_sub(before)
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok((latencies, started.elapsed()))
    }
}
