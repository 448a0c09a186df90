// Structured logs through `wa:gateway/log` (the host tags them with the plugin's name and
// the request id). Import it only from plugins whose world imports `wa:gateway/log`.
// @ts-check

import { write } from 'wa:gateway/log@0.1.5';

/** @param {string} message */
export const debug = (message) => write('debug', message);
/** @param {string} message */
export const info = (message) => write('info', message);
/** @param {string} message */
export const warn = (message) => write('warn', message);
/** @param {string} message */
export const error = (message) => write('error', message);
