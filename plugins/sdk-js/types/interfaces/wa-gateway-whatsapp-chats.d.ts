/// <reference path="./wa-gateway-whatsapp-types.d.ts" />
declare module 'wa:gateway/whatsapp-chats@0.1.5' {
  /**
   * Shows "typing…" (or recording) in a chat; WhatsApp lets it lapse after ~25 s.
   */
  export function sendChatState(chat: string, state: ChatState): void;
  /**
   * Sends read receipts (blue ticks) for these incoming messages.
   */
  export function markRead(chat: string, messages: Array<MessageKey>): void;
  /**
   * Applies archive/pin/mute on WhatsApp (app state), so the phone follows.
   */
  export function applyChatSettings(chat: string, settings: ChatSettings): void;
  /**
   * Deletes the chat on WhatsApp (app state).
   */
  export function deleteChat(chat: string): void;
  export type WhatsappError = import('wa:gateway/whatsapp-types@0.1.5').WhatsappError;
  export type MessageKey = import('wa:gateway/whatsapp-types@0.1.5').MessageKey;
  /**
   * # Variants
   * 
   * ## `"composing"`
   * 
   * ## `"recording"`
   * 
   * ## `"paused"`
   */
  export type ChatState = 'composing' | 'recording' | 'paused';
  /**
   * Each field left out stays as it is.
   */
  export interface ChatSettings {
    archived?: boolean,
    pinned?: boolean,
    /**
     * Epoch ms; 0 unmutes, -1 mutes forever.
     */
    mutedUntil?: bigint,
  }
}
