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
