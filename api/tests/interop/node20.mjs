// Current js-libp2p and Helia use Promise.withResolvers (Node.js >= 22); the machines run
// Node.js 20.19+. Define it, exactly as specified, only where it is missing. Imported first
// by verified_fetch.mjs, so it is in place before any library module is evaluated.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  })
}
