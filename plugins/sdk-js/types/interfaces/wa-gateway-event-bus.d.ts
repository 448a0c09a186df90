declare module 'wa:gateway/event-bus@0.1.5' {
  /**
   * Publishes `name` with a JSON-object payload (≤ 64 KiB); answers the event id.
   */
  export function emit(name: string, payload: string): string;
}
