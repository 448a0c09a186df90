declare module 'wa:gateway/whatsapp-types@0.1.2' {
  /**
   * A message on WhatsApp: its chat, its id, and its author (none = this account).
   */
  export interface MessageKey {
    chat: string,
    id: string,
    sender?: string,
  }
  export type WhatsappError = WhatsappErrorNotConnected | WhatsappErrorNotFound | WhatsappErrorInvalid | WhatsappErrorForbidden | WhatsappErrorRateLimited | WhatsappErrorUnsupported | WhatsappErrorFailed;
  /**
   * The session is not connected: the plugin answers 501 `not_implemented`.
   */
  export interface WhatsappErrorNotConnected {
    tag: 'not-connected',
    val: string,
  }
  /**
   * WhatsApp has no such thing (user, picture, group).
   */
  export interface WhatsappErrorNotFound {
    tag: 'not-found',
    val: string,
  }
  /**
   * The input was rejected (malformed JID, not a user...).
   */
  export interface WhatsappErrorInvalid {
    tag: 'invalid',
    val: string,
  }
  /**
   * The session's account may not do this.
   */
  export interface WhatsappErrorForbidden {
    tag: 'forbidden',
    val: string,
  }
  /**
   * WhatsApp or the gateway throttled the call.
   */
  export interface WhatsappErrorRateLimited {
    tag: 'rate-limited',
    val: string,
  }
  /**
   * This engine cannot do this yet.
   */
  export interface WhatsappErrorUnsupported {
    tag: 'unsupported',
    val: string,
  }
  /**
   * Anything else; the plugin answers 500.
   */
  export interface WhatsappErrorFailed {
    tag: 'failed',
    val: string,
  }
}
