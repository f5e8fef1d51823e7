/** The smallest plugin: succeeds with the summary "noop" and logs nothing (for benchmarks). */
import { action } from '@portico/sdk';

export const run = action(() => 'noop');
