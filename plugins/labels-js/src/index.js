// The `labels` plugin, written in JavaScript to prove the WIT contract is language-neutral:
// organization-wide labels (create, rename, delete, list) put on chats and contacts of the
// organization's sessions, and the cursor-paged list of what carries a label.
// @ts-check

import {
  ApiError, Manifest, Route, nowMs, pageSchema, parseJid, serve, ulid,
} from '@wa-gateway/plugin-sdk';
import { Tx, getJson, pageJson, scan } from '@wa-gateway/plugin-sdk/storage';
import { get as getSession } from 'wa:gateway/session-control@0.1.5';

/** @typedef {import('@wa-gateway/plugin-sdk').Request} Request */

// Storage layout, in the organization's scope (every route here is organization-wide):
//   label/<id>                          → Label
//   name/<folded name>                  → label id (names are unique per organization)
//   item/<label id>/<session>/<kind>/<jid> → Item
// A label and what carries it must be read together, so every route is organization-wide:
// the session of a labelled chat travels in the body (a `/sessions/{session}/…` route would
// scope storage to that one session), and its tenancy is checked with the host's session
// registry, which answers for the caller's organization only.
const labelKey = (/** @type {string} */ id) => `label/${id}`;
const nameKey = (/** @type {string} */ name) => `name/${fold(name)}`;
const itemPrefix = (/** @type {string} */ id) => `item/${id}/`;

const MAX_NAME = 100;
const ID = /^lbl_[0-9A-HJKMNP-TV-Z]{26}$/;
/** Sessions are ULIDs (API.md §1.4). */
const SESSION_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/i;
const KINDS = /** @type {const} */ (['chat', 'contact']);

/** Names compare without case. (No `normalize()`: the component's JS engine is built
 * without ICU.) @param {string} name */
function fold(name) {
  return name.toLowerCase();
}

// ---------------------------------------------------------------------------------------
// Schemas: published in /openapi.json and enforced on request bodies by the SDK.

const LABEL = {
  type: 'object',
  properties: {
    id: { type: 'string', description: '`lbl_<ULID>`: labels list in creation order.' },
    name: { type: 'string', description: 'Unique in the organization, whatever the case.' },
    color: { type: ['string', 'null'], description: '`#rrggbb`, or null.' },
    createdAt: { type: 'integer', description: 'Epoch ms.' },
    updatedAt: { type: 'integer', description: 'Epoch ms.' },
    createdBy: { type: 'string', description: '`user:<sub>` or `apikey:<id>`.' },
  },
  required: ['id', 'name', 'color', 'createdAt', 'updatedAt', 'createdBy'],
};

const NAME = { type: 'string', minLength: 1, maxLength: MAX_NAME, description: 'Shown to people; 1-100 characters.' };
const COLOR = { type: ['string', 'null'], pattern: '^#[0-9A-Fa-f]{6}$', description: '`#rrggbb`; null clears it.' };

const NEW_LABEL = {
  type: 'object',
  properties: { name: NAME, color: COLOR },
  required: ['name'],
  additionalProperties: false,
};

const LABEL_PATCH = {
  type: 'object',
  properties: { name: NAME, color: COLOR },
  additionalProperties: false,
};

const ITEM = {
  type: 'object',
  properties: {
    labelId: { type: 'string' },
    sessionId: { type: 'string' },
    kind: { type: 'string', enum: KINDS },
    jid: { type: 'string', description: 'The chat (person, LID or group) or contact (person or LID).' },
    attachedAt: { type: 'integer', description: 'Epoch ms.' },
    attachedBy: { type: 'string' },
  },
  required: ['labelId', 'sessionId', 'kind', 'jid', 'attachedAt', 'attachedBy'],
};

// ---------------------------------------------------------------------------------------
// Labels

/** The label a path names, or 404. @param {Request} req */
function loadLabel(req) {
  const id = req.param('label');
  const label = ID.test(id) ? getJson(labelKey(id)) : undefined;
  if (!label) throw ApiError.notFound('label not found').withDetail('label', id.slice(0, 64));
  return label;
}

/** A trimmed, non-empty name. @param {unknown} raw */
function cleanName(raw) {
  const name = String(raw).trim();
  if (!name) throw ApiError.invalidField('name', 'name must not be blank');
  return name;
}

/** Refuses a name another label of the organization has. @param {Tx} tx @param {string} name @param {string} [self] */
function claimName(tx, name, self) {
  const owner = tx.getJson(nameKey(name));
  if (owner !== undefined && owner !== self) {
    throw ApiError.conflict(`a label named '${name}' already exists`)
      .withDetail('field', 'name')
      .withDetail('label', owner);
  }
  tx.putJson(nameKey(name), self);
}

/** @param {Request} req */
function createLabel(req) {
  const body = req.json();
  const name = cleanName(body.name);
  const now = nowMs();
  const label = {
    id: `lbl_${ulid()}`,
    name,
    color: body.color ?? null,
    createdAt: now,
    updatedAt: now,
    createdBy: req.caller.principal,
  };
  const tx = new Tx();
  claimName(tx, name, label.id);
  tx.putJson(labelKey(label.id), label);
  tx.commit();
  return label;
}

/** @param {Request} req */
function listLabels(req) {
  return pageJson('label/', req.page());
}

/** @param {Request} req */
function getLabel(req) {
  return loadLabel(req);
}

/** Renames a label and/or sets its color. @param {Request} req */
function updateLabel(req) {
  const label = loadLabel(req);
  const body = req.json();
  const tx = new Tx();
  if (body.name !== undefined) {
    const name = cleanName(body.name);
    if (fold(name) !== fold(label.name)) {
      claimName(tx, name, label.id);
      tx.delete(nameKey(label.name));
    }
    label.name = name;
  }
  if (body.color !== undefined) label.color = body.color;
  label.updatedAt = nowMs();
  tx.putJson(labelKey(label.id), label);
  tx.commit();
  return label;
}

/** Deletes a label and takes it off everything that carries it. @param {Request} req */
function deleteLabel(req) {
  const label = loadLabel(req);
  const tx = new Tx();
  tx.delete(labelKey(label.id)).delete(nameKey(label.name));
  tx.commit();
  // The label is gone for every reader now; its items follow, one atomic write per chunk.
  for (;;) {
    const chunk = scan(itemPrefix(label.id), { limit: 256 });
    if (!chunk.length) break;
    const batch = new Tx();
    for (const e of chunk) batch.delete(e.key);
    batch.commit();
    if (chunk.length < 256) break;
  }
}

// ---------------------------------------------------------------------------------------
// Labelled chats and contacts

const TARGET = {
  type: 'object',
  properties: {
    sessionId: { type: 'string', description: 'A session of the organization.' },
    kind: { type: 'string', enum: KINDS },
    jid: { type: 'string', minLength: 1, description: 'A chat: `…@s.whatsapp.net`, `…@lid` or `…@g.us`; a contact: `…@s.whatsapp.net` or `…@lid`.' },
  },
  required: ['sessionId', 'kind', 'jid'],
  additionalProperties: false,
};

/** The session a body names, if it is one of the caller's organization: the host's
 * session registry answers for the caller's organization only, so any other session reads
 * as absent (API.md §1.2). @param {string} id */
function ownSession(id) {
  const notFound = () => ApiError.notFound('session not found').withDetail('session', id.slice(0, 64));
  if (!SESSION_ID.test(id)) throw notFound();
  try {
    return getSession(id.toUpperCase()).id;
  } catch (e) {
    const tag = /** @type {any} */ (e)?.payload?.tag;
    if (tag === 'not-found') throw notFound();
    throw ApiError.internal('sessions are unavailable');
  }
}

/** The JID of a chat or contact, in the form items are keyed by. @param {string} raw @param {'chat' | 'contact'} kind */
function targetJid(raw, kind) {
  const jid = parseJid(raw, 'jid');
  const ok = kind === 'contact'
    ? jid.server === 's.whatsapp.net' || jid.server === 'lid'
    : ['s.whatsapp.net', 'lid', 'g.us'].includes(jid.server);
  if (!ok) {
    throw ApiError.invalidField('jid', kind === 'contact'
      ? `'${jid.jid}' is not a contact (expected …@s.whatsapp.net or …@lid)`
      : `'${jid.jid}' is not a chat (expected …@s.whatsapp.net, …@lid or …@g.us)`);
  }
  return jid.jid;
}

/** Puts a label on a chat or contact of a session; idempotent. @param {Request} req */
function labelItem(req) {
  const label = loadLabel(req);
  const body = req.json();
  const jid = targetJid(body.jid, body.kind);
  const session = ownSession(body.sessionId);
  const key = `${itemPrefix(label.id)}${session}/${body.kind}/${jid}`;
  const tx = new Tx();
  const existing = tx.getJson(key);
  if (existing) return existing;
  const item = {
    labelId: label.id,
    sessionId: session,
    kind: body.kind,
    jid,
    attachedAt: nowMs(),
    attachedBy: req.caller.principal,
  };
  tx.putJson(key, item);
  tx.commit();
  return item;
}

/** Takes a label off a chat or contact (of a session that may be gone since); idempotent,
 * like removing a group member: what does not carry the label is left as it is.
 * @param {Request} req */
function unlabelItem(req) {
  const label = loadLabel(req);
  const body = req.json();
  const jid = targetJid(body.jid, body.kind);
  if (!SESSION_ID.test(body.sessionId)) {
    throw ApiError.invalidField('sessionId', 'sessionId must be a session id');
  }
  const key = `${itemPrefix(label.id)}${body.sessionId.toUpperCase()}/${body.kind}/${jid}`;
  const tx = new Tx();
  if (!tx.get(key)) return;
  tx.delete(key);
  tx.commit();
}

/** What carries a label, oldest session first, then by kind and JID. @param {Request} req */
function listLabelItems(req) {
  const label = loadLabel(req);
  const page = req.page();
  const kind = req.query('kind');
  if (kind !== undefined && kind !== '' && !KINDS.includes(/** @type {any} */ (kind))) {
    throw ApiError.invalidField('kind', 'kind must be chat or contact');
  }
  const session = req.query('session');
  let prefix = itemPrefix(label.id);
  if (session) {
    if (!SESSION_ID.test(session)) throw ApiError.invalidField('session', 'session must be a session id');
    prefix += `${session.toUpperCase()}/`;
    if (kind) prefix += `${kind}/`;
  }
  return pageJson(prefix, page, (item) => !kind || item.kind === kind);
}

// ---------------------------------------------------------------------------------------

const LABELS = '/labels';
const ONE = '/labels/{label}';
const ITEMS = '/labels/{label}/items';

const manifest = new Manifest('labels', '0.1.0')
  .route(
    Route.get(LABELS, 'read', 'listLabels')
      .summary("List the organization's labels, oldest first")
      .paged()
      .response(pageSchema(LABEL)),
    listLabels,
  )
  .route(
    Route.post(LABELS, 'send', 'createLabel')
      .summary('Create a label')
      .description('Names are unique in the organization, whatever their case (409 otherwise).')
      .request(NEW_LABEL)
      .response(LABEL)
      .status(201),
    createLabel,
  )
  .route(
    Route.get(ONE, 'read', 'getLabel').summary('Get one label').response(LABEL),
    getLabel,
  )
  .route(
    Route.patch(ONE, 'send', 'updateLabel')
      .summary('Rename a label or change its color')
      .request(LABEL_PATCH)
      .response(LABEL),
    updateLabel,
  )
  .route(
    Route.delete(ONE, 'send', 'deleteLabel')
      .summary('Delete a label and take it off every chat and contact')
      .status(204),
    deleteLabel,
  )
  .route(
    Route.get(ITEMS, 'read', 'listLabelItems')
      .summary('List the chats and contacts that carry a label')
      .description('By session, then kind, then JID.')
      .query('kind', '`chat` or `contact`')
      .query('session', 'only this session')
      .paged()
      .response(pageSchema(ITEM)),
    listLabelItems,
  )
  .route(
    Route.post(ITEMS, 'send', 'labelItem')
      .summary("Put a label on a chat or contact of one of the organization's sessions")
      .description('Idempotent: labelling again answers the item as it is.')
      .request(TARGET)
      .response(ITEM),
    labelItem,
  )
  .route(
    Route.post(`${ITEMS}:remove`, 'send', 'unlabelItem')
      .summary('Take a label off a chat or contact')
      .request(TARGET)
      .status(204),
    unlabelItem,
  );

export const endpoint = serve(manifest);
