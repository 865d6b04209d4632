// Times web/kmq.js decoding kmq files in Node, for bench_web.py: one line of JSON per file,
// {file, seconds: [...], labels_sha256}. Node runs this on one thread, so it is one core.
// Usage: node benchmarks/web_decode.mjs REPEAT FILE...
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { decode } from '../web/kmq.js';

const [repeat, ...paths] = process.argv.slice(2);
for (const file of paths) {
  const bytes = new Uint8Array(readFileSync(file));
  const seconds = [];
  let image;
  for (let i = 0; i < Number(repeat); i++) {
    const start = process.hrtime.bigint();
    image = decode(bytes);
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  const labels_sha256 = createHash('sha256').update(image.labels).digest('hex');
  console.log(JSON.stringify({ file, seconds, labels_sha256 }));
}
