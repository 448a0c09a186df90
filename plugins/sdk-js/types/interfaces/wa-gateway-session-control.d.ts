declare module 'wa:gateway/session-control@0.1.5' {
  export function listSessions(): Array<Session>;
  /**
   * Every organization's sessions; only for callers with the platform-admin capability.
   */
  export function listAllSessions(): Array<Session>;
  export function create(options: SessionOptions): Session;
  export function get(id: string): Session;
  export { _delete as delete };
  function _delete(id: string): void;
  export function start(id: string): Session;
  export function stop(id: string): Session;
  export function restart(id: string): Session;
  export function logout(id: string): Session;
  /**
   * The current QR code, starting pairing when needed; none until one exists.
   */
  export function qr(id: string): Code | undefined;
  /**
   * Requests a pair code for the phone (digits only).
   */
  export function requestPairingCode(id: string, phone: string): Code;
  export interface Session {
    id: string,
    organizationId: string,
    label?: string,
    /**
     * `stopped`, `starting`, `scan_qr_code`, `working` or `failed`.
     */
    status: string,
    /**
     * Why the session is not working, when the engine says.
     */
    statusReason?: string,
    phoneNumber?: string,
    waJid?: string,
    waLid?: string,
    pushName?: string,
    gatewayId: string,
    isAdminSession: boolean,
    autoRead: boolean,
    presenceTyping: boolean,
    ratePerMin: number,
    ratePerHour: number,
    createdByUserId: string,
    createdAt: bigint,
    updatedAt: bigint,
    lastConnectedAt?: bigint,
  }
  export interface SessionOptions {
    label?: string,
    autoRead?: boolean,
    presenceTyping?: boolean,
    start: boolean,
  }
  export interface Code {
    code: string,
    /**
     * Epoch ms.
     */
    expiresAt: bigint,
  }
  export type SessionError = SessionErrorNotFound | SessionErrorInvalid | SessionErrorConflict | SessionErrorNotConnected | SessionErrorFailed;
  /**
   * No such session in the caller's organization.
   */
  export interface SessionErrorNotFound {
    tag: 'not-found',
  }
  /**
   * The request cannot apply in the session's state (already paired...).
   */
  export interface SessionErrorInvalid {
    tag: 'invalid',
    val: string,
  }
  export interface SessionErrorConflict {
    tag: 'conflict',
    val: string,
  }
  /**
   * The engine must reach WhatsApp for this and the session is not connected:
   * the plugin answers 501 `not_implemented`.
   */
  export interface SessionErrorNotConnected {
    tag: 'not-connected',
    val: string,
  }
  export interface SessionErrorFailed {
    tag: 'failed',
    val: string,
  }
}
