//! The home's storage port: a SQLite database reached with plain statements.
//!
//! In the Durable Object it is the object's own SQLite storage (`state.storage().sql()`); natively
//! it is an in-memory SQLite ([`NativeSqlite`], rusqlite with SQLite bundled), so the very SQL
//! the object runs is what the unit tests run. Integers stay within JavaScript's safe range
//! (timestamps, sizes, counters); the limiter's nanosecond instants travel as text.

use std::fmt;

/// A value bound to or read from a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<u64> for SqlValue {
    fn from(v: u64) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<u32> for SqlValue {
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&String> for SqlValue {
    fn from(v: &String) -> Self {
        Self::Text(v.clone())
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// A failed statement (the detail is for operators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError(pub String);

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sql: {}", self.0)
    }
}

impl std::error::Error for SqlError {}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<SqlValue>);

impl Row {
    /// Column `i` as an integer (0 for NULL or anything else).
    pub fn int(&self, i: usize) -> i64 {
        match self.0.get(i) {
            Some(SqlValue::Int(v)) => *v,
            #[allow(clippy::cast_possible_truncation)]
            Some(SqlValue::Real(v)) => *v as i64,
            Some(SqlValue::Text(s)) => s.parse().unwrap_or(0),
            _ => 0,
        }
    }

    /// Column `i` as a non-negative integer.
    pub fn uint(&self, i: usize) -> u64 {
        u64::try_from(self.int(i)).unwrap_or(0)
    }

    /// Column `i` as an integer, `None` for NULL.
    pub fn opt_int(&self, i: usize) -> Option<i64> {
        match self.0.get(i) {
            None | Some(SqlValue::Null) => None,
            _ => Some(self.int(i)),
        }
    }

    /// Column `i` as text (empty for NULL).
    pub fn text(&self, i: usize) -> String {
        self.opt_text(i).unwrap_or_default()
    }

    /// Column `i` as text, `None` for NULL.
    pub fn opt_text(&self, i: usize) -> Option<String> {
        match self.0.get(i) {
            Some(SqlValue::Text(s)) => Some(s.clone()),
            Some(SqlValue::Int(v)) => Some(v.to_string()),
            _ => None,
        }
    }

    /// Column `i` as bytes (empty for NULL).
    pub fn blob(&self, i: usize) -> &[u8] {
        match self.0.get(i) {
            Some(SqlValue::Blob(b)) => b,
            _ => &[],
        }
    }
}

/// A SQLite database.
pub trait Sql {
    /// Runs one statement with `args` bound to its `?` placeholders; returns its rows.
    ///
    /// # Errors
    /// The database's refusal (a constraint, a malformed statement) or failure.
    fn exec(&self, sql: &str, args: &[SqlValue]) -> Result<Vec<Row>, SqlError>;

    /// The first row of a statement, if any.
    ///
    /// # Errors
    /// As [`Sql::exec`].
    fn one(&self, sql: &str, args: &[SqlValue]) -> Result<Option<Row>, SqlError> {
        Ok(self.exec(sql, args)?.into_iter().next())
    }
}

/// An in-memory SQLite database (native builds: tests, benches).
#[cfg(not(target_arch = "wasm32"))]
pub struct NativeSqlite(rusqlite::Connection);

#[cfg(not(target_arch = "wasm32"))]
impl NativeSqlite {
    /// A fresh, empty database.
    ///
    /// # Panics
    /// If SQLite cannot open an in-memory database (it always can).
    pub fn new() -> Self {
        Self(rusqlite::Connection::open_in_memory().expect("an in-memory SQLite database"))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Default for NativeSqlite {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Sql for NativeSqlite {
    fn exec(&self, sql: &str, args: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        use rusqlite::types::{Value, ValueRef};
        let err = |e: rusqlite::Error| SqlError(e.to_string());
        let mut stmt = self.0.prepare_cached(sql).map_err(err)?;
        let params: Vec<Value> = args
            .iter()
            .map(|a| match a {
                SqlValue::Null => Value::Null,
                SqlValue::Int(v) => Value::Integer(*v),
                SqlValue::Real(v) => Value::Real(*v),
                SqlValue::Text(s) => Value::Text(s.clone()),
                SqlValue::Blob(b) => Value::Blob(b.clone()),
            })
            .collect();
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(err)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(v) => SqlValue::Int(v),
                    ValueRef::Real(v) => SqlValue::Real(v),
                    ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}
