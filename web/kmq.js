// kmq image format decoder, version 1 (codings 0 "raw", 1 "ctx1" and 2 "mix").
// Written from spec/FORMAT.md alone. Plain ES module, no dependencies.

export class KmqError extends Error {
  constructor(message, rule) {
    super(message);
    this.name = this.constructor.name;
    if (rule) this.rule = rule;
  }
}
export class FormatError extends KmqError {}
export class TruncatedError extends KmqError {}
export class ChecksumError extends KmqError {}
export class PixelLimitError extends KmqError {}

export const MAGIC = Uint8Array.of(0x89, 0x4b, 0x4d, 0x51);
export const HEADER_SIZE = 20;
export const DEFAULT_MAX_PIXELS = 178956970;

// ---------------------------------------------------------------- helpers

function toBytes(bytes) {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new TypeError('kmq: expected a Uint8Array or ArrayBuffer');
}

function u16(b, o) { return (b[o] << 8) | b[o + 1]; }
function u32(b, o) { return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0; }

function bitLength(v) { return v <= 0 ? 0 : 32 - Math.clz32(v); }

// CRC-32 by slicing-by-8: CRC_T[j * 256 + v] is the CRC of byte v followed by j zero bytes.
let CRC_T = null;
export function crc32(bytes, start = 0, end = bytes.length) {
  if (!CRC_T) {
    CRC_T = new Int32Array(8 * 256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let j = 0; j < 8; j++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_T[n] = c;
    }
    for (let n = 0; n < 256; n++) {
      for (let j = 1; j < 8; j++) {
        const c = CRC_T[(j - 1) * 256 + n];
        CRC_T[j * 256 + n] = CRC_T[c & 0xff] ^ (c >>> 8);
      }
    }
  }
  return (crcRun(bytes, start, end, CRC_T) ^ -1) >>> 0;
}

// The loops end the function: V8 may optimize a function while its loop runs, and code after
// that loop would then have no type feedback and throw the optimized code away when reached.
function crcRun(bytes, start, end, T) {
  let c = -1;
  let i = start;
  // the (end - start) mod 8 first bytes one at a time, then eight at a time
  for (const e0 = start + ((end - start) & 7); i < e0; i++) c = T[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  for (; i < end; i += 8) {
    const a = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    c = T[1792 + (a & 0xff)] ^ T[1536 + ((a >>> 8) & 0xff)] ^ T[1280 + ((a >>> 16) & 0xff)] ^ T[1024 + (a >>> 24)] ^
      T[768 + bytes[i + 4]] ^ T[512 + bytes[i + 5]] ^ T[256 + bytes[i + 6]] ^ T[bytes[i + 7]];
  }
  return c;
}

function ceilDiv8(n) { return (n + 7n) / 8n; }

// ---------------------------------------------------------------- header (D1 to D5)

/**
 * Reads and validates the 20-byte header (rules D1 to D5).
 * options.maxPixels: pixel limit (default 178,956,970); null or Infinity removes it.
 */
export function readHeader(input, options = {}) {
  const b = toBytes(input);
  // D1: magic (or a prefix of it for short files)
  const n = Math.min(4, b.length);
  for (let i = 0; i < n; i++) {
    if (b[i] !== MAGIC[i]) throw new FormatError('not a kmq file (bad magic)', 'D1');
  }
  // D2
  if (b.length < HEADER_SIZE) {
    throw new TruncatedError(`file is ${b.length} bytes, shorter than the 20-byte header`, 'D2');
  }
  const version = b[4];
  const coding = b[5];
  const channels = b[6];
  const bits = b[7];
  const k = u16(b, 8);
  const reserved = u16(b, 10);
  const width = u32(b, 12);
  const height = u32(b, 16);
  // D3
  if (version !== 1) throw new FormatError(`unsupported version ${version}`, 'D3');
  // D4
  if (coding > 2) throw new FormatError(`unknown payload coding ${coding}`, 'D4');
  if (channels !== 3 && channels !== 4) throw new FormatError(`channels ${channels} is not 3 or 4`, 'D4');
  if (k < 1 || k > 256) throw new FormatError(`k ${k} is not in 1..256`, 'D4');
  const wantBits = bitLength(k - 1);
  if (bits !== wantBits) throw new FormatError(`bits ${bits} is not ceil(log2 ${k}) = ${wantBits}`, 'D4');
  if (reserved !== 0) throw new FormatError(`reserved field ${reserved} is not 0`, 'D4');
  if (width === 0) throw new FormatError('width is 0', 'D4');
  if (height === 0) throw new FormatError('height is 0', 'D4');
  if (coding !== 0 && k === 1) throw new FormatError(`coding ${coding} with k = 1`, 'D4');
  // D5 (overflow-free with BigInt)
  const pixelsBig = BigInt(width) * BigInt(height);
  let limit = options.maxPixels === undefined ? DEFAULT_MAX_PIXELS : options.maxPixels;
  if (limit !== null && limit !== Infinity) {
    if (pixelsBig > BigInt(Math.floor(limit))) {
      throw new PixelLimitError(`${width} x ${height} = ${pixelsBig} pixels is over the limit of ${limit}`, 'D5');
    }
  }
  return { version, coding, channels, bits, k, reserved, width, height, pixels: pixelsBig };
}

// ---------------------------------------------------------------- layout (D6)

function checkLayout(b, h) {
  const fileLen = BigInt(b.length);
  const palEnd = 20 + h.k * h.channels;
  const rawLen = ceilDiv8(h.pixels * BigInt(h.bits));
  if (h.coding === 0) {
    const want = BigInt(palEnd) + rawLen + 4n;
    if (fileLen < want) throw new TruncatedError(`file is ${fileLen} bytes, header implies ${want}`, 'D6');
    if (fileLen > want) throw new FormatError(`file is ${fileLen} bytes, header implies ${want} (trailing data)`, 'D6');
    return { payloadStart: palEnd, payloadEnd: b.length - 4 };
  }
  // codings 1 and 2: the stripe table
  const payloadLen = b.length - 4 - palEnd; // may be negative
  if (payloadLen < 11) throw new TruncatedError(`payload of ${payloadLen} bytes is shorter than 11`, 'D6');
  if (payloadLen < 2) throw new TruncatedError('payload ends before S', 'D6');
  const S = u16(b, palEnd);
  if (S === 0) throw new FormatError('stripe count S is 0', 'D6');
  if (S > h.height) throw new FormatError(`stripe count ${S} is more than height ${h.height}`, 'D6');
  let maxS = h.pixels / 4096n;
  if (maxS < 1n) maxS = 1n;
  if (BigInt(S) > maxS) throw new FormatError(`stripe count ${S} is more than ${maxS} (4096 pixels per stripe)`, 'D6');
  if (payloadLen < 2 + 4 * S) throw new TruncatedError('payload ends inside the stripe table', 'D6');
  const lengths = new Array(S);
  let sum = 0;
  for (let s = 0; s < S; s++) {
    const L = u32(b, palEnd + 2 + 4 * s);
    if (L < 5) throw new FormatError(`stripe ${s} length ${L} is below 5`, 'D6');
    lengths[s] = L;
    sum += L; // at most 65535 * 2^32 < 2^53: exact
  }
  const want = BigInt(palEnd) + 2n + 4n * BigInt(S) + BigInt(sum) + 4n;
  if (fileLen < want) throw new TruncatedError(`file is ${fileLen} bytes, stripe table implies ${want}`, 'D6');
  if (fileLen > want) throw new FormatError(`file is ${fileLen} bytes, stripe table implies ${want} (trailing data)`, 'D6');
  const bound = rawLen + 2n + 9n * BigInt(S);
  if (BigInt(payloadLen) > bound) throw new FormatError(`payload of ${payloadLen} bytes is over the bound ${bound}`, 'D6');
  return { payloadStart: palEnd, payloadEnd: b.length - 4, S, lengths, streamsStart: palEnd + 2 + 4 * S };
}

// ---------------------------------------------------------------- coding 0

function decodeRaw(b, start, end, labels, n, bits, k) {
  if (bits === 0) { labels.fill(0, 0, n); return; } // K = 1: every label is 0
  let pos = start;
  let acc = 0;   // bit accumulator
  let have = 0;  // bits in acc
  const mask = (1 << bits) - 1;
  for (let i = 0; i < n; i++) {
    if (have < bits) { acc = ((acc << 8) | b[pos++]) & 0xffff; have += 8; }
    have -= bits;
    const v = (acc >>> have) & mask;
    if (v >= k) throw new FormatError(`label ${v} >= k = ${k} at pixel ${i}`, 'D9');
    labels[i] = v;
  }
  if (have > 0 && (acc & ((1 << have) - 1)) !== 0) throw new FormatError('a padding bit is 1', 'D8');
  if (pos !== end) throw new FormatError('internal: raw payload length mismatch', 'D6');
}

// ---------------------------------------------------------------- range decoder (5.4)

export class RangeDecoder {
  constructor(b, start, len, stripe) {
    this.b = b;
    this.pos = start + 5;
    this.end = start + len;
    this.stripe = stripe;
    if (b[start] !== 0) throw new FormatError(`stripe ${stripe}: stream's first byte is ${b[start]}, not 0`, 'D10');
    this.code = u32(b, start + 1);
    if (this.code === 0xffffffff) throw new FormatError(`stripe ${stripe}: initial code is FFFFFFFF`, 'D10');
    this.range = 0xffffffff;
  }
  // p: 15-bit probability of a 0
  bit(p) {
    const bound = (this.range >>> 15) * p;
    let bit;
    if (this.code < bound) { bit = 0; this.range = bound; }
    else { bit = 1; this.code -= bound; this.range -= bound; }
    while (this.range < 0x1000000) {
      this.range = (this.range << 8) >>> 0;
      if (this.pos >= this.end) throw new TruncatedError(`stripe ${this.stripe}: stream ends early`, 'D10');
      this.code = ((this.code << 8) | this.b[this.pos++]) >>> 0;
    }
    return bit;
  }
  finish() {
    if (this.pos !== this.end) throw new FormatError(`stripe ${this.stripe}: ${this.end - this.pos} bytes left over`, 'D10');
    if (this.code !== 0) throw new FormatError(`stripe ${this.stripe}: final code is not 0`, 'D10');
  }
}

// ---------------------------------------------------------------- coding 1 (ctx1)

// A slot (5.3) is one Int32: p << 5 | c.
const SLOT0 = 16384 << 5;
// The slot's rate is min(6, bit_length(c + 1)) = 32 - clz32(c + 1) since c <= 31, and its next
// c is min(c + 1, 31) = c + ((c - 31) >>> 31).

// CAND[P]: which of N, NE, NW (bits 0, 1, 2) are candidates after W, by the pattern's equalities
const CAND = new Int32Array(256);
for (let P = 0; P < 256; P++) {
  CAND[P] = (P & 1 ? 0 : 1) | (P & (4 | 16) ? 0 : 2) | (P & (2 | 8 | 32) ? 0 : 4);
}

class Ctx1Model {
  constructor(k, bits) {
    this.nFlag = k <= 16 ? (k + 1) * (k + 1) * 1024 : 1024;
    this.nTree = (k + 1) << bits;
    // flag slots, then tree slots, in one table
    this.slots = new Int32Array(this.nFlag + this.nTree);
    // Slots are reset lazily, a group at a time, when a stripe first uses the group: the 4 flag
    // slots of one (V, P), the 2^bits tree slots under one W. flagGen and treeGen hold the number
    // of the stripe that last reset each group, so a stripe reset costs nothing up front and no
    // more than that stripe's coding (FORMAT.md 7.1), however small the stripes.
    this.flagGen = new Int32Array(this.nFlag >> 2);
    this.treeGen = new Int32Array(k + 1);
    this.gen = 0;
    this.rows = null; // three rows of labels with two absent values on each side
    this.st = new Int32Array(8);
    this.L = new Int32Array(4);
  }
  rowBuffer(n, A) {
    if (!this.rows || this.rows.length < n) this.rows = new Uint16Array(n); // absent is K, up to 256
    this.rows.fill(A, 0, n);
    return this.rows;
  }
}

function decodeCtx1Stripe(b, start, len, s, labels, W, y0, y1, k, bits, model) {
  if (b[start] !== 0) throw new FormatError(`stripe ${s}: stream's first byte is ${b[start]}, not 0`, 'D10');
  const code = (b[start + 1] << 24) | (b[start + 2] << 16) | (b[start + 3] << 8) | b[start + 4];
  if (code === -1) throw new FormatError(`stripe ${s}: initial code is FFFFFFFF`, 'D10');
  const rows = y1 - y0;
  const G = ++model.gen;
  // A stripe at least as large as the tables resets them all now; a smaller one resets each
  // group as it first meets it (see Ctx1Model), so that the reset never costs more than the coding.
  const lazy = model.nFlag + model.nTree > W * rows;
  if (!lazy) { model.slots.fill(SLOT0); model.flagGen.fill(G); model.treeGen.fill(G); }
  const Wp = W + 4;
  model.rowBuffer(3 * Wp, k);
  // The decoder's state between calls of ctx1Rows: code, range, and the row offsets in rb of
  // this row, the row above and the one two above; the read position.
  const st = model.st;
  st[0] = code; st[1] = -1; st[2] = 0; st[3] = Wp; st[4] = 2 * Wp;
  st[5] = start + 5; // the read position, a uint32 (files are below 2^32 bytes)
  // A few thousand pixels a call: V8 then optimizes ctx1Rows as a function, not only its
  // running loop ("on-stack replacement"), whose variables it could not type as well.
  const chunk = Math.max(1, Math.ceil(4096 / W));
  for (let y = 0; y < rows; y += chunk) ctx1Rows(b, start + len, s, labels, W, y, Math.min(rows, y + chunk), rows, y0, k, bits, model, G, lazy);
}

// Rows ya up to yb of a stripe (of `rows` rows, from image row y0).
function ctx1Rows(b, end, s, labels, W, ya, yb, rows, y0, k, bits, model, G, lazy) {
  // Parameters are of unknown type to the optimizer: the loop's variables are derived from
  // int32 copies, so that none of them needs a type check or untagging.
  W |= 0; ya |= 0; yb |= 0; rows |= 0; k |= 0; bits |= 0; G |= 0; end >>>= 0;
  const lz = lazy ? 1 : 0;
  const st = model.st;
  let code = st[0], range = st[1], cur = st[2], up = st[3], up2 = st[4];
  let bp = st[5] >>> 0;
  // range and code are unsigned 32-bit values kept in int32 variables (read with >>> 0), so
  // that the arithmetic stays in integer registers: the product (range >> 15) * p is below 2^32,
  // so Math.imul gives its exact bits. Each "decode one bit" below is the decoder of 5.4 with the
  // slot update of 5.3, written out in place: a slot is p << 5 | c, its rate is
  // min(6, bit_length(c + 1)) = 32 - clz32(c + 1) as c <= 31, its next c is c + ((c - 31) >>> 31).
  const F = model.slots, FG = model.flagGen, TG = model.treeGen, rb = model.rows, L = model.L;
  const tree0 = model.nFlag; // the tree slots of W start at tree0 + W * 2^bits
  const A = k; // absent
  const K1 = k + 1;
  const vmask = k <= 16 ? -1 : 0; // V = W * (K + 1) + N, or 0
  const top = 1 << bits;
  let out = ya * W;
  for (let y = ya; y < yb; y++) {
    const c0 = (cur + 2) | 0, c1 = (up + 2) | 0, c2 = (up2 + 2) | 0;
    let ww = A, w = A, nw = A, n = rb[c1], ne = rb[(c1 + 1) | 0];
    for (let x = 0; x < W; x++) {
      let nn = rb[(c2 + x) | 0];
      let X = -1;
      let i = 0;
      // ((a ^ b) - 1) >>> 31 is 1 when a = b, else 0 (labels and K are below 512): no branches
      let P = (((w ^ n) - 1) >>> 31) | ((((w ^ nw) - 1) >>> 31) << 1) | ((((w ^ ne) - 1) >>> 31) << 2) |
        ((((n ^ nw) - 1) >>> 31) << 3) | ((((n ^ ne) - 1) >>> 31) << 4) | ((((nw ^ ne) - 1) >>> 31) << 5) |
        ((((ww ^ w) - 1) >>> 31) << 6) | ((((nn ^ n) - 1) >>> 31) << 7);
      if (P === 255 && w !== A) {
        // Flat: all six neighbours are one label v, so P = 255, L = [v], and the flag slot stays
        // the same for as long as the next NE and NN are v too and the flags say "v".
        const v = w;
        const g = (((Math.imul(v, K1) + v) & vmask) << 8) | 255;
        const base = g << 2;
        if (lz !== 0 && FG[g] !== G) { FG[g] = G; F[base] = SLOT0; F[base + 1] = SLOT0; F[base + 2] = SLOT0; F[base + 3] = SLOT0; }
        const sv = F[base];
        let p = sv >>> 5, c = sv & 31;
        // i0: this pixel's place in rb; the run's NE and NN are d1 and d2 from it
        let i0 = (c0 + x) | 0;
        const e0 = (c0 + W) | 0, d1 = (c1 - c0 + 1) | 0, d2 = (c2 - c0) | 0;
        for (;;) {
          // decode one bit with (p, c)
          const r = 32 - Math.clz32(c + 1);
          c = (c + ((c - 31) >>> 31)) | 0;
          const bound = Math.imul(range >>> 15, p);
          let bit = 0;
          if ((code >>> 0) < (bound >>> 0)) { range = bound; p = (p + ((32768 - p) >> r)) | 0; }
          else { code = (code - bound) | 0; range = (range - bound) | 0; p = (p - (p >> r)) | 0; bit = 1; }
          while ((range >>> 0) < 0x1000000) {
            if (bp >= end) throw new TruncatedError(`stripe ${s}: stream ends early`, 'D10');
            range <<= 8;
            code = (code << 8) | b[bp];
            bp = (bp + 1) >>> 0;
          }
          if (bit === 0) { i = 1; break; } // not v, the only candidate: the escape follows
          rb[i0] = v;
          i0 = (i0 + 1) | 0;
          if (i0 === e0) break;
          ne = rb[(i0 + d1) | 0];
          nn = rb[(i0 + d2) | 0];
          if (ne !== v || nn !== v) break;
        }
        x = (i0 - c0) | 0;
        F[base] = (p << 5) | c;
        if (x === W) break;
        // here ww = w = nw = n = v (for pixel x), ne and nn are loaded: only the bits of NE and NN change
        P = 0b01001011 | ((((n ^ ne) - 1) >>> 31) * 0b00110100) | ((((nn ^ n) - 1) >>> 31) << 7);
      }
      const g = (((Math.imul(w, K1) + n) & vmask) << 8) | P;
      const base = g << 2;
      if (lz !== 0 && FG[g] !== G) { FG[g] = G; F[base] = SLOT0; F[base + 1] = SLOT0; F[base + 2] = SLOT0; F[base + 3] = SLOT0; }
      if (w !== A && i === 0) {
        // the first candidate, W, is the label most of the time
        const sv = F[base];
        const p = sv >>> 5, c = sv & 31, r = 32 - Math.clz32(c + 1), c1 = c + ((c - 31) >>> 31);
        const bound = Math.imul(range >>> 15, p);
        if ((code >>> 0) < (bound >>> 0)) { range = bound; F[base] = ((p + ((32768 - p) >> r)) << 5) | c1; }
        else { code = (code - bound) | 0; range = (range - bound) | 0; F[base] = ((p - (p >> r)) << 5) | c1; X = w; }
        while ((range >>> 0) < 0x1000000) {
          if (bp >= end) throw new TruncatedError(`stripe ${s}: stream ends early`, 'D10');
          range <<= 8;
          code = (code << 8) | b[bp];
          bp = (bp + 1) >>> 0;
        }
        i = 1;
      }
      if (X < 0) {
        // the other candidates, from P's equalities (no data-dependent branches): N unless N = W,
        // NE unless it equals W or N, NW unless it equals W, N or NE; absent ones never
        const cm = CAND[P] & ~((((n ^ A) - 1) >>> 31) | ((((ne ^ A) - 1) >>> 31) << 1) | ((((nw ^ A) - 1) >>> 31) << 2));
        L[0] = n;
        let m = cm & 1;
        L[m] = ne;
        m = (m + ((cm >> 1) & 1)) | 0;
        L[m] = nw;
        m = (m + (cm >> 2)) | 0;
        for (let q = 0; q < m; q = (q + 1) | 0, i = (i + 1) | 0) {
          const j = (base + i) | 0;
          const sv = F[j];
          const p = sv >>> 5, c = sv & 31, r = 32 - Math.clz32(c + 1), c1 = c + ((c - 31) >>> 31);
          const bound = Math.imul(range >>> 15, p);
          let bit = 0;
          if ((code >>> 0) < (bound >>> 0)) { range = bound; F[j] = ((p + ((32768 - p) >> r)) << 5) | c1; }
          else { code = (code - bound) | 0; range = (range - bound) | 0; F[j] = ((p - (p >> r)) << 5) | c1; bit = 1; }
          while ((range >>> 0) < 0x1000000) {
            if (bp >= end) throw new TruncatedError(`stripe ${s}: stream ends early`, 'D10');
            range <<= 8;
            code = (code << 8) | b[bp];
            bp = (bp + 1) >>> 0;
          }
          if (bit) { X = L[q]; break; }
        }
        if (X < 0) {
          const tb = (tree0 + Math.imul(w, top)) | 0;
          if (lz !== 0 && TG[w] !== G) { TG[w] = G; F.fill(SLOT0, tb, tb + top); }
          let node = 1;
          for (let d = 0; d < bits; d++) {
            const j = (tb + node) | 0;
            const sv = F[j];
            const p = sv >>> 5, c = sv & 31, r = 32 - Math.clz32(c + 1), c1 = c + ((c - 31) >>> 31);
            const bound = Math.imul(range >>> 15, p);
            if ((code >>> 0) < (bound >>> 0)) { range = bound; F[j] = ((p + ((32768 - p) >> r)) << 5) | c1; node = node << 1; }
            else { code = (code - bound) | 0; range = (range - bound) | 0; F[j] = ((p - (p >> r)) << 5) | c1; node = (node << 1) | 1; }
            while ((range >>> 0) < 0x1000000) {
              if (bp >= end) throw new TruncatedError(`stripe ${s}: stream ends early`, 'D10');
              range <<= 8;
              code = (code << 8) | b[bp];
              bp = (bp + 1) >>> 0;
            }
          }
          X = (node - top) | 0;
          if (X >= k) throw new FormatError(`stripe ${s}: escape to ${X} >= k = ${k} at (${x}, ${y0 + y})`, 'D10');
          // absent neighbours are K, never equal to X < K
          if (X === w || X === n || X === ne || X === nw) {
            throw new FormatError(`stripe ${s}: escape to candidate ${X} at (${x}, ${y0 + y})`, 'D10');
          }
        }
      }
      rb[(c0 + x) | 0] = X;
      ww = w; w = X; nw = n; n = ne; ne = rb[(c1 + x + 2) | 0];
    }
    labels.set(rb.subarray(c0, c0 + W), out);
    out += W;
    const t = up2; up2 = up; up = cur; cur = t;
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
  st[0] = code; st[1] = range; st[2] = cur; st[3] = up; st[4] = up2; st[5] = bp;
}

// ---------------------------------------------------------------- coding 2 (mix)
import { decodeMixStripe, MixContext } from './mix.js';

// ---------------------------------------------------------------- stripe API

/**
 * Validates a file by rules D1 to D7 (header, layout and stripe table, CRC-32) without decoding
 * its payload, and returns what decoding it needs:
 * {header, width, height, channels, k, bits, coding, palette, stripes: [{index, start, length, y0, y1}]}
 * (start, length: byte offsets of each stripe's stream in the file; rows y0 up to but not including
 * y1). Coding 0 has one pseudo-stripe: the whole raw payload, rows 0..height. The plan is plain
 * data (structured-clonable), so it can be posted to workers along with the file's bytes.
 */
export function plan(input, options = {}) {
  const b = toBytes(input);
  const h = readHeader(b, options);
  const lay = checkLayout(b, h); // D6
  // D7
  const stored = u32(b, b.length - 4);
  const crc = crc32(b, 0, b.length - 4);
  if (crc !== stored) {
    throw new ChecksumError(`CRC-32 ${crc.toString(16).padStart(8, '0')} does not match stored ${stored.toString(16).padStart(8, '0')}`, 'D7');
  }
  const { width: W, height: H, k, bits, channels: C, coding } = h;
  const palette = b.slice(20, 20 + k * C);
  const stripes = [];
  if (coding === 0) {
    stripes.push({ index: 0, start: lay.payloadStart, length: lay.payloadEnd - lay.payloadStart, y0: 0, y1: H });
  } else {
    let off = lay.streamsStart;
    for (let s = 0; s < lay.S; s++) {
      // s * H < 2^16 * 2^32: exact in a double
      const y0 = Math.floor((s * H) / lay.S);
      const y1 = Math.floor(((s + 1) * H) / lay.S);
      stripes.push({ index: s, start: off, length: lay.lengths[s], y0, y1 });
      off += lay.lengths[s];
    }
  }
  return { header: h, width: W, height: H, channels: C, k, bits, coding, palette, stripes };
}

// Models are big (coding 2: up to 24 MB); one per plan is reused across its stripes.
const MODELS = new WeakMap();

function modelFor(p) {
  let m = MODELS.get(p);
  if (!m) {
    m = p.coding === 1 ? new Ctx1Model(p.k, p.bits) : new MixContext(p.k, p.bits, p.palette, p.channels);
    MODELS.set(p, m);
  }
  return m;
}

/**
 * Decodes stripe s (an index into p.stripes, or one of its entries) of the file planned as p into
 * labels, a Uint8Array of width * (y1 - y0) labels: the stripe's rows only. Checks D8 to D10 for
 * that stripe and throws as decode does. Stripes are independent (FORMAT.md 5.1), so they may be
 * decoded in any order, or in parallel workers. Returns labels.
 */
export function decodeStripe(input, p, s, labels) {
  const b = toBytes(input);
  const st = typeof s === 'number' ? p.stripes[s] : s;
  if (!st) throw new RangeError(`kmq: no stripe ${s}`);
  const W = p.width;
  const n = W * (st.y1 - st.y0);
  if (!(labels instanceof Uint8Array) || labels.length !== n) {
    throw new TypeError(`kmq: stripe ${st.index} needs a Uint8Array of ${n} labels`);
  }
  if (st.start < 0 || st.start + st.length > b.length - 4) throw new RangeError('kmq: stripe outside the file (wrong bytes for this plan?)');
  const { k, bits } = p;
  if (p.coding === 0) {
    decodeRaw(b, st.start, st.start + st.length, labels, n, bits, k);
  } else if (p.coding === 1) {
    decodeCtx1Stripe(b, st.start, st.length, st.index, labels, W, st.y0, st.y1, k, bits, modelFor(p));
  } else {
    decodeMixStripe(b, st.start, st.length, st.index, labels, W, st.y0, st.y1, k, bits, modelFor(p));
  }
  return labels;
}

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * Colours labels with a palette of `channels` (3 or 4) bytes per entry: a Uint8ClampedArray of
 * labels.length * 4 bytes, R G B A per pixel (alpha 255 when channels = 3), ready for ImageData.
 * out, if given, must hold labels.length * 4 bytes.
 */
export function toRGBA(labels, palette, channels, out = undefined) {
  const n = labels.length;
  if (out === undefined) out = new Uint8ClampedArray(n * 4);
  else if (out.length < n * 4) throw new RangeError(`kmq: toRGBA needs ${n * 4} output bytes`);
  const C = channels;
  const k = Math.min(256, Math.floor(palette.length / C));
  // 256 entries, so that any byte indexes it (labels >= k come out as 0 0 0 0)
  const lut = new Uint8Array(256 * 4);
  for (let i = 0; i < k; i++) {
    lut[i * 4] = palette[i * C];
    lut[i * 4 + 1] = palette[i * C + 1];
    lut[i * 4 + 2] = palette[i * C + 2];
    lut[i * 4 + 3] = C === 4 ? palette[i * C + 3] : 255;
  }
  // A Uint32 view keeps the bytes' order on either endianness: lut32[i] stores lut's 4 bytes as they are.
  if ((out.byteOffset & 3) === 0) {
    const out32 = new Uint32Array(out.buffer, out.byteOffset, n);
    const lut32 = new Int32Array(lut.buffer);
    if (LITTLE_ENDIAN && labels instanceof Uint8Array && (labels.byteOffset & 3) === 0) rgbaLE(labels, lut32, out32, n);
    else for (let i = 0; i < n; i++) out32[i] = lut32[labels[i]];
  } else {
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      const e = labels[i] << 2;
      out[j] = lut[e]; out[j + 1] = lut[e + 1]; out[j + 2] = lut[e + 2]; out[j + 3] = lut[e + 3];
    }
  }
  return out;
}

// Four labels a load: on a little-endian machine label 4q + j is byte j of word q.
function rgbaLE(labels, lut32, out32, n) {
  const n4 = n >> 2;
  for (let i = n4 << 2; i < n; i++) out32[i] = lut32[labels[i]]; // the last n mod 4 first
  const l32 = new Int32Array(labels.buffer, labels.byteOffset, n4);
  for (let q = 0, o = 0; q < n4; q++, o += 4) {
    const v = l32[q];
    out32[o] = lut32[v & 255];
    out32[o + 1] = lut32[(v >>> 8) & 255];
    out32[o + 2] = lut32[(v >>> 16) & 255];
    out32[o + 3] = lut32[v >>> 24];
  }
}

// ---------------------------------------------------------------- decode

/**
 * Decodes a kmq file: plan, then every stripe in order (the first bad one throws), then toRGBA.
 * Returns {width, height, channels, k, coding, palette, labels, rgba}; rgba is always 4 bytes per
 * pixel (alpha 255 when channels = 3), ready for ImageData.
 */
export function decode(input, options = {}) {
  const b = toBytes(input);
  const p = plan(b, options);
  const W = p.width;
  const labels = new Uint8Array(Number(p.header.pixels));
  for (const st of p.stripes) decodeStripe(b, p, st, labels.subarray(st.y0 * W, st.y1 * W));
  MODELS.delete(p);
  const rgba = toRGBA(labels, p.palette, p.channels);
  return { width: W, height: p.height, channels: p.channels, k: p.k, coding: p.coding, palette: p.palette, labels, rgba };
}
