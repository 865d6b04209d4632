// The module worker of kmq-decode.js's pool: decodes the stripes it is sent.
// (The viewer, web/index.html, starts the same code from a Blob of its inlined source instead.)
import { serveWorker } from './kmq-decode.js';

serveWorker(self);
