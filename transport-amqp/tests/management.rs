//! The management API client against the test broker's `rabbitmq_management` plugin:
//! virtual hosts, permissions, queue listings, and its errors.
//!
//! Without a broker these tests skip; with a broker whose management plugin is off they
//! skip too, saying so, unless `NAMEKO_REQUIRE_AMQP=1` (CI enables the plugin).

use std::time::Duration;

use nameko_amqp::management::{ManagementClient, ManagementError, Permissions};
use nameko_amqp::test_support::{TestBroker, broker_required, test_broker};
use nameko_amqp::{AmqpTransport, AmqpUri};
use nameko_transport::{QueueOptions, Transport as _};

/// The test broker and its management API; `None` (after printing why) when either is
/// missing.
async fn api() -> Option<(TestBroker, ManagementClient)> {
    let broker = test_broker().await?;
    let api = broker.management().expect("the test broker's API address");
    match api.list_queues("/").await {
        Ok(_) => Some((broker, api)),
        Err(error) => {
            assert!(
                !broker_required(),
                "the management API is not usable ({error}) and NAMEKO_REQUIRE_AMQP=1"
            );
            eprintln!(
                "skipping: the management API is not usable ({error}); \
                 `rabbitmq-plugins enable rabbitmq_management` to run this test"
            );
            None
        }
    }
}

fn vhost_name() -> String {
    format!("nameko_test_api_{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vhost_is_made_opened_listed_and_deleted() {
    let Some((broker, api)) = api().await else {
        return;
    };
    let vhost = vhost_name();
    api.create_vhost(&vhost).await.expect("create");
    let user = broker.uri().parse::<AmqpUri>().expect("the URI");
    api.set_permissions(&vhost, user.username(), &Permissions::full())
        .await
        .expect("permissions");
    let outcome = async {
        let uri = format!(
            "{}/{vhost}",
            broker.uri().rsplit_once('/').expect("a path").0
        );
        let transport = AmqpTransport::connect(&uri).await.expect("connect");
        transport
            .declare_queue("rpc-listed", QueueOptions::default())
            .await
            .expect("declare");
        let queues = api.list_queues(&vhost).await.expect("list");
        transport.close().await.expect("close");
        queues
    }
    .await;
    api.delete_vhost(&vhost).await.expect("delete");
    let names: Vec<&str> = outcome.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["rpc-listed"]);
    assert_eq!(outcome[0].vhost, vhost);

    let again = api.delete_vhost(&vhost).await.expect_err("already deleted");
    assert!(again.is_not_found(), "{again:?}");
    let missing = api.list_queues(&vhost).await.expect_err("no such vhost");
    assert!(missing.is_not_found(), "{missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_a_status_without_the_password() {
    let Some((_broker, api)) = api().await else {
        return;
    };
    let wrong = ManagementClient::new(api.api().as_str(), "guest", "not-the-password-4711")
        .expect("a client")
        .timeout(Duration::from_secs(5));
    let error = wrong.list_queues("/").await.expect_err("refused");
    assert!(
        matches!(&error, ManagementError::Status { status, .. } if status.as_u16() == 401),
        "{error:?}"
    );
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("not-the-password-4711"), "{shown}");
}
