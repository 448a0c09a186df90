/// <reference path="./wa-gateway-session-control.d.ts" />
declare module 'wa:gateway/platform-admin@0.1.5' {
  /**
   * Changes a session's send rates or admin flag; `invalid` when a rate is out of range.
   */
  export function updateSession(id: string, limits: SessionLimits): Session;
  /**
   * Starts re-reading the session's data in the background (an empty scope = all); the
   * job publishes ordinary events. `conflict` while one runs, `not-connected` when the
   * session is not connected.
   */
  export function startBackfill(id: string, scope: Array<BackfillScope>): BackfillJob;
  /**
   * The running job, else the last one; none when the session never had one.
   */
  export function backfillStatus(id: string): BackfillJob | undefined;
  export type Session = import('wa:gateway/session-control@0.1.5').Session;
  export type SessionError = import('wa:gateway/session-control@0.1.5').SessionError;
  /**
   * The fields a platform admin may change; none leaves a field as it is.
   */
  export interface SessionLimits {
    /**
     * Sends per minute, 1-1000.
     */
    ratePerMin?: number,
    /**
     * Sends per hour, 1-60000.
     */
    ratePerHour?: number,
    isAdminSession?: boolean,
  }
  /**
   * What a backfill re-reads from WhatsApp.
   * # Variants
   * 
   * ## `"contacts"`
   * 
   * Contacts and their LID mappings.
   * ## `"groups"`
   * 
   * Every joined group's metadata and members.
   * ## `"chats"`
   * 
   * The chat list and its archive/pin/mute state.
   */
  export type BackfillScope = 'contacts' | 'groups' | 'chats';
  /**
   * One backfill of a session, running or finished.
   */
  export interface BackfillJob {
    id: string,
    sessionId: string,
    organizationId: string,
    /**
     * `running`, `succeeded` or `failed`.
     */
    status: string,
    scope: Array<BackfillScope>,
    contacts: number,
    groups: number,
    groupMembers: number,
    chats: number,
    /**
     * Epoch ms.
     */
    startedAt: bigint,
    finishedAt?: bigint,
    error?: string,
    /**
     * The principal that started it (`user:<sub>`).
     */
    requestedBy: string,
  }
}
