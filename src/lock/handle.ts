import { Lease, type LeaseSettings } from './lease.js';

/** What a {@link LockHandle} is made of. */
export interface LockHandleSettings extends LeaseSettings {
  /** The locked resource. */
  resource: string;
  /** The acquisition's random token. */
  token: string;
  /** The fencing token Redis handed out. */
  fence: number;
}

/**
 * A held lock. `signal` aborts, with a {@link LockLostError}, the moment the lock is lost, and
 * `held`, `signal.aborted` and `fence` check the lock's validity whenever they are read.
 * `await using lock = await locks.acquire('x')` releases it when the scope exits.
 */
export class LockHandle extends Lease {
  /** The locked resource. */
  readonly resource: string;
  /** This acquisition's random token; only it can extend or release the lock. */
  readonly token: string;
  readonly #fence: number;

  constructor(settings: LockHandleSettings) {
    super(settings);
    this.resource = settings.resource;
    this.token = settings.token;
    this.#fence = settings.fence;
  }

  /**
   * The fencing token: a per-resource number that only ever increases (the server's time in µs,
   * or one more than the last token). Send it with every write to the protected resource and have
   * the resource reject a number lower than one it has seen. Reading it checks the lock's
   * validity, so `signal` has aborted if the lock was lost.
   */
  get fence(): number {
    this.checkValidity();
    return this.#fence;
  }
}

/** What a {@link MultiLockHandle} is made of. */
export interface MultiLockHandleSettings extends LeaseSettings {
  /** The locked resources, in acquisition order. */
  resources: readonly string[];
  /** The acquisition's random token, the same in every lock. */
  token: string;
  /** The fencing token of each resource. */
  fences: ReadonlyMap<string, number>;
}

/**
 * Several locks held together (`Lock.acquireAll`): extended, released and lost as one. Losing
 * any of them loses the set.
 */
export class MultiLockHandle extends Lease {
  /** The locked resources, in the order they were acquired. */
  readonly resources: readonly string[];
  /** This acquisition's random token, the same in every lock of the set. */
  readonly token: string;
  readonly #fences: ReadonlyMap<string, number>;

  constructor(settings: MultiLockHandleSettings) {
    super(settings);
    this.resources = Object.freeze([...settings.resources]);
    this.token = settings.token;
    this.#fences = new Map(settings.fences);
  }

  /**
   * The fencing token of each resource (see {@link LockHandle.fence}). Reading it checks the
   * set's validity.
   */
  get fences(): ReadonlyMap<string, number> {
    this.checkValidity();
    return this.#fences;
  }
}

/** What a {@link SemaphoreHandle} is made of. */
export interface SemaphoreHandleSettings extends LeaseSettings {
  /** The semaphore's resource. */
  resource: string;
  /** The acquisition's random token. */
  token: string;
  /** How many permits it holds. */
  permits: number;
  /** The fencing token Redis handed out. */
  fence: number;
}

/**
 * Permits held on a counting semaphore (`Semaphore.acquire`). Like a {@link LockHandle}: a lost
 * `signal`, validity checked when read, token-checked `extend` and `release`, `await using`.
 */
export class SemaphoreHandle extends Lease {
  /** The semaphore's resource. */
  readonly resource: string;
  /** This acquisition's random token; only it can extend or release these permits. */
  readonly token: string;
  /** How many of the semaphore's permits this holder has. */
  readonly permits: number;
  readonly #fence: number;

  constructor(settings: SemaphoreHandleSettings) {
    super(settings);
    this.resource = settings.resource;
    this.token = settings.token;
    this.permits = settings.permits;
    this.#fence = settings.fence;
  }

  /**
   * A fencing token that only ever increases across the semaphore's holders (see
   * {@link LockHandle.fence}); distinct for each holder. Reading it checks the validity.
   */
  get fence(): number {
    this.checkValidity();
    return this.#fence;
  }
}
