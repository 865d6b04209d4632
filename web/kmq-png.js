// Writes a decoded kmq image as an indexed (palette) PNG. A kmq image is a palette and labels,
// which is exactly PNG colour type 3 (PLTE, plus tRNS for alpha), so the PNG is lossless, alpha
// included, and small. canvas.toBlob() would go through the canvas's premultiplied pixels, which
// changes the colour of semi-transparent pixels, and would write 32-bit RGBA.
import { crc32 } from './kmq.js';

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

/** PNG bit depth for k palette entries: 1, 2, 4 or 8. */
function depthFor(k) {
  return k <= 2 ? 1 : k <= 4 ? 2 : k <= 16 ? 4 : 8;
}

// Rows of packed labels, each after its filter byte (0: none, the right filter for palette images).
function scanlines(labels, width, height, depth) {
  const stride = 1 + Math.ceil((width * depth) / 8);
  const out = new Uint8Array(stride * height);
  const perByte = 8 / depth;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let o = y * stride + 1;
    if (depth === 8) {
      out.set(labels.subarray(row, row + width), o);
      continue;
    }
    for (let x = 0; x < width; x += perByte) {
      let v = 0;
      for (let j = 0; j < perByte; j++) {
        v = (v << depth) | (x + j < width ? labels[row + x + j] : 0);
      }
      out[o++] = v;
    }
  }
  return out;
}

async function zlib(bytes) {
  // CompressionStream's "deflate" is the zlib format (RFC 1950), what IDAT holds.
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Encodes a palette image as a PNG file.
 *
 * @param {{width: number, height: number, k: number, channels: number, palette: Uint8Array,
 *   labels: Uint8Array}} image a decoded kmq image (palette: k * channels bytes, channels 3 or 4;
 *   labels: width * height labels, each below k)
 * @returns {Promise<Blob>} an image/png Blob, colour type 3, bit depth 1, 2, 4 or 8
 */
export async function encodePNG({ width, height, k, channels, palette, labels }) {
  const depth = depthFor(k);
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([depth, 3, 0, 0, 0], 8); // depth, colour type 3, deflate, filter method 0, no interlace
  const plte = new Uint8Array(k * 3);
  const alpha = new Uint8Array(k);
  for (let i = 0; i < k; i++) {
    plte.set(palette.subarray(i * channels, i * channels + 3), i * 3);
    alpha[i] = channels === 4 ? palette[i * channels + 3] : 255;
  }
  // tRNS may stop before the last entry that is not opaque; the rest are opaque.
  let last = k;
  while (last > 0 && alpha[last - 1] === 255) last--;
  const parts = [SIGNATURE, chunk('IHDR', ihdr), chunk('PLTE', plte)];
  if (last > 0) parts.push(chunk('tRNS', alpha.subarray(0, last)));
  parts.push(chunk('IDAT', await zlib(scanlines(labels, width, height, depth))), chunk('IEND', new Uint8Array(0)));
  return new Blob(parts, { type: 'image/png' });
}
