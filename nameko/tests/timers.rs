//! Timers under tokio's paused clock: eager and lazy starts, firing at
//! `start + n * interval`, no overlap and no drift after an overrun, prompt stop even in
//! the middle of a wait.

use std::sync::Mutex;
use std::time::Duration;

use nameko::prelude::*;
use nameko::testing::TestCluster;
use tokio::time::Instant;

static FIRED: Mutex<Vec<(&'static str, Instant)>> = Mutex::new(Vec::new());
static STARTED: Mutex<Option<Instant>> = Mutex::new(None);

fn fired(name: &str) -> Vec<f64> {
    let start = STARTED.lock().unwrap().expect("start time");
    FIRED
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, t)| (*t - start).as_secs_f64())
        .collect()
}

#[derive(Dependencies)]
struct Ticks;

#[service(name = "ticks")]
impl Ticks {
    #[timer(interval = 1)]
    async fn lazy(&self) {
        FIRED.lock().unwrap().push(("lazy", Instant::now()));
    }

    #[timer(interval = 1, eager = true)]
    async fn eager(&self) {
        FIRED.lock().unwrap().push(("eager", Instant::now()));
    }

    #[timer(interval = 1)]
    async fn overrun(&self) {
        let first = !FIRED.lock().unwrap().iter().any(|(n, _)| *n == "overrun");
        FIRED.lock().unwrap().push(("overrun", Instant::now()));
        if first {
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
    }
}

#[derive(Dependencies)]
struct Sleepy;

#[service(name = "sleepy")]
impl Sleepy {
    #[timer(interval = 3600)]
    async fn hourly(&self) {
        FIRED.lock().unwrap().push(("hourly", Instant::now()));
    }
}

#[tokio::test(start_paused = true)]
async fn timers_fire_on_schedule_without_drift_or_overlap() {
    let mut cluster = TestCluster::memory();
    *STARTED.lock().unwrap() = Some(Instant::now());
    let container = cluster.start::<Ticks>().await;
    tokio::time::sleep(Duration::from_millis(5500)).await;
    container.stop().await.unwrap();
    assert_eq!(fired("lazy"), [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(fired("eager"), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    // The first run overran until 3.5 s: the ticks due at 2 s and 3 s fire right after
    // it (one at a time), then the schedule resumes at 4 s and 5 s.
    assert_eq!(fired("overrun"), [1.0, 3.5, 3.5, 4.0, 5.0]);
}

#[tokio::test(start_paused = true)]
async fn stopping_interrupts_a_timer_mid_wait() {
    let mut cluster = TestCluster::memory();
    let container = cluster.start::<Sleepy>().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let before = Instant::now();
    container.stop().await.unwrap();
    assert!(
        before.elapsed() < Duration::from_secs(1),
        "stop did not wait for the hour to pass"
    );
    assert!(FIRED.lock().unwrap().iter().all(|(n, _)| *n != "hourly"));
}
