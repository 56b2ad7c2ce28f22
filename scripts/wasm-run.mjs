// wasm-run.mjs — run a wasm32-wasi command module under Node's WASI.
// Usage: node scripts/wasm-run.mjs module.wasm [args...]   (CMAKE_CROSSCOMPILING_EMULATOR)
// Exit status is the module's; tests/data is preopened at its absolute path so
// tests can fopen(CAIRN_TEST_DATA_DIR "/...") as they do natively. GTEST_* and
// CAIRN_* environment variables are passed through; nothing else is.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const flag = '--experimental-wasi-unstable-preview1';  // required before Node 20
if (Number(process.versions.node.split('.')[0]) < 20 && !process.execArgv.includes(flag)) {
  const argv = [flag, '--no-warnings', fileURLToPath(import.meta.url), ...process.argv.slice(2)];
  process.exit(spawnSync(process.execPath, argv, { stdio: 'inherit' }).status ?? 1);
}
process.removeAllListeners('warning');  // silence "WASI is an experimental feature"
const { WASI } = await import('node:wasi');
const dataDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'tests', 'data');
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(GTEST|CAIRN)_/.test(k)));
const options = { args: process.argv.slice(2), env, preopens: { [dataDir]: dataDir }, returnOnExit: true };
let wasi;
try { wasi = new WASI({ version: 'preview1', ...options }); } catch { wasi = new WASI(options); }  // Node 18 may lack `version`
const module = await WebAssembly.compile(readFileSync(process.argv[2]));
const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.wasiImport });
process.exitCode = wasi.start(instance);
