// The client-side crypto without a server: the cross-language fixture (the same key seed,
// nonce and vector give bit-identical keys and ciphertexts in Rust and here), the storage
// checksum, and the blob cipher's envelope.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BlobCipher, ChecksumStream, DcpeKey, IntegrityError, checksum, loadCrypto } from "../src/index.js";
import { f32FromHex, f32ToHex, hexBytes, readFixture } from "./helpers.js";

interface DcpeCase {
  name: string;
  seed_hex: string;
  scale: number;
  beta: number;
  key_hex: string;
  nonce_hex: string;
  plaintext_f32le_hex: string;
  ciphertext_f32le_hex: string;
}
const fixture = JSON.parse(readFixture("dcpe-vectors.json").toString("utf8")) as {
  dcpe: DcpeCase[];
  checksum: { bytes_hex: string; checksum: string }[];
};

test("the fixture holds cases to check", () => {
  assert.ok(fixture.dcpe.length >= 4);
  assert.ok(fixture.checksum.length >= 3);
});

for (const c of fixture.dcpe) {
  test(`DCPE matches Rust bit for bit: ${c.name}`, async () => {
    const key = await DcpeKey.generate({ seed: hexBytes(c.seed_hex), scale: c.scale, beta: c.beta });
    assert.equal(Buffer.from(key.bytes).toString("hex"), c.key_hex, "key bytes");
    assert.equal(key.scale, c.scale);
    assert.equal(key.beta, c.beta);
    const plaintext = f32FromHex(c.plaintext_f32le_hex);
    const { ciphertext, nonce } = key.encrypt(plaintext, hexBytes(c.nonce_hex));
    assert.equal(Buffer.from(nonce).toString("hex"), c.nonce_hex);
    assert.equal(f32ToHex(ciphertext), c.ciphertext_f32le_hex, "ciphertext bits");
    const back = key.decrypt(ciphertext, nonce);
    back.forEach((v, i) => assert.ok(Math.abs(v - (plaintext[i] as number)) <= 1e-5 * Math.max(1, Math.abs(plaintext[i] as number)), `element ${i}`));
    // A key read back from its bytes encrypts the same way.
    const again = await DcpeKey.fromBytes(hexBytes(c.key_hex));
    assert.equal(f32ToHex(again.encrypt(plaintext, hexBytes(c.nonce_hex)).ciphertext), c.ciphertext_f32le_hex);
  });
}

test("fresh nonces make two encryptions of one vector differ", async () => {
  const key = await DcpeKey.generate();
  const v = [0.6, 0.8, 0, 0];
  const a = key.encrypt(v);
  const b = key.encrypt(v);
  assert.equal(a.nonce.length, 16);
  assert.notDeepEqual(Array.from(a.ciphertext), Array.from(b.ciphertext));
});

test("bad DCPE input is refused with Rust's message", async () => {
  await assert.rejects(DcpeKey.generate({ seed: new Uint8Array(31) }), /32 bytes/);
  await assert.rejects(DcpeKey.generate({ scale: -1 }), /scale/);
  await assert.rejects(DcpeKey.fromBytes(new Uint8Array(52)), /malformed DCPE key/);
  const key = await DcpeKey.generate();
  assert.throws(() => key.encrypt([1, Number.NaN]), /not a finite number/);
  assert.throws(() => key.encrypt([1], new Uint8Array()), /nonce is empty/);
  assert.throws(() => key.encrypt([]), /empty/);
});

for (const c of fixture.checksum) {
  test(`the checksum matches Rust for ${c.bytes_hex.length / 2} bytes`, async () => {
    const bytes = hexBytes(c.bytes_hex);
    assert.equal(await checksum(bytes), c.checksum);
    const stream = await ChecksumStream.create();
    for (let i = 0; i < bytes.length; i += 97) stream.update(bytes.subarray(i, i + 97));
    assert.equal(stream.digest(), c.checksum);
    stream.free();
  });
}

test("the wasm checksum agrees with node:crypto on a megabyte", async () => {
  const { createHash, randomBytes } = await import("node:crypto");
  const bytes = randomBytes(1 << 20);
  assert.equal(await checksum(bytes), createHash("sha256").update(bytes).digest("hex"));
});

test("the blob cipher round-trips and binds context, label and key", async () => {
  await loadCrypto();
  const raw = BlobCipher.generateKey();
  const cipher = await BlobCipher.fromKey(raw);
  const secret = new TextEncoder().encode("Buy milk; call Ada at 5");
  const sealed = await cipher.seal(secret, "record/tasks", "tasks:42");
  assert.equal(sealed[0], 1, "version byte");
  assert.equal(sealed.length, 2 + "tasks:42".length + 12 + secret.length + 16);
  assert.equal(BlobCipher.peekLabel(sealed), "tasks:42");
  assert.ok(!Buffer.from(sealed).includes(Buffer.from("milk")), "no plaintext in the envelope");
  const opened = await cipher.open(sealed, "record/tasks");
  assert.deepEqual(opened.plaintext, secret);
  assert.equal(opened.label, "tasks:42");

  // Another table, a relabelled envelope, a flipped bit, another key: all refused.
  await assert.rejects(cipher.open(sealed, "record/notes"), IntegrityError);
  const relabelled = Uint8Array.from(sealed);
  relabelled[2 + 7] = "3".charCodeAt(0); // tasks:42 → tasks:43
  await assert.rejects(cipher.open(relabelled, "record/tasks"), IntegrityError);
  const flipped = Uint8Array.from(sealed);
  flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
  await assert.rejects(cipher.open(flipped, "record/tasks"), IntegrityError);
  const other = await BlobCipher.fromKey(BlobCipher.generateKey());
  await assert.rejects(other.open(sealed, "record/tasks"), IntegrityError);
  await assert.rejects(cipher.open(new Uint8Array([2, 0]), "record/tasks"), /version-1/);
  // Two seals of the same bytes differ (random IV).
  assert.notDeepEqual(await cipher.seal(secret, "record/tasks", "tasks:42"), sealed);
  await assert.rejects(BlobCipher.fromKey(new Uint8Array(16)), /32 bytes/);
});
