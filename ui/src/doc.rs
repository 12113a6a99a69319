//! Rich-text documents (`core.text`, a post's `doc`) as HTML: escaped by maud, links and
//! images only where the document's own validation allows them.

use maud::{Markup, html};
use mnode_dag::doc::{Block, Doc, Inline, ListItem, Marks};

/// The document's blocks; headings start at `<h2>` (the page's title is the `<h1>`).
pub(crate) fn render(doc: &Doc) -> Markup {
    html! { div.doc { @for b in &doc.content { (block(b)) } } }
}

fn block(b: &Block) -> Markup {
    match b {
        Block::Paragraph { content } => html! { p { (inlines(content)) } },
        Block::Heading { level, content } => {
            let inner = inlines(content);
            match level.saturating_add(1) {
                0..=2 => html! { h2 { (inner) } },
                3 => html! { h3 { (inner) } },
                4 => html! { h4 { (inner) } },
                5 => html! { h5 { (inner) } },
                _ => html! { h6 { (inner) } },
            }
        }
        Block::Blockquote { content } => {
            html! { blockquote { @for b in content { (block(b)) } } }
        }
        Block::HorizontalRule => html! { hr; },
        Block::CodeBlock { params, text } => {
            let lang = params.split_whitespace().next().filter(|l| !l.is_empty());
            html! { pre { code data-lang=[lang] { (text) } } }
        }
        Block::OrderedList { order, content, .. } => {
            let start = (*order != 1).then_some(*order);
            html! { ol start=[start] { @for i in content { (item(i)) } } }
        }
        Block::BulletList { content, .. } => html! { ul { @for i in content { (item(i)) } } },
    }
}

fn item(i: &ListItem) -> Markup {
    html! { li { @for b in &i.content { (block(b)) } } }
}

fn inlines(content: &[Inline]) -> Markup {
    html! { @for i in content { (inline(i)) } }
}

/// A gateway path for `ipfs://CID`; other targets as they are (the document checked them).
fn href(target: &str) -> String {
    match target.strip_prefix("ipfs://") {
        Some(rest) => format!("/ipfs/{rest}"),
        None => target.to_owned(),
    }
}

fn inline(i: &Inline) -> Markup {
    match i {
        Inline::Text { text, marks } => marked(marks, html! { (text) }),
        Inline::Image {
            src,
            alt,
            title,
            marks,
        } => marked(
            marks,
            html! { img src=(href(src)) alt=(alt.as_deref().unwrap_or("")) title=[title.as_deref()] loading="lazy"; },
        ),
        Inline::HardBreak { .. } => html! { br; },
    }
}

fn marked(marks: &Marks, inner: Markup) -> Markup {
    let mut out = inner;
    if marks.code {
        out = html! { code { (out) } };
    }
    if marks.em {
        out = html! { em { (out) } };
    }
    if marks.strong {
        out = html! { strong { (out) } };
    }
    if let Some(l) = &marks.link {
        out = html! { a href=(href(&l.href)) title=[l.title.as_deref()] rel="nofollow ugc noopener" { (out) } };
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_escaped_html() {
        let doc = Doc::from_markdown(
            "# Title\n\nSome **bold** and _em_ with [a link](https://example.org/) and <script>x</script>.\n\n- one\n- two\n\n```rust\nfn main() {}\n```",
        );
        let html = render(&doc).into_string();
        assert!(html.contains("<h2>Title</h2>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("<em>em</em>"), "{html}");
        assert!(
            html.contains(
                r#"<a href="https://example.org/" rel="nofollow ugc noopener">a link</a>"#
            ),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("<ul><li><p>one</p></li>"), "{html}");
        assert!(
            html.contains(r#"<code data-lang="rust">fn main() {}"#),
            "{html}"
        );
    }
}
