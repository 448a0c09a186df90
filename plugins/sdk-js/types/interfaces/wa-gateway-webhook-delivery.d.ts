declare module 'wa:gateway/webhook-delivery@0.1.5' {
  /**
   * The organization's webhooks, oldest first.
   */
  export function list(): Array<Webhook>;
  /**
   * Creates a webhook; answers the generated secret once when none was given.
   */
  export function create(spec: WebhookPatch): [Webhook, string | undefined];
  export function get(id: string): Webhook;
  export function update(id: string, patch: WebhookPatch): Webhook;
  /**
   * Removes the webhook, its pending retries and its deliveries.
   */
  export { _delete as delete };
  function _delete(id: string): void;
  /**
   * Sends one signed `webhook.test` event now and answers its delivery once it ended.
   */
  export function test(id: string): Delivery;
  /**
   * Deliveries newest first; `cursor` as answered by the previous page.
   */
  export function deliveries(id: string, status: DeliveryStatus | undefined, event: string | undefined, cursor: string | undefined, limit: number): [Array<Delivery>, string | undefined];
  /**
   * One delivery with its attempts and the envelope it carries.
   */
  export function deliveryDetail(id: string, delivery: string): [Delivery, Array<Attempt>, string];
  /**
   * Queues a finished delivery again as a new one (`replay-of` set).
   */
  export function replay(id: string, delivery: string): Delivery;
  /**
   * Queues the dead deliveries not yet replayed, created in [since, until] (epoch ms),
   * oldest first, at most `limit`; answers how many.
   */
  export function replayDead(id: string, since: bigint | undefined, until: bigint | undefined, limit: number): number;
  /**
   * # Variants
   * 
   * ## `"exponential"`
   * 
   * ## `"linear"`
   * 
   * ## `"constant"`
   */
  export type Backoff = 'exponential' | 'linear' | 'constant';
  export interface RetryPolicy {
    /**
     * Attempts in all, the first included (1-30).
     */
    attempts: number,
    /**
     * The base delay (1-3600 s).
     */
    delaySeconds: number,
    policy: Backoff,
    /**
     * No delay is longer (1-86400 s).
     */
    maxDelaySeconds: number,
  }
  export interface Webhook {
    id: string,
    organizationId: string,
    url: string,
    events: Array<string>,
    /**
     * None: every session of the organization.
     */
    sessionId?: string,
    active: boolean,
    customHeaders: Array<[string, string]>,
    retryPolicy: RetryPolicy,
    /**
     * Why the gateway set `active: false` (`failing`).
     */
    disabledReason?: string,
    createdAt: bigint,
    updatedAt: bigint,
  }
  /**
   * A webhook's fields to set; none leaves one as it is. On create, unset fields take
   * their defaults (`url` and `events` are required).
   */
  export interface WebhookPatch {
    url?: string,
    events?: Array<string>,
    /**
     * Some(none) clears the session filter.
     */
    sessionId: Option<string | undefined>,
    active?: boolean,
    customHeaders?: Array<[string, string]>,
    retryPolicy?: RetryPolicy,
    /**
     * A new signing secret; the previous one keeps signing for 24 h.
     */
    secret?: string,
  }
  /**
   * # Variants
   * 
   * ## `"pending"`
   * 
   * ## `"retrying"`
   * 
   * ## `"succeeded"`
   * 
   * ## `"dead"`
   */
  export type DeliveryStatus = 'pending' | 'retrying' | 'succeeded' | 'dead';
  export interface Delivery {
    id: string,
    webhookId: string,
    eventId: string,
    event: string,
    sessionId?: string,
    status: DeliveryStatus,
    attempts: number,
    nextAttemptAt?: bigint,
    lastAttemptAt?: bigint,
    lastStatusCode?: number,
    /**
     * `timeout`, `connect`, `tls`, `blocked_address`, `redirect` or `http_<code>`.
     */
    lastError?: string,
    replayOf?: string,
    replayedBy?: string,
    createdAt: bigint,
    updatedAt: bigint,
  }
  export interface Attempt {
    n: number,
    at: bigint,
    statusCode?: number,
    durationMs: number,
    error?: string,
    /**
     * The start of the response body (at most 1 KiB).
     */
    responseExcerpt?: string,
  }
  export interface FieldError {
    /**
     * The body field at fault (`url`, `events`...).
     */
    field: string,
    message: string,
  }
  export type DeliveryError = DeliveryErrorInvalid | DeliveryErrorNotFound | DeliveryErrorConflict | DeliveryErrorFailed;
  export interface DeliveryErrorInvalid {
    tag: 'invalid',
    val: FieldError,
  }
  export interface DeliveryErrorNotFound {
    tag: 'not-found',
    val: string,
  }
  /**
   * Over the organization's cap, or a delivery still pending.
   */
  export interface DeliveryErrorConflict {
    tag: 'conflict',
    val: string,
  }
  export interface DeliveryErrorFailed {
    tag: 'failed',
    val: string,
  }
  export type Option<T> = { tag: 'none' } | { tag: 'some', val: T };
}
