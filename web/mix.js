// kmq payload coding 2 ("mix", FORMAT.md section 11): context mixing with a 2-D match model.
// Written from spec/FORMAT.md alone. All arithmetic is exact integer arithmetic.
import { FormatError, TruncatedError } from './kmq.js';

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

// Tables for the decoder's inner loop, all Int32Array:
// STR[p >> 4] = STRETCH[p >> 4]; SQT[d + 2047] = min(4095, max(1, squash(d))) for |d| <= 2047;
// RATE[n] = 131072 // (2n + 3) for n = 0..250.
const STR = Int32Array.from(STRETCH);
const SQT = new Int32Array(4095);
for (let d = -2047; d <= 2047; d++) SQT[d + 2047] = Math.min(4095, Math.max(1, squash(d)));
const RATE = new Int32Array(256);
for (let n = 0; n <= 250; n++) RATE[n] = Math.floor(131072 / (2 * n + 3));

const FLAG_SETS = 240;
const ESC_SETS = 8;
// A slot (11.3) is one Int32, p << 8 | n: p in 1..65535, n up to 250.
const SLOT0 = 32768 << 8;

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
    this.M = null; // every slot table, one after another (offsets in prepare)
    this.MT = null;
    // weight sets of 7 (flags) and 6 (escape) weights, each at a multiple of 8
    this.weights = new Int32Array((FLAG_SETS + ESC_SETS) * 8);
    this.rows = null;
    this.st = new Int32Array(10);
    this.L = new Int32Array(8);
  }

  // Layout for a stripe of PIX pixels; resets every table to its initial state.
  prepare(PIX) {
    const hb = Math.min(20, Math.max(12, bitLengthNum(PIX) + 1));
    const H = 2 ** hb;
    const tree = (this.k + 1) * 2 ** this.bits;
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
    if (!this.M || this.M.length < off) this.M = new Int32Array(off);
    if (hb > this.hbAlloc) {
      this.MT = new Uint32Array(H);
      this.hbAlloc = hb;
    }
    this.M.fill(SLOT0, 0, off);
    this.MT.fill(0, 0, H);
    this.weights.fill(22000);
    o.hb = hb;
    return o;
  }

  rowBuffer(n, A) {
    if (!this.rows || this.rows.length < n) this.rows = new Uint16Array(n); // absent is K, up to 256
    this.rows.fill(A, 0, n);
    return this.rows;
  }
}

// ---------------------------------------------------------------- 11.5, 11.6 one stripe

// Decodes one stripe's stream into labels (the stripe's rows only). Everything of the hot loop
// is written out in place: the range coder (5.4, 11.4) in int32 locals, the mixer of 11.4
// with its inputs in locals, the slot updates of 11.3. Neighbours come from three rows of labels
// with three absent values on each side, slid along in locals.
export function decodeMixStripe(b, start, len, s, labels, Wd, y0, y1, k, bits, ctx) {
  const rows = y1 - y0;
  const o = ctx.prepare(Wd * rows);
  if (b[start] !== 0) throw new FormatError(`stripe ${s}: stream's first byte is ${b[start]}, not 0`, 'D10');
  const code = (b[start + 1] << 24) | (b[start + 2] << 16) | (b[start + 3] << 8) | b[start + 4];
  if (code === -1) throw new FormatError(`stripe ${s}: initial code is FFFFFFFF`, 'D10');
  const Wp = Wd + 6; // 3 absent values on the left, 3 on the right (the last is read, never used)
  ctx.rowBuffer(3 * Wp, k);
  // The decoder's state between calls of mixRows: code, range (uint32 values in int32), the
  // read position, the row offsets in rb of this row, the row above and the one two above,
  // the match model (active, ptr, len) and the pixel's position in the stripe.
  const st = ctx.st;
  st[0] = code; st[1] = -1; st[2] = start + 5; st[3] = 0; st[4] = Wp; st[5] = 2 * Wp;
  st[6] = 0; st[7] = 0; st[8] = 0; st[9] = 0;
  // A few thousand pixels a call: V8 then optimizes mixRows as a function, not only its running
  // loop ("on-stack replacement"), whose variables it cannot type as integers.
  const chunk = Math.max(1, Math.ceil(4096 / Wd));
  for (let y = 0; y < rows; y += chunk) {
    mixRows(b, start + len, s, labels, Wd, y, Math.min(rows, y + chunk), rows, y0, k, bits, ctx, o);
  }
}

// Rows ya up to yb of a stripe (of `rows` rows, from image row y0).
function mixRows(b, end, s, labels, Wd, ya, yb, rows, y0, k, bits, ctx, o) {
  // Parameters are of unknown type to the optimizer: the loop works on int32 copies.
  end >>>= 0; Wd |= 0; ya |= 0; yb |= 0; rows |= 0; k |= 0; bits |= 0;
  const M = ctx.M, MT = ctx.MT, WT = ctx.weights, D = ctx.D, rb = ctx.rows, L = ctx.L, st = ctx.st;
  const hb = o.hb | 0;
  const sh = 32 - hb;
  const sh8 = 35 - hb;
  const oT1 = o.T1 | 0, oTM = o.TM | 0, oT2 = o.T2 | 0, oT3 = o.T3 | 0, oT4 = o.T4 | 0, oT5 = o.T5 | 0;
  const oTW = o.TW | 0, oTN = o.TN | 0, oTE = o.TE | 0;
  const A = k;
  const K1 = (k + 1) | 0;
  const top = 1 << bits;
  const escW = FLAG_SETS * 8;
  let code = st[0], range = st[1], bp = st[2] >>> 0, cur = st[3], up = st[4], up2 = st[5];
  let active = st[6] !== 0, ptr = st[7] >>> 0, mlen = st[8], pos = st[9] >>> 0;
  for (let y = ya; y < yb; y++) {
    const c0 = (cur + 3) | 0, c1 = (up + 3) | 0, c2 = (up2 + 3) | 0; // x = 0 of each row
    let www = A, ww = A, w = A;
    let nww = rb[(c1 - 2) | 0], nw = rb[(c1 - 1) | 0], n = rb[c1], ne = rb[(c1 + 1) | 0], nee = rb[(c1 + 2) | 0];
    let nnww = rb[(c2 - 2) | 0], nnw = rb[(c2 - 1) | 0], nn = rb[c2], nne = rb[(c2 + 1) | 0], nnee = rb[(c2 + 2) | 0];
    for (let x = 0; x < Wd; x = (x + 1) | 0, pos = (pos + 1) >>> 0) {
      // 1. pattern and candidates (as ctx1): ((a ^ b) - 1) >>> 31 is 1 when a = b
      const eWN = ((w ^ n) - 1) >>> 31, eWNW = ((w ^ nw) - 1) >>> 31, eWNE = ((w ^ ne) - 1) >>> 31;
      const eNNW = ((n ^ nw) - 1) >>> 31, eNNE = ((n ^ ne) - 1) >>> 31, eNWNE = ((nw ^ ne) - 1) >>> 31;
      const Pt = eWN | (eWNW << 1) | (eWNE << 2) | (eNNW << 3) | (eNNE << 4) | (eNWNE << 5) |
        ((((ww ^ w) - 1) >>> 31) << 6) | ((((nn ^ n) - 1) >>> 31) << 7);
      let m = 0;
      L[0] = w; m = (((w ^ A) - 1) >>> 31) ^ 1;
      L[m] = n; m = (m + ((eWN | (((n ^ A) - 1) >>> 31)) ^ 1)) | 0;
      L[m] = ne; m = (m + ((eWNE | eNNE | (((ne ^ A) - 1) >>> 31)) ^ 1)) | 0;
      L[m] = nw; m = (m + ((eWNW | eNNW | eNWNE | (((nw ^ A) - 1) >>> 31)) ^ 1)) | 0;
      // 2. activity
      const wK = Math.imul(w, K1), nK = Math.imul(n, K1);
      const dsum = (D[(wK + n) | 0] + D[(nK + nw) | 0] + D[(nK + ne) | 0] + D[(wK + nw) | 0] + D[(wK + ww) | 0] + D[(nK + nn) | 0]) | 0;
      let act = 32 - Math.clz32(dsum >> 4);
      if (act > 15) act = 15;
      // 3. match model
      let t;
      t = Math.imul(9 ^ w, -1640531535); let hm = t ^ (t >>> 15);
      t = Math.imul(hm ^ n, -1640531535); hm = t ^ (t >>> 15);
      t = Math.imul(hm ^ nw, -1640531535); hm = t ^ (t >>> 15);
      t = Math.imul(hm ^ ne, -1640531535); hm = t ^ (t >>> 15);
      t = Math.imul(hm ^ ww, -1640531535); hm = t ^ (t >>> 15);
      t = Math.imul(hm ^ nn, -1640531535); hm = t ^ (t >>> 15);
      t = Math.imul(hm ^ nne, -1640531535); hm = t ^ (t >>> 15);
      t = Math.imul(hm ^ nww, -1640531535); hm = t ^ (t >>> 15);
      t = Math.imul(hm ^ nee, -1640531535); hm = t ^ (t >>> 15);
      const mi = hm >>> sh;
      if (!active && MT[mi] !== 0) { active = true; ptr = (MT[mi] - 1) >>> 0; mlen = 0; }
      let E = -1, lb = 0;
      if (active) {
        E = labels[ptr];
        lb = 2 + (31 - Math.clz32(mlen)); // 1 + bit_length(len), clz32(0) = 32
        if (lb > 15) lb = 15;
        if (E !== L[0] && E !== L[1] && E !== L[2] && E !== L[3]) { L[m] = E; m = (m + 1) | 0; }
        else {
          // E is in L only if it is one of the first m entries (the rest are stale)
          let found = false;
          for (let i = 0; i < m; i = (i + 1) | 0) if (L[i] === E) { found = true; break; }
          if (!found) { L[m] = E; m = (m + 1) | 0; }
        }
      }
      const avail = (k - m) | 0;
      // 4. hashes
      t = Math.imul(2 ^ w, -1640531535); let h2 = t ^ (t >>> 15);
      t = Math.imul(h2 ^ n, -1640531535); h2 = t ^ (t >>> 15);
      t = Math.imul(3 ^ w, -1640531535); let h3 = t ^ (t >>> 15);
      t = Math.imul(h3 ^ n, -1640531535); h3 = t ^ (t >>> 15);
      t = Math.imul(h3 ^ ne, -1640531535); h3 = t ^ (t >>> 15);
      t = Math.imul(h3 ^ nw, -1640531535); h3 = t ^ (t >>> 15);
      t = Math.imul((h3 ^ 4) ^ ww, -1640531535); let h4 = t ^ (t >>> 15);
      t = Math.imul(h4 ^ nn, -1640531535); h4 = t ^ (t >>> 15);
      t = Math.imul(h4 ^ nne, -1640531535); h4 = t ^ (t >>> 15);
      t = Math.imul((h4 ^ 5) ^ nww, -1640531535); let h5 = t ^ (t >>> 15);
      t = Math.imul(h5 ^ nee, -1640531535); h5 = t ^ (t >>> 15);
      t = Math.imul(h5 ^ www, -1640531535); h5 = t ^ (t >>> 15);
      t = Math.imul(h5 ^ nnw, -1640531535); h5 = t ^ (t >>> 15);
      t = Math.imul(h5 ^ nnww, -1640531535); h5 = t ^ (t >>> 15);
      t = Math.imul(h5 ^ nnee, -1640531535); h5 = t ^ (t >>> 15);
      const b2 = (oT2 + ((h2 >>> sh8) << 3)) | 0, b3 = (oT3 + ((h3 >>> sh8) << 3)) | 0;
      const b4 = (oT4 + ((h4 >>> sh8) << 3)) | 0, b5 = (oT5 + ((h5 >>> sh8) << 3)) | 0;
      // 5. flags
      let X = -1;
      const mm1 = (m < 4 ? m : 4) - 1;
      const actS = act >> 2;
      for (let i = 0; i < m; i = (i + 1) | 0) {
        const c = L[i];
        const agree = c === E ? 1 : 0; // E = -1 when there is none
        const ms = lb === 0 ? 0 : 2 - agree;
        if (avail === 0 && i === m - 1) { X = c; break; }
        const j0 = (oT1 + (((ms << 8) + Pt) << 3) + i) | 0, j1 = (b2 + i) | 0, j2 = (b3 + i) | 0, j3 = (b4 + i) | 0;
        const j4 = (oTM + (((lb << 1) + agree) << 3) + i) | 0, j5 = (b5 + i) | 0;
        const v0 = M[j0], v1 = M[j1], v2 = M[j2], v3 = M[j3], v4 = M[j4], v5 = M[j5];
        const st0 = STR[v0 >>> 12], st1 = STR[v1 >>> 12], st2 = STR[v2 >>> 12];
        const st3 = STR[v3 >>> 12], st4 = STR[v4 >>> 12], st5 = STR[v5 >>> 12];
        const wo = (((ms * 5 + i) * 4 + mm1) * 4 + actS) << 3;
        const w0 = WT[wo], w1 = WT[wo + 1], w2 = WT[wo + 2], w3 = WT[wo + 3];
        const w4 = WT[wo + 4], w5 = WT[wo + 5], w6 = WT[wo + 6];
        // dot >> 16 without 37-bit products: with w = 256 * (w >> 8) + (w & 255), the dot product is
        // 256 * hi + lo, and (256 * hi + lo) >> 16 = (hi + (lo >> 8)) >> 8, all in int32
        const hi = Math.imul(st0, w0 >> 8) + Math.imul(st1, w1 >> 8) + Math.imul(st2, w2 >> 8) + Math.imul(st3, w3 >> 8) + Math.imul(st4, w4 >> 8) +
          Math.imul(st5, w5 >> 8) + ((w6 >> 8) << 8);
        const lo = Math.imul(st0, w0 & 255) + Math.imul(st1, w1 & 255) + Math.imul(st2, w2 & 255) + Math.imul(st3, w3 & 255) + Math.imul(st4, w4 & 255) +
          Math.imul(st5, w5 & 255) + ((w6 & 255) << 8);
        let d = (hi + (lo >> 8)) >> 8;
        if (d > 2047) d = 2047; else if (d < -2047) d = -2047;
        const p1 = SQT[(d + 2047) | 0];
        const bound = Math.imul(range >>> 15, (4096 - p1) << 3);
        let err;
        if ((code >>> 0) < (bound >>> 0)) {
          range = bound;
          err = -p1;
          let p = v0 >>> 8, q = v0 & 255;
          M[j0] = ((p - (Math.imul(p, RATE[q]) >>> 16)) << 8) | (q + ((q - 60) >>> 31));
          p = v1 >>> 8; q = v1 & 255;
          M[j1] = ((p - (Math.imul(p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
          p = v2 >>> 8; q = v2 & 255;
          M[j2] = ((p - (Math.imul(p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
          p = v3 >>> 8; q = v3 & 255;
          M[j3] = ((p - (Math.imul(p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
          p = v4 >>> 8; q = v4 & 255;
          M[j4] = ((p - (Math.imul(p, RATE[q]) >>> 16)) << 8) | (q + ((q - 60) >>> 31));
          p = v5 >>> 8; q = v5 & 255;
          M[j5] = ((p - (Math.imul(p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
        } else {
          code = (code - bound) | 0;
          range = (range - bound) | 0;
          err = 4096 - p1;
          X = c;
          let p = v0 >>> 8, q = v0 & 255;
          M[j0] = ((p + (Math.imul(65536 - p, RATE[q]) >>> 16)) << 8) | (q + ((q - 60) >>> 31));
          p = v1 >>> 8; q = v1 & 255;
          M[j1] = ((p + (Math.imul(65536 - p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
          p = v2 >>> 8; q = v2 & 255;
          M[j2] = ((p + (Math.imul(65536 - p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
          p = v3 >>> 8; q = v3 & 255;
          M[j3] = ((p + (Math.imul(65536 - p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
          p = v4 >>> 8; q = v4 & 255;
          M[j4] = ((p + (Math.imul(65536 - p, RATE[q]) >>> 16)) << 8) | (q + ((q - 60) >>> 31));
          p = v5 >>> 8; q = v5 & 255;
          M[j5] = ((p + (Math.imul(65536 - p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
        }
        while ((range >>> 0) < 0x1000000) {
          if (bp >= end) throw new TruncatedError(`stripe ${s}: stream ends early`, 'D10');
          range <<= 8;
          code = (code << 8) | b[bp];
          bp = (bp + 1) >>> 0;
        }
        let u;
        u = (w0 + (Math.imul(st0, err) >> 11)) | 0; WT[wo] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
        u = (w1 + (Math.imul(st1, err) >> 11)) | 0; WT[wo + 1] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
        u = (w2 + (Math.imul(st2, err) >> 11)) | 0; WT[wo + 2] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
        u = (w3 + (Math.imul(st3, err) >> 11)) | 0; WT[wo + 3] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
        u = (w4 + (Math.imul(st4, err) >> 11)) | 0; WT[wo + 4] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
        u = (w5 + (Math.imul(st5, err) >> 11)) | 0; WT[wo + 5] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
        u = (w6 + ((err << 8) >> 11)) | 0; WT[wo + 6] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
        if (X >= 0) break;
      }
      // 6. escape
      if (X < 0) {
        t = Math.imul(10 ^ w, -1640531535); let g2 = t ^ (t >>> 15);
        t = Math.imul(g2 ^ n, -1640531535); g2 = t ^ (t >>> 15);
        t = Math.imul(11 ^ w, -1640531535); let g4 = t ^ (t >>> 15);
        t = Math.imul(g4 ^ n, -1640531535); g4 = t ^ (t >>> 15);
        t = Math.imul(g4 ^ ne, -1640531535); g4 = t ^ (t >>> 15);
        t = Math.imul(g4 ^ nw, -1640531535); g4 = t ^ (t >>> 15);
        t = Math.imul(12 ^ ne, -1640531535); const g1 = t ^ (t >>> 15);
        const tw = (oTW + Math.imul(w, top)) | 0, tn = (oTN + Math.imul(n, top)) | 0;
        let node = 1;
        for (let dd = 0; dd < bits; dd = (dd + 1) | 0) {
          const j0 = (tw + node) | 0, j1 = (tn + node) | 0;
          t = Math.imul(g2 ^ node, -1640531535); const j2 = (oTE + ((t ^ (t >>> 15)) >>> sh)) | 0;
          t = Math.imul(g4 ^ node, -1640531535); const j3 = (oTE + ((t ^ (t >>> 15)) >>> sh)) | 0;
          t = Math.imul(g1 ^ node, -1640531535); const j4 = (oTE + ((t ^ (t >>> 15)) >>> sh)) | 0;
          const st0 = STR[M[j0] >>> 12], st1 = STR[M[j1] >>> 12], st2 = STR[M[j2] >>> 12];
          const st3 = STR[M[j3] >>> 12], st4 = STR[M[j4] >>> 12];
          const wo = (escW + (dd << 3)) | 0;
          const w0 = WT[wo], w1 = WT[wo + 1], w2 = WT[wo + 2], w3 = WT[wo + 3], w4 = WT[wo + 4], w5 = WT[wo + 5];
          const hi = Math.imul(st0, w0 >> 8) + Math.imul(st1, w1 >> 8) + Math.imul(st2, w2 >> 8) + Math.imul(st3, w3 >> 8) + Math.imul(st4, w4 >> 8) +
            ((w5 >> 8) << 8);
          const lo = Math.imul(st0, w0 & 255) + Math.imul(st1, w1 & 255) + Math.imul(st2, w2 & 255) + Math.imul(st3, w3 & 255) + Math.imul(st4, w4 & 255) +
            ((w5 & 255) << 8);
          let d = (hi + (lo >> 8)) >> 8;
          if (d > 2047) d = 2047; else if (d < -2047) d = -2047;
          const p1 = SQT[(d + 2047) | 0];
          const bound = Math.imul(range >>> 15, (4096 - p1) << 3);
          let err, bit;
          if ((code >>> 0) < (bound >>> 0)) { range = bound; err = -p1; bit = 0; }
          else { code = (code - bound) | 0; range = (range - bound) | 0; err = 4096 - p1; bit = 1; }
          while ((range >>> 0) < 0x1000000) {
            if (bp >= end) throw new TruncatedError(`stripe ${s}: stream ends early`, 'D10');
            range <<= 8;
            code = (code << 8) | b[bp];
            bp = (bp + 1) >>> 0;
          }
          let u;
          u = (w0 + (Math.imul(st0, err) >> 10)) | 0; WT[wo] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
          u = (w1 + (Math.imul(st1, err) >> 10)) | 0; WT[wo + 1] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
          u = (w2 + (Math.imul(st2, err) >> 10)) | 0; WT[wo + 2] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
          u = (w3 + (Math.imul(st3, err) >> 10)) | 0; WT[wo + 3] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
          u = (w4 + (Math.imul(st4, err) >> 10)) | 0; WT[wo + 4] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
          u = (w5 + ((err << 8) >> 10)) | 0; WT[wo + 5] = u > 4194304 ? 4194304 : u < -4194304 ? -4194304 : u;
          // the slots in input order, each read again: two TE slots may be one entry (11.4)
          if (bit) {
            let v = M[j0], p = v >>> 8, q = v & 255;
            M[j0] = ((p + (Math.imul(65536 - p, RATE[q]) >>> 16)) << 8) | (q + ((q - 30) >>> 31));
            v = M[j1]; p = v >>> 8; q = v & 255;
            M[j1] = ((p + (Math.imul(65536 - p, RATE[q]) >>> 16)) << 8) | (q + ((q - 30) >>> 31));
            v = M[j2]; p = v >>> 8; q = v & 255;
            M[j2] = ((p + (Math.imul(65536 - p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
            v = M[j3]; p = v >>> 8; q = v & 255;
            M[j3] = ((p + (Math.imul(65536 - p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
            v = M[j4]; p = v >>> 8; q = v & 255;
            M[j4] = ((p + (Math.imul(65536 - p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
          } else {
            let v = M[j0], p = v >>> 8, q = v & 255;
            M[j0] = ((p - (Math.imul(p, RATE[q]) >>> 16)) << 8) | (q + ((q - 30) >>> 31));
            v = M[j1]; p = v >>> 8; q = v & 255;
            M[j1] = ((p - (Math.imul(p, RATE[q]) >>> 16)) << 8) | (q + ((q - 30) >>> 31));
            v = M[j2]; p = v >>> 8; q = v & 255;
            M[j2] = ((p - (Math.imul(p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
            v = M[j3]; p = v >>> 8; q = v & 255;
            M[j3] = ((p - (Math.imul(p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
            v = M[j4]; p = v >>> 8; q = v & 255;
            M[j4] = ((p - (Math.imul(p, RATE[q]) >>> 16)) << 8) | (q + ((q - 250) >>> 31));
          }
          node = (node << 1) | bit;
        }
        X = (node - top) | 0;
        if (X >= k) throw new FormatError(`stripe ${s}: escape to ${X} >= k = ${k} at (${x}, ${y0 + y})`, 'D10');
        for (let i = 0; i < m; i = (i + 1) | 0) {
          if (L[i] === X) throw new FormatError(`stripe ${s}: escape to candidate ${X} at (${x}, ${y0 + y})`, 'D10');
        }
      }
      labels[pos] = X;
      rb[(c0 + x) | 0] = X;
      // 7. after the pixel
      if (active) {
        if (X === E) { if (mlen < 65535) mlen = (mlen + 1) | 0; ptr = (ptr + 1) >>> 0; }
        else { active = false; mlen = 0; }
      }
      if (pos < 4294967295) MT[mi] = (pos + 1) >>> 0;
      // slide the neighbourhood one pixel right
      www = ww; ww = w; w = X;
      nww = nw; nw = n; n = ne; ne = nee; nee = rb[(c1 + x + 3) | 0];
      nnww = nnw; nnw = nn; nn = nne; nne = nnee; nnee = rb[(c2 + x + 3) | 0];
    }
    const tt = up2; up2 = up; up = cur; cur = tt;
    // The end checks (5.5) are computed on every row, so that the optimized loop has seen
    // them run before it meets them for real (code after a loop that V8 optimized while it ran
    // has no type feedback, and would throw the optimized code away at every stripe's end).
    const done = y === rows - 1 ? 1 : 0;
    const left = end - bp;
    if ((done & ((left | code) !== 0 ? 1 : 0)) !== 0) {
      if (left !== 0) throw new FormatError(`stripe ${s}: ${left} bytes left over`, 'D10');
      throw new FormatError(`stripe ${s}: final code is not 0`, 'D10');
    }
  }
  st[0] = code; st[1] = range; st[2] = bp; st[3] = cur; st[4] = up; st[5] = up2;
  st[6] = active ? 1 : 0; st[7] = ptr; st[8] = mlen; st[9] = pos;
}
