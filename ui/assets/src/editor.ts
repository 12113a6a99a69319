// Editor island: progressive enhancement of `<textarea data-editor>`.
//
// Without JS the textarea is an ordinary Markdown field. With JS the textarea
// is hidden (it stays in the form and is still submitted) and a ProseMirror
// editor with a small toolbar takes its place. The editor loads the
// textarea's Markdown with prosemirror-markdown's `defaultMarkdownParser` and
// writes `defaultMarkdownSerializer.serialize(doc)` back into the textarea on
// every change, so the form always posts Markdown.
//
// The editable area carries role="textbox", aria-multiline="true" and
// aria-labelledby pointing at the textarea's <label> (which gets an id if it
// has none), so it is found by the same label text.
//
// Strict CSP: no inline styles, no eval, no innerHTML; classes only.
// See ../README.md for the full contract.

import { baseKeymap, chainCommands, exitCode, lift, setBlockType, toggleMark, wrapIn } from 'prosemirror-commands'
import { history, redo, undo } from 'prosemirror-history'
import { InputRule, inputRules, textblockTypeInputRule, undoInputRule, wrappingInputRule } from 'prosemirror-inputrules'
import { keymap } from 'prosemirror-keymap'
import { defaultMarkdownParser, defaultMarkdownSerializer, schema } from 'prosemirror-markdown'
import { Fragment, Slice, type Attrs, type Mark, type MarkType, type NodeType } from 'prosemirror-model'
import { liftListItem, sinkListItem, splitListItem, wrapInList } from 'prosemirror-schema-list'
import { EditorState, TextSelection, type Command, type Transaction } from 'prosemirror-state'
import { EditorView } from 'prosemirror-view'

const N = schema.nodes
const M = schema.marks

// ---------------------------------------------------------------------------
// Commands

/** Whether `type` is active on the selection (stored marks count for a cursor). */
function markActive(state: EditorState, type: MarkType): boolean {
  const { from, $from, to, empty } = state.selection
  if (empty) return !!type.isInSet(state.storedMarks || $from.marks())
  return state.doc.rangeHasMark(from, to, type)
}

/** The depth of the innermost ancestor of the selection's start of one of `types`, or -1. */
function ancestorDepth(state: EditorState, types: NodeType[]): number {
  const { $from } = state.selection
  for (let d = $from.depth; d > 0; d--) if (types.includes($from.node(d).type)) return d
  return -1
}

function blockIs(state: EditorState, type: NodeType, attrs?: Attrs): boolean {
  const { $from, to } = state.selection
  if (to > $from.end()) return false
  return $from.parent.hasMarkup(type, attrs)
}

/** A block type button: sets the type, or back to a paragraph when it is already set. */
function toggleBlock(type: NodeType, attrs?: Attrs): Command {
  return (state, dispatch) =>
    blockIs(state, type, attrs) && type !== N.paragraph
      ? setBlockType(N.paragraph)(state, dispatch)
      : setBlockType(type, attrs)(state, dispatch)
}

function toggleQuote(): Command {
  return (state, dispatch) =>
    ancestorDepth(state, [N.blockquote]) >= 0 ? lift(state, dispatch) : wrapIn(N.blockquote)(state, dispatch)
}

/** List button: wraps in a list, lifts out of a list of the same type, or switches the type. */
function toggleList(type: NodeType): Command {
  return (state, dispatch) => {
    const depth = ancestorDepth(state, [N.bullet_list, N.ordered_list])
    if (depth < 0) return wrapInList(type, { tight: true })(state, dispatch)
    const { $from } = state.selection
    const list = $from.node(depth)
    if (list.type === type) return liftListItem(N.list_item)(state, dispatch)
    if (dispatch) {
      const attrs = type === N.ordered_list ? { order: 1, tight: list.attrs.tight } : { tight: list.attrs.tight }
      dispatch(state.tr.setNodeMarkup($from.before(depth), type, attrs).scrollIntoView())
    }
    return true
  }
}

/** From the end of the last block of the document (a code block, say), ArrowDown adds a paragraph. */
const exitAtEnd: Command = (state, dispatch) => {
  const { $head, empty } = state.selection
  if (!empty || $head.parentOffset < $head.parent.content.size) return false
  if ($head.parent.type === N.paragraph && $head.depth === 1) return false
  for (let d = $head.depth; d > 0; d--) if ($head.index(d - 1) < $head.node(d - 1).childCount - 1) return false
  if (dispatch) {
    const end = state.doc.content.size
    const tr = state.tr.insert(end, N.paragraph.create())
    dispatch(tr.setSelection(TextSelection.create(tr.doc, end + 1)).scrollIntoView())
  }
  return true
}

/** The link around the selection: its range and mark. */
function linkAt(state: EditorState): { from: number; to: number; mark: Mark } | null {
  const { $from, from, to, empty } = state.selection
  if (!empty) {
    let found: Mark | null = null
    state.doc.nodesBetween(from, to, (node) => {
      found = found ?? M.link.isInSet(node.marks) ?? null
    })
    return found ? { from, to, mark: found } : null
  }
  const parent = $from.parent
  const start = $from.start()
  const pieces: Array<{ from: number; to: number; mark: Mark | undefined }> = []
  let pos = start
  parent.forEach((child) => {
    pieces.push({ from: pos, to: pos + child.nodeSize, mark: M.link.isInSet(child.marks) })
    pos += child.nodeSize
  })
  const i = pieces.findIndex((p) => p.mark && p.from <= from && from <= p.to && (p.from < from || from < p.to))
  if (i < 0) return null
  const mark = pieces[i]!.mark!
  let a = i
  let b = i
  while (a > 0 && pieces[a - 1]!.mark?.eq(mark)) a--
  while (b < pieces.length - 1 && pieces[b + 1]!.mark?.eq(mark)) b++
  return { from: pieces[a]!.from, to: pieces[b]!.to, mark }
}

// ---------------------------------------------------------------------------
// Input rules, keys, paste

function rules(): InputRule[] {
  return [
    textblockTypeInputRule(/^(#{1,6})\s$/, N.heading, (m) => ({ level: m[1]!.length })),
    wrappingInputRule(/^\s*>\s$/, N.blockquote),
    wrappingInputRule(/^\s*([-+*])\s$/, N.bullet_list, { tight: true }),
    wrappingInputRule(
      /^(\d{1,9})[.)]\s$/,
      N.ordered_list,
      (m) => ({ order: Number(m[1]), tight: true }),
      (m, node) => node.childCount + Number(node.attrs.order) === Number(m[1]),
    ),
    textblockTypeInputRule(/^```$/, N.code_block),
  ]
}

function keys(): Record<string, Command> {
  const hardBreak: Command = (state, dispatch) => {
    if (dispatch) dispatch(state.tr.replaceSelectionWith(N.hard_break.create()).scrollIntoView())
    return true
  }
  return {
    'Mod-z': undo,
    'Mod-Shift-z': redo,
    'Mod-y': redo,
    Backspace: undoInputRule,
    'Mod-b': toggleMark(M.strong),
    'Mod-B': toggleMark(M.strong),
    'Mod-i': toggleMark(M.em),
    'Mod-I': toggleMark(M.em),
    'Mod-`': toggleMark(M.code),
    'Shift-Enter': chainCommands(exitCode, hardBreak),
    'Mod-Enter': exitCode,
    Enter: splitListItem(N.list_item),
    'Mod-[': liftListItem(N.list_item),
    'Mod-]': sinkListItem(N.list_item),
    'Shift-Ctrl-0': setBlockType(N.paragraph),
    'Shift-Ctrl-2': setBlockType(N.heading, { level: 2 }),
    'Shift-Ctrl-3': setBlockType(N.heading, { level: 3 }),
    'Shift-Ctrl-\\': setBlockType(N.code_block),
    ArrowDown: exitAtEnd,
  }
}

/** Does plain text look like Markdown (block syntax, emphasis, links, code)? */
function looksLikeMarkdown(text: string): boolean {
  return (
    /^ {0,3}(#{1,6}\s|>|[-+*]\s|\d{1,9}[.)]\s|```|~~~|([-*_] *){3,}$)/m.test(text) ||
    /\*\*[^*\n]+\*\*|__[^_\n]+__|(^|\W)[*_][^*_\s][^*_\n]*[*_](\W|$)|`[^`\n]+`|!?\[[^\]\n]*\]\([^)\s]+\)/.test(text)
  )
}

function markdownSlice(text: string): Slice | null {
  let doc
  try {
    doc = defaultMarkdownParser.parse(text)
  } catch {
    return null
  }
  if (!doc.content.size) return null
  const only = doc.childCount === 1 ? doc.firstChild : null
  if (only && only.type === N.paragraph) {
    // Inline text: keep the spaces around it, which Markdown would trim ("word " pasted mid-sentence).
    const lead = /^[ \t]*/.exec(text)![0].replace(/\t/g, ' ')
    const trail = /[ \t]*$/.exec(text)![0].replace(/\t/g, ' ')
    let content = only.content
    if (lead) content = Fragment.from(schema.text(lead)).append(content)
    if (trail) content = content.append(Fragment.from(schema.text(trail)))
    return new Slice(Fragment.from(N.paragraph.create(null, content)), 1, 1)
  }
  return Slice.maxOpen(doc.content)
}

// ---------------------------------------------------------------------------
// The DOM around the editor

let nextId = 0

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  if (className) e.className = className
  if (text !== undefined) e.textContent = text
  return e
}

interface Tool {
  label: string
  run: Command
  /** For toggles: whether the button shows as pressed. */
  active?: (state: EditorState) => boolean
  /** Extra keyboard shortcut shown in the title. */
  shortcut?: string
}

interface ToolButton {
  tool: Tool
  button: HTMLButtonElement
}

/** One enhanced textarea. */
class Editor {
  readonly textarea: HTMLTextAreaElement
  readonly wrapper: HTMLDivElement
  readonly view: EditorView
  private readonly buttons: ToolButton[] = []
  private readonly linkButton: HTMLButtonElement
  private readonly toolbar: HTMLDivElement
  private readonly linkForm: HTMLDivElement
  private readonly linkInput: HTMLInputElement
  private readonly linkError: HTMLElement
  private readonly linkRemove: HTMLButtonElement
  private readonly editable: boolean
  private shift = false

  constructor(textarea: HTMLTextAreaElement) {
    this.textarea = textarea
    const base = textarea.id || `editor-${++nextId}`
    this.editable = !textarea.disabled && !textarea.readOnly

    // The label: the textarea's <label>, given an id if it has none.
    let labelledBy = textarea.getAttribute('aria-labelledby')
    const label = textarea.labels?.[0]
    if (label) {
      if (!label.id) label.id = `${base}-label`
      labelledBy = label.id
      label.addEventListener('click', (ev) => {
        ev.preventDefault()
        this.view.focus()
      })
    }

    this.wrapper = el('div', 'editor')
    this.wrapper.dataset.editorFor = base
    const toolbar = el('div', 'editor-toolbar')
    toolbar.setAttribute('role', 'toolbar')
    // Not named after the field: getByLabel('<label text>') must find the editor alone.
    toolbar.setAttribute('aria-label', 'Formatting')

    const content = el('div', 'editor-content')
    content.id = `${base}-editor`
    toolbar.setAttribute('aria-controls', content.id)

    // The link form (a div, not a <form>: it sits inside the page's form).
    // It is in the document only while it is open, so its field is never one of several
    // "Link address" fields on a page with more than one editor.
    this.linkForm = el('div', 'editor-link')
    const linkLabel = el('label', '', 'Link address')
    this.linkInput = el('input', '')
    this.linkInput.type = 'url'
    this.linkInput.id = `${base}-link-url`
    this.linkInput.placeholder = 'https://'
    this.linkInput.setAttribute('autocomplete', 'url')
    linkLabel.htmlFor = this.linkInput.id
    this.linkError = el('small', 'error')
    this.linkError.id = `${base}-link-error`
    this.linkError.hidden = true
    const apply = el('button', 'editor-link-apply', 'Apply link')
    apply.type = 'button'
    this.linkRemove = el('button', 'editor-link-remove secondary outline', 'Remove link')
    this.linkRemove.type = 'button'
    const cancel = el('button', 'editor-link-cancel secondary outline', 'Cancel')
    cancel.type = 'button'
    const linkRow = el('div', 'editor-link-row')
    linkRow.append(this.linkInput, apply, this.linkRemove, cancel)
    this.linkForm.append(linkLabel, linkRow, this.linkError)
    apply.addEventListener('click', () => this.applyLink())
    this.linkRemove.addEventListener('click', () => this.removeLink())
    cancel.addEventListener('click', () => this.closeLink(true))
    this.linkInput.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault() // never submit the page's form from here
        this.applyLink()
      } else if (ev.key === 'Escape') {
        ev.preventDefault()
        this.closeLink(true)
      }
    })
    this.linkForm.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') {
        ev.preventDefault()
        this.closeLink(true)
      }
    })

    const linkTool: Tool = {
      label: 'Link',
      run: (_state, dispatch) => {
        if (!this.editable) return false
        if (dispatch) this.openLink()
        return true
      },
      active: (state) => linkAt(state) !== null,
    }
    const groups: Tool[][] = [
      [
        { label: 'Bold', run: toggleMark(M.strong), active: (s) => markActive(s, M.strong), shortcut: 'Mod-B' },
        { label: 'Italic', run: toggleMark(M.em), active: (s) => markActive(s, M.em), shortcut: 'Mod-I' },
        { label: 'Code', run: toggleMark(M.code), active: (s) => markActive(s, M.code), shortcut: 'Mod-`' },
        linkTool,
      ],
      [
        {
          label: 'Heading 2',
          run: toggleBlock(N.heading, { level: 2 }),
          active: (s) => blockIs(s, N.heading, { level: 2 }),
        },
        {
          label: 'Heading 3',
          run: toggleBlock(N.heading, { level: 3 }),
          active: (s) => blockIs(s, N.heading, { level: 3 }),
        },
        { label: 'Paragraph', run: setBlockType(N.paragraph), active: (s) => blockIs(s, N.paragraph) },
      ],
      [
        { label: 'Quote', run: toggleQuote(), active: (s) => ancestorDepth(s, [N.blockquote]) >= 0 },
        { label: 'Bullet list', run: toggleList(N.bullet_list), active: (s) => listType(s) === N.bullet_list },
        { label: 'Numbered list', run: toggleList(N.ordered_list), active: (s) => listType(s) === N.ordered_list },
        { label: 'Code block', run: toggleBlock(N.code_block), active: (s) => blockIs(s, N.code_block) },
      ],
      [
        { label: 'Undo', run: undo, shortcut: 'Mod-Z' },
        { label: 'Redo', run: redo, shortcut: 'Mod-Shift-Z' },
      ],
    ]
    const mac = /Mac|iP(hone|ad|od)/.test(navigator.platform)
    for (const group of groups) {
      const g = el('div', 'editor-group')
      for (const tool of group) {
        const button = el('button', 'editor-button', tool.label)
        button.type = 'button'
        button.tabIndex = -1
        if (tool.active) button.setAttribute('aria-pressed', 'false')
        if (tool.shortcut) button.title = tool.shortcut.replace('Mod', mac ? '⌘' : 'Ctrl').replace(/-/g, '+')
        // Keep the editor's focus and selection when the button is clicked with a pointer.
        button.addEventListener('mousedown', (ev) => ev.preventDefault())
        button.addEventListener('click', (ev) => {
          if (tool.run(this.view.state, this.view.dispatch, this.view) && tool !== linkTool) {
            // A pointer click goes back to the text; a keyboard press stays on the button,
            // so the new aria-pressed state is announced.
            if (ev.detail > 0) this.view.focus()
          }
        })
        this.buttons.push({ tool, button })
        g.append(button)
      }
      toolbar.append(g)
    }
    this.linkButton = this.buttons.find((b) => b.tool === linkTool)!.button
    this.linkButton.setAttribute('aria-expanded', 'false')
    this.linkForm.id = `${base}-link`
    toolbar.addEventListener('keydown', (ev) => this.rove(ev))
    toolbar.addEventListener('focusin', (ev) => {
      const b = this.buttons.find((x) => x.button === ev.target)
      if (b) this.setTabStop(b.button)
    })

    this.toolbar = toolbar
    this.wrapper.append(toolbar, content)

    const attributes: Record<string, string> = {
      role: 'textbox',
      'aria-multiline': 'true',
      class: 'editor-content',
    }
    if (labelledBy) attributes['aria-labelledby'] = labelledBy
    else if (textarea.getAttribute('aria-label')) attributes['aria-label'] = textarea.getAttribute('aria-label')!
    for (const a of ['aria-describedby', 'aria-invalid'] as const) {
      const v = textarea.getAttribute(a)
      if (v) attributes[a] = v
    }
    if (textarea.required) attributes['aria-required'] = 'true'
    if (!this.editable) attributes['aria-readonly'] = 'true'
    if (textarea.placeholder) attributes['aria-placeholder'] = textarea.placeholder

    this.view = new EditorView(
      { mount: content },
      {
        state: this.createState(textarea.value),
        attributes,
        editable: () => this.editable,
        dispatchTransaction: (tr) => this.dispatch(tr),
        handleDOMEvents: {
          keydown: (_view, ev) => {
            this.shift = ev.shiftKey
            return false
          },
          keyup: (_view, ev) => {
            this.shift = ev.shiftKey
            return false
          },
        },
        clipboardTextParser: (text, _context, plain) => (plain ? null : markdownSlice(text)) as Slice,
        handlePaste: (view, ev) => this.paste(view, ev),
      },
    )

    // The textarea stays in the form (and is submitted), but only the editor is shown and labelled.
    // `required` would block submitting with a control nobody can reach; the editor says aria-required
    // and the server checks the value, as it does without JS.
    textarea.required = false
    textarea.hidden = true
    textarea.setAttribute('aria-hidden', 'true')
    textarea.tabIndex = -1
    // The label names the editor (aria-labelledby), no longer the hidden textarea: `for` now
    // points at the editor, which is not a labelable element, so the label labels nothing
    // natively and getByLabel / screen readers find exactly one control. Its click focuses
    // the editor (above).
    if (label) label.htmlFor = content.id
    textarea.after(this.wrapper)
    textarea.form?.addEventListener('reset', () => {
      // After the reset the textarea has its default value again.
      window.setTimeout(() => this.load(textarea.value), 0)
    })
    this.setTabStop(this.buttons[0]!.button)
    this.updateToolbar()
  }

  private createState(markdown: string): EditorState {
    let doc
    try {
      doc = defaultMarkdownParser.parse(markdown)
    } catch {
      doc = schema.node('doc', null, [N.paragraph.create(null, markdown ? schema.text(markdown) : null)])
    }
    return EditorState.create({
      doc,
      plugins: [
        inputRules({ rules: rules() }),
        keymap(keys()),
        keymap(baseKeymap),
        history(),
      ],
    })
  }

  /** Replaces the document (after a form reset); leaves the textarea as it is. */
  load(markdown: string): void {
    this.view.updateState(this.createState(markdown))
    this.updateToolbar()
  }

  private dispatch(tr: Transaction): void {
    const state = this.view.state.apply(tr)
    this.view.updateState(state)
    if (tr.docChanged) {
      this.textarea.value = defaultMarkdownSerializer.serialize(state.doc)
      this.textarea.dispatchEvent(new Event('input', { bubbles: true }))
    }
    this.updateToolbar()
  }

  private paste(view: EditorView, ev: ClipboardEvent): boolean {
    const data = ev.clipboardData
    if (!data || this.shift || view.state.selection.$from.parent.type.spec.code) return false
    const html = data.getData('text/html')
    const text = data.getData('text/plain')
    // Without text/html, clipboardTextParser parses the text as Markdown. With it, the text
    // wins only when it looks like Markdown (copied from a code editor, say) and the HTML is
    // not ProseMirror's own.
    if (!html || !text || /data-pm-slice/.test(html) || !looksLikeMarkdown(text)) return false
    const slice = markdownSlice(text)
    if (!slice) return false
    view.dispatch(view.state.tr.replaceSelection(slice).scrollIntoView().setMeta('paste', true).setMeta('uiEvent', 'paste'))
    return true
  }

  private updateToolbar(): void {
    const state = this.view.state
    for (const { tool, button } of this.buttons) {
      const pressed = tool.active ? tool.active(state) : false
      if (tool.active) button.setAttribute('aria-pressed', String(pressed))
      // A pressed button stays enabled (Paragraph in a paragraph does nothing, but says where you are).
      button.disabled = !this.editable || (!pressed && !tool.run(state))
    }
    const current = this.buttons.find((b) => b.button.tabIndex === 0)?.button
    if (!current || current.disabled) {
      const first = this.buttons.find((b) => !b.button.disabled)
      if (first) this.setTabStop(first.button)
    }
  }

  // Toolbar keyboard: one tab stop, arrows move between the buttons (WAI-ARIA toolbar pattern).
  private setTabStop(button: HTMLButtonElement): void {
    for (const b of this.buttons) b.button.tabIndex = b.button === button ? 0 : -1
  }

  private rove(ev: KeyboardEvent): void {
    const enabled = this.buttons.map((b) => b.button).filter((b) => !b.disabled)
    const i = enabled.indexOf(ev.target as HTMLButtonElement)
    if (i < 0) return
    let next: HTMLButtonElement | undefined
    if (ev.key === 'ArrowRight' || ev.key === 'ArrowDown') next = enabled[(i + 1) % enabled.length]
    else if (ev.key === 'ArrowLeft' || ev.key === 'ArrowUp') next = enabled[(i - 1 + enabled.length) % enabled.length]
    else if (ev.key === 'Home') next = enabled[0]
    else if (ev.key === 'End') next = enabled[enabled.length - 1]
    if (!next) return
    ev.preventDefault()
    this.setTabStop(next)
    next.focus()
  }

  // The link form.
  private openLink(): void {
    const link = linkAt(this.view.state)
    this.linkInput.value = link ? String(link.mark.attrs.href ?? '') : ''
    this.linkRemove.hidden = !link
    this.showLinkError(null)
    this.toolbar.after(this.linkForm)
    this.linkButton.setAttribute('aria-expanded', 'true')
    this.linkButton.setAttribute('aria-controls', this.linkForm.id)
    this.linkInput.focus()
    this.linkInput.select()
  }

  private closeLink(refocus: boolean): void {
    this.linkForm.remove()
    this.showLinkError(null)
    this.linkButton.setAttribute('aria-expanded', 'false')
    this.linkButton.removeAttribute('aria-controls')
    if (refocus) this.view.focus()
  }

  private showLinkError(message: string | null): void {
    this.linkError.textContent = message ?? ''
    this.linkError.hidden = message === null
    if (message === null) {
      this.linkInput.removeAttribute('aria-invalid')
      this.linkInput.removeAttribute('aria-describedby')
    } else {
      this.linkInput.setAttribute('aria-invalid', 'true')
      this.linkInput.setAttribute('aria-describedby', this.linkError.id)
    }
  }

  private applyLink(): void {
    const href = normalizeHref(this.linkInput.value)
    if (href === null) {
      this.showLinkError('Enter a web address, such as https://example.org, or a path starting with /.')
      this.linkInput.focus()
      return
    }
    if (href === '') {
      this.removeLink()
      return
    }
    const state = this.view.state
    const mark = M.link.create({ href })
    const existing = linkAt(state)
    let tr = state.tr
    if (existing && state.selection.empty) {
      tr = tr.removeMark(existing.from, existing.to, M.link).addMark(existing.from, existing.to, mark)
    } else if (state.selection.empty) {
      const at = state.selection.from
      tr = tr.insert(at, schema.text(href, [mark, ...state.selection.$from.marks().filter((m) => m.type !== M.link)]))
    } else {
      const { from, to } = state.selection
      tr = tr.removeMark(from, to, M.link).addMark(from, to, mark)
    }
    this.view.dispatch(tr.scrollIntoView())
    this.closeLink(true)
  }

  private removeLink(): void {
    const link = linkAt(this.view.state)
    if (link) this.view.dispatch(this.view.state.tr.removeMark(link.from, link.to, M.link))
    this.closeLink(true)
  }

  destroy(): void {
    this.view.destroy()
  }
}

function listType(state: EditorState): NodeType | null {
  const d = ancestorDepth(state, [N.bullet_list, N.ordered_list])
  return d < 0 ? null : state.selection.$from.node(d).type
}

/** `''` for an empty field, null for an address we won't link, else the href. */
function normalizeHref(input: string): string | null {
  const v = input.trim()
  if (!v) return ''
  if (/^[/#?]/.test(v)) return v
  if (/^[a-z][a-z0-9+.-]*:/i.test(v)) return /^(https?|mailto|ipfs|ipns):/i.test(v) ? v : null
  // "example.org/page": a web address without its scheme.
  if (/^[^\s/]+\.[^\s/]+/.test(v) && !/\s/.test(v)) return `https://${v}`
  return null
}

// ---------------------------------------------------------------------------
// Finding the textareas, now and when htmx swaps new ones in

const editors = new Map<HTMLTextAreaElement, Editor>()

function enhance(textarea: HTMLTextAreaElement): void {
  if (editors.has(textarea)) return
  // A wrapper left over from a restored snapshot (htmx history) is dead: drop it.
  const next = textarea.nextElementSibling
  if (next instanceof HTMLElement && next.classList.contains('editor')) {
    next.remove()
    if (textarea.id) {
      const stale = document.querySelectorAll<HTMLLabelElement>(`label[for="${CSS.escape(textarea.id)}-editor"]`)
      for (const l of Array.from(stale)) l.htmlFor = textarea.id
    }
    textarea.removeAttribute('aria-hidden')
  }
  editors.set(textarea, new Editor(textarea))
}

function scan(): void {
  for (const [textarea, editor] of editors) {
    if (!textarea.isConnected) {
      editor.destroy()
      editors.delete(textarea)
    }
  }
  for (const t of Array.from(document.querySelectorAll<HTMLTextAreaElement>('textarea[data-editor]'))) enhance(t)
}

function start(): void {
  scan()
  let queued = false
  new MutationObserver(() => {
    if (queued) return
    queued = true
    queueMicrotask(() => {
      queued = false
      scan()
    })
  }).observe(document.body, { childList: true, subtree: true })
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start)
else start()
