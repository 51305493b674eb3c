/**
 * Loads the client-side crypto compiled from the server's Rust (clients/dcpe-wasm:
 * `shared::dcpe` and the storage checksum). The .wasm is embedded in the package (base64) and
 * compiled asynchronously once, the same way in Node and in Electron's renderer (where
 * synchronous compilation of modules over 4 KiB is refused on the main thread).
 */
import init, * as glue from "../generated/wasm/dcpe.js";
import { DCPE_WASM_BASE64 } from "../generated/wasm/bytes.js";

/** The wasm exports the kit uses. */
export type Wasm = typeof glue;

let loading: Promise<Wasm> | undefined;
let loaded: Wasm | undefined;

/** Compiles and instantiates the module (once); resolves to its exports. */
export function loadWasm(): Promise<Wasm> {
  loading ??= (async () => {
    await init({ module_or_path: base64Bytes(DCPE_WASM_BASE64) });
    loaded = glue;
    return glue;
  })();
  return loading;
}

/** The loaded exports; throws if {@link loadWasm} has not resolved yet. */
export function wasm(): Wasm {
  if (!loaded) throw new Error("the crypto module is not loaded yet: await loadCrypto() first");
  return loaded;
}

function base64Bytes(b64: string): Uint8Array {
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
