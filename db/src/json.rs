//! Rows to the wire: what a `#[derive(sqlx::FromRow, Serialize)]` type looks like to a
//! Python caller, and serializers for the column types JSON has no form for.
//!
//! An RPC method returns any `Serialize` type; nameko-rs sends it as the JSON Python
//! nameko would send (see `nameko_core::wire::json`), so a Python caller gets plain
//! dicts and lists:
//!
//! | column (PostgreSQL / MySQL / SQLite) | Rust field | a Python caller gets |
//! |---|---|---|
//! | integers, `SERIAL`, `AUTO_INCREMENT` | `i16`, `i32`, `i64` | `int` |
//! | `REAL`, `DOUBLE PRECISION`, `FLOAT` | `f32`, `f64` | `float` |
//! | `TEXT`, `VARCHAR`, `CHAR` | `String` | `str` |
//! | `BOOLEAN`, `TINYINT(1)` | `bool` | `bool` |
//! | `NULL` | `Option<T>` | `None` |
//! | `JSON`, `JSONB` | `serde_json::Value` | dicts and lists |
//! | `UUID` | `uuid::Uuid` | `str`, `"67e55044-10b1-426f-9247-bb680e5fe0c8"` |
//! | `TIMESTAMP`, `DATETIME` | `chrono::NaiveDateTime` with [`tagged::naive_datetime`] or [`plain::naive_datetime`] | `datetime`, or its ISO string |
//! | `TIMESTAMPTZ` | `chrono::DateTime<Utc>` with [`tagged::datetime_utc`] or [`plain::datetime_utc`] | `datetime` with UTC, or its ISO string |
//! | `DATE` | `chrono::NaiveDate` with [`tagged::date`] or [`plain::date`] | `date`, or its ISO string |
//! | `TIME` | `chrono::NaiveTime` with [`tagged::time`] or [`plain::time`] | `time`, or its ISO string |
//! | `NUMERIC`, `DECIMAL` | `rust_decimal::Decimal` with [`tagged::decimal`] or [`plain::decimal`] | `Decimal`, or its string |
//!
//! Dates, times and decimals take the form Python nameko's JSON gives them, which
//! depends on the kombu next to the caller's nameko:
//!
//! - [`tagged`]: kombu 5.3 and later (what `pip install nameko` brings today) sends
//!   `{"__type__": "datetime", "__value__": "2024-01-02T03:04:05.120000"}` and turns it
//!   back into a `datetime` (a `date`, a `time`, a `Decimal`) on receipt: the caller gets
//!   the very object a Python service would have returned.
//! - [`plain`]: kombu up to 5.2 sends ISO strings (a date as midnight, `+00:00` as `Z`)
//!   and decimals as strings, and the caller gets those strings; so do callers of any
//!   kombu when the service means strings (as marshmallow schemas dump them).
//!
//! Both write Python's `isoformat()`: microseconds only when not zero, always six digits.
//! Without one of them, chrono's own serde form is sent (ISO-like, but fractions in
//! 3/6/9 digits and no midnight for dates), and rust_decimal's (a string).
//! The `Any` driver decodes integers, floats, text, booleans and bytes only: use a typed
//! `Database<Postgres>` (or MySQL, SQLite) for the other columns.
//!
//! ```
//! use chrono::{NaiveDate, NaiveDateTime};
//! use rust_decimal::Decimal;
//! use serde::Serialize;
//! use serde_json::json;
//!
//! #[derive(Serialize)]
//! struct Book {
//!     id: i64,
//!     #[serde(serialize_with = "nameko_sqlx::json::tagged::date")]
//!     published: NaiveDate,
//!     #[serde(serialize_with = "nameko_sqlx::json::plain::naive_datetime")]
//!     added: NaiveDateTime,
//!     #[serde(serialize_with = "nameko_sqlx::json::plain::decimal")]
//!     price: Decimal,
//! }
//!
//! let book = Book {
//!     id: 1,
//!     published: NaiveDate::from_ymd_opt(2024, 1, 2).unwrap(),
//!     added: NaiveDate::from_ymd_opt(2024, 1, 2).unwrap().and_hms_micro_opt(3, 4, 5, 120_000).unwrap(),
//!     price: Decimal::new(150, 2),
//! };
//! assert_eq!(
//!     serde_json::to_value(&book).unwrap(),
//!     json!({
//!         "id": 1,
//!         "published": {"__type__": "date", "__value__": "2024-01-02"},
//!         "added": "2024-01-02T03:04:05.120000",
//!         "price": "1.50",
//!     })
//! );
//! ```

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use rust_decimal::Decimal;
use serde::Serializer;
use serde::ser::SerializeMap;

/// Python's `time.isoformat()`: `HH:MM:SS`, then `.ffffff` when microseconds are not 0.
fn iso_time(time: &NaiveTime) -> String {
    let micros = time.nanosecond() / 1_000 % 1_000_000;
    if micros == 0 {
        time.format("%H:%M:%S").to_string()
    } else {
        format!("{}.{micros:06}", time.format("%H:%M:%S"))
    }
}

/// Python's `datetime.isoformat()` of a naive datetime.
fn iso_naive(datetime: &NaiveDateTime) -> String {
    format!(
        "{}T{}",
        datetime.date().format("%Y-%m-%d"),
        iso_time(&datetime.time())
    )
}

fn tagged_value<S: Serializer>(serializer: S, kind: &str, value: &str) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(2))?;
    map.serialize_entry("__type__", kind)?;
    map.serialize_entry("__value__", value)?;
    map.end()
}

/// kombu 5.3+'s tagged values, which Python turns back into `datetime`, `date`, `time`
/// and `Decimal` objects. For `#[serde(serialize_with = "...")]`.
pub mod tagged {
    use super::*;

    /// `{"__type__": "datetime", "__value__": "2024-01-02T03:04:05"}`.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn naive_datetime<S: Serializer>(value: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        tagged_value(s, "datetime", &iso_naive(value))
    }

    /// `{"__type__": "datetime", "__value__": "2024-01-02T03:04:05+00:00"}`.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn datetime_utc<S: Serializer>(value: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        tagged_value(
            s,
            "datetime",
            &format!("{}+00:00", iso_naive(&value.naive_utc())),
        )
    }

    /// `{"__type__": "date", "__value__": "2024-01-02"}`.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn date<S: Serializer>(value: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        tagged_value(s, "date", &value.format("%Y-%m-%d").to_string())
    }

    /// `{"__type__": "time", "__value__": "03:04:05"}`.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn time<S: Serializer>(value: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        tagged_value(s, "time", &iso_time(value))
    }

    /// `{"__type__": "decimal", "__value__": "1.50"}`.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn decimal<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        tagged_value(s, "decimal", &value.to_string())
    }
}

/// kombu up to 5.2's plain strings. For `#[serde(serialize_with = "...")]`.
pub mod plain {
    use super::*;

    /// `"2024-01-02T03:04:05"` (`.ffffff` when there are microseconds).
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn naive_datetime<S: Serializer>(value: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&iso_naive(value))
    }

    /// `"2024-01-02T03:04:05Z"`.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn datetime_utc<S: Serializer>(value: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}Z", iso_naive(&value.naive_utc())))
    }

    /// `"2024-01-02T00:00:00"`: kombu sends a date as the datetime of its midnight.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn date<S: Serializer>(value: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}T00:00:00", value.format("%Y-%m-%d")))
    }

    /// `"03:04:05"`.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn time<S: Serializer>(value: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&iso_time(value))
    }

    /// `"1.50"`: Python's `str(Decimal)`.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn decimal<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::json;

    #[derive(Serialize)]
    struct Row {
        #[serde(serialize_with = "tagged::naive_datetime")]
        t_dt: NaiveDateTime,
        #[serde(serialize_with = "tagged::datetime_utc")]
        t_dtz: DateTime<Utc>,
        #[serde(serialize_with = "tagged::time")]
        t_time: NaiveTime,
        #[serde(serialize_with = "tagged::decimal")]
        t_dec: Decimal,
        #[serde(serialize_with = "plain::datetime_utc")]
        p_dtz: DateTime<Utc>,
        #[serde(serialize_with = "plain::date")]
        p_date: NaiveDate,
        #[serde(serialize_with = "plain::time")]
        p_time: NaiveTime,
    }

    /// The expected strings are what kombu 5.7 and 5.2 write for the same Python values.
    #[test]
    fn python_isoformat_with_six_digit_microseconds_only_when_not_zero() {
        let date = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let with_micros = date.and_hms_micro_opt(3, 4, 5, 120_000).unwrap();
        let whole = date.and_hms_opt(3, 4, 5).unwrap();
        let row = Row {
            t_dt: with_micros,
            t_dtz: whole.and_utc(),
            t_time: whole.time(),
            t_dec: Decimal::new(150, 2),
            p_dtz: with_micros.and_utc(),
            p_date: date,
            p_time: with_micros.time(),
        };
        assert_eq!(
            serde_json::to_value(&row).unwrap(),
            json!({
                "t_dt": {"__type__": "datetime", "__value__": "2024-01-02T03:04:05.120000"},
                "t_dtz": {"__type__": "datetime", "__value__": "2024-01-02T03:04:05+00:00"},
                "t_time": {"__type__": "time", "__value__": "03:04:05"},
                "t_dec": {"__type__": "decimal", "__value__": "1.50"},
                "p_dtz": "2024-01-02T03:04:05.120000Z",
                "p_date": "2024-01-02T00:00:00",
                "p_time": "03:04:05.120000",
            })
        );
    }
}
