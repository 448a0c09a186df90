declare module 'wa:gateway/types@0.1.5' {
  /**
   * What a caller may do. A route names the one it requires.
   * # Variants
   * 
   * ## `"read"`
   * 
   * Read stored data and look things up.
   * ## `"send"`
   * 
   * Act on WhatsApp on the organization's behalf (send, block...).
   * ## `"manage"`
   * 
   * Manage the organization's sessions, keys and webhooks.
   * ## `"platform-admin"`
   * 
   * Platform operators only (`super_admin`); routes under `/admin/`.
   */
  export type Capability = 'read' | 'send' | 'manage' | 'platform-admin';
  /**
   * Who is calling. The host has authenticated them; a plugin never sees a token.
   */
  export interface Caller {
    /**
     * The organization every resource in this request belongs to.
     */
    organization: string,
    /**
     * `user:<sub>` for a person's login, `apikey:<key id>` for an API key.
     */
    principal: string,
    capabilities: Array<Capability>,
  }
  /**
   * One HTTP request routed to a plugin.
   */
  export interface Request {
    /**
     * Upper-case HTTP method.
     */
    method: string,
    /**
     * The matched route template, as declared in the manifest (`/sessions/{session}/notes`).
     */
    route: string,
    /**
     * The matched route's operation id (`getContact`): the easiest thing to dispatch on.
     */
    operationId: string,
    /**
     * The request path below `/api/v1`, as sent (still percent-encoded).
     */
    path: string,
    /**
     * Path parameters, percent-decoded (`%40` arrives as `@`).
     */
    params: Array<[string, string]>,
    /**
     * Query parameters in order, percent-decoded.
     */
    query: Array<[string, string]>,
    /**
     * Request headers, lower-case names; `authorization`, `x-api-key` and `cookie` removed.
     */
    headers: Array<[string, string]>,
    body: Uint8Array,
    caller: Caller,
    /**
     * The session id when the route has a `{session}` parameter; the host has already
     * checked that it belongs to `caller.organization`.
     */
    session?: string,
    /**
     * Echoed in the `x-request-id` response header; put it in your logs.
     */
    requestId: string,
  }
  /**
   * A successful (2xx) answer. Errors go through `error` so the host writes one envelope.
   */
  export interface Response {
    status: number,
    /**
     * `content-type` defaults to `application/json` when the body is not empty.
     */
    headers: Array<[string, string]>,
    body: Uint8Array,
  }
  /**
   * The envelope codes of the HTTP contract; each maps to one status.
   * # Variants
   * 
   * ## `"validation-error"`
   * 
   * ## `"unauthorized"`
   * 
   * ## `"forbidden"`
   * 
   * ## `"not-found"`
   * 
   * ## `"method-not-allowed"`
   * 
   * ## `"conflict"`
   * 
   * ## `"payload-too-large"`
   * 
   * ## `"rate-limited"`
   * 
   * ## `"internal"`
   * 
   * ## `"not-implemented"`
   * 
   * ## `"unavailable"`
   */
  export type ErrorCode = 'validation-error' | 'unauthorized' | 'forbidden' | 'not-found' | 'method-not-allowed' | 'conflict' | 'payload-too-large' | 'rate-limited' | 'internal' | 'not-implemented' | 'unavailable';
  /**
   * A failed request: becomes `{"error": {"code", "message", "details"}}`.
   */
  export interface Error {
    code: ErrorCode,
    message: string,
    /**
     * A JSON object as text; empty means `{}`.
     */
    details: string,
    /**
     * Overrides the code's default status where the contract says so (422 for some
     * validation errors). Ignored unless it is a 4xx/5xx.
     */
    status?: number,
  }
  export interface QueryParam {
    name: string,
    description: string,
    required: boolean,
  }
  /**
   * One endpoint a plugin serves.
   */
  export interface Route {
    /**
     * `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
     */
    method: string,
    /**
     * Path below `/api/v1`: static segments, `{param}` segments, and an optional
     * colon custom method on the last segment (`/sessions/{session}:start`).
     */
    path: string,
    capability: Capability,
    /**
     * Stable, unique operation id (`getContact`), used in OpenAPI and metrics.
     */
    operationId: string,
    /**
     * One line for documentation.
     */
    summary: string,
    description?: string,
    /**
     * JSON Schema of the request body, as JSON text.
     */
    requestSchema?: string,
    /**
     * JSON Schema of the success body, as JSON text.
     */
    responseSchema?: string,
    /**
     * The success status (200 if none).
     */
    successStatus?: number,
    /**
     * Query parameters the route understands, for documentation.
     */
    queryParams: Array<QueryParam>,
  }
  /**
   * What a plugin declares about itself at load.
   */
  export interface Manifest {
    /**
     * Lower-case `[a-z0-9-]`, unique among loaded plugins.
     */
    name: string,
    /**
     * Semver of the plugin itself.
     */
    version: string,
    routes: Array<Route>,
    /**
     * Event names to receive in `on-event` (`session.status`, `contacts.upsert`...);
     * `*` subscribes to every event.
     */
    events: Array<string>,
  }
  /**
   * An event from a session, in the envelope the HTTP contract publishes.
   */
  export interface Event {
    /**
     * `evt_<ULID>`.
     */
    id: string,
    /**
     * `session.status`, `auth.qr`, `message`, `contacts.upsert`...
     */
    name: string,
    session: string,
    organization: string,
    /**
     * Epoch milliseconds.
     */
    timestamp: bigint,
    /**
     * The event's payload as JSON text.
     */
    payload: string,
  }
}
