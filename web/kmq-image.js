// <kmq-image src="photo.kmq" alt="...">: a kmq file shown like an <img>.
//
//   <script type="module" src="kmq-image.js"> (then, anywhere in the page)
//   <kmq-image src="photo.kmq" alt="A photo" width="400"></kmq-image>
//
// Sizing follows <img>: the intrinsic size is the image's size; a width or height attribute (in
// CSS pixels) or CSS width/height sets the size, and when only one is given the other follows the
// aspect ratio. The attributes are defaults that any CSS overrides, as on <img> (they are :host
// rules in the shadow tree); with both attributes the box keeps their aspect ratio before the file
// arrives, as <img> does, so a page does not reflow as images load. object-fit and object-position
// on the element apply to the image, as on <img>. The canvas is ::part(canvas), e.g. for
// image-rendering.
//
// Events: `load` once every pixel is drawn; `error` (a CustomEvent, detail {name, message, rule})
// when the file cannot be fetched or decoded. Neither bubbles. On error the element shows its alt
// text and the reason, and gets the attribute error="FormatError: not a kmq file (bad magic)".
// Decoding runs in Web Workers (kmq-worker.js) for images over 256K pixels, see kmq-decode.js.
import { decodeKmq, setWorkerFactory, CODING_NAMES } from './kmq-decode.js';
import { toRGBA } from './kmq.js';
import { encodePNG } from './kmq-png.js';

// @module-only-begin (build.mjs drops this block: the inlined viewer makes Blob workers instead)
setWorkerFactory(() => new Worker(new URL('./kmq-worker.js', import.meta.url), { type: 'module' }));
// @module-only-end

/** The file could not be fetched (network error or an HTTP status other than 2xx). */
export class FetchError extends Error {
  constructor(message) {
    super(message);
    this.name = 'FetchError';
  }
}

const STYLE = `
:host { display: inline-block; }
:host([hidden]) { display: none; }
canvas { display: block; width: 100%; height: 100%; object-fit: inherit; object-position: inherit; }
canvas[hidden] { display: none; }
.alt { display: none; box-sizing: border-box; max-width: 100%; padding: 0.25em 0.5em;
  border: 1px dashed currentColor; font: 12px/1.4 system-ui, sans-serif; overflow-wrap: anywhere; }
:host([error]) .alt { display: block; }
.alt .reason { opacity: 0.75; }
`;

// HTML's rules for a dimension attribute, simplified: leading digits, in CSS pixels.
function dimension(value) {
  const m = /^\s*(\d+)/.exec(value ?? '');
  return m ? Number(m[1]) : null;
}

async function fetchBytes(src, signal) {
  let res;
  try {
    res = await fetch(src, { signal });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new FetchError(`cannot fetch ${src}: ${e.message}`);
  }
  if (!res.ok) throw new FetchError(`HTTP ${res.status} ${res.statusText} for ${src}`.replace('  ', ' '));
  return new Uint8Array(await res.arrayBuffer());
}

/** The custom element class, registered as kmq-image. */
export class KmqImage extends HTMLElement {
  static observedAttributes = ['src', 'alt', 'width', 'height'];

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    // Built node by node rather than with innerHTML: the viewer inlines this file into a
    // <script>, which a closing style tag in a string would cut short.
    const style = document.createElement('style');
    style.textContent = STYLE;
    this._sizeStyle = document.createElement('style'); // :host size rules, see _applySize
    this._canvas = document.createElement('canvas');
    this._canvas.setAttribute('part', 'canvas');
    this._canvas.hidden = true;
    this._alt = document.createElement('span');
    this._alt.className = 'alt';
    this._alt.setAttribute('part', 'alt');
    this._alt.innerHTML = '<span class="text"></span> <span class="reason"></span>';
    root.append(style, this._sizeStyle, this._canvas, this._alt);
    this._gen = 0;
    this._loadedSrc = null; // the src the current state belongs to
    this._ready = null; // see _pending
    this._ownRole = null; // true when the page set no role, so this element sets it
    this._reset();
  }

  _reset() {
    this._plan = null;
    this._result = null;
    this._error = null;
    this._complete = false;
    this._timing = null;
  }

  // The promise decode() returns for the src being loaded: made when src is set (so that
  // `el.src = x; await el.decode()` works before the load starts), settled by _load.
  _pending() {
    if (!this._ready) {
      let resolve, reject;
      const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
      promise.catch(() => {}); // a failure is reported by the error event; decode() callers still see it
      this._ready = { promise, resolve, reject };
    }
    return this._ready;
  }

  _settle(error) {
    const ready = this._ready;
    this._ready = null;
    if (!ready) return;
    if (error) ready.reject(Object.assign(new Error(error.message), { name: error.name }));
    else ready.resolve();
  }

  connectedCallback() {
    if (this._ownRole === null) this._ownRole = !this.hasAttribute('role');
    this._updateAlt();
    this._scheduleLoad();
  }

  disconnectedCallback() {
    // Stop a load in progress (its queued stripes are dropped); a finished image stays.
    if (!this._complete && this._abort) {
      this._abort.abort();
      this._loadedSrc = null;
    }
  }

  attributeChangedCallback(name, old, value) {
    if (old === value) return;
    if (name === 'src') this._scheduleLoad();
    else if (name === 'alt') this._updateAlt();
    else this._applySize();
  }

  /** The src attribute, resolved against the document's base URL ('' when absent). */
  get src() {
    const src = this.getAttribute('src');
    return src === null ? '' : new URL(src, document.baseURI).href;
  }
  set src(value) { this.setAttribute('src', value); }

  get alt() { return this.getAttribute('alt') ?? ''; }
  set alt(value) { this.setAttribute('alt', value); }

  /** The image's width in pixels, 0 until the file's header has been read. */
  get naturalWidth() { return this._plan ? this._plan.width : 0; }

  /** The image's height in pixels, 0 until the file's header has been read. */
  get naturalHeight() { return this._plan ? this._plan.height : 0; }

  /** True when there is no src, or the image is fully drawn, or it failed (as on <img>). */
  get complete() { return !this.getAttribute('src') || this._complete; }

  /** {name, message, rule} of the last failure, or null. */
  get error() { return this._error; }

  /**
   * The file's header and sizes, null until it is read: {width, height, channels, k, bits,
   * coding (0, 1, 2), codingName ('raw', 'ctx1', 'mix'), stripes (0 for raw, which has no stripe
   * table), fileBytes, payloadBytes (between the palette and the CRC), bitsPerPixel (fileBytes * 8
   * per pixel), payloadBitsPerPixel}.
   */
  get header() {
    const p = this._plan;
    if (!p) return null;
    const pixels = p.width * p.height;
    const fileBytes = this._fileBytes;
    const payloadBytes = fileBytes - 20 - p.k * p.channels - 4;
    return {
      width: p.width, height: p.height, channels: p.channels, k: p.k, bits: p.bits,
      coding: p.coding, codingName: CODING_NAMES[p.coding], stripes: p.coding === 0 ? 0 : p.stripes.length,
      fileBytes, payloadBytes, bitsPerPixel: (fileBytes * 8) / pixels, payloadBitsPerPixel: (payloadBytes * 8) / pixels,
    };
  }

  /** The palette, k * channels bytes (RGB or RGBA per entry), or null before the header is read. */
  get palette() { return this._plan ? this._plan.palette.slice() : null; }

  /** The decoded labels (width * height palette indices), or null until loaded. Do not modify. */
  get labels() { return this._result ? this._result.labels : null; }

  /** {fetchMs, decodeMs, workers} of the last load (workers: 0 when decoded on the main thread), or null. */
  get timing() { return this._timing; }

  /**
   * The decoded pixels, exact: RGBA, not premultiplied (a 2D canvas stores premultiplied alpha,
   * so reading the canvas back changes semi-transparent colours; this does not).
   * @returns {ImageData|null} null until loaded
   */
  imageData() {
    if (!this._result) return null;
    const p = this._plan;
    return new ImageData(toRGBA(this._result.labels, p.palette, p.channels), p.width, p.height);
  }

  /**
   * The image as a lossless indexed PNG (palette and alpha exactly as in the kmq file).
   * @returns {Promise<Blob>} rejects when the image is not loaded
   */
  async toPNG() {
    if (!this._result) throw new Error('kmq-image: not loaded');
    return encodePNG({ ...this._plan, labels: this._result.labels });
  }

  /**
   * Resolves once the current src is fully drawn, rejects when it fails (like img.decode()).
   * @returns {Promise<void>}
   */
  decode() {
    if (this._ready) return this._ready.promise;
    if (this._result) return Promise.resolve();
    const e = this._error ?? { name: 'EncodingError', message: 'kmq-image: no src' };
    return Promise.reject(Object.assign(new Error(e.message), { name: e.name }));
  }

  _updateAlt() {
    const alt = this.getAttribute('alt');
    this._alt.querySelector('.text').textContent = alt ?? '';
    // alt="" marks a decorative image, as on <img>
    if (this._ownRole) this.setAttribute('role', alt === '' ? 'presentation' : 'img');
    if (alt) this.setAttribute('aria-label', alt);
    else this.removeAttribute('aria-label');
  }

  _applySize() {
    const w = dimension(this.getAttribute('width'));
    const h = dimension(this.getAttribute('height'));
    const p = this._plan;
    let css = '';
    if (p) css += `aspect-ratio: ${p.width} / ${p.height};`;
    else if (w && h) css += `aspect-ratio: ${w} / ${h};`;
    if (w !== null) css += `width: ${w}px;`;
    if (h !== null) css += `height: ${h}px;`;
    this._sizeStyle.textContent = css ? `:host { ${css} }` : '';
  }

  _scheduleLoad() {
    if (this.getAttribute('src') && this.getAttribute('src') !== this._loadedSrc) this._pending();
    queueMicrotask(() => {
      const src = this.getAttribute('src');
      if (this.isConnected && src !== this._loadedSrc) this._load(src);
    });
  }

  async _load(src) {
    this._abort?.abort();
    const ctl = new AbortController();
    this._abort = ctl;
    const gen = ++this._gen;
    this._loadedSrc = src;
    this._reset();
    this.removeAttribute('error');
    this._canvas.hidden = true;
    this._applySize();
    if (!src) {
      this._settle({ name: 'EncodingError', message: 'kmq-image: no src' });
      return;
    }
    this._pending();
    const t0 = performance.now();
    try {
      const bytes = await fetchBytes(new URL(src, document.baseURI).href, ctl.signal);
      const t1 = performance.now();
      this._fileBytes = bytes.length;
      let ctx = null;
      const result = await decodeKmq(bytes, {
        signal: ctl.signal,
        onPlan: (p) => { ctx = this._start(p); },
        onStripe: (st, rgba) => ctx.putImageData(new ImageData(rgba, this._plan.width, st.y1 - st.y0), 0, st.y0),
      });
      if (gen !== this._gen) return;
      this._result = result;
      this._timing = { fetchMs: t1 - t0, decodeMs: result.decodeMs, workers: result.workers };
      this._complete = true;
      this._settle(null);
      this.dispatchEvent(new Event('load'));
    } catch (e) {
      if (gen !== this._gen || ctl.signal.aborted) return;
      this._fail(e);
    }
  }

  // The header is valid: size a fresh canvas (a context's options are fixed at creation).
  _start(p) {
    this._plan = p;
    const canvas = document.createElement('canvas');
    canvas.setAttribute('part', 'canvas');
    canvas.width = p.width;
    canvas.height = p.height;
    this._canvas.replaceWith(canvas);
    this._canvas = canvas;
    this._applySize();
    const ctx = canvas.getContext('2d', { alpha: p.channels === 4 });
    if (!ctx) {
      // e.g. a side over 32,767 pixels, or no memory for the canvas
      throw Object.assign(new Error(`this browser cannot make a ${p.width} x ${p.height} canvas`), { name: 'CanvasError' });
    }
    return ctx;
  }

  _fail(e) {
    const error = { name: e.name || 'Error', message: e.message || String(e), rule: e.rule ?? null };
    this._error = error;
    this._plan = null; // no image: naturalWidth is 0 again, as on a broken <img>
    this._complete = true;
    this._canvas.hidden = true;
    this._applySize();
    this._alt.querySelector('.reason').textContent = `(${error.name}: ${error.message})`;
    this.setAttribute('error', `${error.name}: ${error.message}`);
    this._settle(error);
    this.dispatchEvent(new CustomEvent('error', { detail: error }));
  }
}

if (!customElements.get('kmq-image')) customElements.define('kmq-image', KmqImage);
