export { type GracefulShutdown, gracefulShutdown, type ShutdownResult } from './graceful-shutdown.js';
export type { Closable, Drainable, GracefulShutdownOptions } from './options.js';
