// Contract fidelity through the typed client: playbooks are ExecutionPlan[] (the plan's shape,
// each also carrying id, name, description, min_tier), one playbook is one ExecutionPlan.
import assert from "node:assert/strict";
import { test } from "node:test";
import { call, type Schemas } from "../src/index.js";
import { e2e, registered, upgrade } from "./helpers.js";

test("GET /plans/playbook answers ExecutionPlan[] and /plans/playbook/{id} one ExecutionPlan", e2e, async () => {
  const { session } = await registered("playbooks");
  await upgrade(session, "power", 1);
  const { data } = await call(session.api.GET("/api/v1/plans/playbook"));
  // Compile-time: the generated type is assignable to the plan's contract.
  const plans: Schemas["ExecutionPlan"][] = data;
  assert.ok(Array.isArray(plans));
  assert.deepEqual(data.map((p) => p.id), ["create_task_from_email", "generate_weekly_report", "meeting_notes_to_tasks", "plan_project_milestones"]);
  for (const p of data) {
    for (const field of ["id", "name", "description", "min_tier", "agent"] as const) assert.equal(typeof p[field], "string", field);
    assert.ok(p.steps.length > 0);
    assert.ok(!("plan" in p), "flat, not nested");
  }
  const { data: one } = await call(session.api.GET("/api/v1/plans/playbook/{id}", { params: { path: { id: "generate_weekly_report" } } }));
  const plan: Schemas["ExecutionPlan"] = one;
  assert.equal(plan.agent, "note_agent");
  assert.equal(one.min_tier, "pro");
  assert.equal(one.steps[0]!.prompt_template, "report.weekly");
  assert.equal(one.steps[1]!.data_from_step, 0);
});
