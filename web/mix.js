// kmq payload coding 2 ("mix", FORMAT.md section 11).
import { FormatError, RangeDecoder } from './kmq.js';

export class MixContext {
  constructor(k, bits, palette, channels) {
    this.k = k; this.bits = bits; this.palette = palette; this.channels = channels;
  }
}

export function decodeMixStripe() {
  throw new FormatError('coding 2 (mix) is not implemented yet', 'D4');
}
