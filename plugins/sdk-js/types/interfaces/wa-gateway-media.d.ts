/// <reference path="./wa-gateway-whatsapp-types.d.ts" />
declare module 'wa:gateway/media@0.1.5' {
  /**
   * Makes the media of a received or sent message downloadable in this call's answer.
   */
  export function download(message: MessageKey): Blob;
  export type WhatsappError = import('wa:gateway/whatsapp-types@0.1.5').WhatsappError;
  export type MessageKey = import('wa:gateway/whatsapp-types@0.1.5').MessageKey;
  export interface Blob {
    /**
     * Answer with header `x-gateway-blob: <handle>` and an empty body: the host streams
     * the bytes. Valid only for this call's answer.
     */
    handle: string,
    mimetype: string,
    size: bigint,
    fileName?: string,
    /**
     * Hex SHA-256 of the bytes.
     */
    sha256: string,
  }
}
