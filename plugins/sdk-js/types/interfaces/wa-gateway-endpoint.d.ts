/// <reference path="./wa-gateway-types.d.ts" />
declare module 'wa:gateway/endpoint@0.1.5' {
  /**
   * Called once at load; must not touch host interfaces.
   */
  export function describe(): Manifest;
  /**
   * Serves one request for a declared route.
   */
  export function handle(request: Request): Response;
  /**
   * Receives one subscribed event. Errors are logged; the event is not redelivered.
   */
  export function onEvent(event: Event): void;
  export type Manifest = import('wa:gateway/types@0.1.5').Manifest;
  export type Request = import('wa:gateway/types@0.1.5').Request;
  export type Response = import('wa:gateway/types@0.1.5').Response;
  export type Error = import('wa:gateway/types@0.1.5').Error;
  export type Event = import('wa:gateway/types@0.1.5').Event;
}
