/**
 * The blob cipher: AES-256-GCM through WebCrypto (Node ≥ 20 and every browser), so records,
 * vector payloads and backups are encrypted before they leave the device. The key never leaves
 * the client: it is imported non-extractable, and nothing in the kit sends it anywhere.
 *
 * # Envelope (version 1)
 *
 * | offset | length | content |
 * | --- | --- | --- |
 * | 0 | 1 | `0x01`, the format version |
 * | 1 | 1 | `L`, the label's length in bytes (0–255) |
 * | 2 | L | the label, UTF-8, in clear (e.g. a record's stable client id) |
 * | 2+L | 12 | the IV, random per encryption |
 * | 14+L | n+16 | ciphertext and the 16-byte GCM tag |
 *
 * The associated data is `"adiuva/blob/v1" 0x00 context 0x00 label`: the `context` (e.g.
 * `record/tasks`, `vector/<id>`, `backup`) is not stored — the reader supplies it — and the
 * label is authenticated, so a ciphertext moved to another table, vector id or label fails to
 * decrypt ({@link IntegrityError}) instead of being read as the wrong data. GCM does not stop the
 * server from serving an older version of the same blob (rollback); the record ETags do.
 */
import { IntegrityError } from "../errors.js";

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const AAD_PREFIX = "adiuva/blob/v1";
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A decrypted envelope. */
export interface Opened {
  plaintext: Uint8Array;
  label: string;
}

/** AES-256-GCM with the kit's envelope. */
export class BlobCipher {
  private constructor(private readonly key: CryptoKey) {}

  /** 32 fresh random bytes: a new key to keep in the OS keychain (share it only between the user's devices). */
  static generateKey(): Uint8Array {
    const raw = new Uint8Array(32);
    globalThis.crypto.getRandomValues(raw);
    return raw;
  }

  /** A cipher over a 32-byte key (imported non-extractable). */
  static async fromKey(raw: Uint8Array): Promise<BlobCipher> {
    if (raw.length !== 32) throw new RangeError(`an AES-256 key is 32 bytes (got ${raw.length})`);
    const key = await globalThis.crypto.subtle.importKey("raw", own(raw), { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ]);
    return new BlobCipher(key);
  }

  /** Encrypts `plaintext` for `context`, with an optional clear, authenticated `label`. */
  async seal(plaintext: Uint8Array, context: string, label = ""): Promise<Uint8Array> {
    const labelBytes = utf8.encode(label);
    if (labelBytes.length > 255) throw new RangeError("the label is longer than 255 bytes");
    const iv = new Uint8Array(IV_BYTES);
    globalThis.crypto.getRandomValues(iv);
    const sealed = new Uint8Array(
      await globalThis.crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: aad(context, labelBytes), tagLength: 128 },
        this.key,
        own(plaintext),
      ),
    );
    const out = new Uint8Array(2 + labelBytes.length + IV_BYTES + sealed.length);
    out[0] = VERSION;
    out[1] = labelBytes.length;
    out.set(labelBytes, 2);
    out.set(iv, 2 + labelBytes.length);
    out.set(sealed, 2 + labelBytes.length + IV_BYTES);
    return out;
  }

  /** Decrypts an envelope sealed for `context`; throws {@link IntegrityError} if it was altered, moved or sealed with another key. */
  async open(envelope: Uint8Array, context: string): Promise<Opened> {
    const { label, labelBytes, iv, sealed } = parse(envelope);
    try {
      const plaintext = await globalThis.crypto.subtle.decrypt(
        { name: "AES-GCM", iv, additionalData: aad(context, labelBytes), tagLength: 128 },
        this.key,
        sealed,
      );
      return { plaintext: new Uint8Array(plaintext), label };
    } catch {
      throw new IntegrityError(`the blob does not decrypt for ${context} (altered, moved, or another key)`);
    }
  }

  /** The clear label of an envelope, without decrypting it (not authenticated until {@link open}). */
  static peekLabel(envelope: Uint8Array): string {
    return parse(envelope).label;
  }
}

function parse(envelope: Uint8Array) {
  if (envelope.length < 2 || envelope[0] !== VERSION) {
    throw new IntegrityError("not a version-1 blob envelope");
  }
  const labelLength = envelope[1] as number;
  if (envelope.length < 2 + labelLength + IV_BYTES + TAG_BYTES) throw new IntegrityError("truncated blob envelope");
  const labelBytes = envelope.subarray(2, 2 + labelLength);
  let label: string;
  try {
    label = fromUtf8.decode(labelBytes);
  } catch {
    throw new IntegrityError("the blob's label is not UTF-8");
  }
  const iv = own(envelope.subarray(2 + labelLength, 2 + labelLength + IV_BYTES));
  const sealed = own(envelope.subarray(2 + labelLength + IV_BYTES));
  return { label, labelBytes, iv, sealed };
}

/** A copy over a plain ArrayBuffer (what WebCrypto's types ask for). */
function own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

function aad(context: string, label: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = utf8.encode(`${AAD_PREFIX}\u0000${context}\u0000`);
  const out = new Uint8Array(head.length + label.length);
  out.set(head);
  out.set(label, head.length);
  return out;
}
