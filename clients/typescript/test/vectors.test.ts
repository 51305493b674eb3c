// DCPE-encrypted vectors against the real worker: one device upserts real all-MiniLM-L6-v2
// embeddings (clients/fixtures/minilm-700.bin), another searches them by meaning, and recall@10
// through the server matches the Rust figure on the same data (the fixture's `recall`, which
// clients/dcpe-wasm/tests/fixtures.rs computes with shared::dcpe exactly as the DCPE bench does).
import assert from "node:assert/strict";
import { test } from "node:test";
import { BlobCipher, DcpeKey, Vectors } from "../src/index.js";
import { e2e, hexBytes, open, PASSWORD, readFixture, registered, upgrade } from "./helpers.js";

interface Recall {
  corpus: string;
  queries: number;
  k: number;
  seed_hex: string;
  scale: number;
  beta: number;
  recall_at_k: number;
}

function corpus(name: string): Float32Array[] {
  const bytes = readFixture(name);
  assert.equal(bytes.subarray(0, 8).toString("latin1"), "DCPEEMB1");
  const [count, dims] = [bytes.readUInt32LE(8), bytes.readUInt32LE(12)];
  assert.equal(bytes.length, 16 + count * dims * 4);
  return Array.from({ length: count }, (_, i) => {
    const v = new Float32Array(dims);
    for (let j = 0; j < dims; j++) v[j] = bytes.readFloatLE(16 + (i * dims + j) * 4);
    return v;
  });
}

/** The nonce of vector `i`, as shared/benches/dcpe.rs makes it: u64 LE, then 0 (indexed) or 1 (query). */
function benchNonce(i: number, tag: number): Uint8Array {
  const n = new Uint8Array(9);
  new DataView(n.buffer).setBigUint64(0, BigInt(i), true);
  n[8] = tag;
  return n;
}

function exactTopK(q: Float32Array, index: Float32Array[], k: number): number[] {
  const scored = index.map((v, i) => {
    let dot = 0;
    let nq = 0;
    let nv = 0;
    for (let j = 0; j < v.length; j++) {
      dot += (q[j] as number) * (v[j] as number);
      nq += (q[j] as number) ** 2;
      nv += (v[j] as number) ** 2;
    }
    return { i, s: dot / Math.sqrt(nq * nv) };
  });
  scored.sort((a, b) => b.s - a.s || a.i - b.i);
  return scored.slice(0, k).map((x) => x.i);
}

test("vectors upserted by one device are found by meaning from another, with the Rust recall", e2e, async () => {
  const recall = (JSON.parse(readFixture("dcpe-vectors.json").toString("utf8")) as { recall: Recall }).recall;
  const vectors = corpus(recall.corpus);
  const texts = readFixture("minilm-700.texts.jsonl").toString("utf8").trim().split("\n").map((l) => JSON.parse(l) as string);
  const queries = vectors.slice(0, recall.queries);
  const index = vectors.slice(recall.queries);

  // The user's keys, on both devices; never sent anywhere.
  const dcpeBytes = (await DcpeKey.generate({ seed: hexBytes(recall.seed_hex), scale: recall.scale, beta: recall.beta })).bytes;
  const blobKey = BlobCipher.generateKey();

  const { session: desktop, email } = await registered("vectors");
  await upgrade(desktop); // vectors need Pro; a team's limit leaves room for 200 searches
  const a = new Vectors({ session: desktop, dcpe: await DcpeKey.fromBytes(dcpeBytes), cipher: await BlobCipher.fromKey(blobKey) });
  const encoder = new TextEncoder();
  const written = await a.upsert(
    index.map((embedding, i) => ({ id: `doc-${i}`, embedding, payload: encoder.encode(texts[recall.queries + i]!), nonce: benchNonce(i, 0) })),
  );
  assert.equal(written, index.length);

  const laptop = await open();
  await laptop.login(email, PASSWORD);
  const b = new Vectors({ session: laptop, dcpe: await DcpeKey.fromBytes(dcpeBytes), cipher: await BlobCipher.fromKey(blobKey) });
  const decoder = new TextDecoder();
  let total = 0;
  let top1 = 0;
  const concurrency = 4;
  for (let start = 0; start < queries.length; start += concurrency) {
    const batch = queries.slice(start, start + concurrency).map(async (q, j) => {
      const qi = start + j;
      const hits = await b.search(q, { topK: recall.k, nonce: benchNonce(qi, 1) });
      assert.equal(hits.length, recall.k);
      for (let h = 1; h < hits.length; h++) assert.ok(hits[h - 1]!.score >= hits[h]!.score, "best first");
      for (const hit of hits) {
        const i = Number(hit.id.slice("doc-".length));
        assert.equal(decoder.decode(hit.payload), texts[recall.queries + i], "the payload decrypts to the vector's sentence");
        assert.deepEqual(hit.nonce, benchNonce(i, 0));
      }
      const exact = exactTopK(q, index, recall.k);
      const got = hits.map((h) => Number(h.id.slice("doc-".length)));
      total += got.filter((i) => exact.includes(i)).length / recall.k;
      if (got[0] === exact[0]) top1++;
    });
    await Promise.all(batch);
  }
  const measured = total / queries.length;
  console.log(
    `recall@${recall.k} through the server: ${measured.toFixed(4)} (Rust on the same data: ${recall.recall_at_k}); ` +
      `recall@1 ${(top1 / queries.length).toFixed(3)}; ${index.length} vectors, ${queries.length} queries, beta ${recall.beta}`,
  );
  assert.ok(Math.abs(measured - recall.recall_at_k) <= 0.005, `recall ${measured} vs Rust ${recall.recall_at_k}`);
  assert.ok(measured > 0.9, "search by meaning works");

  await b.delete(index.slice(0, 150).map((_, i) => `doc-${i}`));
  const after = await a.search(index[0]!, { topK: 1 });
  assert.notEqual(after[0]!.id, "doc-0", "deleted vectors are not found");
});
