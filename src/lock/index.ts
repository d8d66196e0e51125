export { type LockLossReason, LockLostError, LockNotReplicatedError, LockTimeoutError } from './errors.js';
export { LockHandle, MultiLockHandle, SemaphoreHandle } from './handle.js';
export { resourceHashTag } from './keys.js';
export { Lease } from './lease.js';
export { Lock } from './lock.js';
export type { AcquireOptions, LockContext, LockOptions, MultiLockContext } from './options.js';
export {
  MAX_SEMAPHORE_LIMIT,
  Semaphore,
  type SemaphoreAcquireOptions,
  type SemaphoreContext,
  type SemaphoreOptions,
} from './semaphore.js';
export type { LockEvents, LockStats } from './stats.js';
