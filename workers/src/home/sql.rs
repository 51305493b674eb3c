//! The home's SQL port over the Durable Object's own SQLite storage.
//!
//! BLOBs are bound as an `ArrayBuffer` (the type the SQL API documents for BLOBs) and come
//! back as one; everything else crosses as a JS number or string (integers stay within the
//! safe range; the limiter's nanosecond instants travel as text by design).

use durable_objects::home::sql::{Row, Sql, SqlError, SqlValue};
use wasm_bindgen::JsValue;
use worker::{SqlStorage, SqlStorageValue};

/// The object's SQLite database.
pub struct DoSql(pub SqlStorage);

fn bind(v: &SqlValue) -> JsValue {
    match v {
        SqlValue::Null => JsValue::NULL,
        #[allow(clippy::cast_precision_loss)]
        SqlValue::Int(i) => JsValue::from_f64(*i as f64),
        SqlValue::Real(f) => JsValue::from_f64(*f),
        SqlValue::Text(s) => JsValue::from_str(s),
        SqlValue::Blob(b) => js_sys::Uint8Array::from(b.as_slice()).buffer().into(),
    }
}

fn read(v: SqlStorageValue) -> SqlValue {
    match v {
        SqlStorageValue::Null => SqlValue::Null,
        SqlStorageValue::Boolean(b) => SqlValue::Int(i64::from(b)),
        SqlStorageValue::Integer(i) => SqlValue::Int(i),
        SqlStorageValue::Float(f) => SqlValue::Real(f),
        SqlStorageValue::String(s) => SqlValue::Text(s),
        SqlStorageValue::Blob(b) => SqlValue::Blob(b),
    }
}

impl Sql for DoSql {
    fn exec(&self, sql: &str, args: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        let cursor = self
            .0
            .exec_raw(sql, args.iter().map(bind).collect::<Vec<_>>())
            .map_err(|e| SqlError(e.to_string()))?;
        let mut rows = Vec::new();
        for row in cursor.raw() {
            let row = row.map_err(|e| SqlError(e.to_string()))?;
            rows.push(Row(row.into_iter().map(read).collect()));
        }
        Ok(rows)
    }
}
