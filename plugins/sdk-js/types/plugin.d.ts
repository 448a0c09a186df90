/// <reference path="./interfaces/wa-gateway-endpoint.d.ts" />
/// <reference path="./interfaces/wa-gateway-event-bus.d.ts" />
/// <reference path="./interfaces/wa-gateway-log.d.ts" />
/// <reference path="./interfaces/wa-gateway-media.d.ts" />
/// <reference path="./interfaces/wa-gateway-outbox.d.ts" />
/// <reference path="./interfaces/wa-gateway-platform-admin.d.ts" />
/// <reference path="./interfaces/wa-gateway-session-control.d.ts" />
/// <reference path="./interfaces/wa-gateway-storage.d.ts" />
/// <reference path="./interfaces/wa-gateway-types.d.ts" />
/// <reference path="./interfaces/wa-gateway-webhook-delivery.d.ts" />
/// <reference path="./interfaces/wa-gateway-whatsapp-chats.d.ts" />
/// <reference path="./interfaces/wa-gateway-whatsapp-groups.d.ts" />
/// <reference path="./interfaces/wa-gateway-whatsapp-read.d.ts" />
/// <reference path="./interfaces/wa-gateway-whatsapp-send.d.ts" />
/// <reference path="./interfaces/wa-gateway-whatsapp-types.d.ts" />
declare module 'wa:gateway/plugin@0.1.5' {
  export type * as WaGatewayEventBus015 from 'wa:gateway/event-bus@0.1.5'; // import wa:gateway/event-bus@0.1.5
  export type * as WaGatewayLog015 from 'wa:gateway/log@0.1.5'; // import wa:gateway/log@0.1.5
  export type * as WaGatewayMedia015 from 'wa:gateway/media@0.1.5'; // import wa:gateway/media@0.1.5
  export type * as WaGatewayOutbox015 from 'wa:gateway/outbox@0.1.5'; // import wa:gateway/outbox@0.1.5
  export type * as WaGatewayPlatformAdmin015 from 'wa:gateway/platform-admin@0.1.5'; // import wa:gateway/platform-admin@0.1.5
  export type * as WaGatewaySessionControl015 from 'wa:gateway/session-control@0.1.5'; // import wa:gateway/session-control@0.1.5
  export type * as WaGatewayStorage015 from 'wa:gateway/storage@0.1.5'; // import wa:gateway/storage@0.1.5
  export type * as WaGatewayTypes015 from 'wa:gateway/types@0.1.5'; // import wa:gateway/types@0.1.5
  export type * as WaGatewayWebhookDelivery015 from 'wa:gateway/webhook-delivery@0.1.5'; // import wa:gateway/webhook-delivery@0.1.5
  export type * as WaGatewayWhatsappChats015 from 'wa:gateway/whatsapp-chats@0.1.5'; // import wa:gateway/whatsapp-chats@0.1.5
  export type * as WaGatewayWhatsappGroups015 from 'wa:gateway/whatsapp-groups@0.1.5'; // import wa:gateway/whatsapp-groups@0.1.5
  export type * as WaGatewayWhatsappRead015 from 'wa:gateway/whatsapp-read@0.1.5'; // import wa:gateway/whatsapp-read@0.1.5
  export type * as WaGatewayWhatsappSend015 from 'wa:gateway/whatsapp-send@0.1.5'; // import wa:gateway/whatsapp-send@0.1.5
  export type * as WaGatewayWhatsappTypes015 from 'wa:gateway/whatsapp-types@0.1.5'; // import wa:gateway/whatsapp-types@0.1.5
  export * as endpoint from 'wa:gateway/endpoint@0.1.5'; // export wa:gateway/endpoint@0.1.5
}
