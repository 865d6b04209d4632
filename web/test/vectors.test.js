import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';
import * as kmq from '../kmq.js';
import { decodePng } from './png.js';

const here = dirname(fileURLToPath(import.meta.url));
const vectors = join(here, '..', '..', 'spec', 'vectors');
const invalidDir = join(vectors, 'invalid');

const valid = readdirSync(vectors).filter((f) => f.endsWith('.kmq')).sort();

for (const name of valid) {
  test(`valid ${name}`, () => {
    const file = readFileSync(join(vectors, name));
    const png = decodePng(readFileSync(join(vectors, name.replace(/\.kmq$/, '.png'))));
    const img = kmq.decode(new Uint8Array(file));
    assert.equal(img.width, png.width);
    assert.equal(img.height, png.height);
    assert.equal(img.channels, png.channels);
    assert.equal(img.labels.length, img.width * img.height);
    const C = img.channels;
    const n = img.width * img.height;
    const got = new Uint8Array(n * C);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < C; c++) got[i * C + c] = img.rgba[i * 4 + c];
      if (C === 3) assert.equal(img.rgba[i * 4 + 3], 255);
      for (let c = 0; c < C; c++) assert.equal(img.palette[img.labels[i] * C + c], got[i * C + c]);
    }
    assert.deepEqual(Buffer.from(got), Buffer.from(png.data));
  });
}

// invalid/README.md table: | `file` | rule | `ErrorClass` |
const readme = readFileSync(join(invalidDir, 'README.md'), 'utf8');
const expected = [];
for (const line of readme.split('\n')) {
  const m = /^\|\s*`([^`]+\.kmq)`\s*\|[^|]*\|\s*`(\w+)`\s*\|/.exec(line);
  if (m) expected.push([m[1], m[2]]);
}

test('invalid README lists every invalid file', () => {
  const files = readdirSync(invalidDir).filter((f) => f.endsWith('.kmq')).sort();
  assert.deepEqual(expected.map((e) => e[0]).sort(), files);
});

for (const [name, family] of expected) {
  test(`invalid ${name} -> ${family}`, () => {
    const file = new Uint8Array(readFileSync(join(invalidDir, name)));
    const cls = kmq[family];
    assert.ok(cls && cls.prototype instanceof kmq.KmqError, `no error class ${family}`);
    assert.throws(() => kmq.decode(file), (e) => {
      assert.ok(e instanceof kmq.KmqError, `not a KmqError: ${e}`);
      assert.equal(e.constructor.name, family, `${name}: got ${e.constructor.name}: ${e.message}`);
      return true;
    });
  });
}

test('CRC-32 check value', () => {
  assert.equal(kmq.crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
});
