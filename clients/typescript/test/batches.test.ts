// Batches against the real worker and the scripted model (the Rust trial mounts the "batch"
// script: every model call carrying its marker answers the script's text).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError, Batches, isBatchFrame } from "../src/index.js";
import { e2e, registered, script } from "./helpers.js";

test("a batch runs every item, its results come back by index, and another user sees none of it", e2e, async () => {
  const s = script("batch");
  const { session } = await registered("batch");
  const batches = new Batches(session);
  const items = [0, 1, 2].map((i) => ({ variables: { email_body: `Item ${i} ${s.marker}` } }));
  const id = await batches.start({ playbook_id: "create_task_from_email", items });
  const view = await batches.wait(id, { intervalMs: 200, timeoutMs: 30_000 });
  assert.equal(view.status, "done");
  assert.equal(view.total, 3);
  assert.equal(view.completed, 3);
  assert.deepEqual(view.results.map((r) => r.index), [0, 1, 2]);
  for (const r of view.results) {
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.equal(r.output, s.text);
  }
  const listed = await batches.list();
  assert.equal(listed[0]?.id, id);
  assert.equal(listed[0]?.status, "done");
  assert.equal((await batches.cancel(id)).status, "done", "an ended batch stays as it was");

  const other = new Batches((await registered("batch-other")).session);
  await assert.rejects(other.get(id), (e: unknown) => e instanceof ApiError && e.status === 404 && e.code === "not_found");
  await assert.rejects(
    batches.start({ playbook_id: "create_task_from_email", items: [] }),
    (e: unknown) => e instanceof ApiError && e.status === 422 && e.code === "validation_failed",
  );
  assert.ok(isBatchFrame({ type: "batch_done", batch_id: id }));
  assert.ok(!isBatchFrame({ type: "changed", kind: "record" }));
});
