/// <reference path="./wa-gateway-whatsapp-types.d.ts" />
declare module 'wa:gateway/whatsapp-send@0.1.5' {
  export function block(jid: string): void;
  export function unblock(jid: string): void;
  export type WhatsappError = import('wa:gateway/whatsapp-types@0.1.5').WhatsappError;
}
