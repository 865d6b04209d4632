// kmq payload coding 2 ("mix", FORMAT.md section 11): context mixing with a 2-D match model.
// Written from spec/FORMAT.md alone. All arithmetic is exact integer arithmetic.
import { FormatError, RangeDecoder } from './kmq.js';

// ---------------------------------------------------------------- 11.2 arithmetic tools

const SQ = [1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
  2549, 2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094];

export function squash(d) {
  if (d > 2047) d = 2047;
  else if (d < -2047) d = -2047;
  const w = d & 127;
  const i = (d >> 7) + 16;
  return (SQ[i] * (128 - w) + SQ[i + 1] * w + 64) >> 7;
}

export const STRETCH = new Int16Array(4096);
{
  let pi = 0;
  for (let x = -2047; x <= 2047; x++) {
    const v = squash(x);
    for (let j = pi; j <= v; j++) STRETCH[j] = x;
    pi = v + 1;
  }
  for (let j = pi; j <= 4095; j++) STRETCH[j] = 2047;
}

export function hashStep(h, v) {
  const t = Math.imul((h ^ v) >>> 0, 0x9e3779b1) >>> 0;
  return (t ^ (t >>> 15)) >>> 0;
}

function bitLengthNum(v) {
  let n = 0;
  while (v >= 1) { v = Math.floor(v / 2); n++; }
  return n;
}

// r = 131072 // (2n + 3) for n = 0..250
const RATE = new Uint32Array(251);
for (let n = 0; n <= 250; n++) RATE[n] = Math.floor(131072 / (2 * n + 3));

const FLAG_LIMITS = [60, 250, 250, 250, 60, 250];
const ESC_LIMITS = [30, 30, 250, 250, 250];
const FLAG_SETS = 240;
const ESC_SETS = 8;

// ---------------------------------------------------------------- model state

export class MixContext {
  constructor(k, bits, palette, channels) {
    this.k = k;
    this.bits = bits;
    // (K + 1)^2 squared colour distances, 0 when either side is absent (K)
    const K1 = k + 1;
    const D = new Int32Array(K1 * K1);
    for (let a = 0; a < k; a++) {
      for (let b = 0; b < k; b++) {
        let s = 0;
        for (let c = 0; c < channels; c++) {
          const d = palette[a * channels + c] - palette[b * channels + c];
          s += d * d;
        }
        D[a * K1 + b] = s;
      }
    }
    this.D = D;
    this.hbAlloc = 0;
    this.P = null; // slot probabilities (of a 1, 1/65536)
    this.N = null; // slot update counts
    this.MT = null;
    this.weights = new Int32Array(FLAG_SETS * 7 + ESC_SETS * 6);
  }

  // Layout for a stripe of PIX pixels; resets every table to its initial state.
  prepare(PIX) {
    const hb = Math.min(20, Math.max(12, bitLengthNum(PIX) + 1));
    const H = 1 << hb;
    const tree = (this.k + 1) << this.bits;
    const o = {};
    let off = 0;
    o.T1 = off; off += 3 * 256 * 8;
    o.TM = off; off += 16 * 2 * 8;
    o.T2 = off; off += H;
    o.T3 = off; off += H;
    o.T4 = off; off += H;
    o.T5 = off; off += H;
    o.TW = off; off += tree;
    o.TN = off; off += tree;
    o.TE = off; off += H;
    if (!this.P || this.P.length < off) {
      this.P = new Uint16Array(off);
      this.N = new Uint8Array(off);
    }
    if (hb > this.hbAlloc) {
      this.MT = new Uint32Array(H);
      this.hbAlloc = hb;
    }
    this.P.fill(32768, 0, off);
    this.N.fill(0, 0, off);
    this.MT.fill(0, 0, H);
    this.weights.fill(22000);
    o.hb = hb;
    return o;
  }
}

// ---------------------------------------------------------------- 11.4 mixing one decision

const st = new Int32Array(8);

function mixBit(rc, P, N, idx, limits, n, W, wOff, lr) {
  let dot = 0;
  for (let i = 0; i < n; i++) {
    const s = STRETCH[P[idx[i]] >> 4];
    st[i] = s;
    dot += s * W[wOff + i];
  }
  st[n] = 256;
  dot += 256 * W[wOff + n];
  let p1 = squash(Math.floor(dot / 65536));
  if (p1 < 1) p1 = 1; else if (p1 > 4095) p1 = 4095;
  const bit = rc.bit((4096 - p1) * 8);
  const err = bit * 4096 - p1;
  for (let i = 0; i <= n; i++) {
    let w = W[wOff + i] + ((st[i] * err) >> lr);
    if (w > 4194304) w = 4194304; else if (w < -4194304) w = -4194304;
    W[wOff + i] = w;
  }
  for (let i = 0; i < n; i++) {
    const j = idx[i];
    const cnt = N[j];
    const r = RATE[cnt];
    const p = P[j];
    if (bit) P[j] = p + ((((65536 - p) * r) >>> 16));
    else P[j] = p - (((p * r) >>> 16));
    if (cnt < limits[i]) N[j] = cnt + 1;
  }
  return bit;
}

// ---------------------------------------------------------------- 11.5, 11.6 one stripe

export function decodeMixStripe(b, start, len, s, labels, Wd, y0, y1, k, bits, ctx) {
  const rows = y1 - y0;
  const PIX = Wd * rows;
  const o = ctx.prepare(PIX);
  const { P, N, MT, weights, D } = ctx;
  const hb = o.hb;
  const sh = 32 - hb;
  const sh8 = 35 - hb;
  const rc = new RangeDecoder(b, start, len, s);
  const A = k;
  const K1 = k + 1;
  const top = 1 << bits;
  const base = 0; // labels hold the stripe's rows only
  const L = [0, 0, 0, 0, 0];
  const fidx = new Int32Array(6);
  const eidx = new Int32Array(5);
  const escW = FLAG_SETS * 7;

  let active = false, ptr = 0, mlen = 0;
  let pos = 0;
  for (let y = 0; y < rows; y++) {
    const row = y * Wd;
    const r1 = row - Wd, r2 = row - 2 * Wd;
    const hasN = y >= 1;
    const hasNN = y >= 2;
    for (let x = 0; x < Wd; x++, pos++) {
      const w = x >= 1 ? labels[row + x - 1] : A;
      const ww = x >= 2 ? labels[row + x - 2] : A;
      const www = x >= 3 ? labels[row + x - 3] : A;
      let n = A, nw = A, ne = A, nww = A, nee = A;
      if (hasN) {
        n = labels[r1 + x];
        if (x >= 1) nw = labels[r1 + x - 1];
        if (x >= 2) nww = labels[r1 + x - 2];
        if (x + 1 < Wd) ne = labels[r1 + x + 1];
        if (x + 2 < Wd) nee = labels[r1 + x + 2];
      }
      let nn = A, nnw = A, nnww = A, nne = A, nnee = A;
      if (hasNN) {
        nn = labels[r2 + x];
        if (x >= 1) nnw = labels[r2 + x - 1];
        if (x >= 2) nnww = labels[r2 + x - 2];
        if (x + 1 < Wd) nne = labels[r2 + x + 1];
        if (x + 2 < Wd) nnee = labels[r2 + x + 2];
      }
      // 1. candidates and pattern
      let m = 0;
      if (w !== A) L[m++] = w;
      if (n !== A && n !== w) L[m++] = n;
      if (ne !== A && ne !== w && ne !== n) L[m++] = ne;
      if (nw !== A && nw !== w && nw !== n && nw !== ne) L[m++] = nw;
      const Pt = (w === n ? 1 : 0) | (w === nw ? 2 : 0) | (w === ne ? 4 : 0) | (n === nw ? 8 : 0) |
        (n === ne ? 16 : 0) | (nw === ne ? 32 : 0) | (ww === w ? 64 : 0) | (nn === n ? 128 : 0);
      // 2. activity
      const dsum = D[w * K1 + n] + D[n * K1 + nw] + D[n * K1 + ne] + D[w * K1 + nw] + D[w * K1 + ww] + D[n * K1 + nn];
      let act = 32 - Math.clz32(dsum >> 4);
      if (act > 15) act = 15;
      // 3. match model
      let hm = hashStep(9, w);
      hm = hashStep(hm, n); hm = hashStep(hm, nw); hm = hashStep(hm, ne); hm = hashStep(hm, ww);
      hm = hashStep(hm, nn); hm = hashStep(hm, nne); hm = hashStep(hm, nww); hm = hashStep(hm, nee);
      const mi = hm >>> sh;
      if (!active && MT[mi] !== 0) { active = true; ptr = MT[mi] - 1; mlen = 0; }
      let E = -1, lb = 0;
      if (active) {
        E = labels[base + ptr];
        lb = Math.min(15, 1 + (32 - Math.clz32(mlen)));
        let found = false;
        for (let i = 0; i < m; i++) if (L[i] === E) { found = true; break; }
        if (!found) L[m++] = E;
      }
      const avail = k - m;
      // 4. hashes
      const h2 = hashStep(hashStep(2, w), n);
      const h3 = hashStep(hashStep(hashStep(hashStep(3, w), n), ne), nw);
      const h4 = hashStep(hashStep(hashStep((h3 ^ 4) >>> 0, ww), nn), nne);
      let h5 = hashStep((h4 ^ 5) >>> 0, nww);
      h5 = hashStep(h5, nee); h5 = hashStep(h5, www); h5 = hashStep(h5, nnw);
      h5 = hashStep(h5, nnww); h5 = hashStep(h5, nnee);
      const b2 = (h2 >>> sh8) << 3, b3 = (h3 >>> sh8) << 3, b4 = (h4 >>> sh8) << 3, b5 = (h5 >>> sh8) << 3;
      // 5. flags
      let X = -1;
      const mm = m < 4 ? m : 4;
      for (let i = 0; i < m; i++) {
        const c = L[i];
        const agree = E >= 0 && c === E ? 1 : 0;
        const ms = lb === 0 ? 0 : agree ? 1 : 2;
        if (avail === 0 && i === m - 1) { X = c; break; }
        fidx[0] = o.T1 + (ms * 256 + Pt) * 8 + i;
        fidx[1] = o.T2 + b2 + i;
        fidx[2] = o.T3 + b3 + i;
        fidx[3] = o.T4 + b4 + i;
        fidx[4] = o.TM + (lb * 2 + agree) * 8 + i;
        fidx[5] = o.T5 + b5 + i;
        const set = ((ms * 5 + i) * 4 + mm - 1) * 4 + (act >> 2);
        if (mixBit(rc, P, N, fidx, FLAG_LIMITS, 6, weights, set * 7, 11)) { X = c; break; }
      }
      // 6. escape
      if (X < 0) {
        const g2 = hashStep(hashStep(10, w), n);
        const g4 = hashStep(hashStep(hashStep(hashStep(11, w), n), ne), nw);
        const g1 = hashStep(12, ne);
        let node = 1;
        for (let d = 0; d < bits; d++) {
          eidx[0] = o.TW + w * top + node;
          eidx[1] = o.TN + n * top + node;
          eidx[2] = o.TE + (hashStep(g2, node) >>> sh);
          eidx[3] = o.TE + (hashStep(g4, node) >>> sh);
          eidx[4] = o.TE + (hashStep(g1, node) >>> sh);
          node = 2 * node + mixBit(rc, P, N, eidx, ESC_LIMITS, 5, weights, escW + d * 6, 10);
        }
        X = node - top;
        if (X >= k) throw new FormatError(`stripe ${s}: escape to ${X} >= k = ${k} at (${x}, ${y0 + y})`, 'D10');
        for (let i = 0; i < m; i++) {
          if (L[i] === X) throw new FormatError(`stripe ${s}: escape to candidate ${X} at (${x}, ${y0 + y})`, 'D10');
        }
      }
      labels[row + x] = X;
      // 7. after the pixel
      if (active) {
        if (X === E) { mlen = mlen < 65535 ? mlen + 1 : 65535; ptr++; }
        else { active = false; mlen = 0; }
      }
      if (pos < 4294967295) MT[mi] = pos + 1;
    }
  }
  rc.finish();
}
