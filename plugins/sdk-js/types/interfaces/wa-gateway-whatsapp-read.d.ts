/// <reference path="./wa-gateway-whatsapp-types.d.ts" />
declare module 'wa:gateway/whatsapp-read@0.1.5' {
  export function checkPhone(phone: string): OnWhatsapp;
  /**
   * None when there is no picture or privacy hides it.
   */
  export function profilePicture(jid: string): Picture | undefined;
  /**
   * The about text; empty when not set or hidden.
   */
  export function about(jid: string): string;
  export function blocklist(): Array<BlockedContact>;
  /**
   * The session's own account, from its pairing (answers while disconnected); none
   * when the session was never paired.
   */
  export function selfIdentity(): Identity | undefined;
  /**
   * A group's metadata and members, read from WhatsApp. `not-found` when there is no
   * such group or the account is not in it.
   */
  export function groupMetadata(group: string): GroupInfo;
  /**
   * What an invite code leads to, without joining. `invalid` for a code WhatsApp does
   * not know (or revoked).
   */
  export function inviteInfo(code: string): GroupInfo;
  export type WhatsappError = import('wa:gateway/whatsapp-types@0.1.5').WhatsappError;
  export type GroupInfo = import('wa:gateway/whatsapp-types@0.1.5').GroupInfo;
  /**
   * The account the session is paired with.
   */
  export interface Identity {
    jid: string,
    lid?: string,
    pushName?: string,
  }
  export interface OnWhatsapp {
    /**
     * The phone number as asked, digits only.
     */
    query: string,
    isOnWhatsapp: boolean,
    jid?: string,
    lid?: string,
  }
  export interface Picture {
    id: string,
    url: string,
    /**
     * `image` or `preview`.
     */
    kind: string,
    directPath: string,
  }
  export interface BlockedContact {
    jid: string,
    lid?: string,
    /**
     * Epoch ms when the gateway saw the block, if known.
     */
    blockedAt?: bigint,
  }
}
