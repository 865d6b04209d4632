// Real files made by kmq (Python) and damaged copies of them: kmq.js must agree with kmq.decode on
// every one, byte for byte where kmq accepts it and by error class where kmq rejects it.
// make_real.py writes the files and kmq's verdicts; KMQ_THOROUGH=1 takes the whole corpus and 7,000 mutants.
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
const sha = (bytes) => createHash('sha256').update(bytes).digest('hex');

function findPython() {
  for (const python of [process.env.KMQ_PYTHON, 'python3', 'python'].filter(Boolean)) {
    const probe = spawnSync(python, ['-c', 'import kmq'], { encoding: 'utf8' });
    if (probe.status === 0) return python;
  }
  return null;
}

function outcome(bytes) {
  try {
    const img = kmq.decode(bytes);
    return {
      width: img.width, height: img.height, channels: img.channels, k: img.k, coding: img.coding,
      labels: sha(img.labels), palette: sha(img.palette), rgba: sha(img.rgba),
    };
  } catch (e) {
    if (!(e instanceof kmq.KmqError)) throw e;
    return { error: e.constructor.name };
  }
}

const python = findPython();
const why = 'no Python with kmq installed (pip install -e . in the repository, or set KMQ_PYTHON): '
  + 'kmq.js is NOT compared with kmq.decode on real files';
if (!python) console.error(`!!! real.test.js skipped: ${why}`);

test('kmq.js decodes real kmq files and their mutants exactly as kmq.decode does', { skip: python ? false : why, timeout: 3_600_000 }, (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'kmq-real-'));
  try {
    const args = [join(here, 'make_real.py'), folder, ...(process.env.KMQ_THOROUGH ? ['--thorough'] : [])];
    const made = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
    assert.equal(made.status, 0, `make_real.py failed:\n${made.stderr}`);
    const manifest = JSON.parse(readFileSync(join(folder, 'manifest.json'), 'utf8'));
    const wrong = [];
    const counts = { accepted: 0, rejected: 0 };
    for (const entry of manifest) {
      const { file, made: how, ...expected } = entry;
      const got = outcome(new Uint8Array(readFileSync(join(folder, file))));
      counts[expected.error ? 'rejected' : 'accepted']++;
      try {
        assert.deepEqual(got, expected);
      } catch {
        wrong.push(`${file} (${how}): kmq ${JSON.stringify(expected)}, kmq.js ${JSON.stringify(got)}`);
      }
    }
    t.diagnostic(`${manifest.length} files: ${counts.accepted} decoded, ${counts.rejected} rejected, by both`);
    assert.ok(manifest.length > 100, 'too few files to mean anything');
    assert.equal(wrong.length, 0, `kmq.js disagrees with kmq on ${wrong.length} files:\n${wrong.slice(0, 30).join('\n')}`);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
