// Stands in for the npm package `linkify-it` inside the editor bundle (see the
// `alias` map in ../../build.mjs). markdown-it always constructs a LinkifyIt,
// but prosemirror-markdown's defaultMarkdownParser uses the "commonmark"
// preset, which never turns linkify on, so nothing here is ever asked to find
// a link. The methods keep the shape markdown-it could call.

export default class LinkifyIt {
  set(): this {
    return this
  }
  add(): this {
    return this
  }
  tlds(): this {
    return this
  }
  test(): boolean {
    return false
  }
  pretest(): boolean {
    return false
  }
  match(): null {
    return null
  }
  matchAtStart(): null {
    return null
  }
}
