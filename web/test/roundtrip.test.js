// Round trips through the test-only writer: larger images, several stripes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';
import * as kmq from '../kmq.js';
import { encodeKmq } from './encode.js';

const here = dirname(fileURLToPath(import.meta.url));
const vectors = join(here, '..', '..', 'spec', 'vectors');

function rng(seed) {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s; };
}

function image(W, H, k, C, seed) {
  const r = rng(seed);
  const palette = new Uint8Array(k * C);
  for (let i = 0; i < palette.length; i++) palette[i] = r() >>> 24;
  const labels = new Uint8Array(W * H);
  // blocky regions plus noise, so that flags and escapes both occur
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const v = r();
      labels[y * W + x] = v % 10 === 0 ? (v >>> 8) % k : (((x >> 3) * 7 + (y >> 2) * 3) % k);
    }
  }
  return { width: W, height: H, palette, channels: C, labels, k };
}

test('the test writer reproduces the worked examples byte for byte', () => {
  const img = { width: 3, height: 2, channels: 3, k: 5, labels: Uint8Array.of(4, 0, 3, 1, 2, 3),
    palette: Uint8Array.of(0, 0, 0, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255) };
  assert.deepEqual(encodeKmq(img, 0), new Uint8Array(readFileSync(join(vectors, 'k5_rgb_3x2.kmq'))));
  assert.deepEqual(encodeKmq(img, 1), new Uint8Array(readFileSync(join(vectors, 'ctx1_k5_rgb_3x2.kmq'))));
});

for (const [W, H, k, C, S] of [[64, 64, 2, 3, 1], [100, 90, 13, 4, 2], [97, 130, 17, 3, 3], [200, 150, 256, 3, 7], [81, 256, 16, 3, 5]]) {
  test(`round trip ${W}x${H} K=${k} C=${C} S=${S}`, () => {
    const img = image(W, H, k, C, W * 31 + k);
    for (const coding of [0, 1]) {
      const f = encodeKmq(img, coding, S);
      const out = kmq.decode(f);
      assert.equal(out.coding, coding);
      assert.deepEqual(out.labels, img.labels);
    }
  });
}
