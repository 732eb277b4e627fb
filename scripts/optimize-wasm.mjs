// `node scripts/optimize-wasm.mjs DIR`: shrinks every .wasm file in DIR in place, as `wasm-opt -Oz`
// does, with the bulk-memory and non-trapping float-to-int features enabled.
//
// The browser bundle is cut into hundreds of modules (one per page, and one per piece of code
// several pages share). binaryen from npm is itself compiled to wasm, and starting it takes more
// than a second, so running the `wasm-opt` command once per module would take minutes. This loads
// it once per worker and optimizes the modules in turn, the largest first, on two workers.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const WORKERS = 2;

if (isMainThread) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node scripts/optimize-wasm.mjs DIR');
    process.exit(2);
  }
  const files = readdirSync(dir)
    .filter((name) => name.endsWith('.wasm'))
    .map((name) => join(dir, name))
    .sort((a, b) => statSync(b).size - statSync(a).size);
  // Deal the files out in turn, largest first, so each worker gets a similar share of the work.
  const shares = Array.from({ length: WORKERS }, (_, i) => files.filter((_, j) => j % WORKERS === i));
  const results = await Promise.all(shares.map((share) => new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: share });
    worker.on('message', resolve);
    worker.on('error', reject);
    worker.on('exit', (code) => { if (code !== 0) reject(new Error(`a wasm optimizer worker stopped with ${code}`)); });
  })));
  const before = results.reduce((sum, r) => sum + r.before, 0);
  const after = results.reduce((sum, r) => sum + r.after, 0);
  console.error(`optimized ${files.length} wasm modules: ${before} → ${after} bytes`);
} else {
  const { default: binaryen } = await import('../e2e/node_modules/binaryen/index.js');
  // -Oz: the default passes at optimize level 2, shrink level 2, without debug names.
  binaryen.setOptimizeLevel(2);
  binaryen.setShrinkLevel(2);
  binaryen.setDebugInfo(false);
  let before = 0;
  let after = 0;
  for (const file of workerData) {
    const input = readFileSync(file);
    const module = binaryen.readBinary(input);
    module.setFeatures(module.getFeatures() | binaryen.Features.BulkMemory | binaryen.Features.NontrappingFPToInt);
    if (!module.validate()) throw new Error(`${file} is not a valid wasm module`);
    module.optimize();
    const output = module.emitBinary();
    module.dispose();
    writeFileSync(file, output);
    before += input.length;
    after += output.length;
  }
  parentPort.postMessage({ before, after });
}
