export {
  type CacheOperationMessage,
  CHANNELS,
  type EventMessage,
  type HealthCheckMessage,
  type LimiterCheckMessage,
  type LockOperationMessage,
  type OperationMessage,
} from './channels.js';
export type { Logger } from './logger.js';
export { type BreakerStates, type PrimitivesReport, primitivesReport, type ReportedPrimitives } from './summary.js';
