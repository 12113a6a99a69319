// Upload island: progressive enhancement of `<form data-upload="URL">`.
//
// Without JS the form is an ordinary multipart POST and the server receives
// the files inline. With JS, on submit every selected file is POSTed on its
// own (one at a time) to URL as multipart/form-data with a single part named
// `file`, with the header `X-CSRF-Token` taken from the form's hidden
// `_csrf` input. Progress is shown per file. Each answer's `record.id` is
// appended to the form as `<input type="hidden" name="<file input's name>">`;
// then the file inputs are disabled and the form is submitted normally.
//
// Strict CSP: no inline styles, no eval, no innerHTML; classes only.
// See ../README.md for the full contract.

/** The 201 answer of the upload endpoint (only what we read). */
interface UploadAnswer {
  record?: { id?: unknown }
}

/** Per-form state, kept across attempts so a retry skips finished files. */
interface FormState {
  busy: boolean
  /** File object -> the hidden input carrying its record id. */
  done: Map<File, HTMLInputElement>
  /** Controls this island disabled for the final submit (undone on pageshow). */
  locked: Array<HTMLInputElement | HTMLButtonElement>
}

class UploadError extends Error {}

const states = new WeakMap<HTMLFormElement, FormState>()
let nextId = 0

function stateOf(form: HTMLFormElement): FormState {
  let st = states.get(form)
  if (!st) {
    st = { busy: false, done: new Map(), locked: [] }
    states.set(form, st)
  }
  return st
}

function fileInputs(form: HTMLFormElement): HTMLInputElement[] {
  return Array.from(form.elements).filter(
    (el): el is HTMLInputElement => el instanceof HTMLInputElement && el.type === 'file',
  )
}

function submitButtons(form: HTMLFormElement): Array<HTMLButtonElement | HTMLInputElement> {
  return Array.from(form.elements).filter(
    (el): el is HTMLButtonElement | HTMLInputElement =>
      (el instanceof HTMLButtonElement && el.type === 'submit') ||
      (el instanceof HTMLInputElement && (el.type === 'submit' || el.type === 'image')),
  )
}

function csrfToken(form: HTMLFormElement): string | null {
  const el = form.elements.namedItem('_csrf')
  return el instanceof HTMLInputElement ? el.value : null
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  if (className) e.className = className
  if (text !== undefined) e.textContent = text
  return e
}

/** The upload list / alert that this island put right after `input`. */
function ownSiblings(input: HTMLInputElement): Element[] {
  const found: Element[] = []
  let sib = input.nextElementSibling
  while (sib && (sib.classList.contains('upload-list') || sib.classList.contains('upload-error'))) {
    found.push(sib)
    sib = sib.nextElementSibling
  }
  return found
}

function clearFeedback(input: HTMLInputElement): void {
  for (const e of ownSiblings(input)) e.remove()
}

function errorBox(message: string): HTMLElement {
  const alert = el('p', 'upload-error', message)
  alert.setAttribute('role', 'alert')
  return alert
}

function showError(input: HTMLInputElement, message: string): void {
  input.after(errorBox(message))
}

/** Pulls a message out of `{"error":{"message"}}`, `{"message"}` or `{"error":"…"}`. */
function errorMessage(xhr: XMLHttpRequest): string {
  try {
    const body: unknown = JSON.parse(xhr.responseText)
    if (body && typeof body === 'object') {
      const b = body as { error?: unknown; message?: unknown }
      const inner = b.error
      if (inner && typeof inner === 'object') {
        const m = (inner as { message?: unknown }).message
        if (typeof m === 'string' && m) return m
      }
      if (typeof inner === 'string' && inner) return inner
      if (typeof b.message === 'string' && b.message) return b.message
    }
  } catch {
    // not JSON: fall through
  }
  if (!xhr.status) return 'upload failed'
  return xhr.statusText ? `${xhr.status} ${xhr.statusText}` : `HTTP ${xhr.status}`
}

interface Row {
  item: HTMLElement
  progress: HTMLProgressElement
  pct: HTMLElement
  shown: number
}

function addRow(list: HTMLElement, file: File): Row {
  const id = `upload-progress-${++nextId}`
  const item = el('div', 'upload-item')
  const label = el('label', 'upload-name', file.name)
  label.htmlFor = id
  const progress = el('progress', 'upload-progress')
  progress.id = id
  progress.max = 100
  progress.value = 0
  const pct = el('span', 'upload-percent', '0%')
  item.append(label, progress, pct)
  list.append(item)
  return { item, progress, pct, shown: 0 }
}

function setPercent(row: Row, n: number): void {
  const p = Math.max(0, Math.min(100, Math.floor(n)))
  if (p === row.shown && row.progress.hasAttribute('value')) return
  row.shown = p
  row.progress.value = p
  row.pct.textContent = `${p}%`
}

function markDone(row: Row): void {
  setPercent(row, 100)
  row.item.classList.add('upload-done')
}

/**
 * The form's "Who can read" choice (`_readers`, `_to`), sent before each file so that a
 * private record's files are sealed for the same readers.
 */
function audienceOf(form: HTMLFormElement): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const name of ['_readers', '_to']) {
    const el = form.elements.namedItem(name)
    if (el instanceof HTMLSelectElement || el instanceof HTMLInputElement) out.push([name, el.value])
  }
  return out
}

/** POSTs one file; resolves with its record id, rejects with UploadError. */
function send(
  url: string,
  token: string | null,
  audience: Array<[string, string]>,
  file: File,
  row: Row,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', url)
    xhr.setRequestHeader('Accept', 'application/json')
    if (token !== null) xhr.setRequestHeader('X-CSRF-Token', token)
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable && ev.total > 0) {
        // Leave the last percent to the server's answer.
        setPercent(row, Math.min(99, (ev.loaded / ev.total) * 100))
      } else {
        row.progress.removeAttribute('value') // indeterminate
      }
    }
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        let answer: UploadAnswer | null = null
        try {
          answer = JSON.parse(xhr.responseText) as UploadAnswer
        } catch {
          answer = null
        }
        const id = answer && answer.record ? answer.record.id : undefined
        if (typeof id === 'string' && id) {
          resolve(id)
        } else {
          reject(new UploadError(`${file.name}: unexpected answer from the server`))
        }
      } else {
        reject(new UploadError(`${file.name}: ${errorMessage(xhr)}`))
      }
    }
    xhr.onerror = () => reject(new UploadError(`${file.name}: network error, upload failed`))
    xhr.onabort = () => reject(new UploadError(`${file.name}: upload aborted`))
    xhr.ontimeout = () => reject(new UploadError(`${file.name}: upload timed out`))
    const body = new FormData()
    for (const [name, value] of audience) body.append(name, value)
    body.append('file', file, file.name)
    xhr.send(body)
  })
}

async function run(form: HTMLFormElement, url: string, submitter: HTMLElement | null): Promise<void> {
  const st = stateOf(form)
  const inputs = fileInputs(form).filter((i) => !i.disabled)
  const buttons = submitButtons(form).filter((b) => !b.disabled)

  // Forget records of files that are no longer selected.
  const selected = new Set<File>()
  for (const input of inputs) for (const f of Array.from(input.files ?? [])) selected.add(f)
  for (const [file, hidden] of st.done) {
    if (!selected.has(file)) {
      hidden.remove()
      st.done.delete(file)
    }
  }

  for (const e of Array.from(form.querySelectorAll(':scope > .upload-error'))) e.remove()
  st.busy = true
  form.setAttribute('aria-busy', 'true')
  for (const b of buttons) b.disabled = true
  // Pico CSS draws a spinner in a button with aria-busy="true".
  const spinner = submitter instanceof HTMLButtonElement && buttons.includes(submitter) ? submitter : null
  spinner?.setAttribute('aria-busy', 'true')
  let current: HTMLInputElement | null = null
  let row: Row | null = null
  try {
    for (const input of inputs) {
      clearFeedback(input)
      const files = Array.from(input.files ?? [])
      if (files.length === 0) continue
      current = input
      const list = el('div', 'upload-list')
      list.setAttribute('aria-live', 'polite')
      input.after(list)
      for (const file of files) {
        row = addRow(list, file)
        if (st.done.has(file)) {
          markDone(row)
          continue
        }
        const id = await send(url, csrfToken(form), audienceOf(form), file, row)
        const hidden = el('input', 'upload-record')
        hidden.type = 'hidden'
        hidden.name = input.name
        hidden.value = id
        form.append(hidden)
        st.done.set(file, hidden)
        markDone(row)
        row = null
      }
    }
    current = null
    // Keep the clicked button's name=value, which form.submit() would drop.
    if (
      (submitter instanceof HTMLButtonElement || submitter instanceof HTMLInputElement) &&
      submitter.name
    ) {
      const extra = el('input', 'upload-submitter')
      extra.type = 'hidden'
      extra.name = submitter.name
      extra.value = submitter.value
      form.append(extra)
    }
    for (const input of inputs) input.disabled = true
    st.locked = [...inputs, ...buttons]
    // Not form.submit(): a control named "submit" would shadow it.
    HTMLFormElement.prototype.submit.call(form)
  } catch (err) {
    const message = err instanceof UploadError ? err.message : 'Upload failed'
    row?.item.classList.add('upload-failed')
    if (current) showError(current, message)
    else form.prepend(errorBox(message))
    for (const b of buttons) b.disabled = false
    spinner?.removeAttribute('aria-busy')
    if (!(err instanceof UploadError)) throw err
  } finally {
    st.busy = false
    form.removeAttribute('aria-busy')
  }
}

document.addEventListener('submit', (ev) => {
  const form = ev.target
  if (!(form instanceof HTMLFormElement) || ev.defaultPrevented) return
  const url = form.dataset.upload
  if (!url) return
  ev.preventDefault()
  if (stateOf(form).busy) return
  void run(form, url, ev.submitter)
})

// A new selection makes the old progress / error stale.
document.addEventListener('change', (ev) => {
  const input = ev.target
  if (input instanceof HTMLInputElement && input.type === 'file' && input.form?.dataset.upload) {
    clearFeedback(input)
  }
})

// Back/forward cache: the page comes back with the inputs disabled by us.
window.addEventListener('pageshow', (ev) => {
  if (!ev.persisted) return
  for (const form of Array.from(document.querySelectorAll<HTMLFormElement>('form[data-upload]'))) {
    const st = states.get(form)
    if (!st) continue
    for (const c of st.locked) {
      c.disabled = false
      c.removeAttribute('aria-busy')
    }
    st.locked = []
    for (const h of Array.from(form.querySelectorAll('input.upload-submitter'))) h.remove()
  }
})
