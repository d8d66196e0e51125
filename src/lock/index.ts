export { type LockLossReason, LockLostError, LockTimeoutError } from './errors.js';
export { LockHandle } from './handle.js';
export { Lease } from './lease.js';
export { type AcquireOptions, Lock, type LockContext, type LockOptions } from './lock.js';
