//! The benchmark harness in miniature: a few calls per contender that can run here, so
//! that every path of the benchmark (processes, vhost, measurements, report) keeps
//! working. It asserts what was measured, never how fast, except the gross guard against
//! Nagle's algorithm (a sequential call over loopback well under 20 ms).
//!
//! RabbitMQ contenders run when a broker is reachable (`NAMEKO_TEST_AMQP_URI`, default
//! the local one) and a virtual host can be made on it (through the management API, or
//! `rabbitmqctl` without it), and must with `NAMEKO_REQUIRE_AMQP=1`; Python ones when
//! the environment of `scripts/python-env` exists, and must with
//! `NAMEKO_REQUIRE_PYTHON=1` (`NAMEKO_PYTHON_SETUP=1` lets the test make it); raw lapin
//! when it was built by a full benchmark run.

use std::path::PathBuf;

use nameko::testing::TestVhost;
use nameko_amqp::test_support::{broker_required, test_broker, test_uri};
use nameko_bench::harness::{self, Options};
use nameko_bench::scenario::Scenario;
use nameko_bench::tools::Need;

fn options() -> Options {
    Options::smoke(
        PathBuf::from(env!("CARGO_BIN_EXE_nameko-bench-service")),
        PathBuf::from(env!("CARGO_BIN_EXE_nameko-bench-client")),
    )
}

/// Whether the test broker is reachable and a virtual host can be made on it, as the
/// harness needs; says why not.
async fn usable_broker() -> bool {
    let Some(broker) = test_broker().await else {
        return false;
    };
    match TestVhost::create(broker.uri()).await {
        Ok(vhost) => {
            vhost.delete().await;
            true
        }
        Err(error) => {
            assert!(
                !broker_required(),
                "cannot make a vhost ({error}) and NAMEKO_REQUIRE_AMQP=1"
            );
            eprintln!("skipping the RabbitMQ contenders: cannot make a vhost ({error})");
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_available_contender_runs_and_is_measured() {
    let mut options = options();
    options.uri = test_uri();
    let broker = usable_broker().await;
    if !broker {
        options.broker = Need::Skip;
        options.only = Some(vec!["memory".to_owned(), "memory-mt".to_owned()]);
    }
    let report = harness::run(&options).await.expect("the benchmark runs");
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    let ran: Vec<&str> = report.contenders.iter().map(|c| c.key).collect();
    println!("ran: {ran:?}; skipped: {:?}", report.skipped);
    println!("{}", report.render());

    for contender in &report.contenders {
        for &scenario in &contender.scenarios {
            let sample = report
                .calls
                .iter()
                .find(|s| s.contender == contender.key && s.scenario == scenario)
                .unwrap_or_else(|| panic!("no result for {} / {scenario}", contender.key));
            assert_eq!(
                sample.figures.calls,
                options.sizes.calls(scenario),
                "{} / {scenario}",
                contender.key
            );
            assert!(sample.figures.calls_per_s > 0.0 && sample.figures.p50_ms > 0.0);
            assert_eq!(sample.server_cpu_us.is_some(), contender.server.is_some());
        }
    }
    for key in ["memory", "memory-mt"] {
        assert!(ran.contains(&key), "the memory transport always runs");
    }

    if broker {
        for key in ["rs", "rs-p100"] {
            assert!(ran.contains(&key), "{key} needs only RabbitMQ");
        }
        let server = report
            .servers
            .iter()
            .find(|s| s.contender == "rs")
            .expect("the nameko-rs service was started");
        assert!(server.ready_ms > 0.0 && server.idle_rss_kib > 0);
        assert!(server.peak_rss_kib >= server.idle_rss_kib);
        let p50 = report
            .figure("rs", Scenario::Seq, |s| Some(s.figures.p50_ms))
            .expect("sequential calls over RabbitMQ");
        assert!(
            p50.median < 20.0,
            "p50 of {:.1} ms over loopback: is Nagle's algorithm on?",
            p50.median
        );
    }
    if options.python == Need::Required {
        for key in ["py", "py-rs", "rs-py"] {
            assert!(ran.contains(&key), "{key} runs when Python is required");
        }
    }
}
