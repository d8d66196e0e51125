import type { Channel } from 'node:diagnostics_channel';
import type { EventEmitter } from 'node:events';

/**
 * The one place a primitive's events leave it: to its own listeners (`on(...)`) and to its
 * diagnostics channel, with the same payload. The payload is only built when `wants` says
 * someone listens, so an unobserved primitive pays one check per event.
 */
export class EventSink<E extends { [K in keyof E]: [unknown] }> {
  readonly #emitter: EventEmitter<E>;
  readonly #channel: Channel;
  readonly #prefix: string;

  constructor(emitter: EventEmitter<E>, channel: Channel, prefix: string) {
    this.#emitter = emitter;
    this.#channel = channel;
    this.#prefix = prefix;
  }

  /** Whether an event of this name reaches anyone (a listener, or a channel subscriber). */
  wants(event: keyof E & string): boolean {
    return this.#channel.hasSubscribers || (this.#emitter as EventEmitter).listenerCount(event) > 0;
  }

  /** Emits to the listeners and publishes on the channel. Call only when {@link wants} said yes. */
  send<K extends keyof E & string>(event: K, payload: E[K][0]): void {
    const emitter = this.#emitter as EventEmitter;
    if (emitter.listenerCount(event) > 0) emitter.emit(event, payload);
    if (this.#channel.hasSubscribers) this.#channel.publish({ prefix: this.#prefix, event, payload });
  }
}
