/// <reference path="./wa-gateway-whatsapp-types.d.ts" />
declare module 'wa:gateway/whatsapp-groups@0.1.5' {
  /**
   * Creates a group with this account as its superadmin.
   */
  export function create(subject: string, participants: Array<string>): GroupInfo;
  export function setSubject(group: string, subject: string): void;
  /**
   * None (or empty) clears the description.
   */
  export function setDescription(group: string, description: string | undefined): void;
  export function setSetting(group: string, setting: GroupSetting, on: boolean): void;
  export function updateParticipants(group: string, action: ParticipantAction, jids: Array<string>): Array<ParticipantResult>;
  /**
   * Pending join requests.
   */
  export function joinRequests(group: string): Array<JoinRequest>;
  /**
   * The group's invite code; `reset` revokes the current one and answers the new one.
   */
  export function inviteLink(group: string, reset: boolean): string;
  /**
   * Joins by invite code.
   */
  export function join(code: string): Joined;
  export function leave(group: string): void;
  /**
   * Sets (JPEG bytes) or removes (none) the group's picture; answers the new picture id.
   */
  export function setPicture(group: string, jpeg: Uint8Array | undefined): string | undefined;
  export type WhatsappError = import('wa:gateway/whatsapp-types@0.1.5').WhatsappError;
  export type GroupInfo = import('wa:gateway/whatsapp-types@0.1.5').GroupInfo;
  /**
   * # Variants
   * 
   * ## `"announce"`
   * 
   * Only admins send messages.
   * ## `"locked"`
   * 
   * Only admins edit the group's info.
   * ## `"join-approval"`
   * 
   * Admins approve who joins.
   * ## `"members-can-add"`
   * 
   * Members may add members.
   */
  export type GroupSetting = 'announce' | 'locked' | 'join-approval' | 'members-can-add';
  /**
   * # Variants
   * 
   * ## `"add"`
   * 
   * ## `"remove"`
   * 
   * ## `"promote"`
   * 
   * ## `"demote"`
   * 
   * ## `"approve"`
   * 
   * Accept pending join requests.
   * ## `"reject"`
   * 
   * Refuse pending join requests.
   */
  export type ParticipantAction = 'add' | 'remove' | 'promote' | 'demote' | 'approve' | 'reject';
  /**
   * WhatsApp's answer for one participant: 200 done, 403 privacy (needs an invite),
   * 404 not on WhatsApp / not a member / no request, 408 left recently, 409 already in.
   */
  export interface ParticipantResult {
    jid: string,
    code: number,
  }
  export interface JoinRequest {
    jid: string,
    lid?: string,
    /**
     * Epoch ms.
     */
    requestedAt?: bigint,
  }
  export interface Joined {
    group: string,
    /**
     * Admins must approve first: the account is not a member yet.
     */
    pendingApproval: boolean,
  }
}
