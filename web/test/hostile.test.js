// Damaged files must fail with exactly one KmqError subclass, never another exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';
import * as kmq from '../kmq.js';

const here = dirname(fileURLToPath(import.meta.url));
const vectors = join(here, '..', '..', 'spec', 'vectors');
const load = (name) => new Uint8Array(readFileSync(join(vectors, name)));
const SAMPLES = ['k5_rgb_7x5.kmq', 'ctx1_k8_rgb_13x7.kmq', 'mix_k8_rgb_13x7.kmq', 'k1_rgb_3x2.kmq'];

function fixCrc(b) {
  const c = kmq.crc32(b, 0, b.length - 4);
  b[b.length - 4] = c >>> 24; b[b.length - 3] = (c >>> 16) & 255;
  b[b.length - 2] = (c >>> 8) & 255; b[b.length - 1] = c & 255;
  return b;
}

function outcome(b) {
  try {
    const img = kmq.decode(b);
    for (const v of img.labels) assert.ok(v < img.k);
    assert.equal(img.labels.length, img.width * img.height);
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof kmq.KmqError, `unexpected ${e && e.stack}`);
    return e.constructor.name;
  }
}

for (const name of SAMPLES) {
  test(`every truncation of ${name} is TruncatedError`, () => {
    const b = load(name);
    for (let n = 0; n < b.length; n++) {
      const r = outcome(b.slice(0, n));
      assert.equal(r, 'TruncatedError', `${name} cut at ${n}: ${r}`);
    }
    assert.equal(outcome(b), 'ok');
  });

  test(`every bit flip of ${name} is caught`, () => {
    const b = load(name);
    for (let i = 0; i < b.length * 8; i++) {
      const c = b.slice();
      c[i >> 3] ^= 0x80 >> (i & 7);
      assert.notEqual(outcome(c), 'ok', `${name}: flip of bit ${i} accepted`);
    }
  });

  test(`bit flips of ${name} with a repaired CRC never throw anything but KmqError`, () => {
    const b = load(name);
    for (let i = 0; i < (b.length - 4) * 8; i++) {
      const c = b.slice();
      c[i >> 3] ^= 0x80 >> (i & 7);
      outcome(fixCrc(c));
    }
  });
}

test('readHeader returns the header fields', () => {
  const h = kmq.readHeader(load('ctx1_k8_rgb_128x97_3_stripes.kmq'));
  assert.equal(h.version, 1);
  assert.equal(h.coding, 1);
  assert.equal(h.channels, 3);
  assert.equal(h.k, 8);
  assert.equal(h.bits, 3);
  assert.equal(h.width, 128);
  assert.equal(h.height, 97);
});

test('pixel limit: exactly the limit is accepted, one less is refused, null removes it', () => {
  const b = load('k5_rgb_7x5.kmq');
  assert.equal(kmq.decode(b, { maxPixels: 35 }).labels.length, 35);
  assert.throws(() => kmq.decode(b, { maxPixels: 34 }), kmq.PixelLimitError);
  assert.equal(kmq.decode(b, { maxPixels: null }).width, 7);
  const huge = load('invalid/huge_no_payload.kmq');
  assert.throws(() => kmq.decode(huge, { maxPixels: null }), kmq.TruncatedError);
});

test('worked example of section 4 decodes to its labels', () => {
  const img = kmq.decode(load('k5_rgb_3x2.kmq'));
  assert.deepEqual([...img.labels], [4, 0, 3, 1, 2, 3]);
  assert.deepEqual([...kmq.decode(load('ctx1_k5_rgb_3x2.kmq')).labels], [4, 0, 3, 1, 2, 3]);
  assert.deepEqual([...kmq.decode(load('mix_k5_rgb_3x2.kmq')).labels], [4, 0, 3, 1, 2, 3]);
});

test('ArrayBuffer input', () => {
  const b = load('k2_rgb_9x3.kmq');
  const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  assert.equal(kmq.decode(ab).width, 9);
});
