/**
 * The body of a `/metrics` answer, kept between scrapes: a cached scrape must cost little more than
 * writing it. Per format, the last body is reused while the snapshot and the process reading are
 * the ones it was made from; the snapshot's families (a few kilobytes) are rendered once per
 * snapshot, the process families (a few lines) once per reading. It is kept as UTF-8 bytes: a
 * string body is encoded again for every response (a third of a cached scrape's CPU on Node).
 */
import { PROCESS_FAMILIES } from './catalogue.js';
import { renderEnd, renderFamilies, type Format } from './render.js';
import { processSamples, type ProcessMetrics } from './self-metrics.js';
import type { Snapshot } from './snapshot.js';

interface Made {
  readonly snapshot: Snapshot;
  readonly families: string;
  readonly reading: ProcessMetrics | undefined;
  readonly bytes: Uint8Array<ArrayBuffer>;
}

const utf8 = new TextEncoder();

export class MetricsBody {
  readonly #last: Partial<Record<Format, Made>> = {};

  /**
   * The exposition of `snapshot`, with `reading`'s process families when there is one, in `format`,
   * as UTF-8. The same array while neither changes: it is never written to, only sent.
   */
  bytes(snapshot: Snapshot, reading: ProcessMetrics | undefined, format: Format): Uint8Array<ArrayBuffer> {
    const last = this.#last[format];
    if (last !== undefined && last.snapshot === snapshot && last.reading === reading) return last.bytes;
    const families = last !== undefined && last.snapshot === snapshot ? last.families : renderFamilies(snapshot.samples, format);
    const own = reading !== undefined ? renderFamilies(processSamples(reading), format, PROCESS_FAMILIES) : '';
    const bytes = utf8.encode(families + own + renderEnd(format));
    this.#last[format] = { snapshot, families, reading, bytes };
    return bytes;
  }
}
