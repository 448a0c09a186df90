// A JavaScript test plugin that misbehaves on request, to check that a fault inside a JS
// component (an uncaught exception, a trap, a runaway loop, memory without bound) fails
// only its own request — like the Rust chaos plugin (tests/plugins/chaos). Never shipped.
// @ts-check

import { ApiError, Manifest, Route, serve } from '../../../../plugins/sdk-js/index.js';

/** Survives between requests served by one instance: shows whether an instance was reused. */
let served = 0;

const manifest = new Manifest('chaos-js', '0.1.0')
  .route(Route.get('/chaos-js/ok', 'read', 'jsOk').summary('Answers at once'), () => ({ ok: true, served: ++served }))
  .route(Route.get('/chaos-js/throw', 'read', 'jsThrow').summary('Throws an uncaught exception'), () => {
    /** @type {any} */
    const missing = undefined;
    return missing.field;
  })
  .route(Route.get('/chaos-js/bad-request', 'read', 'jsBadRequest').summary('Answers 400'), () => {
    throw ApiError.invalidField('q', 'q is wrong');
  })
  .route(Route.get('/chaos-js/trap', 'read', 'jsTrap').summary('Traps (an answer the component cannot lower)'), () => undefined)
  .route(Route.get('/chaos-js/spin', 'read', 'jsSpin').summary('Loops forever'), () => {
    for (;;) served++;
  })
  .route(Route.get('/chaos-js/oom', 'read', 'jsOom').summary('Allocates without bound'), () => {
    const hog = [];
    for (;;) hog.push(new Float64Array(1 << 20).fill(served));
  });

const base = serve(manifest);

export const endpoint = {
  ...base,
  /** @param {import('wa:gateway/types@0.1.5').Request} request */
  handle(request) {
    if (request.operationId === 'jsTrap') {
      // Not a `response` record: the component's bindings cannot lower it and trap.
      return /** @type {any} */ ({ status: 'not a number', headers: 7, body: null });
    }
    return base.handle(request);
  },
};
