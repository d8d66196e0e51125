export { type LockLossReason, LockLostError, LockTimeoutError } from './errors.js';
export { LockHandle, MultiLockHandle } from './handle.js';
export { resourceHashTag } from './keys.js';
export { Lease } from './lease.js';
export { type AcquireOptions, Lock, type LockContext, type LockOptions, type MultiLockContext } from './lock.js';
