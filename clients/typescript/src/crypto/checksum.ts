/**
 * The storage API's checksum — lowercase hex SHA-256 of the exact bytes sent — computed by the
 * server's own Rust (`shared::storage::Checksum`, compiled to wasm), one-shot or incrementally
 * (for backups sent in parts, whose whole checksum is built while the parts go out).
 */
import { loadWasm, wasm } from "./wasm.js";

/** The checksum of `bytes`. */
export async function checksum(bytes: Uint8Array): Promise<string> {
  await loadWasm();
  return wasm().checksum(bytes);
}

/** An incremental checksum: `update` with each piece, `digest` at any point. */
export class ChecksumStream {
  private readonly inner: InstanceType<ReturnType<typeof wasm>["ChecksumStream"]>;
  private constructor() {
    this.inner = new (wasm().ChecksumStream)();
  }
  /** A new, empty stream. */
  static async create(): Promise<ChecksumStream> {
    await loadWasm();
    return new ChecksumStream();
  }
  /** Adds `bytes`. */
  update(bytes: Uint8Array): this {
    this.inner.update(bytes);
    return this;
  }
  /** The checksum of everything added so far. */
  digest(): string {
    return this.inner.finish();
  }
  /** Frees the wasm memory (optional; also reclaimed by the garbage collector). */
  free(): void {
    this.inner.free();
  }
}
