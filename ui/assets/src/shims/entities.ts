// Stands in for the npm package `entities` inside the editor bundle (see the
// `alias` map in ../../build.mjs). markdown-it only calls decodeHTML and
// decodeHTMLStrict, and only with one `&name;` reference at a time (the
// numeric ones it decodes itself). The real package carries the whole WHATWG
// entity table (~25 KB gzip); the browser already has it, so the reference is
// decoded by parsing it as the text of a <textarea> in an inert document made
// by DOMParser (no innerHTML, nothing runs, nothing is fetched).
//
// Strict like `entities`: the result counts only if the whole reference was
// one known entity (the parser would also decode a known prefix, such as
// "&amp" in "&ampx;"); otherwise the input comes back unchanged.

let parser: DOMParser | null = null
const cache = new Map<string, string>()

function decodeOne(ref: string): string {
  if (!/^&[a-z][a-z0-9]{1,31};$/i.test(ref)) return ref
  let out = cache.get(ref)
  if (out === undefined) {
    parser = parser ?? new DOMParser()
    const text = parser.parseFromString(`<textarea>${ref}</textarea>`, 'text/html').querySelector('textarea')?.value ?? ref
    // Every named entity decodes to one or two code points.
    out = text !== ref && Array.from(text).length <= 2 ? text : ref
    cache.set(ref, out)
  }
  return out
}

export function decodeHTML(str: string): string {
  return str.replace(/&[a-z][a-z0-9]{1,31};/gi, decodeOne)
}

export const decodeHTMLStrict = decodeHTML
