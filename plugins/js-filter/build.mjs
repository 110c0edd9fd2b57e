// Build the JavaScript filter plugin: bundle filter.js with its npm dependencies into one
// ES module (esbuild), then make a component of it with componentize-js.
//
//   node build.mjs [OUT.wasm]      (default: ../../target/filter_js.wasm)
//
// Every WASI feature of the JS engine is disabled (no clocks, randomness, stdio or
// HTTP), so the component imports only what the sluice world declares.

import { build } from "esbuild";
import { componentize } from "@bytecodealliance/componentize-js";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? resolve(here, "../../target/filter_js.wasm"));
const bundle = resolve(dirname(out), "filter_js.bundle.js");
await mkdir(dirname(out), { recursive: true });

await build({
  entryPoints: [resolve(here, "filter.js")],
  bundle: true,
  format: "esm",
  platform: "neutral",
  mainFields: ["module", "main"],
  target: "es2022",
  outfile: bundle,
  logLevel: "warning",
});

const { component } = await componentize({
  sourcePath: bundle,
  witPath: resolve(here, "../../wit"),
  worldName: "transform-plugin",
  disableFeatures: ["random", "stdio", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
console.log(`wrote ${out} (${component.length} bytes)`);
