/// <reference path="./wa-gateway-whatsapp-types.d.ts" />
declare module 'wa:gateway/outbox@0.1.5' {
  /**
   * Accepts a message: validated by the plugin, checked against the idempotency key
   * and the rate, queued durably with its WhatsApp id; sync mode waits for the send.
   */
  export function submit(message: Outbound, options: SubmitOptions): Submitted;
  export function get(outboxId: string): SendResult | undefined;
  /**
   * Newest first.
   */
  export function list(status: SendStatus | undefined, cursor: string | undefined, limit: number): [Array<SendResult>, string | undefined];
  /**
   * Cancels a pending item.
   */
  export function cancel(outboxId: string): SendResult;
  export type MessageKey = import('wa:gateway/whatsapp-types@0.1.5').MessageKey;
  /**
   * # Variants
   * 
   * ## `"image"`
   * 
   * ## `"video"`
   * 
   * ## `"audio"`
   * 
   * ## `"document"`
   * 
   * ## `"sticker"`
   */
  export type MediaKind = 'image' | 'video' | 'audio' | 'document' | 'sticker';
  export type MediaSource = MediaSourceUpload | MediaSourceInline | MediaSourceMessage;
  /**
   * A file uploaded with `POST /sessions/{session}/media` (`med_…`).
   */
  export interface MediaSourceUpload {
    tag: 'upload',
    val: string,
  }
  /**
   * The bytes themselves.
   */
  export interface MediaSourceInline {
    tag: 'inline',
    val: Uint8Array,
  }
  /**
   * The media of a stored message: forwarded without upload.
   */
  export interface MediaSourceMessage {
    tag: 'message',
    val: MessageKey,
  }
  export interface Media {
    kind: MediaKind,
    source: MediaSource,
    mimetype?: string,
    caption?: string,
    fileName?: string,
    voiceNote: boolean,
  }
  export interface Location {
    latitude: number,
    longitude: number,
    name?: string,
    address?: string,
  }
  export interface ContactCard {
    name: string,
    vcard: string,
  }
  export interface Poll {
    name: string,
    options: Array<string>,
    /**
     * 0 = any number of options.
     */
    selectableCount: number,
  }
  export type Content = ContentText | ContentMedia | ContentLocation | ContentContact | ContentPoll | ContentReaction | ContentEdit | ContentRevoke | ContentVote;
  export interface ContentText {
    tag: 'text',
    val: string,
  }
  export interface ContentMedia {
    tag: 'media',
    val: Media,
  }
  export interface ContentLocation {
    tag: 'location',
    val: Location,
  }
  export interface ContentContact {
    tag: 'contact',
    val: ContactCard,
  }
  export interface ContentPoll {
    tag: 'poll',
    val: Poll,
  }
  /**
   * An emoji; empty removes this account's reaction.
   */
  export interface ContentReaction {
    tag: 'reaction',
    val: [MessageKey, string],
  }
  export interface ContentEdit {
    tag: 'edit',
    val: [MessageKey, string],
  }
  export interface ContentRevoke {
    tag: 'revoke',
    val: MessageKey,
  }
  /**
   * The chosen option names; empty clears the vote.
   */
  export interface ContentVote {
    tag: 'vote',
    val: [MessageKey, Array<string>],
  }
  export interface Outbound {
    /**
     * A user JID, LID or group JID.
     */
    to: string,
    content: Content,
    replyTo?: MessageKey,
    mentions: Array<string>,
    forwarded: boolean,
  }
  /**
   * # Variants
   * 
   * ## `"synchronous"`
   * 
   * The call waits for the server's acknowledgement (up to the sync timeout).
   * ## `"asynchronous"`
   * 
   * The call answers at once; the outcome comes as `message.status` events.
   */
  export type SendMode = 'synchronous' | 'asynchronous';
  /**
   * # Variants
   * 
   * ## `"pending"`
   * 
   * ## `"sent"`
   * 
   * ## `"delivered"`
   * 
   * ## `"read"`
   * 
   * ## `"failed"`
   */
  export type SendStatus = 'pending' | 'sent' | 'delivered' | 'read' | 'failed';
  /**
   * The API's SendResult.
   */
  export interface SendResult {
    outboxId: string,
    mode: SendMode,
    status: SendStatus,
    /**
     * Epoch ms when the status was reached.
     */
    timestamp: bigint,
    /**
     * The id the message has on WhatsApp, assigned at accept.
     */
    waMessageId: string,
    chat: string,
    /**
     * `not_on_whatsapp`, `media_failed`, `rejected`, `expired`, `cancelled`.
     */
    errorCode?: string,
    error?: string,
  }
  export interface SubmitOptions {
    mode: SendMode,
    idempotencyKey?: string,
    /**
     * SHA-256 hex of the request as the SDK canonicalizes it: a reused key with
     * another fingerprint is refused.
     */
    fingerprint: string,
  }
  export interface Submitted {
    result: SendResult,
    /**
     * 200 (sent or failed) or 202 (pending): what the first request answered, kept
     * for replays.
     */
    httpStatus: number,
    replayed: boolean,
  }
  export interface RateLimit {
    /**
     * `perMinute` or `perHour`; `pending` for the queue's own cap.
     */
    limit: string,
    ratePerMin: number,
    ratePerHour: number,
    retryAfterMs: bigint,
  }
  export type OutboxError = OutboxErrorInvalid | OutboxErrorNotFound | OutboxErrorNotConnected | OutboxErrorRateLimited | OutboxErrorKeyReused | OutboxErrorNotPending | OutboxErrorFailed;
  export interface OutboxErrorInvalid {
    tag: 'invalid',
    val: string,
  }
  export interface OutboxErrorNotFound {
    tag: 'not-found',
    val: string,
  }
  /**
   * The session cannot send now (501).
   */
  export interface OutboxErrorNotConnected {
    tag: 'not-connected',
    val: string,
  }
  export interface OutboxErrorRateLimited {
    tag: 'rate-limited',
    val: RateLimit,
  }
  /**
   * The idempotency key was used with another request; carries its outbox id.
   */
  export interface OutboxErrorKeyReused {
    tag: 'key-reused',
    val: string,
  }
  /**
   * The item is no longer pending (409).
   */
  export interface OutboxErrorNotPending {
    tag: 'not-pending',
    val: string,
  }
  export interface OutboxErrorFailed {
    tag: 'failed',
    val: string,
  }
}
