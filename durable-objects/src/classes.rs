//! The `RateLimiter` class (wasm32 only): decodes its input, delegates to natively tested
//! logic, and encodes the answer. (The `UserHome` class needs the worker's adapters and lives in
//! the `workers` crate.)

use shared::do_protocol::{RateCheck, RATE_LIMITER_CHECK_PATH};
use shared::AppError;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, SqlStorage, State};

use crate::rate_limiter::{self, TatStore};

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
