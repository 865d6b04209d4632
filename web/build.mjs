#!/usr/bin/env node
// Builds web/index.html, the offline kmq viewer, from its sources:
//   web/viewer/index.html (template), web/viewer/viewer.css, web/viewer/viewer.js and the ES
//   modules it imports (kmq-image.js, kmq-decode.js, kmq.js, mix.js, ...), plus kmq-worker.js.
//
// Why: Chromium loads no ES module script and no module worker from a page opened as file://
// (its origin is null), so the viewer must be one file. The modules are inlined into one classic
// script, each in its own function scope (kmq.js and mix.js both have a top-level RATE), and the
// same script is what the page's workers run, from a Blob URL of its text. There is one source of
// truth: web/test/build.test.js fails when the committed index.html is not what this writes.
//
//   node web/build.mjs           writes web/index.html
//   node web/build.mjs --check   exits 1 when web/index.html is out of date
//
// The inliner handles the module syntax these sources use and rejects anything else, so a new
// construct fails the build instead of producing a broken page: `import {a, b as c} from './x.js'`,
// `import './x.js'`,
// `import * as ns from './x.js'`, `export function|class|const|let|var name`, `export {a, b as c}`.
// Imports are bound when the module runs, and again once every module has run (for a cycle such as
// kmq.js <-> mix.js), so a module may use an import of a cycle only inside functions, as in ESM.
// Code between `// @module-only-begin` and `// @module-only-end` lines is dropped (it uses
// import.meta, which a classic script cannot).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';

const WEB = dirname(fileURLToPath(import.meta.url));
const PAGE_ENTRY = 'viewer/viewer.js';
const WORKER_ENTRY = 'kmq-worker.js';
const OUTPUT = join(WEB, 'index.html');

const IMPORT = /^import\s*(?:(\{[^}]*\}|\*\s*as\s+[\w$]+)\s*from\s*)?(['"])([^'"]+)\2\s*;?[ \t]*$/gm;
const EXPORT_DECL = /^export\s+((?:async\s+)?(?:function\s*\*?|class|const|let|var)\s+([\w$]+))/gm;
const EXPORT_LIST = /^export\s*\{([^}]*)\}\s*;?[ \t]*$/gm;
const MODULE_ONLY = /^[ \t]*\/\/ @module-only-begin[^\n]*\n[\s\S]*?^[ \t]*\/\/ @module-only-end[^\n]*\n/gm;

function specifiers(list) {
  // "a, b as c" -> [['a', 'a'], ['b', 'c']] (name in the exporting module, local name)
  return list.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const m = /^([\w$]+)(?:\s+as\s+([\w$]+))?$/.exec(s);
    if (!m) throw new Error(`build: cannot read specifier "${s}"`);
    return [m[1], m[2] ?? m[1]];
  });
}

function withoutComments(code) {
  // Good enough to look for leftover module syntax: strings holding // or /* are rare here,
  // and a false alarm only stops the build.
  return code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
}

/**
 * Turns one ES module into a classic-script factory.
 * @param {string} name the module's path relative to web/, e.g. "kmq.js"
 * @param {string} source its text
 * @returns {{deps: string[], code: string}} the modules it imports and a `__def(...)` statement
 */
export function transformModule(name, source) {
  const deps = [];
  const bindings = [];
  const locals = [];
  let code = source.replace(MODULE_ONLY, '// (a module-only block was dropped here by build.mjs)\n');
  const depend = (spec) => {
    if (!spec.startsWith('.')) throw new Error(`build: ${name} imports "${spec}", not a relative path`);
    const dep = posix.normalize(posix.join(posix.dirname(name), spec));
    if (!deps.includes(dep)) deps.push(dep);
    return dep;
  };
  code = code.replace(IMPORT, (_, what, _q, spec) => {
    const dep = depend(spec);
    if (!what) return ''; // import './x.js': for its side effects only
    const from = `__m[${JSON.stringify(dep)}]`;
    if (what.startsWith('{')) {
      const pairs = specifiers(what.slice(1, -1));
      locals.push(...pairs.map(([, local]) => local));
      bindings.push(`({ ${pairs.map(([n, l]) => (n === l ? n : `${n}: ${l}`)).join(', ')} } = ${from} || {});`);
    } else {
      const ns = what.replace(/^\*\s*as\s+/, '');
      locals.push(ns);
      bindings.push(`${ns} = ${from};`);
    }
    return '';
  });
  const exported = [];
  code = code.replace(EXPORT_DECL, (_, decl, id) => { exported.push([id, id]); return decl; });
  code = code.replace(EXPORT_LIST, (_, list) => { exported.push(...specifiers(list)); return ''; });
  const rest = withoutComments(code);
  const leftover = /^[ \t]*(import|export)\b.*$/m.exec(rest) || /\bimport\s*(\.\s*meta\b|\()/.exec(rest);
  if (leftover) throw new Error(`build: ${name}: unsupported module syntax: ${leftover[0].trim()}`);
  const head = locals.length ? `let ${locals.join(', ')};\n__link((__m) => { ${bindings.join(' ')} });\n` : '';
  const tail = `return { ${exported.map(([local, as]) => (local === as ? local : `${as}: ${local}`)).join(', ')} };`;
  return { deps, code: `__def(${JSON.stringify(name)}, ${JSON.stringify(deps)}, function (__link) {\n${head}${code.trim()}\n${tail}\n});\n` };
}

// Runs an entry's module graph in ESM order (dependencies first, a cycle's back edge bound late).
const RUNTIME = `const __defs = {};
function __def(name, deps, factory) { __defs[name] = { deps, factory }; }
function __run(entry) {
  const done = {}, seen = {}, links = [];
  const link = (bind) => { links.push(bind); bind(done); };
  (function visit(name) {
    if (seen[name]) return;
    seen[name] = true;
    for (const dep of __defs[name].deps) visit(dep);
    done[name] = __defs[name].factory(link);
  })(entry);
  for (const bind of links) bind(done);
}`;

/**
 * The viewer's script: every module of the page's and the worker's graphs, then a run of the
 * page's entry (in a window) or of the worker's (in a worker, which has no document).
 * @returns {string} a classic script
 */
export function bundle() {
  const order = [];
  const defs = new Map();
  const visit = (name) => {
    if (defs.has(name)) return;
    const t = transformModule(name, readFileSync(join(WEB, name), 'utf8'));
    defs.set(name, t);
    t.deps.forEach(visit);
    order.push(name);
  };
  visit(PAGE_ENTRY);
  visit(WORKER_ENTRY);
  const parts = order.map((name) => `// ---------------------------------------------------------------- web/${name}\n${defs.get(name).code}`);
  const entry = `__run(typeof document === 'undefined' ? ${JSON.stringify(WORKER_ENTRY)} : ${JSON.stringify(PAGE_ENTRY)});`;
  const script = `(() => {\n'use strict';\n${RUNTIME}\n${parts.join('\n')}\n${entry}\n})();\n`;
  new vm.Script(script, { filename: 'index.html#kmq-bundle' }); // a syntax error fails the build here
  return script;
}

/**
 * The whole index.html.
 * @returns {string}
 */
export function build() {
  const template = readFileSync(join(WEB, 'viewer', 'index.html'), 'utf8');
  const css = readFileSync(join(WEB, 'viewer', 'viewer.css'), 'utf8');
  const script = bundle();
  // Inside <script> and <style>, only these sequences could end the element early.
  for (const [what, text] of [['script', script], ['style', css]]) {
    if (/<\/(script|style)|<!--/i.test(text)) throw new Error(`build: the ${what} holds </script, </style or <!--`);
  }
  const fill = (text, marker, value) => {
    if (!text.includes(marker)) throw new Error(`build: template has no ${marker}`);
    return text.replace(marker, () => value);
  };
  return fill(fill(template, '/*@STYLE*/', css.trim()), '/*@SCRIPT*/', script.trim());
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const html = build();
  if (process.argv.includes('--check')) {
    const current = readFileSync(OUTPUT, 'utf8');
    if (current !== html) {
      console.error('web/index.html is out of date: run node web/build.mjs');
      process.exit(1);
    }
  } else {
    writeFileSync(OUTPUT, html);
    console.log(`wrote ${OUTPUT} (${html.length} bytes)`);
  }
}
