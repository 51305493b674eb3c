//! The batches of one user's home, in memory only (sans-IO, tested natively): which run, their
//! results so far, the socket frames their progress makes, and when finished results expire.
//!
//! Nothing here touches storage: a batch's inputs and results live in the object's memory and
//! are gone when it is evicted. The home separately remembers *that* a batch existed (id, size,
//! time — no content) for [`shared::chat::orchestrator::batch::BATCH_ID_TTL_MS`], so such an
//! id answers `lost` (run it again) rather than 404.
//!
//! Frames, to every socket of the user (chat and sync):
//! `{"type":"batch_item","batch_id","index","output","actions","error"?}` when an item ends,
//! then `{"type":"batch_done","batch_id","status","total","completed","failed"}` once.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use shared::api::{BatchList, BatchResult, BatchState, BatchSummary, BatchView};
use shared::chat::orchestrator::batch::BATCH_RESULT_TTL_MS;

/// One batch in memory.
#[derive(Debug, Clone)]
struct Entry {
    total: u32,
    created_at: i64,
    status: BatchState,
    ended_at: Option<i64>,
    results: BTreeMap<u32, BatchResult>,
}

/// The batches this life of the home holds.
#[derive(Debug, Default)]
pub struct BatchBook {
    batches: HashMap<String, Entry>,
}

impl BatchBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Batches running now.
    pub fn running(&self) -> usize {
        self.batches
            .values()
            .filter(|e| e.status == BatchState::Running)
            .count()
    }

    /// Whether `id` is running (no further item starts otherwise).
    pub fn is_running(&self, id: &str) -> bool {
        self.batches
            .get(id)
            .is_some_and(|e| e.status == BatchState::Running)
    }

    /// Registers the batch `id` of `total` items, running from `now`.
    pub fn start(&mut self, id: &str, total: u32, now: i64) {
        self.batches.insert(
            id.to_owned(),
            Entry {
                total,
                created_at: now,
                status: BatchState::Running,
                ended_at: None,
                results: BTreeMap::new(),
            },
        );
    }

    /// Records an item's result while the batch runs; answers its `batch_item` frame (`None`
    /// for a batch that is not running: a result arriving after a cancel is dropped).
    pub fn record(&mut self, id: &str, result: BatchResult) -> Option<String> {
        let entry = self
            .batches
            .get_mut(id)
            .filter(|e| e.status == BatchState::Running)?;
        let mut frame = json!({
            "type": "batch_item",
            "batch_id": id,
            "index": result.index,
            "output": result.output,
            "actions": result.actions,
        });
        if let Some(e) = &result.error {
            frame["error"] = json!({"code": e.code, "message": e.message});
        }
        entry.results.insert(result.index, result);
        Some(frame.to_string())
    }

    /// Ends a running batch as `status` (`done` or `cancelled`) at `now`; answers its
    /// `batch_done` frame (`None` if it was not running).
    pub fn end(&mut self, id: &str, status: BatchState, now: i64) -> Option<String> {
        let entry = self
            .batches
            .get_mut(id)
            .filter(|e| e.status == BatchState::Running)?;
        entry.status = status;
        entry.ended_at = Some(now);
        let failed = entry.results.values().filter(|r| r.error.is_some()).count();
        Some(
            json!({
                "type": "batch_done",
                "batch_id": id,
                "status": status,
                "total": entry.total,
                "completed": entry.results.len(),
                "failed": failed,
            })
            .to_string(),
        )
    }

    /// The batch `id` with its results so far, if this life holds it.
    pub fn view(&self, id: &str) -> Option<BatchView> {
        let e = self.batches.get(id)?;
        Some(BatchView {
            id: id.to_owned(),
            status: e.status,
            total: e.total,
            completed: completed(e),
            results: e.results.values().cloned().collect(),
        })
    }

    /// The summaries of the batches this life holds, with `known` (id, total, created_at) of
    /// those it remembers only as `lost`; newest first.
    pub fn list(&self, known: &[(String, u32, i64)]) -> BatchList {
        let mut batches: Vec<BatchSummary> = self
            .batches
            .iter()
            .map(|(id, e)| BatchSummary {
                id: id.clone(),
                status: e.status,
                total: e.total,
                completed: completed(e),
                created_at: e.created_at,
            })
            .collect();
        for (id, total, created_at) in known {
            if !self.batches.contains_key(id) {
                batches.push(BatchSummary {
                    id: id.clone(),
                    status: BatchState::Lost,
                    total: *total,
                    completed: 0,
                    created_at: *created_at,
                });
            }
        }
        batches.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        BatchList { batches }
    }

    /// Drops the results of batches that ended more than [`BATCH_RESULT_TTL_MS`] before `now`.
    pub fn expire(&mut self, now: i64) {
        self.batches
            .retain(|_, e| e.ended_at.is_none_or(|at| now - at < BATCH_RESULT_TTL_MS));
    }

    /// When the next ended batch expires, if any.
    pub fn next_expiry(&self) -> Option<i64> {
        self.batches
            .values()
            .filter_map(|e| e.ended_at)
            .min()
            .map(|at| at + BATCH_RESULT_TTL_MS)
    }
}

fn completed(e: &Entry) -> u32 {
    u32::try_from(e.results.len()).unwrap_or(u32::MAX)
}

/// The answer for an id the home remembers but no longer holds (see the module's docs).
pub fn lost(id: &str, total: u32) -> BatchView {
    BatchView {
        id: id.to_owned(),
        status: BatchState::Lost,
        total,
        completed: 0,
        results: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use shared::api::BatchItemError;

    use super::*;

    fn ok(index: u32, output: &str) -> BatchResult {
        BatchResult {
            index,
            output: output.to_owned(),
            actions: Vec::new(),
            error: None,
        }
    }

    #[test]
    fn results_accumulate_in_index_order_and_the_done_frame_counts_them() {
        let mut book = BatchBook::new();
        book.start("b", 3, 1_000);
        assert_eq!(book.running(), 1);
        let frame: Value = serde_json::from_str(&book.record("b", ok(2, "two")).unwrap()).unwrap();
        assert_eq!(frame["type"], "batch_item");
        assert_eq!(frame["batch_id"], "b");
        assert_eq!(frame["index"], 2);
        assert_eq!(frame["output"], "two");
        assert!(frame.get("error").is_none());
        book.record("b", ok(0, "zero"));
        let failed = BatchResult {
            error: Some(BatchItemError {
                code: "rate_limited".into(),
                message: "slow down".into(),
            }),
            ..ok(1, "")
        };
        let frame: Value = serde_json::from_str(&book.record("b", failed).unwrap()).unwrap();
        assert_eq!(frame["error"]["code"], "rate_limited");
        let view = book.view("b").unwrap();
        assert_eq!(view.completed, 3);
        let order: Vec<u32> = view.results.iter().map(|r| r.index).collect();
        assert_eq!(order, [0, 1, 2]);
        let done: Value =
            serde_json::from_str(&book.end("b", BatchState::Done, 2_000).unwrap()).unwrap();
        assert_eq!(done["type"], "batch_done");
        assert_eq!(done["status"], "done");
        assert_eq!(
            (done["completed"].clone(), done["failed"].clone()),
            (3.into(), 1.into())
        );
        assert_eq!(book.running(), 0);
        assert!(
            book.end("b", BatchState::Cancelled, 2_001).is_none(),
            "ends once"
        );
    }

    #[test]
    fn a_cancelled_batch_keeps_its_results_and_takes_no_more() {
        let mut book = BatchBook::new();
        book.start("b", 5, 0);
        book.record("b", ok(0, "a"));
        assert!(book.end("b", BatchState::Cancelled, 10).is_some());
        assert!(!book.is_running("b"));
        assert!(book.record("b", ok(1, "late")).is_none());
        let view = book.view("b").unwrap();
        assert_eq!(view.status, BatchState::Cancelled);
        assert_eq!((view.completed, view.total), (1, 5));
    }

    #[test]
    fn results_expire_ten_minutes_after_the_batch_ends_and_running_ones_never() {
        let mut book = BatchBook::new();
        book.start("old", 1, 0);
        book.start("live", 1, 0);
        book.end("old", BatchState::Done, 1_000);
        assert_eq!(book.next_expiry(), Some(1_000 + BATCH_RESULT_TTL_MS));
        book.expire(1_000 + BATCH_RESULT_TTL_MS - 1);
        assert!(book.view("old").is_some());
        book.expire(1_000 + BATCH_RESULT_TTL_MS);
        assert!(book.view("old").is_none());
        book.expire(i64::MAX / 2);
        assert!(book.view("live").is_some(), "a running batch never expires");
    }

    #[test]
    fn the_list_shows_held_batches_and_remembered_ones_as_lost_newest_first() {
        let mut book = BatchBook::new();
        book.start("a", 2, 100);
        let known = vec![
            ("a".to_owned(), 2, 100),
            ("gone".to_owned(), 7, 50),
            ("newer".to_owned(), 1, 200),
        ];
        let list = book.list(&known).batches;
        let rows: Vec<(&str, BatchState)> =
            list.iter().map(|s| (s.id.as_str(), s.status)).collect();
        assert_eq!(
            rows,
            [
                ("newer", BatchState::Lost),
                ("a", BatchState::Running),
                ("gone", BatchState::Lost)
            ]
        );
        assert_eq!(lost("gone", 7).status, BatchState::Lost);
    }
}
