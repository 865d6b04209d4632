// Real files made by kmq's encoder (RGB and RGBA, several K, every coding) and mutants of them:
// ../kmq.js must give kmq.decode's verdict on each, and for accepted files the same pixels, byte
// for byte. make_real.py makes the files and records what the Python kmq makes of them, so this
// test needs a Python with kmq installed: KMQ_PYTHON, else python3, else python. Without one it is
// skipped, loudly. KMQ_THOROUGH=1 encodes the whole corpus and about 7,000 mutants (minutes);
// KMQ_MUTANTS=N asks for about N mutants instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as kmq from '../kmq.js';

const here = dirname(fileURLToPath(import.meta.url));
const thorough = !!process.env.KMQ_THOROUGH && process.env.KMQ_THOROUGH !== '0';

function findPython() {
  const tried = [];
  const candidates = process.env.KMQ_PYTHON ? [process.env.KMQ_PYTHON] : ['python3', 'python'];
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import kmq, numpy'], { encoding: 'utf8' });
    if (r.status === 0) return { python: py };
    tried.push(`${py}: ${r.error ? r.error.code : (r.stderr || '').trim().split('\n').pop()}`);
  }
  return { why: tried.join('; ') };
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const view = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

// What kmq.js makes of a file, in the manifest's terms.
function jsVerdict(bytes) {
  let img;
  try {
    img = kmq.decode(bytes);
  } catch (e) {
    if (e instanceof kmq.KmqError) return { verdict: e.constructor.name, message: e.message };
    return { verdict: `js-crash:${e && e.constructor ? e.constructor.name : typeof e}`, message: String(e && e.stack) };
  }
  return {
    verdict: 'ok',
    width: img.width,
    height: img.height,
    channels: img.channels,
    k: img.k,
    coding: img.coding,
    palette: view(img.palette).toString('hex'),
    labels_sha256: sha256(view(img.labels)),
    rgba_sha256: sha256(view(img.rgba)),
  };
}

const FIELDS = ['width', 'height', 'channels', 'k', 'coding', 'palette', 'labels_sha256', 'rgba_sha256'];

// '' when they agree, else what differs.
function compare(py, js) {
  if (py.verdict !== js.verdict) {
    const say = (v) => (v.verdict === 'ok' ? 'accepted' : `${v.verdict} (${v.message})`);
    return `kmq.decode: ${say(py)}; kmq.js: ${say(js)}`;
  }
  if (py.verdict !== 'ok') return '';
  const bad = FIELDS.filter((f) => py[f] !== js[f]);
  return bad.length ? `both accept, but differ in ${bad.map((f) => `${f} (kmq.decode ${py[f]}, kmq.js ${js[f]})`).join(', ')}` : '';
}

function buildMutant(seed, m) {
  const out = new Uint8Array(m.length);
  out.set(seed.subarray(0, Math.min(seed.length, m.length)));
  for (const [off, hex] of m.patches) out.set(Buffer.from(hex, 'hex'), off);
  return out;
}

function tally(map, key) { map.set(key, (map.get(key) || 0) + 1); }
const show = (map) => [...map].sort((a, b) => String(a[0]).localeCompare(String(b[0]), 'en', { numeric: true }))
  .map(([k, v]) => `${k}: ${v}`).join(', ');

const found = findPython();

if (!found.python) {
  const why = `SKIPPED: no Python with kmq (and numpy) found (${found.why}). This test compares kmq.js with ` +
    'kmq.decode on real files; to run it, install kmq (pip install -e . from the repository root) or set ' +
    'KMQ_PYTHON to a Python that can "import kmq".';
  console.error(`\n*** real.test.js ${why}\n`);
  test('kmq.js agrees with kmq.decode on real kmq files and their mutants', { skip: why }, () => {});
} else {
  test(`kmq.js agrees with kmq.decode on real kmq files and their mutants${thorough ? ' (thorough)' : ''}`,
    { timeout: thorough ? 3 * 3600e3 : 600e3 }, (t) => {
      const out = mkdtempSync(join(tmpdir(), 'kmq-real-'));
      try {
        const t0 = performance.now();
        const args = [join(here, 'make_real.py'), out, ...(thorough ? ['--thorough'] : []),
          ...(process.env.KMQ_MUTANTS ? ['--mutants', process.env.KMQ_MUTANTS] : [])];
        const made = spawnSync(found.python, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
        assert.equal(made.status, 0,
          `${found.python} make_real.py failed (${made.error || `exit ${made.status}`}):\n${made.stdout}\n${made.stderr}`);
        const tPython = performance.now() - t0;
        const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
        t.diagnostic(`${made.stdout.trim()}; kmq ${manifest.kmq.version} at ${manifest.kmq.path} ` +
          `(ctx1 coder ${manifest.kmq.ctx1}, mix coder ${manifest.kmq.mix})`);
        if (!manifest.corpus) t.diagnostic('no corpus found (KMQ_CORPUS or shared/corpus): synthetic images only');

        const t1 = performance.now();
        const mismatches = [];
        const seeds = new Map();
        const byCoding = new Map(), byK = new Map(), byChannels = new Map(), byStripes = new Map();
        for (const f of manifest.files) {
          const bytes = new Uint8Array(readFileSync(join(out, f.file)));
          assert.equal(sha256(bytes), f.sha256, `${f.name}: the file read is not the file written`);
          seeds.set(f.name, bytes);
          const js = jsVerdict(bytes);
          if (f.verdict !== 'ok') mismatches.push(`${f.name}: kmq.decode rejects a file kmq wrote (E1): ${f.verdict} ${f.message}`);
          const diff = compare(f, js);
          if (diff) mismatches.push(`${f.file}: ${diff}`);
          tally(byCoding, f.written); tally(byK, f.k); tally(byChannels, f.channels === 4 ? 'RGBA' : 'RGB');
          tally(byStripes, f.written === 'raw' ? 'raw' : `S=${f.stripes}`);
        }
        const tFiles = performance.now() - t1;

        const byKind = new Map(), byVerdict = new Map();
        for (const m of manifest.mutants) {
          const seed = seeds.get(m.seed);
          assert.ok(seed, `${m.name}: no seed ${m.seed}`);
          const bytes = buildMutant(seed, m);
          assert.equal(sha256(bytes), m.sha256, `${m.name}: rebuilt mutant differs from the one kmq judged`);
          const diff = compare(m, jsVerdict(bytes));
          if (diff) mismatches.push(`${m.name} (seed ${m.seed}, rebuilt from manifest.json): ${diff}`);
          tally(byKind, m.kind); tally(byVerdict, m.verdict);
        }
        const tAll = performance.now() - t0;

        t.diagnostic(`real files: ${manifest.files.length} (codings ${show(byCoding)}; channels ${show(byChannels)}; ` +
          `stripes ${show(byStripes)})`);
        t.diagnostic(`real files by K: ${show(byK)}`);
        t.diagnostic(`mutants: ${manifest.mutants.length} (verdicts ${show(byVerdict)})`);
        t.diagnostic(`mutants by kind: ${show(byKind)}`);
        t.diagnostic(`seconds: make_real.py ${(tPython / 1000).toFixed(1)}, kmq.js on files ` +
          `${(tFiles / 1000).toFixed(1)}, in all ${(tAll / 1000).toFixed(1)}`);
        if (mismatches.length) {
          assert.fail(`${mismatches.length} disagreement(s) between kmq.js and kmq.decode; to get the files, run ` +
            `\`${found.python} web/test/make_real.py DIR --write-mutants${thorough ? ' --thorough' : ''}\` ` +
            '(deterministic: the same names under DIR/files and DIR/mutants):' +
            `\n  ${mismatches.join('\n  ')}`);
        }
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
}
