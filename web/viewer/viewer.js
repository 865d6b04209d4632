// The kmq viewer's page logic (web/index.html; see the comment at the top of web/viewer/index.html
// for the data attributes it sets). Each opened file is shown by a <kmq-image>, so the viewer
// decodes exactly as the element does: small images on the main thread, large ones in workers.
import { setWorkerFactory, warmUp } from '../kmq-decode.js';
import '../kmq-image.js';

const $ = (id) => document.getElementById(id);
const body = document.body;
const stage = $('stage');

/** How many decoded images to keep, so that going back to one in the list is instant. */
const KEEP_DECODED = 3;

// In index.html the modules are inlined in <script id="kmq-bundle">, and workers run that same
// text from a Blob URL: Chromium starts no module worker from a file:// page, but classic Blob
// workers do start there (and over http).
function useBlobWorkers() {
  const script = $('kmq-bundle');
  if (!script) return;
  const url = URL.createObjectURL(new Blob([script.textContent], { type: 'text/javascript' }));
  setWorkerFactory(() => new Worker(url, { name: 'kmq-decoder' }));
}

const entries = []; // {name, src, el (its <kmq-image> while decoded), item (its list button), lastShown}
let current = null;
let openSeq = 0;
let mode = 'fit'; // or 'actual'
let pngURL = null;

// ---------------------------------------------------------------- opening

function addEntry(name, src, bytes) {
  const entry = { name, src, el: null, item: null, lastShown: 0 };
  const li = document.createElement('li');
  const button = document.createElement('button');
  button.type = 'button';
  button.innerHTML = '<span class="file"></span><span class="meta"></span>';
  button.querySelector('.file').textContent = name;
  button.querySelector('.meta').textContent = bytes === undefined ? '…' : kib(bytes);
  button.title = name;
  button.addEventListener('click', (e) => show(entry, e.timeStamp));
  li.append(button);
  $('files').append(li);
  entry.item = button;
  entries.push(entry);
  return entry;
}

function openFiles(files, t0) {
  const added = [...files].map((f) => addEntry(f.name, URL.createObjectURL(f), f.size));
  if (added.length) show(added[0], t0);
}

function openURLs(urls, t0) {
  const added = urls.map((u) => addEntry(decodeURIComponent(u.split(/[?#]/)[0].split('/').pop() || u), u));
  if (added.length) show(added[0], t0);
}

// ---------------------------------------------------------------- showing

function show(entry, t0) {
  const seq = ++openSeq;
  body.dataset.openSeq = String(seq);
  body.dataset.state = 'loading';
  current = entry;
  for (const e of entries) e.item.setAttribute('aria-current', String(e === entry));
  entry.item.scrollIntoView({ block: 'nearest' });
  document.title = `${entry.name} – kmq viewer`;
  resetSave();
  stage.replaceChildren();
  if (!entry.el || entry.el.error) {
    entry.el = document.createElement('kmq-image');
    entry.el.alt = entry.name;
    entry.el.src = entry.src;
  }
  const el = entry.el;
  stage.append(el);
  layout();
  forgetOld(entry);
  if (el.complete && !el.error) {
    shown(entry, seq, t0);
    return;
  }
  const done = (ev) => {
    el.removeEventListener('load', done);
    el.removeEventListener('error', done);
    if (current !== entry || seq !== openSeq) return; // another file was opened meanwhile
    if (ev.type === 'load') shown(entry, seq, t0);
    else failed(entry, seq, t0);
  };
  el.addEventListener('load', done);
  el.addEventListener('error', done);
}

// Drop the decoded pixels of files not shown lately (a 12 MP image holds 60 MB).
function forgetOld(keep) {
  const decoded = entries.filter((e) => e.el && e !== keep);
  decoded.sort((a, b) => b.lastShown - a.lastShown);
  for (const e of decoded.slice(KEEP_DECODED - 1)) e.el = null;
  keep.lastShown = performance.now();
}

// After the last stripe is drawn: a requestAnimationFrame runs before the next frame is painted,
// and a task posted from it runs once that frame is done.
function afterNextPaint(fn) {
  requestAnimationFrame(() => {
    const ch = new MessageChannel();
    ch.port1.onmessage = fn;
    ch.port2.postMessage(null);
  });
}

function finish(seq, t0, state, el) {
  afterNextPaint(() => {
    if (seq !== openSeq) return;
    body.dataset.lastFrameMs = (performance.now() - t0).toFixed(1);
    const timing = el.timing;
    if (timing) {
      body.dataset.decodeMs = timing.decodeMs.toFixed(1);
      body.dataset.workers = String(timing.workers);
    }
    body.dataset.shownSeq = String(seq);
    body.dataset.state = state;
  });
}

function shown(entry, seq, t0) {
  const el = entry.el;
  const h = el.header;
  entry.item.classList.remove('failed');
  entry.item.querySelector('.meta').textContent = `${h.width} × ${h.height}, K ${h.k}, ${h.codingName}`;
  layout();
  renderInfo(entry.name, h, el);
  const save = $('save');
  save.removeAttribute('aria-disabled');
  save.download = entry.name.replace(/\.kmq$/i, '') + '.png';
  finish(seq, t0, 'shown', el);
}

function failed(entry, seq, t0) {
  const { name, message, rule } = entry.el.error;
  entry.item.classList.add('failed');
  entry.item.querySelector('.meta').textContent = name;
  const box = document.createElement('div');
  box.className = 'failure';
  box.setAttribute('role', 'alert');
  box.innerHTML = '<h2></h2><code></code><p></p>';
  box.querySelector('h2').textContent = `Cannot open ${entry.name}`;
  box.querySelector('code').textContent = `${name}: ${message}`;
  box.querySelector('p').textContent = rule
    ? `The file breaks rule ${rule} of the kmq format (spec/FORMAT.md).`
    : name !== 'FetchError' ? 'The file could not be read.'
      : location.protocol === 'file:' ? 'A page opened from the file system cannot fetch other files: use Open… or drop them here, or serve the folder over http.'
        : 'The file could not be fetched.';
  stage.append(box);
  $('info').hidden = true;
  finish(seq, t0, 'error', entry.el);
}

// ---------------------------------------------------------------- layout: fit or 1:1

function layout() {
  const el = current?.el;
  stage.classList.toggle('actual', mode === 'actual');
  $('fit').setAttribute('aria-pressed', String(mode === 'fit'));
  $('actual').setAttribute('aria-pressed', String(mode === 'actual'));
  $('zoom').textContent = '';
  if (!el || !el.naturalWidth) return;
  const W = el.naturalWidth;
  const H = el.naturalHeight;
  let scale;
  if (mode === 'actual') {
    scale = 1 / devicePixelRatio; // one image pixel per device pixel
  } else {
    const cs = getComputedStyle(stage);
    const w = stage.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    const h = stage.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
    scale = Math.min(w / W, h / H);
    // Enlarge small images (pixel art) only by whole factors, so every pixel stays square and sharp.
    if (scale > 1) scale = Math.max(1, Math.floor(scale * devicePixelRatio)) / devicePixelRatio;
  }
  el.classList.add('sized');
  el.classList.toggle('pixelated', scale * devicePixelRatio >= 2);
  el.style.width = `${W * scale}px`;
  el.style.height = `${H * scale}px`;
  const zoom = scale * devicePixelRatio * 100;
  $('zoom').textContent = `${zoom >= 10 ? Math.round(zoom) : zoom.toFixed(1)}%`;
}

function setMode(m) {
  mode = m;
  layout();
}

// ---------------------------------------------------------------- info panel

const number = new Intl.NumberFormat('en');

function kib(n) {
  return n < 1024 ? `${number.format(n)} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(2)} MiB`;
}

function renderInfo(name, h, el) {
  const t = el.timing;
  const rows = [
    ['width', 'Width', `${number.format(h.width)} px`],
    ['height', 'Height', `${number.format(h.height)} px`],
    ['channels', 'Channels', `${h.channels} (${h.channels === 4 ? 'RGBA' : 'RGB'})`],
    ['k', 'K (colours)', String(h.k)],
    ['bits', 'Bits per label', String(h.bits)],
    ['coding', 'Coding', `${h.codingName} (${h.coding})`],
    ['stripes', 'Stripes', h.coding === 0 ? 'none (raw)' : String(h.stripes)],
    ['file-size', 'File size', `${kib(h.fileBytes)}`],
    ['bpp', 'Bits/pixel (file)', h.bitsPerPixel.toFixed(3)],
    ['payload-bpp', 'Bits/pixel (payload)', h.payloadBitsPerPixel.toFixed(3)],
  ];
  if (t) {
    rows.push(['decode', 'Decode time', `${number.format(Math.round(t.decodeMs))} ms`]);
    rows.push(['workers', 'Decoded by', t.workers ? `${t.workers} worker${t.workers > 1 ? 's' : ''}` : 'main thread']);
  }
  const dl = $('fields');
  dl.replaceChildren(...rows.map(([key, label, value]) => {
    const div = document.createElement('div');
    div.dataset.field = key;
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.textContent = value;
    if (key === 'file-size') dd.title = `${number.format(h.fileBytes)} bytes`;
    div.append(dt, dd);
    return div;
  }));
  $('name').textContent = name;
  renderPalette(el.palette, h.channels, h.k);
  $('info').hidden = false;
}

function hex(v) {
  return v.toString(16).padStart(2, '0');
}

function renderPalette(palette, C, k) {
  $('palette-title').textContent = `Palette (${k})`;
  const swatches = [];
  for (let i = 0; i < k; i++) {
    const [r, g, b] = palette.subarray(i * C, i * C + 3);
    const a = C === 4 ? palette[i * C + 3] : 255;
    const s = document.createElement('span');
    s.className = 'swatch';
    s.style.setProperty('--c', `rgb(${r} ${g} ${b} / ${(a / 255).toFixed(4)})`);
    s.title = `${i}: #${hex(r)}${hex(g)}${hex(b)}${C === 4 ? hex(a) : ''}${C === 4 && a < 255 ? ` (alpha ${a})` : ''}`;
    swatches.push(s);
  }
  $('palette').replaceChildren(...swatches);
}

// ---------------------------------------------------------------- save as PNG

function resetSave() {
  const save = $('save');
  save.setAttribute('aria-disabled', 'true');
  save.href = '#';
  delete save.dataset.ready;
  if (pngURL) URL.revokeObjectURL(pngURL);
  pngURL = null;
}

// The PNG is made on the first click (it costs a deflate of every label), then the same link is
// clicked again with its href set, so that it downloads like any <a download>.
async function onSave(e) {
  const save = $('save');
  if (save.dataset.ready) return;
  e.preventDefault();
  const el = current?.el;
  if (!el || !el.labels) return;
  const blob = await el.toPNG();
  if (current?.el !== el) return;
  pngURL = URL.createObjectURL(blob);
  save.href = pngURL;
  save.dataset.ready = 'true';
  save.click();
}

// ---------------------------------------------------------------- wiring

function wire() {
  $('pick').addEventListener('change', (e) => {
    openFiles(e.target.files, e.timeStamp);
    e.target.value = ''; // choosing the same file again opens it again
  });
  $('fit').addEventListener('click', () => setMode('fit'));
  $('actual').addEventListener('click', () => setMode('actual'));
  $('save').addEventListener('click', onSave);
  new ResizeObserver(() => layout()).observe(stage);
  let depth = 0; // dragenter/dragleave fire for every child crossed
  addEventListener('dragenter', (e) => { if (e.dataTransfer?.types.includes('Files')) { depth++; body.classList.add('dragging'); } });
  addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; body.classList.remove('dragging'); } });
  addEventListener('dragover', (e) => e.preventDefault());
  addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    body.classList.remove('dragging');
    if (e.dataTransfer?.files.length) openFiles(e.dataTransfer.files, e.timeStamp);
  });
}

useBlobWorkers();
wire();
// Start the workers now rather than when the first large file arrives.
warmUp();
const srcs = new URLSearchParams(location.search).getAll('src');
if (srcs.length) openURLs(srcs, performance.now());
