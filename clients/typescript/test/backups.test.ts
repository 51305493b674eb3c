// Backups against the real worker: one-shot with conditional download and history, and a
// multipart upload interrupted mid-way and resumed by another instance sending only the
// missing parts; bytes and checksums round-trip.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { ApiError, Backups, BlobCipher, MemoryUploadProgressStore, TransportError } from "../src/index.js";
import { CountingTransport, e2e, open, PASSWORD, registered, upgrade } from "./helpers.js";

test("a one-shot backup round-trips, verified, with history and If-Modified-Since", e2e, async () => {
  const { session } = await registered("backup-put");
  const backups = new Backups(session);
  await assert.rejects(backups.put(new Uint8Array([1]), { version: 1 }), (e: unknown) => e instanceof ApiError && e.code === "tier_required");
  await upgrade(session, "pro", 1);
  const cipher = await BlobCipher.fromKey(BlobCipher.generateKey());
  const db = randomBytes(300_000);
  const sealed = await cipher.seal(db, "backup");
  const id = await backups.upload(sealed, { version: 3, timestamp: 1_733_000_000_000 });
  const latest = await backups.latest();
  assert.ok(latest);
  assert.equal(latest.id, id);
  assert.equal(latest.version, 3);
  assert.equal(latest.timestamp, 1_733_000_000_000);
  assert.deepEqual((await cipher.open(latest.bytes, "backup")).plaintext, new Uint8Array(db));
  const history = await backups.history();
  assert.equal(history[0]!.id, id);
  assert.equal(history[0]!.chunk_count, 1);
  assert.equal(history[0]!.size_bytes, sealed.length);
  assert.equal(await backups.latest({ ifModifiedSince: new Date(Date.now() + 60_000) }), null, "304: nothing newer");
  await backups.delete(id);
  assert.equal(await backups.latest(), null);
});

test("a multipart backup interrupted after its first part resumes with only the missing parts", e2e, async () => {
  const transport = new CountingTransport();
  const { session, email } = await registered("backup-multipart", { transport: transport.fetch });
  await upgrade(session, "pro", 1);
  const progress = new MemoryUploadProgressStore();
  const first = new Backups(session, progress);
  const partSize = 8 * 1024 * 1024;
  const bytes = randomBytes(2 * partSize + 1234567);
  const partPath = /^\/api\/v1\/backup\/uploads\/[^/]+\/parts\/(\d+)$/;

  // The network goes down while part 2 is on its way.
  transport.fail = (request) => (partPath.exec(new URL(request.url).pathname)?.[1] === "2" ? "before-server" : false);
  await assert.rejects(first.upload(bytes, { version: 1 }, { multipart: true }), TransportError);
  const tried = transport.seen.filter((s) => s.method === "PUT" && partPath.test(s.path));
  assert.deepEqual(
    tried.map((s) => [partPath.exec(s.path)![1], s.status]),
    [["1", 200], ["2", "network-error"]],
    "part 1 was stored, part 2 never arrived",
  );

  // Later (another run of the app, another session), the upload resumes from the saved progress.
  transport.fail = undefined;
  const later = await open({ transport: transport.fetch });
  await later.login(email, PASSWORD);
  const resumed = new Backups(later, progress);
  const sentBefore = transport.seen.length;
  const acknowledged: number[] = [];
  const id = await resumed.upload(bytes, { version: 1 }, { multipart: true, onPart: (n) => acknowledged.push(n) });
  const parts = transport.seen.slice(sentBefore).filter((s) => s.method === "PUT" && partPath.test(s.path));
  assert.deepEqual(parts.map((p) => [partPath.exec(p.path)![1], p.status]), [["2", 200], ["3", 200]], "only the missing parts");
  assert.deepEqual(acknowledged, [2, 3]);
  assert.equal(transport.count("POST", "/api/v1/backup/uploads"), 1, "one upload, begun once");

  const latest = await resumed.latest();
  assert.ok(latest);
  assert.equal(latest.id, id);
  assert.equal(latest.bytes.length, bytes.length);
  assert.ok(Buffer.from(latest.bytes).equals(bytes), "the bytes round-trip");
  const history = await resumed.history();
  assert.equal(history[0]!.chunk_count, 3);
  assert.equal(await progress.load(latest.checksum), null, "progress is cleared once complete");
});
