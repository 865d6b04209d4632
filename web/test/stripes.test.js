// The stripe API: plan + decodeStripe in any order + toRGBA must equal decode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';
import * as kmq from '../kmq.js';
import { encodeKmq } from './encode.js';

const here = dirname(fileURLToPath(import.meta.url));
const vectors = join(here, '..', '..', 'spec', 'vectors');
const load = (name) => new Uint8Array(readFileSync(join(vectors, name)));

function rng(seed) {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s; };
}

function shuffled(n, seed) {
  const r = rng(seed);
  const a = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) { const j = r() % (i + 1); [a[i], a[j]] = [a[j], a[i]]; }
  return a;
}

// Decodes every stripe into its own buffer, in a shuffled order, and checks the concatenation.
function checkStripes(b, label) {
  const full = kmq.decode(b);
  const p = kmq.plan(b);
  assert.equal(p.width, full.width);
  assert.equal(p.height, full.height);
  assert.equal(p.channels, full.channels);
  assert.equal(p.k, full.k);
  assert.equal(p.coding, full.coding);
  assert.deepEqual(p.palette, full.palette);
  assert.equal(p.bits, p.header.bits);
  if (p.coding === 0) assert.equal(p.stripes.length, 1);
  let rows = 0;
  p.stripes.forEach((st, i) => {
    assert.equal(st.index, i);
    assert.equal(st.y0, rows);
    assert.ok(st.y1 > st.y0);
    rows = st.y1;
    if (i > 0) assert.equal(st.start, p.stripes[i - 1].start + p.stripes[i - 1].length);
  });
  assert.equal(rows, p.height);
  const last = p.stripes[p.stripes.length - 1];
  assert.equal(last.start + last.length, b.length - 4);

  const clone = structuredClone(p); // what a worker receives
  const parts = new Array(p.stripes.length);
  for (const s of shuffled(p.stripes.length, b.length)) {
    const st = p.stripes[s];
    const out = new Uint8Array(p.width * (st.y1 - st.y0)).fill(0xee);
    const ret = kmq.decodeStripe(b, s % 2 ? clone : p, s, out);
    assert.equal(ret, out);
    parts[s] = out;
  }
  const cat = new Uint8Array(p.width * p.height);
  let off = 0;
  for (const part of parts) { cat.set(part, off); off += part.length; }
  assert.ok(Buffer.from(cat).equals(Buffer.from(full.labels)), `${label}: stripes differ from decode`);
  const rgba = kmq.toRGBA(cat, p.palette, p.channels);
  assert.ok(rgba instanceof Uint8ClampedArray);
  assert.ok(Buffer.from(rgba).equals(Buffer.from(full.rgba)), `${label}: toRGBA differs from decode`);
  return p;
}

const VECTORS = ['ctx1_k8_rgb_128x97_3_stripes.kmq', 'mix_k8_rgb_128x97_3_stripes.kmq', 'ctx1_k5_rgb_3x2.kmq',
  'mix_k5_rgb_3x2.kmq', 'k5_rgb_3x2.kmq', 'k1_rgb_3x2.kmq', 'k16_rgba_11x6.kmq', 'ctx1_k256_rgb_40x30.kmq',
  'ctx1_k6_rgb_1x23.kmq', 'ctx1_k6_rgb_23x1.kmq'].concat(
  readdirSync(vectors).filter((f) => f.startsWith('mix_') && f.endsWith('.kmq')));

for (const name of new Set(VECTORS)) {
  test(`stripes of ${name} equal decode`, () => { checkStripes(load(name), name); });
}

test('input as ArrayBuffer and as a view with a byteOffset', () => {
  const b = load('mix_k8_rgb_128x97_3_stripes.kmq');
  const want = kmq.decode(b).labels;
  const big = new Uint8Array(b.length + 7);
  big.set(b, 3);
  const view = big.subarray(3, 3 + b.length);
  const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  for (const input of [view, ab, new DataView(big.buffer, 3, b.length)]) {
    const p = kmq.plan(input);
    const got = new Uint8Array(p.width * p.height);
    for (const st of p.stripes) kmq.decodeStripe(input, p, st.index, got.subarray(st.y0 * p.width, st.y1 * p.width));
    assert.deepEqual(got, want);
    assert.deepEqual(kmq.decode(input).labels, want);
  }
});

test('plan validates D1 to D7 like decode', () => {
  const b = load('ctx1_k8_rgb_128x97_3_stripes.kmq');
  const bad = b.slice();
  bad[bad.length - 1] ^= 1;
  assert.throws(() => kmq.plan(bad), kmq.ChecksumError);
  assert.throws(() => kmq.plan(b.slice(0, b.length - 1)), kmq.TruncatedError);
  assert.throws(() => kmq.plan(load('invalid/k1_over_limit.kmq')), kmq.PixelLimitError);
  assert.equal(kmq.plan(load('invalid/k1_over_limit.kmq'), { maxPixels: null }).stripes.length, 1);
});

test('decodeStripe refuses a labels buffer of the wrong size', () => {
  const b = load('ctx1_k8_rgb_128x97_3_stripes.kmq');
  const p = kmq.plan(b);
  const st = p.stripes[1];
  assert.throws(() => kmq.decodeStripe(b, p, 1, new Uint8Array(p.width * (st.y1 - st.y0) - 1)), TypeError);
  assert.throws(() => kmq.decodeStripe(b, p, 3, new Uint8Array(10)), RangeError);
});

test('K = 1: the raw pseudo-stripe overwrites the labels with 0', () => {
  const b = load('k1_rgb_3x2.kmq');
  const p = kmq.plan(b);
  assert.deepEqual(p.stripes, [{ index: 0, start: 23, length: 0, y0: 0, y1: 2 }]);
  assert.deepEqual([...kmq.decodeStripe(b, p, 0, new Uint8Array(6).fill(9))], [0, 0, 0, 0, 0, 0]);
});

test('a damaged stripe fails alone; the others still decode', () => {
  const b = load('mix_k8_rgb_128x97_3_stripes.kmq');
  const p = kmq.plan(b);
  const good = kmq.decode(b).labels;
  const st = p.stripes[1];
  let failures = 0;
  for (let i = st.start; i < st.start + st.length; i++) {
    const c = b.slice();
    c[i] ^= 0x10;
    const crc = kmq.crc32(c, 0, c.length - 4);
    new DataView(c.buffer).setUint32(c.length - 4, crc);
    const q = kmq.plan(c);
    for (const s of [2, 0]) {
      const t = q.stripes[s];
      const out = kmq.decodeStripe(c, q, s, new Uint8Array(q.width * (t.y1 - t.y0)));
      assert.deepEqual(out, good.subarray(t.y0 * q.width, t.y1 * q.width));
    }
    let err = null;
    try { kmq.decodeStripe(c, q, 1, new Uint8Array(q.width * (st.y1 - st.y0))); } catch (e) { err = e; }
    if (err) {
      failures++;
      assert.ok(err instanceof kmq.KmqError, String(err));
      assert.equal(err.rule, 'D10');
      assert.throws(() => kmq.decode(c), (e) => e.constructor === err.constructor);
    }
  }
  assert.ok(failures > 0);
});

test('toRGBA: alpha, an unaligned output, labels beyond the palette', () => {
  const pal3 = Uint8Array.of(1, 2, 3, 4, 5, 6);
  const pal4 = Uint8Array.of(1, 2, 3, 40, 4, 5, 6, 50);
  const labels = Uint8Array.of(1, 0, 1);
  assert.deepEqual([...kmq.toRGBA(labels, pal3, 3)], [4, 5, 6, 255, 1, 2, 3, 255, 4, 5, 6, 255]);
  assert.deepEqual([...kmq.toRGBA(labels, pal4, 4)], [4, 5, 6, 50, 1, 2, 3, 40, 4, 5, 6, 50]);
  const buf = new Uint8ClampedArray(13);
  const out = kmq.toRGBA(labels, pal4, 4, buf.subarray(1));
  assert.equal(out.byteOffset, 1);
  assert.deepEqual([...buf], [0, 4, 5, 6, 50, 1, 2, 3, 40, 4, 5, 6, 50]);
  assert.deepEqual([...kmq.toRGBA(Uint8Array.of(2), pal3, 3)], [0, 0, 0, 0]);
  assert.throws(() => kmq.toRGBA(labels, pal3, 3, new Uint8ClampedArray(11)), RangeError);
});

// Several stripes from the test writer (coding 1), always available.
function image(W, H, k, C, seed) {
  const r = rng(seed);
  const palette = new Uint8Array(k * C);
  for (let i = 0; i < palette.length; i++) palette[i] = r() >>> 24;
  const labels = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const v = r();
      labels[y * W + x] = v % 10 === 0 ? (v >>> 8) % k : (((x >> 3) * 7 + (y >> 2) * 3) % k);
    }
  }
  return { width: W, height: H, palette, channels: C, labels, k };
}

for (const [W, H, k, C, S] of [[200, 150, 8, 3, 7], [97, 301, 17, 4, 5], [160, 128, 256, 3, 4]]) {
  test(`writer ${W}x${H} K=${k} C=${C} S=${S}: stripes in any order equal decode`, () => {
    const p = checkStripes(encodeKmq(image(W, H, k, C, W + k), 1, S), `writer ${W}x${H}`);
    assert.equal(p.stripes.length, S);
  });
}

// Multi-stripe files from kmq's own encoder (2100 x 2100 > 2^21 pixels: 3 stripes), when it is installed.
const PY = process.env.KMQ_PYTHON || 'python3';
const haveKmq = spawnSync(PY, ['-c', 'import kmq'], { stdio: 'ignore' }).status === 0;
const GEN = `
import sys, numpy as np, kmq
out = sys.argv[1]
for W, H, K, C in ((2100, 2100, 8, 3), (1500, 1500, 100, 4)):
    rng = np.random.default_rng(K)
    pal = rng.integers(0, 256, (K, C), dtype=np.uint8)
    if C == 4:
        pal[:, 3] = rng.integers(1, 255, K, dtype=np.uint8)
    y, x = np.mgrid[0:H, 0:W]
    lab = ((x // 37) * 7 + (y // 23) * 3) % K
    noise = rng.random((H, W)) < 0.05
    lab[noise] = rng.integers(0, K, int(noise.sum()))
    img = pal[lab]
    for coding in ('mix', 'ctx1'):
        open(f'{out}/{W}x{H}_k{K}_{coding}.kmq', 'wb').write(kmq.encode(img, K, coding=coding))
`;

test('multi-stripe files from kmq encode: stripes in any order equal decode', { skip: haveKmq ? false : `${PY} cannot import kmq` }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'kmq-stripes-'));
  try {
    const r = spawnSync(PY, ['-c', GEN, dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const files = readdirSync(dir).sort();
    assert.equal(files.length, 4);
    for (const f of files) {
      const b = new Uint8Array(readFileSync(join(dir, f)));
      const p = checkStripes(b, f);
      assert.ok(p.stripes.length >= 2, `${f}: ${p.stripes.length} stripe(s)`);
      assert.equal(p.coding, f.includes('mix') ? 2 : 1, f);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('crc32 (sliced by 8) equals the bytewise definition at every length and offset', () => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let j = 0; j < 8; j++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  const slow = (b, s, e) => {
    let c = 0xffffffff;
    for (let i = s; i < e; i++) c = table[(c ^ b[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const r = rng(99);
  const b = new Uint8Array(300);
  for (let i = 0; i < b.length; i++) b[i] = r() >>> 24;
  for (let s = 0; s < 9; s++) {
    for (let e = s; e <= b.length; e += 1 + (e % 7)) assert.equal(kmq.crc32(b, s, e), slow(b, s, e), `${s}..${e}`);
  }
});

test('toRGBA: four labels at a time, any length, aligned or not, K = 256', () => {
  const r = rng(5);
  const palette = new Uint8Array(256 * 4);
  for (let i = 0; i < palette.length; i++) palette[i] = r() >>> 24;
  for (const C of [3, 4]) {
    for (const n of [0, 1, 3, 4, 5, 8, 1001]) {
      const buf = new Uint8Array(n + 3);
      for (let i = 0; i < buf.length; i++) buf[i] = r() >>> 24;
      for (const off of [0, 1, 3]) {
        const labels = buf.subarray(off, off + n);
        const got = kmq.toRGBA(labels, palette.subarray(0, 256 * C), C);
        assert.equal(got.length, n * 4);
        for (let i = 0; i < n; i++) {
          for (let c = 0; c < 3; c++) assert.equal(got[i * 4 + c], palette[labels[i] * C + c]);
          assert.equal(got[i * 4 + 3], C === 4 ? palette[labels[i] * 4 + 3] : 255);
        }
      }
    }
  }
});
