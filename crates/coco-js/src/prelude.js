// Installed in every fresh context before the module runs. Evaluates to a function that
// receives the native bindings and returns the replacer used to convert results to JSON.
(function (native, withKv, hostPaths) {
  "use strict";
  const jsonStringify = JSON.stringify;
  const jsonParse = JSON.parse;
  const isFinite = Number.isFinite;
  const PromiseConstructor = Promise;
  const freeze = Object.freeze;

  const ccf = {
    strToBuf: (text) => native.strToBuf(text),
    bufToStr: (buf) => native.bufToStr(buf),
    jsonCompatibleToBuf: (value) => {
      const text = jsonStringify(value);
      if (text === undefined) {
        throw new TypeError("value is not JSON-compatible");
      }
      return native.strToBuf(text);
    },
    bufToJsonCompatible: (buf) => jsonParse(native.bufToStr(buf)),
  };

  if (withKv) {
    const handles = Object.create(null);
    const open = (name) => {
      const known = handles[name];
      if (known !== undefined) {
        return known;
      }
      const id = native.open(name);
      const handle = freeze({
        get: (key) => native.get(id, key),
        has: (key) => native.has(id, key),
        set: (key, value) => {
          native.set(id, key, value);
          return handle;
        },
        delete: (key) => {
          native.del(id, key);
        },
        forEach: (callback) => {
          const entries = native.entries(id);
          for (let i = 0; i < entries.length; i += 2) {
            callback(entries[i + 1], entries[i], handle);
          }
        },
      });
      handles[name] = handle;
      return handle;
    };
    ccf.kv = new Proxy(freeze({}), {
      get: (_target, name) => (typeof name === "string" ? open(name) : undefined),
      has: (_target, name) => typeof name === "string",
      set: () => {
        throw new TypeError("ccf.kv cannot be assigned to");
      },
      deleteProperty: () => {
        throw new TypeError("ccf.kv cannot be assigned to");
      },
    });
  }
  hostPaths.forEach((path, index) => {
    const names = path.split(".");
    let parent = ccf;
    for (const name of names.slice(0, -1)) {
      if (parent[name] === undefined) {
        parent[name] = {};
      }
      parent = parent[name];
    }
    parent[names[names.length - 1]] = (...args) =>
      jsonParse(native.host(index, jsonStringify(args)));
  });
  globalThis.ccf = ccf;

  // Determinism: no randomness. `Date` (the clock and the host's time zone) and
  // `performance` are not installed at all.
  Math.random = () => {
    throw new TypeError("Math.random is not available: scripts must be deterministic");
  };

  return (_key, value) => {
    const type = typeof value;
    if (type === "function" || type === "symbol" || type === "bigint") {
      throw new TypeError(`a ${type} is not JSON-compatible`);
    }
    if (type === "number" && !isFinite(value)) {
      throw new TypeError(`${value} is not JSON-compatible`);
    }
    if (value instanceof PromiseConstructor) {
      throw new TypeError("a Promise is not JSON-compatible: exports must be synchronous");
    }
    return value;
  };
});
