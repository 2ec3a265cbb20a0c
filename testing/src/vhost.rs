//! Fresh RabbitMQ virtual hosts for tests, so tests against a real broker cannot see
//! each other's queues: made through the management API, or through `rabbitmqctl` when
//! the management plugin is off.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nameko_amqp::management::{ManagementClient, ManagementError, Permissions};
use nameko_amqp::test_support::API_PORT_VAR;
use nameko_amqp::{AmqpUri, InvalidUri};
use url::Url;

use nameko_amqp::test_support::{RabbitmqctlError, rabbitmqctl};

/// How long one `rabbitmqctl` command may take here.
const RABBITMQCTL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a test virtual host could not be made, listed or deleted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VhostError {
    /// The broker's URI cannot be read.
    #[error("the broker's URI")]
    Uri(#[from] InvalidUri),
    /// The management API failed, and so did `rabbitmqctl`.
    #[error("the management API failed ({api}), and so did rabbitmqctl ({rabbitmqctl})")]
    Unavailable {
        /// The management API's error.
        #[source]
        api: Box<ManagementError>,
        /// `rabbitmqctl`'s error.
        rabbitmqctl: Box<RabbitmqctlError>,
    },
    /// The management API failed, and `rabbitmqctl` cannot stand in: it manages only a
    /// broker on this machine.
    #[error("the management API failed ({api}), and rabbitmqctl cannot reach `{host}`")]
    RemoteBroker {
        /// The management API's error.
        #[source]
        api: Box<ManagementError>,
        /// The broker's host.
        host: String,
    },
    /// The management API failed.
    #[error(transparent)]
    Api(Box<ManagementError>),
    /// `rabbitmqctl` failed.
    #[error(transparent)]
    Rabbitmqctl(Box<RabbitmqctlError>),
    /// The blocking task running `rabbitmqctl` failed.
    #[error("the rabbitmqctl task")]
    Task(#[from] tokio::task::JoinError),
    /// The URI of the virtual host cannot be made from the broker's.
    #[error("the broker's URI")]
    Url(#[from] url::ParseError),
    /// No runtime could be made to delete the virtual host outside the test's.
    #[error("a runtime to delete the virtual host")]
    Runtime(#[source] std::io::Error),
}

impl From<ManagementError> for VhostError {
    fn from(error: ManagementError) -> Self {
        Self::Api(Box::new(error))
    }
}

impl From<RabbitmqctlError> for VhostError {
    fn from(error: RabbitmqctlError) -> Self {
        Self::Rabbitmqctl(Box::new(error))
    }
}

/// How the virtual host is managed.
#[derive(Debug, Clone)]
enum Control {
    Api(ManagementClient),
    Rabbitmqctl,
}

/// A virtual host made for one test (or one benchmark run) with full permissions for the
/// broker URI's user, deleted with everything in it when dropped or
/// [deleted](TestVhost::delete).
///
/// It is made through the management API (port 15672 on the broker's host, or
/// `NAMEKO_TEST_AMQP_API_PORT`), or through `rabbitmqctl` when the API is not there and
/// the broker runs on this machine.
///
/// ```no_run
/// use nameko_testing::TestVhost;
///
/// # async fn example() -> Result<(), nameko_testing::VhostError> {
/// let vhost = TestVhost::create("amqp://guest:guest@127.0.0.1:5672/").await?;
/// let uri = vhost.uri(); // amqp://guest:guest@127.0.0.1:5672/nameko_test_...
/// # let _ = uri;
/// vhost.delete().await;
/// # Ok(())
/// # }
/// ```
pub struct TestVhost {
    name: String,
    /// With the password: never printed.
    uri: String,
    user: String,
    control: Control,
    deleted: AtomicBool,
}

impl std::fmt::Debug for TestVhost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestVhost")
            .field("name", &self.name)
            .field("user", &self.user)
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}

/// Whether `rabbitmqctl` on this machine manages the broker on `host`.
fn is_local(host: &str) -> bool {
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

async fn blocking_rabbitmqctl(args: Vec<String>) -> Result<String, VhostError> {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        rabbitmqctl(&args, RABBITMQCTL_TIMEOUT)
    })
    .await?
    .map_err(VhostError::from)
}

fn args(args: &[&str]) -> Vec<String> {
    args.iter().map(|&a| a.to_owned()).collect()
}

/// The management API of the broker of `broker`.
fn management(broker: &AmqpUri) -> Result<ManagementClient, ManagementError> {
    let port = match std::env::var(API_PORT_VAR) {
        Ok(port) => port.parse().map_err(|_| ManagementError::InvalidAddress {
            reason: format!("{API_PORT_VAR}=`{port}` is not a port number"),
        })?,
        Err(_) => nameko_amqp::management::DEFAULT_PORT,
    };
    ManagementClient::for_broker_on_port(broker, port)
}

/// `base_uri` with its path replaced by `vhost`, percent-encoded; the rest (credentials,
/// query) as it was.
fn uri_of(base_uri: &str, vhost: &str) -> Result<String, VhostError> {
    let mut url = Url::parse(base_uri)?;
    url.path_segments_mut()
        .map_err(|()| url::ParseError::RelativeUrlWithCannotBeABaseBase)?
        .clear()
        .push(vhost);
    Ok(url.into())
}

impl TestVhost {
    /// Makes `nameko_test_<random>` on the broker of `base_uri`.
    ///
    /// # Errors
    ///
    /// When neither the management API nor `rabbitmqctl` can make it.
    pub async fn create(base_uri: &str) -> Result<Self, VhostError> {
        Self::create_with_prefix(base_uri, "nameko_test_").await
    }

    /// Makes `<prefix><random>` on the broker of `base_uri`.
    ///
    /// # Errors
    ///
    /// When neither the management API nor `rabbitmqctl` can make it.
    pub async fn create_with_prefix(base_uri: &str, prefix: &str) -> Result<Self, VhostError> {
        let broker: AmqpUri = base_uri.parse()?;
        let name = format!("{prefix}{}", uuid::Uuid::new_v4().simple());
        let uri = uri_of(base_uri, &name)?;
        let user = broker.username().to_owned();
        let via_api = async {
            let api = management(&broker)?;
            api.create_vhost(&name).await?;
            api.set_permissions(&name, &user, &Permissions::full())
                .await?;
            Ok::<_, ManagementError>(api)
        };
        let control = match via_api.await {
            Ok(api) => Control::Api(api),
            Err(api) if !is_local(broker.host()) => {
                return Err(VhostError::RemoteBroker {
                    api: Box::new(api),
                    host: broker.host().to_owned(),
                });
            }
            Err(api) => {
                let made = async {
                    blocking_rabbitmqctl(args(&["add_vhost", &name])).await?;
                    blocking_rabbitmqctl(args(&[
                        "set_permissions",
                        "-p",
                        &name,
                        &user,
                        ".*",
                        ".*",
                        ".*",
                    ]))
                    .await
                };
                match made.await {
                    Ok(_) => Control::Rabbitmqctl,
                    Err(VhostError::Rabbitmqctl(rabbitmqctl)) => {
                        // A half-made vhost (permissions refused) is removed.
                        let _ = blocking_rabbitmqctl(args(&["delete_vhost", &name])).await;
                        return Err(VhostError::Unavailable {
                            api: Box::new(api),
                            rabbitmqctl,
                        });
                    }
                    Err(other) => return Err(other),
                }
            }
        };
        Ok(Self {
            name,
            uri,
            user,
            control,
            deleted: AtomicBool::new(false),
        })
    }

    /// The virtual host's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The AMQP URI of the virtual host (with the password: do not print it).
    #[must_use]
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Names of the queues in the virtual host.
    ///
    /// # Errors
    ///
    /// When the management API or `rabbitmqctl` fails.
    pub async fn queue_names(&self) -> Result<Vec<String>, VhostError> {
        match &self.control {
            Control::Api(api) => Ok(api
                .list_queues(&self.name)
                .await?
                .into_iter()
                .map(|q| q.name)
                .collect()),
            Control::Rabbitmqctl => Ok(blocking_rabbitmqctl(args(&[
                "list_queues",
                "-q",
                "--no-table-headers",
                "-p",
                &self.name,
                "name",
            ]))
            .await?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()),
        }
    }

    /// The queues of the virtual host with their types (`classic`, `quorum`), sorted by
    /// name, as the management API or `rabbitmqctl list_queues name type` reports them.
    ///
    /// # Errors
    ///
    /// When the management API or `rabbitmqctl` fails.
    pub async fn queue_types(&self) -> Result<Vec<(String, String)>, VhostError> {
        let mut types: Vec<(String, String)> = match &self.control {
            Control::Api(api) => api
                .list_queues(&self.name)
                .await?
                .into_iter()
                .map(|q| (q.name, q.queue_type.unwrap_or_default()))
                .collect(),
            Control::Rabbitmqctl => blocking_rabbitmqctl(args(&[
                "list_queues",
                "-q",
                "--no-table-headers",
                "-p",
                &self.name,
                "name",
                "type",
            ]))
            .await?
            .lines()
            .filter_map(|line| {
                let (name, kind) = line.trim().rsplit_once(char::is_whitespace)?;
                Some((name.trim().to_owned(), kind.trim().to_owned()))
            })
            .collect(),
        };
        types.sort();
        Ok(types)
    }

    /// Deletes the virtual host (closing its connections). Idempotent; a failure is
    /// logged.
    pub async fn delete(&self) {
        if self.deleted.swap(true, Ordering::SeqCst) {
            return;
        }
        let result = match &self.control {
            Control::Api(api) => api.delete_vhost(&self.name).await.map_err(VhostError::from),
            Control::Rabbitmqctl => blocking_rabbitmqctl(args(&["delete_vhost", &self.name]))
                .await
                .map(drop),
        };
        self.log_failed_delete(result);
    }

    fn log_failed_delete(&self, result: Result<(), VhostError>) {
        if let Err(error) = result {
            tracing::warn!(vhost = %self.name, user = %self.user, %error, "could not delete test vhost");
        }
    }

    /// Deletes the virtual host from a thread of its own, with a runtime of its own, so
    /// that it works from any context (a test's runtime, or none).
    fn delete_blocking(&self) {
        if self.deleted.swap(true, Ordering::SeqCst) {
            return;
        }
        let name = self.name.clone();
        let control = self.control.clone();
        let deleting = std::thread::spawn(move || match control {
            Control::Api(api) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(VhostError::Runtime)
                .and_then(|runtime| {
                    runtime
                        .block_on(api.delete_vhost(&name))
                        .map_err(VhostError::from)
                }),
            Control::Rabbitmqctl => rabbitmqctl(&["delete_vhost", &name], RABBITMQCTL_TIMEOUT)
                .map(drop)
                .map_err(VhostError::from),
        });
        match deleting.join() {
            Ok(result) => self.log_failed_delete(result),
            Err(_) => tracing::warn!(vhost = %self.name, "deleting the test vhost panicked"),
        }
    }
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        self.delete_blocking();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_keep_credentials_and_query_and_swap_the_vhost() {
        let base = "amqp://us%40r:p%2Fss@rabbit:5673/%2f?heartbeat=5";
        assert_eq!(
            uri_of(base, "v_1").unwrap(),
            "amqp://us%40r:p%2Fss@rabbit:5673/v_1?heartbeat=5"
        );
        assert_eq!(
            uri_of("amqp://localhost", "a/b").unwrap(),
            "amqp://localhost/a%2Fb"
        );
    }

    #[test]
    fn rabbitmqctl_stands_in_only_for_a_local_broker() {
        for host in ["localhost", "127.0.0.1", "::1"] {
            assert!(is_local(host), "{host}");
        }
        for host in ["rabbit", "10.0.0.5", "example.com"] {
            assert!(!is_local(host), "{host}");
        }
    }
}
