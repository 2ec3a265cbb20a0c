//! Two services, one calling the other: the smallest nameko cluster, with the databases
//! of nameko-sqlalchemy's example configuration: `service_x` has `first_base` and
//! `second_base`, `service_y` has `other_base`.
//!
//! Their URIs come from `DB_URIS` (see `examples/service_x_y.yaml`):
//!
//! ```yaml
//! DB_URIS:
//!   "service_x:first_base": ${FIRST_BASE_URI:'sqlite::memory:'}
//!   "service_x:second_base": ${SECOND_BASE_URI:'sqlite::memory:'}
//!   "service_y:other_base": ${OTHER_BASE_URI:'sqlite::memory:'}
//! ```
//!
//! Without configuration each is an in-memory SQLite database, so the services run
//! anywhere.

use std::collections::BTreeMap;

use nameko::db::{Database, DatabaseError, DatabaseProvider};
use nameko::prelude::*;

/// A database of these services: `DB_URIS["<service>:<name>"]`, an in-memory SQLite
/// database when none is configured.
fn base(name: &str) -> DatabaseProvider {
    DatabaseProvider::new(name).default_uri("sqlite::memory:")
}

/// `{"<service>:<name>": "<backend>"}` for databases that answer `SELECT 1`.
async fn describe(bases: &[&Database]) -> Result<BTreeMap<String, String>, DatabaseError> {
    let mut out = BTreeMap::new();
    for db in bases {
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(db.pool())
            .await
            .map_err(|e| db.error(e))?;
        debug_assert_eq!(one, 1);
        out.insert(db.name().to_owned(), db.backend().to_string());
    }
    Ok(out)
}

/// Appends `-y` to what it is given.
#[derive(Debug, Dependencies)]
pub struct ServiceY {
    #[dependency(base("other_base"))]
    other_base: Database,
}

#[service(name = "service_y")]
impl ServiceY {
    /// `"<value>-y"`.
    #[rpc]
    pub async fn append_identifier(&self, value: String) -> String {
        format!("{value}-y")
    }

    /// `{"service_y:other_base": "<backend>"}`, once the database answered.
    #[rpc]
    pub async fn databases(&self) -> Result<BTreeMap<String, String>, DatabaseError> {
        describe(&[&self.other_base]).await
    }
}

/// Appends `-x`, then asks `service_y` to append its own identifier.
#[derive(Debug, Dependencies)]
pub struct ServiceX {
    service_y: ServiceYClient,
    #[dependency(base("first_base"))]
    first_base: Database,
    #[dependency(base("second_base"))]
    second_base: Database,
}

#[service(name = "service_x")]
impl ServiceX {
    /// `service_y.append_identifier("<value>-x")`, i.e. `"<value>-x-y"`.
    #[rpc]
    pub async fn remote_method(&self, value: String) -> Result<String, RpcError> {
        self.service_y.append_identifier(format!("{value}-x")).await
    }

    /// `{"service_x:first_base": "<backend>", "service_x:second_base": "<backend>"}`,
    /// once both answered.
    #[rpc]
    pub async fn databases(&self) -> Result<BTreeMap<String, String>, DatabaseError> {
        describe(&[&self.first_base, &self.second_base]).await
    }
}
