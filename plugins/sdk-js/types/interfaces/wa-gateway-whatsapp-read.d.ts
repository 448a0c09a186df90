/// <reference path="./wa-gateway-whatsapp-types.d.ts" />
declare module 'wa:gateway/whatsapp-read@0.1.2' {
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
  export type WhatsappError = import('wa:gateway/whatsapp-types@0.1.2').WhatsappError;
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
