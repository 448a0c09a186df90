declare module 'wa:gateway/whatsapp-types@0.1.5' {
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
  /**
   * A member of a group as WhatsApp lists it; at least one of `jid` and `lid` is set.
   */
  export interface GroupParticipant {
    /**
     * The phone JID, when known.
     */
    jid?: string,
    lid?: string,
    /**
     * `member`, `admin` or `superadmin` (the creator).
     */
    role: string,
    /**
     * Their nickname in this group, when WhatsApp tells it.
     */
    tag?: string,
  }
  /**
   * A group's metadata as WhatsApp answers it. The session's own account is among
   * `participants` when it is a member.
   */
  export interface GroupInfo {
    jid: string,
    subject: string,
    description?: string,
    /**
     * The creator's JID.
     */
    owner?: string,
    /**
     * Epoch ms of the group's creation.
     */
    createdAt?: bigint,
    /**
     * Only admins send messages.
     */
    announce: boolean,
    /**
     * Only admins edit the subject, description and picture.
     */
    locked: boolean,
    /**
     * Admins approve who joins.
     */
    joinApproval: boolean,
    /**
     * Members (not only admins) may add members.
     */
    membersCanAdd: boolean,
    /**
     * The member count (may exceed `participants` when WhatsApp sent a summary).
     */
    size: number,
    participants: Array<GroupParticipant>,
  }
}
