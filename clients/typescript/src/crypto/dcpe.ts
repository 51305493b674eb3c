/**
 * DCPE keys and vector encryption: `shared::dcpe` (scale-and-perturb, approximately
 * distance-comparison-preserving) compiled to wasm — the very code the server's tests and
 * benchmarks use, so a vector encrypted here is the vector the server expects.
 *
 * Read the Rust module's docs before relying on it: DCPE hides exact coordinates, not
 * neighbourhoods (the server can see which vectors are close); a nonce must never be reused
 * with the same key; the payload of a vector needs real encryption ({@link BlobCipher}).
 */
import { loadWasm, wasm } from "./wasm.js";

/** β that keeps recall@10 above 0.9 on unit-normalised sentence embeddings (`shared::dcpe::DEFAULT_BETA`). */
export const DEFAULT_BETA = 0.5;
/** The default scale factor (`shared::dcpe::DEFAULT_SCALE`). */
export const DEFAULT_SCALE = 1024;
/** Bytes of a fresh random nonce. */
export const NONCE_BYTES = 16;

/** Loads the crypto module (once). Every async entry point of the kit awaits it itself. */
export async function loadCrypto(): Promise<void> {
  await loadWasm();
}

/** One encrypted vector and the nonce it was encrypted under (store both; the nonce is not secret). */
export interface EncryptedVector {
  ciphertext: Float32Array;
  nonce: Uint8Array;
}

/** A DCPE secret key. Keep {@link DcpeKey.bytes} in the OS keychain; the same key must be used on every device that searches the same index. */
export class DcpeKey {
  private constructor(private readonly keyBytes: Uint8Array) {}

  /**
   * A new key from 32 random bytes (`crypto.getRandomValues`, or `seed` when given — the same
   * seed always gives the same key).
   */
  static async generate(options: { scale?: number; beta?: number; seed?: Uint8Array } = {}): Promise<DcpeKey> {
    await loadWasm();
    const seed = options.seed ?? randomBytes(32);
    return new DcpeKey(wasm().dcpeGenerateKey(seed, options.scale ?? DEFAULT_SCALE, options.beta ?? DEFAULT_BETA));
  }

  /** Reads a key saved with {@link DcpeKey.bytes} (the 53-byte version-1 format). */
  static async fromBytes(bytes: Uint8Array): Promise<DcpeKey> {
    await loadWasm();
    wasm().dcpeKeyBeta(bytes); // validates
    return new DcpeKey(Uint8Array.from(bytes));
  }

  /** The key's bytes (secret). */
  get bytes(): Uint8Array {
    return Uint8Array.from(this.keyBytes);
  }

  /** β, in plaintext distance units. */
  get beta(): number {
    return wasm().dcpeKeyBeta(this.keyBytes);
  }

  /** The scale factor. */
  get scale(): number {
    return wasm().dcpeKeyScale(this.keyBytes);
  }

  /** Encrypts `vector` under `nonce` (default: 16 fresh random bytes). */
  encrypt(vector: ArrayLike<number>, nonce: Uint8Array = randomBytes(NONCE_BYTES)): EncryptedVector {
    const ciphertext = wasm().dcpeEncrypt(this.keyBytes, nonce, Float32Array.from(vector));
    return { ciphertext, nonce };
  }

  /** Recovers the plaintext (up to f32 rounding) from a ciphertext and its nonce. */
  decrypt(ciphertext: ArrayLike<number>, nonce: Uint8Array): Float32Array {
    return wasm().dcpeDecrypt(this.keyBytes, nonce, Float32Array.from(ciphertext));
  }
}

/** `vector` scaled to unit length (DCPE's β assumes unit-normalised embeddings). */
export function normalize(vector: ArrayLike<number>): Float32Array {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += (vector[i] as number) ** 2;
  const norm = Math.sqrt(sum);
  if (!(norm > 0) || !Number.isFinite(norm)) throw new RangeError("a zero or non-finite vector has no direction");
  const out = new Float32Array(vector.length);
  for (let i = 0; i < vector.length; i++) out[i] = (vector[i] as number) / norm;
  return out;
}

/** `n` bytes from the platform's CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  globalThis.crypto.getRandomValues(bytes);
  return bytes;
}
