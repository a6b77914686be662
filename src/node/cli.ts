#!/usr/bin/env node
/**
 * `loki-metrics` — the Node command line: `serve`, `scrape`, `check`, `sync`, `token`, `assets`. This
 * file only hands the commands (cli/main.ts) this process's arguments, streams and environment, and
 * sets the exit code; `exited` settles when it is set.
 */
import { main, processIo } from './cli/main.js';

export const exited: Promise<void> = main(process.argv.slice(2), processIo(process)).then((code) => {
  process.exitCode = code;
});
