// SPDX-License-Identifier: MIT
//
// speedscope-check: import a file with speedscope's own importer, the one its web app runs
// (the npm package's bundle, pinned by the Makefile), and print what it understood.
//
// The package ships its importer only inside the app's bundle, so the bundle is run in a
// node vm with just enough of a browser to get through its module setup; right before the app
// would render into the page, the importer entry point (importProfileGroupFromText, which
// the bundle calls through a small async wrapper) is handed out instead. The wrapper is found
// by its shape, so another release of the package fails loudly here rather than half-working.
//
// Usage: node speedscope-check.js DIST_DIR FILE
// Output (tab-separated): "group\tNAME\tPROFILES", one "profile\tTOTAL\tUNIT\tNAME" per
// profile, then one "frame\tSELF\tNAME\tFILE\tLINE" per distinct frame with its self weight
// summed over the profiles. Exit 1 when the import fails or gives nothing.
'use strict';
const fs = require('fs');
const vm = require('vm');

function fail(msg) {
  console.error('speedscope-check: ' + msg);
  process.exit(1);
}

const [dir, file] = process.argv.slice(2);
if (!dir || !file) fail('usage: speedscope-check.js DIST_DIR FILE');
const bundle = fs.readdirSync(dir).find(f => /^speedscope-[A-Z0-9]+\.js$/.test(f));
if (!bundle) fail('no speedscope-*.js bundle in ' + dir);
let src = fs.readFileSync(dir + '/' + bundle, 'utf8');

// async function X(t,e){return(await Y).importProfileGroupFromText(t,e)}
const m = src.match(/async function ([A-Za-z_$][\w$]*)\(\w,\w\)\{return\(await [\w$]+\)\.importProfileGroupFromText\(\w,\w\)\}/);
if (!m) fail('importProfileGroupFromText not found in ' + bundle);
const start = src.lastIndexOf('console.log(`speedscope v');
if (start < 0) fail('app start not found in ' + bundle);
src = src.slice(0, start) + `globalThis.__profdImport=${m[1]};throw "__profd_ready";` +
  src.slice(start);

const noop = () => {};
const element = () => ({
  style: {}, classList: { add: noop, remove: noop }, appendChild: noop, setAttribute: noop,
  addEventListener: noop, removeEventListener: noop, getContext: () => null,
});
const ctx = {
  console: { log: noop, warn: noop, error: noop, info: noop },
  setTimeout, clearTimeout, TextDecoder, TextEncoder, URL, Uint8Array, WebAssembly, Promise,
  location: { hash: '', search: '', href: 'file:///profd', protocol: 'file:' },
  navigator: { userAgent: 'node', platform: 'Linux' },
  document: {
    createElement: element, body: element(), head: element(), documentElement: element(),
    addEventListener: noop, querySelector: () => null,
  },
  addEventListener: noop, removeEventListener: noop,
  matchMedia: () => ({ matches: false, addEventListener: noop, addListener: noop }),
  localStorage: { getItem: () => null, setItem: noop },
};
ctx.window = ctx;
ctx.self = ctx;
ctx.globalThis = ctx;
vm.createContext(ctx);
try {
  vm.runInContext(src, ctx, { filename: bundle });
} catch (e) {
  if (e !== '__profd_ready') fail('loading the bundle: ' + e);
}
if (typeof ctx.__profdImport !== 'function') fail('importer not handed out');

const name = file.split('/').pop();
ctx.__profdImport(name, fs.readFileSync(file, 'utf8')).then(group => {
  if (!group || !group.profiles || group.profiles.length === 0) fail('speedscope imported nothing');
  const out = [`group\t${group.name}\t${group.profiles.length}`];
  const frames = new Map();
  for (const p of group.profiles) {
    out.push(`profile\t${p.getTotalWeight()}\t${p.getWeightUnit()}\t${p.getName()}`);
    p.forEachFrame(f => {
      const key = [f.name, f.file || '', f.line || 0].join('\t');
      frames.set(key, (frames.get(key) || 0) + f.getSelfWeight());
    });
  }
  for (const [key, self] of frames) out.push(`frame\t${self}\t${key}`);
  process.stdout.write(out.join('\n') + '\n');
}).catch(e => fail('import failed: ' + e));
