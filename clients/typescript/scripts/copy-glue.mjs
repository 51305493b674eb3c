// tsc does not copy the wasm-bindgen glue (plain .js and .d.ts): copy it next to the compiled
// modules, into <dest>/generated/wasm/.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const dest = join(pkg, process.argv[2] ?? "dist", "generated/wasm");
mkdirSync(dest, { recursive: true });
for (const f of ["dcpe.js", "dcpe.d.ts"]) {
  copyFileSync(join(pkg, "src/generated/wasm", f), join(dest, f));
}
