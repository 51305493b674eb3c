/**
 * The vector store with client-side encryption: embeddings go up DCPE-encrypted (the server
 * ranks by cosine over vectors it cannot map back to the embedding space), payloads go up
 * sealed with the {@link BlobCipher} (bound to the vector's id), and queries are encrypted too.
 * Both keys stay on the device; every device of the user that searches the same index needs
 * the same two keys.
 *
 * The stored blob is the envelope of `[nonce length: 1 byte][DCPE nonce][payload]`, so the
 * client can also recover the embedding itself ({@link Vectors.decryptEmbedding}).
 */
import type { BlobCipher } from "./crypto/blob.js";
import { checksum } from "./crypto/checksum.js";
import { normalize, type DcpeKey } from "./crypto/dcpe.js";
import { IntegrityError } from "./errors.js";
import { fromBase64, toBase64 } from "./bytes.js";
import { call, type Schemas } from "./http.js";
import type { Session } from "./session.js";

/** The most items of one upsert or delete request. */
export const MAX_BATCH = 100;

/** One vector to store. */
export interface VectorInput {
  /** 1–128 of `[A-Za-z0-9_.:-]`. */
  id: string;
  /** The plaintext embedding. */
  embedding: ArrayLike<number>;
  /** What comes back with a hit (sealed before upload). */
  payload: Uint8Array;
  /** The DCPE nonce (default 16 random bytes; never reuse one with the same key). */
  nonce?: Uint8Array;
}

/** One search hit, decrypted. */
export interface VectorHit {
  id: string;
  /** Cosine similarity of the encrypted vectors. */
  score: number;
  payload: Uint8Array;
  /** The nonce the stored vector was encrypted under. */
  nonce: Uint8Array;
}

/** Options of {@link Vectors}. */
export interface VectorsOptions {
  session: Session;
  dcpe: DcpeKey;
  cipher: BlobCipher;
  /**
   * Scale embeddings to unit length before encrypting (β assumes it). Default `auto`: only
   * when the norm differs from 1 by more than 1e-4, so unit embeddings are encrypted as given.
   */
  normalize?: "auto" | "always" | "never";
}

/** DCPE-encrypted vectors of one user. */
export class Vectors {
  constructor(private readonly options: VectorsOptions) {}

  /** Stores `items` (batches of {@link MAX_BATCH}); returns how many were written. */
  async upsert(items: VectorInput[]): Promise<number> {
    let written = 0;
    for (let i = 0; i < items.length; i += MAX_BATCH) {
      const batch: Schemas["VectorItem"][] = [];
      for (const item of items.slice(i, i + MAX_BATCH)) {
        const { ciphertext, nonce } = this.options.dcpe.encrypt(this.prepare(item.embedding), item.nonce);
        if (nonce.length > 255) throw new RangeError("a DCPE nonce is at most 255 bytes here");
        const plain = new Uint8Array(1 + nonce.length + item.payload.length);
        plain[0] = nonce.length;
        plain.set(nonce, 1);
        plain.set(item.payload, 1 + nonce.length);
        const blob = await this.options.cipher.seal(plain, context(item.id));
        batch.push({ id: item.id, values: Array.from(ciphertext), blob: toBase64(blob), checksum: await checksum(blob) });
      }
      const { data } = await call(this.options.session.api.POST("/api/v1/storage/vectors/upsert", { body: { vectors: batch } }));
      written += data.upserted;
    }
    return written;
  }

  /** The `topK` (1–100, default 10) stored vectors nearest to `embedding`, best first. */
  async search(embedding: ArrayLike<number>, options: { topK?: number; nonce?: Uint8Array } = {}): Promise<VectorHit[]> {
    const { ciphertext } = this.options.dcpe.encrypt(this.prepare(embedding), options.nonce);
    const { data } = await call(
      this.options.session.api.POST("/api/v1/storage/vectors/search", {
        body: { vector: Array.from(ciphertext), top_k: options.topK ?? 10 },
      }),
    );
    const hits: VectorHit[] = [];
    for (const result of data.results) {
      const { plaintext } = await this.options.cipher.open(fromBase64(result.blob), context(result.id));
      const n = plaintext[0] ?? 0;
      if (plaintext.length < 1 + n) throw new IntegrityError(`vector ${result.id}: truncated payload`);
      hits.push({
        id: result.id,
        score: result.score,
        nonce: plaintext.slice(1, 1 + n),
        payload: plaintext.slice(1 + n),
      });
    }
    return hits;
  }

  /** Deletes the vectors `ids` (unknown ones are ignored). */
  async delete(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += MAX_BATCH) {
      await call(this.options.session.api.DELETE("/api/v1/storage/vectors", { body: { ids: ids.slice(i, i + MAX_BATCH) } }));
    }
  }

  /** The embedding of a stored vector, from its ciphertext and the hit's nonce. */
  decryptEmbedding(ciphertext: ArrayLike<number>, nonce: Uint8Array): Float32Array {
    return this.options.dcpe.decrypt(ciphertext, nonce);
  }

  private prepare(embedding: ArrayLike<number>): ArrayLike<number> {
    const mode = this.options.normalize ?? "auto";
    if (mode === "never") return embedding;
    if (mode === "always") return normalize(embedding);
    let sum = 0;
    for (let i = 0; i < embedding.length; i++) sum += (embedding[i] as number) ** 2;
    return Math.abs(Math.sqrt(sum) - 1) > 1e-4 ? normalize(embedding) : embedding;
  }
}

function context(id: string): string {
  return `vector/${id}`;
}
