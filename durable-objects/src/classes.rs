//! The exported Durable Object classes (wasm32 only). Each decodes its input, delegates to
//! natively tested logic, and encodes the answer.

use shared::do_protocol::{
    RateCheck, VectorDelete, VectorQuery, VectorUpsert, RATE_LIMITER_CHECK_PATH,
    VECTOR_DELETE_PATH, VECTOR_QUERY_PATH, VECTOR_STATS_PATH, VECTOR_UPSERT_PATH,
};
use shared::AppError;
use wasm_bindgen::JsValue;
use worker::{
    durable_object, DurableObject, Env, Method, Request, Response, SqlStorage, SqlStorageValue,
    State,
};

use crate::rate_limiter::{self, TatStore};
use crate::vector_index::{self, VectorError, VectorStore};

/// The JSON error envelope from inside an object (the worker adds its own request id).
fn error(e: &AppError, req: &Request) -> worker::Result<Response> {
    let request_id = req
        .headers()
        .get("X-Request-Id")
        .ok()
        .flatten()
        .unwrap_or_default();
    Ok(Response::from_json(&e.body(&request_id))?.with_status(e.status()))
}

fn now_ms() -> i64 {
    #[allow(clippy::cast_possible_truncation)]
    let now = js_sys::Date::now() as i64;
    now
}

/// Exact GCRA counters for one key (see [`rate_limiter`]).
#[durable_object]
pub struct RateLimiter {
    state: State,
}

/// Counters in the object's SQLite storage. TATs are nanoseconds (beyond JS's 2^53), so they
/// cross the JS boundary as decimal text and are stored as SQLite 64-bit integers.
struct SqlTats(SqlStorage);

impl SqlTats {
    fn read_i64(
        &self,
        sql: &str,
        args: Vec<worker::SqlStorageValue>,
    ) -> worker::Result<Option<i64>> {
        #[derive(serde::Deserialize)]
        struct Row {
            v: Option<String>,
        }
        let rows: Vec<Row> = self.0.exec(sql, args)?.to_array()?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.v)
            .and_then(|v| v.parse().ok()))
    }
}

impl TatStore for SqlTats {
    type Error = worker::Error;

    fn get(&self, bucket: &str) -> worker::Result<Option<i64>> {
        self.read_i64(
            "SELECT CAST(tat AS TEXT) AS v FROM counters WHERE bucket = ?",
            vec![bucket.into()],
        )
    }
    fn set(&self, bucket: &str, tat_ns: i64) -> worker::Result<()> {
        self.0.exec(
            "INSERT INTO counters (bucket, tat) VALUES (?, CAST(? AS INTEGER)) \
             ON CONFLICT (bucket) DO UPDATE SET tat = excluded.tat",
            vec![bucket.into(), tat_ns.to_string().into()],
        )?;
        Ok(())
    }
    fn delete_through(&self, now_ns: i64) -> worker::Result<()> {
        self.0.exec(
            "DELETE FROM counters WHERE tat <= CAST(? AS INTEGER)",
            vec![now_ns.to_string().into()],
        )?;
        Ok(())
    }
    fn max_tat(&self) -> worker::Result<Option<i64>> {
        self.read_i64("SELECT CAST(MAX(tat) AS TEXT) AS v FROM counters", vec![])
    }
}

impl RateLimiter {
    fn store(&self) -> SqlTats {
        SqlTats(self.state.storage().sql())
    }

    async fn schedule(&self, at_ms: Option<i64>) -> worker::Result<()> {
        let storage = self.state.storage();
        match at_ms {
            // `set_alarm(i64)` takes an offset from now.
            Some(at) => storage.set_alarm((at - now_ms()).max(1)).await,
            None => storage.delete_alarm().await,
        }
    }
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql.exec(
            "CREATE TABLE IF NOT EXISTS counters (bucket TEXT PRIMARY KEY, tat INTEGER NOT NULL)",
            None,
        ) {
            tracing::error!(error = %e, "rate limiter: creating table failed");
        }
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        if req.method() != Method::Post || req.path() != RATE_LIMITER_CHECK_PATH {
            return error(&AppError::NotFound, &req);
        }
        let check: RateCheck = match req.json().await {
            Ok(c) => c,
            Err(e) => return error(&AppError::MalformedJson(e.to_string()), &req),
        };
        let (decision, alarm) = rate_limiter::apply(&self.store(), now_ms(), &check)?;
        self.schedule(alarm).await?;
        Response::from_json(&decision)
    }

    async fn alarm(&self) -> worker::Result<Response> {
        let next = rate_limiter::expire(&self.store(), now_ms())?;
        self.schedule(next).await?;
        Response::empty()
    }
}

/// One user's vectors (see [`vector_index`]): one object per user, named by the user id.
#[durable_object]
pub struct VectorIndex {
    state: State,
}

/// Vectors in the object's SQLite storage: `vals` holds the values as little-endian `f32`
/// bytes. BLOBs are bound as an `ArrayBuffer` (the type the SQL API documents for BLOBs) and
/// come back as one.
struct SqlVectors(SqlStorage);

impl VectorStore for SqlVectors {
    type Error = worker::Error;

    fn put(&self, id: &str, dims: u32, vals: &[u8], blob: &str) -> worker::Result<()> {
        let buffer = js_sys::Uint8Array::from(vals).buffer();
        self.0.exec_raw(
            "INSERT INTO vectors (id, dims, vals, blob) VALUES (?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET \
             dims = excluded.dims, vals = excluded.vals, blob = excluded.blob",
            vec![
                JsValue::from_str(id),
                JsValue::from(dims),
                buffer.into(),
                JsValue::from_str(blob),
            ],
        )?;
        Ok(())
    }

    fn remove(&self, id: &str) -> worker::Result<bool> {
        let cursor = self.0.exec(
            "DELETE FROM vectors WHERE id = ? RETURNING id",
            vec![id.into()],
        )?;
        Ok(cursor.raw().next().transpose()?.is_some())
    }

    fn scan(&self, visit: &mut dyn FnMut(&str, u32, &[u8])) -> worker::Result<()> {
        use SqlStorageValue as V;
        let cursor = self.0.exec("SELECT id, dims, vals FROM vectors", None)?;
        for row in cursor.raw() {
            if let [V::String(id), V::Integer(dims), V::Blob(vals)] = row?.as_slice() {
                if let Ok(dims) = u32::try_from(*dims) {
                    visit(id, dims, vals);
                }
            }
        }
        Ok(())
    }

    fn blob(&self, id: &str) -> worker::Result<Option<String>> {
        let cursor = self
            .0
            .exec("SELECT blob FROM vectors WHERE id = ?", vec![id.into()])?;
        Ok(match cursor.raw().next().transpose()?.as_deref() {
            Some([SqlStorageValue::String(blob)]) => Some(blob.clone()),
            _ => None,
        })
    }

    fn dims_summary(&self) -> worker::Result<(u64, Option<u32>, Option<u32>)> {
        let cursor = self
            .0
            .exec("SELECT COUNT(*), MIN(dims), MAX(dims) FROM vectors", None)?;
        let row = cursor.raw().next().transpose()?.unwrap_or_default();
        let int = |i: usize| match row.get(i) {
            Some(SqlStorageValue::Integer(v)) => Some(*v),
            _ => None,
        };
        let dims = |i: usize| int(i).and_then(|v| u32::try_from(v).ok());
        Ok((
            int(0).and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
            dims(1),
            dims(2),
        ))
    }
}

/// A logic result as a response: the answer, a 422 for a broken bound, or the store's error.
fn vector_answer<T: serde::Serialize>(
    result: Result<T, VectorError<worker::Error>>,
    req: &Request,
) -> worker::Result<Response> {
    match result {
        Ok(answer) => Response::from_json(&answer),
        Err(VectorError::Invalid(field)) => error(&AppError::Validation(vec![field]), req),
        Err(VectorError::Store(e)) => Err(e),
    }
}

impl DurableObject for VectorIndex {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql.exec(
            "CREATE TABLE IF NOT EXISTS vectors (\
             id TEXT PRIMARY KEY, dims INTEGER NOT NULL, vals BLOB NOT NULL, blob TEXT NOT NULL)",
            None,
        ) {
            tracing::error!(error = %e, "vector index: creating table failed");
        }
        Self { state }
    }

    // Vectors, ids and blobs are user content: nothing here logs them.
    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let store = SqlVectors(self.state.storage().sql());
        let path = req.path();
        match (req.method(), path.as_str()) {
            (Method::Get, VECTOR_STATS_PATH) => Response::from_json(&vector_index::stats(&store)?),
            (Method::Post, VECTOR_UPSERT_PATH) => match req.json::<VectorUpsert>().await {
                Ok(msg) => vector_answer(vector_index::upsert(&store, &msg), &req),
                Err(e) => error(&AppError::MalformedJson(e.to_string()), &req),
            },
            (Method::Post, VECTOR_QUERY_PATH) => match req.json::<VectorQuery>().await {
                Ok(msg) => vector_answer(vector_index::query(&store, &msg), &req),
                Err(e) => error(&AppError::MalformedJson(e.to_string()), &req),
            },
            (Method::Post, VECTOR_DELETE_PATH) => match req.json::<VectorDelete>().await {
                Ok(msg) => vector_answer(vector_index::delete(&store, &msg), &req),
                Err(e) => error(&AppError::MalformedJson(e.to_string()), &req),
            },
            _ => error(&AppError::NotFound, &req),
        }
    }
}
