// Test-only kmq writer (codings 0 and 1), from FORMAT.md sections 1 to 6, for round trips.
import { crc32 } from '../kmq.js';

class RangeEncoder {
  constructor() { this.low = 0; this.range = 0xffffffff; this.cache = 0; this.cacheSize = 1; this.out = []; }
  shiftLow() {
    // low < 2^33, kept as a double (exact)
    if (this.low < 0xff000000 || this.low >= 4294967296) {
      const carry = this.low >= 4294967296 ? 1 : 0;
      this.out.push((this.cache + carry) & 255);
      for (let i = 0; i < this.cacheSize - 1; i++) this.out.push((0xff + carry) & 255);
      this.cache = Math.floor(this.low / 16777216) & 255;
      this.cacheSize = 0;
    }
    this.cacheSize++;
    this.low = (this.low % 16777216) * 256;
  }
  bit(p, b) {
    const bound = (this.range >>> 15) * p;
    if (b === 0) this.range = bound;
    else { this.low += bound; this.range -= bound; }
    while (this.range < 0x1000000) { this.range = (this.range << 8) >>> 0; this.shiftLow(); }
  }
  finish() { for (let i = 0; i < 5; i++) this.shiftLow(); return Uint8Array.from(this.out); }
}

function encodeCtx1Stripe(labels, W, y0, y1, k, bits) {
  const rc = new RangeEncoder();
  const nFlag = k <= 16 ? (k + 1) * (k + 1) * 1024 : 1024;
  const fp = new Uint16Array(nFlag).fill(16384), fc = new Uint8Array(nFlag);
  const tp = new Uint16Array((k + 1) << bits).fill(16384), tc = new Uint8Array((k + 1) << bits);
  const code = (P, C, i, b) => {
    rc.bit(P[i], b);
    const rate = Math.min(6, 32 - Math.clz32(C[i] + 1));
    C[i] = Math.min(C[i] + 1, 31);
    if (b === 0) P[i] += (32768 - P[i]) >> rate; else P[i] -= P[i] >> rate;
  };
  const A = k;
  const at = (x, y) => (x < 0 || x >= W || y < y0 ? A : labels[y * W + x]);
  for (let y = y0; y < y1; y++) {
    for (let x = 0; x < W; x++) {
      const X = labels[y * W + x];
      const w = at(x - 1, y), n = at(x, y - 1), ne = at(x + 1, y - 1), nw = at(x - 1, y - 1);
      const ww = at(x - 2, y), nn = at(x, y - 2);
      const L = [];
      for (const v of [w, n, ne, nw]) if (v !== A && !L.includes(v)) L.push(v);
      const P = (w === n) | ((w === nw) << 1) | ((w === ne) << 2) | ((n === nw) << 3) |
        ((n === ne) << 4) | ((nw === ne) << 5) | ((ww === w) << 6) | ((nn === n) << 7);
      const V = k <= 16 ? w * (k + 1) + n : 0;
      let done = false;
      for (let i = 0; i < L.length; i++) {
        const b = X === L[i] ? 1 : 0;
        code(fp, fc, (V * 256 + P) * 4 + i, b);
        if (b) { done = true; break; }
      }
      if (!done) {
        let node = 1;
        for (let j = bits - 1; j >= 0; j--) {
          const b = (X >> j) & 1;
          code(tp, tc, w * (1 << bits) + node, b);
          node = 2 * node + b;
        }
      }
    }
  }
  return rc.finish();
}

export function encodeKmq({ width: W, height: H, palette, channels: C, labels, k }, coding = 0, S = 1) {
  const bits = k === 1 ? 0 : 32 - Math.clz32(k - 1);
  let payload;
  if (coding === 0) {
    payload = new Uint8Array(Math.ceil((W * H * bits) / 8));
    let bitpos = 0;
    for (let i = 0; i < W * H; i++) {
      for (let j = bits - 1; j >= 0; j--, bitpos++) {
        if ((labels[i] >> j) & 1) payload[bitpos >> 3] |= 0x80 >> (bitpos & 7);
      }
    }
  } else {
    const streams = [];
    for (let s = 0; s < S; s++) {
      streams.push(encodeCtx1Stripe(labels, W, Math.floor((s * H) / S), Math.floor(((s + 1) * H) / S), k, bits));
    }
    const total = 2 + 4 * S + streams.reduce((a, b) => a + b.length, 0);
    payload = new Uint8Array(total);
    const dv = new DataView(payload.buffer);
    dv.setUint16(0, S);
    let off = 2 + 4 * S;
    streams.forEach((st, s) => { dv.setUint32(2 + 4 * s, st.length); payload.set(st, off); off += st.length; });
  }
  const file = new Uint8Array(20 + k * C + payload.length + 4);
  const dv = new DataView(file.buffer);
  file.set([0x89, 0x4b, 0x4d, 0x51, 1, coding, C, bits]);
  dv.setUint16(8, k);
  dv.setUint32(12, W);
  dv.setUint32(16, H);
  file.set(palette, 20);
  file.set(payload, 20 + k * C);
  dv.setUint32(file.length - 4, crc32(file, 0, file.length - 4));
  return file;
}
