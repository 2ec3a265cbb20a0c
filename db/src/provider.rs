//! The dependency provider: reads the configuration, opens the shared pool when its
//! container starts, hands each worker a `Database` with a fresh session, and ends that
//! session with the worker.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, Weak};

use nameko_core::dependency::{Dependency, DependencyProvider, ProviderError};
use nameko_core::errors::RemoteError;
use nameko_core::extension::ContainerContext;
use nameko_core::worker::WorkerContext;
use parking_lot::Mutex;
use sqlx::migrate::Migrator;

use crate::backend::sqlx_uri;
use crate::config::DbSettings;
use crate::database::Shared;
use crate::pool::{SharedPool, Startup, share_key};
use crate::session::{SessionSlot, SlotState};
use crate::{Backend, Database, DatabaseError, Driver, Migrations, RetryPolicy};

/// Provides a [`Database`] to each worker: `#[dependency(Database::named("main"))]`, or
/// `DatabaseProvider::<sqlx::Postgres>::new("main")` for a typed one.
///
/// At container start it reads `DB_URIS["<service>:<name>"]` (or `DB_URI`, or else its
/// [`default_uri`](DatabaseProvider::default_uri)) and
/// `DB_POOL`, opens the process's pool of that URI (connecting once to check the
/// database answers; with `AMQP_STARTUP: wait` it waits for it, up to
/// `AMQP_STARTUP_TIMEOUT`) and runs its migrations.
pub struct DatabaseProvider<DB: Driver = sqlx::Any> {
    name: String,
    default_uri: Option<String>,
    migrations: Migrations,
    retry: RetryPolicy,
    setup: Option<Setup<DB>>,
    shared: OnceLock<Arc<Shared<DB>>>,
    sessions: Mutex<HashMap<String, Weak<SessionSlot<DB>>>>,
}

struct Setup<DB: Driver> {
    key: String,
    backend: Backend,
    pool: Arc<SharedPool<DB>>,
    startup: Startup,
}

impl<DB: Driver> fmt::Debug for DatabaseProvider<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseProvider")
            .field("name", &self.name)
            .field("migrations", &self.migrations)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl<DB: Driver> DatabaseProvider<DB> {
    /// The provider of the database `name`.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            default_uri: None,
            migrations: Migrations::new(),
            retry: RetryPolicy::default(),
            setup: None,
            shared: OnceLock::new(),
            sessions: Mutex::default(),
        }
    }

    /// The URI used when the configuration has none for this database (a SQLite file,
    /// so that a service runs without a database server until one is configured).
    #[must_use]
    pub fn default_uri(mut self, uri: impl Into<String>) -> Self {
        self.default_uri = Some(uri.into());
        self
    }

    /// Runs these migrations (`sqlx::migrate!("migrations")`) when the database opens,
    /// whatever its backend.
    #[must_use]
    pub fn migrate(mut self, migrator: Migrator) -> Self {
        self.migrations = self.migrations.with(migrator);
        self
    }

    /// Runs these migrations when the database opens on `backend`.
    #[must_use]
    pub fn migrate_for(mut self, backend: Backend, migrator: Migrator) -> Self {
        self.migrations = self.migrations.with_for(backend, migrator);
        self
    }

    /// Runs all these migrations when the database opens.
    #[must_use]
    pub fn migrations(mut self, migrations: Migrations) -> Self {
        self.migrations = migrations;
        self
    }

    /// The policy of [`Database::transaction_retry`].
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    fn error(error: DatabaseError) -> ProviderError {
        ProviderError::from_error(error)
    }
}

impl<DB: Driver> DependencyProvider for DatabaseProvider<DB> {
    type Output = Database<DB>;

    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        DB::prepare();
        let config = container.config();
        let settings = config.settings().map_err(ProviderError::config)?;
        let db = DbSettings::read(config).map_err(ProviderError::config)?;
        let key = format!("{}:{}", container.service_name(), self.name);
        let uri = db
            .uri(&key)
            .or(self.default_uri.as_deref())
            .ok_or_else(|| Self::error(DatabaseError::NotConfigured { key: key.clone() }))?;
        let uri = sqlx_uri(uri);
        let backend = Backend::from_uri(&uri).ok_or_else(|| {
            Self::error(DatabaseError::InvalidUri {
                key: key.clone(),
                uri: uri.clone(),
                source: sqlx::Error::Configuration(
                    "the scheme is none of postgres, postgresql, mysql, mariadb, sqlite".into(),
                ),
            })
        })?;
        let size = db
            .pool
            .size
            .unwrap_or_else(|| u32::try_from(settings.max_workers).unwrap_or(u32::MAX))
            .max(1);
        let pool = container.process_shared(&share_key(&uri), || {
            SharedPool::<DB>::new(uri.clone(), backend, db.pool.clone(), size)
        });
        self.setup = Some(Setup {
            key,
            backend,
            pool,
            startup: Startup {
                mode: settings.amqp_startup,
                timeout: settings.amqp_startup_timeout,
            },
        });
        Ok(())
    }

    async fn start(&self) -> Result<(), ProviderError> {
        let Some(setup) = &self.setup else {
            return Err(ProviderError::new("the database provider was not set up"));
        };
        let pool = setup
            .pool
            .open(&setup.key, setup.startup, &self.migrations)
            .await
            .map_err(|e| ProviderError::with_source(e.to_string(), e))?;
        let shared = Arc::new(Shared {
            key: setup.key.clone(),
            backend: setup.backend,
            pool,
            retry: self.retry,
        });
        // A container starts once; a restarted provider keeps its first pool handle,
        // whose pool reopens with the shared extension.
        let _ = self.shared.set(shared);
        Ok(())
    }

    async fn stop(&self) {
        self.sessions.lock().clear();
    }

    async fn kill(&self) {
        self.sessions.lock().clear();
    }

    async fn get_dependency(&self, worker: &WorkerContext) -> Result<Database<DB>, ProviderError> {
        let shared = self.shared.get().ok_or_else(|| {
            Self::error(DatabaseError::NotOpen {
                database: self.name.clone(),
            })
        })?;
        let slot = Arc::new(SessionSlot::new());
        let mut sessions = self.sessions.lock();
        // Workers killed mid-run never complete: their sessions are gone already (and
        // rolled back when dropped); forget them.
        sessions.retain(|_, slot| slot.strong_count() > 0);
        sessions.insert(worker.call_id().to_owned(), Arc::downgrade(&slot));
        drop(sessions);
        Ok(Database::new(shared.clone(), slot))
    }

    async fn worker_complete(
        &self,
        worker: &WorkerContext,
        outcome: Result<(), &RemoteError>,
    ) -> Result<(), ProviderError> {
        let slot = self.sessions.lock().remove(worker.call_id());
        let Some(slot) = slot.and_then(|s| s.upgrade()) else {
            return Ok(());
        };
        let database = self.shared.get().map_or("", |s| s.key.as_str());
        let commit = outcome.is_ok();
        match slot.end(database, commit, SlotState::Finished).await {
            Ok(()) => Ok(()),
            Err(error) => {
                if commit {
                    tracing::error!(%database, %error, "commit failed; the worker fails");
                } else {
                    tracing::warn!(%database, %error, "rollback failed (the server rolls back a lost connection's transaction)");
                }
                Err(Self::error(error))
            }
        }
    }

    async fn worker_teardown(&self, worker: &WorkerContext) {
        self.sessions.lock().remove(worker.call_id());
    }
}

impl<DB: Driver> Dependency for Database<DB> {
    type Provider = DatabaseProvider<DB>;

    /// A `db: Database` field without an attribute is the database named like the field
    /// (`DB_URIS["<service>:db"]`).
    fn provider(field: &'static str) -> DatabaseProvider<DB> {
        DatabaseProvider::new(field)
    }
}
