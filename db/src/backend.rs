//! Which database server a URI names, and the SQL details that differ between them.

use std::borrow::Cow;
use std::fmt;

/// The database servers nameko-sqlx speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// PostgreSQL (`postgres://`, `postgresql://`).
    Postgres,
    /// MySQL or MariaDB (`mysql://`, `mariadb://`).
    MySql,
    /// SQLite (`sqlite:`).
    Sqlite,
}

impl Backend {
    /// The backend of a URI, by its scheme. SQLAlchemy's `+driver` suffix
    /// (`postgresql+psycopg2://`) is accepted, so nameko-sqlalchemy's `DB_URIS` work as
    /// they are.
    ///
    /// ```
    /// use nameko_sqlx::Backend;
    ///
    /// assert_eq!(Backend::from_uri("postgresql+psycopg2://app@db/app"), Some(Backend::Postgres));
    /// assert_eq!(Backend::from_uri("mariadb://root@localhost/app"), Some(Backend::MySql));
    /// assert_eq!(Backend::from_uri("sqlite::memory:"), Some(Backend::Sqlite));
    /// assert_eq!(Backend::from_uri("oracle://db"), None);
    /// ```
    #[must_use]
    pub fn from_uri(uri: &str) -> Option<Self> {
        let scheme = uri.split(':').next()?;
        let scheme = scheme.split('+').next().unwrap_or(scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            "sqlite" => Some(Self::Sqlite),
            _ => None,
        }
    }

    /// The placeholder of the `n`th bind parameter (from 1): `$n` on PostgreSQL and
    /// SQLite, `?` on MySQL/MariaDB. For SQL that runs on several backends.
    ///
    /// ```
    /// use nameko_sqlx::Backend;
    ///
    /// assert_eq!(Backend::Postgres.placeholder(2), "$2");
    /// assert_eq!(Backend::MySql.placeholder(2), "?");
    /// ```
    #[must_use]
    pub fn placeholder(self, n: usize) -> Cow<'static, str> {
        match self {
            Self::MySql => Cow::Borrowed("?"),
            Self::Postgres | Self::Sqlite => Cow::Owned(format!("${n}")),
        }
    }

    /// `postgres`, `mysql` or `sqlite`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
            Self::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The URI as sqlx reads it: SQLAlchemy's `+driver` suffix removed from the scheme.
pub(crate) fn sqlx_uri(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) if scheme.contains('+') => {
            let scheme = scheme.split('+').next().unwrap_or(scheme);
            format!("{scheme}://{rest}")
        }
        _ => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlalchemy_driver_suffixes_are_dropped() {
        assert_eq!(
            sqlx_uri("postgresql+psycopg2://u:p@h/db"),
            "postgresql://u:p@h/db"
        );
        assert_eq!(sqlx_uri("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(sqlx_uri("mysql://root@h/x"), "mysql://root@h/x");
    }
}
