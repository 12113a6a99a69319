// Loaded on every page. Copy buttons:
//   <button type="button" data-copy="TEXT">Copy</button>
// copies TEXT to the clipboard and shows "Copied" for a moment.
// Strict CSP: no inline styles, no eval.

const RESET_MS = 1500
const timers = new WeakMap<HTMLElement, number>()

function fallbackCopy(text: string): boolean {
  // navigator.clipboard only exists in secure contexts (https, localhost).
  const prev = document.activeElement
  const ta = document.createElement('textarea')
  ta.className = 'copy-buffer'
  ta.value = text
  ta.readOnly = true
  document.body.append(ta)
  ta.focus({ preventScroll: true })
  ta.select()
  let ok = false
  try {
    ok = document.execCommand('copy')
  } catch {
    ok = false
  }
  ta.remove()
  if (prev instanceof HTMLElement) prev.focus({ preventScroll: true })
  return ok
}

async function copy(text: string): Promise<boolean> {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text)
      return true
    } catch {
      // fall through to the legacy path
    }
  }
  return fallbackCopy(text)
}

function flash(button: HTMLElement, label: string): void {
  const original = button.dataset.copyLabel ?? button.textContent ?? ''
  button.dataset.copyLabel = original
  button.textContent = label
  const old = timers.get(button)
  if (old !== undefined) window.clearTimeout(old)
  timers.set(
    button,
    window.setTimeout(() => {
      button.textContent = original
      delete button.dataset.copyLabel
      timers.delete(button)
    }, RESET_MS),
  )
}

document.addEventListener('click', (ev) => {
  const target = ev.target
  if (!(target instanceof Element)) return
  const button = target.closest<HTMLElement>('[data-copy]')
  if (!button) return
  const text = button.dataset.copy ?? ''
  void copy(text).then((ok) => flash(button, ok ? 'Copied' : 'Copy failed'))
})

// The main menu is open in the markup, so that it shows without JavaScript; on a phone it
// starts folded behind its "Menu" button.
const PHONE = '(max-width: 640px)'
function foldMenu(): void {
  if (!window.matchMedia(PHONE).matches) return
  document.querySelectorAll<HTMLDetailsElement>('details.menu').forEach((d) => {
    d.open = false
  })
}
if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', foldMenu)
} else {
  foldMenu()
}
