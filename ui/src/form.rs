//! Forms made from a kind's JSON Schema, the way the API's request bodies are: every property
//! of the body becomes a labelled control, what is typed becomes the body again, and the
//! kind's own validation says which field is wrong.
//!
//! | schema | control |
//! |---|---|
//! | string | text input; a textarea for prose fields (`text`, `bio`, `description`, …) |
//! | integer | number input |
//! | boolean | checkbox |
//! | enum of strings | select |
//! | link (`{"/": cid}`) whose description names kinds (`` `art.image` ``) | a select (one) or checkboxes (many) of records of those kinds; a file input where they are files; a "New artist" box where they are artists |
//! | link naming no kind | a text input for a CID |
//! | list of strings | text input, comma separated |
//! | object | its fields, labelled after it (`Title`, `Title, short form`) |
//! | file data (`{blob, name, media_type, size}`) | the file itself, uploaded |
//! | anything else | a DAG-JSON textarea |

use std::collections::HashMap;

use maud::{Markup, html};
use mnode_dag::doc::Doc;
use mnode_dag::{
    Ipld,
    registry::{self, KindInfo, SchemaError, Strictness},
};
use serde_json::{Map, Value, json};

use crate::fmt::humanise;

/// Prose fields get a textarea.
const LONG: [&str; 7] = [
    "text",
    "bio",
    "description",
    "content",
    "note",
    "statement",
    "body",
];

/// Kinds whose records hold a file.
pub(crate) const MEDIA_KINDS: [&str; 4] = ["art.image", "art.audio", "art.video", "core.file"];

/// How a field is edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Widget {
    Text {
        long: bool,
    },
    Number,
    Checkbox,
    Select(Vec<String>),
    /// Links to records of `kinds`.
    Link {
        kinds: Vec<&'static str>,
        many: bool,
    },
    /// A link naming no kind: a CID typed in.
    Cid,
    Tags,
    Group(Vec<Field>),
    /// The file of a file record: set by uploading, never edited.
    File,
    /// A rich-text document (`mnode_dag::doc::Doc`), edited as Markdown (in the editor
    /// island when scripts run).
    Doc,
    Json,
}

/// One control of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    /// The input's name: the body's path, `title.full`.
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) hint: Option<String>,
    pub(crate) required: bool,
    pub(crate) widget: Widget,
}

impl Field {
    fn id(&self) -> String {
        format!("f-{}", self.name.replace('.', "-"))
    }

    /// Whether this field takes uploaded files.
    pub(crate) fn takes_files(&self) -> bool {
        match &self.widget {
            Widget::Link { kinds, .. } => kinds.iter().any(|k| MEDIA_KINDS.contains(k)),
            Widget::File => true,
            Widget::Group(fields) => fields.iter().any(Field::takes_files),
            _ => false,
        }
    }

    /// Whether this field links artists (and so offers to make one inline).
    pub(crate) fn takes_new_artist(&self) -> bool {
        matches!(&self.widget, Widget::Link { kinds, .. } if kinds.contains(&"art.artist"))
    }
}

/// The fields of a kind's body.
pub(crate) fn fields(kind: &KindInfo) -> Vec<Field> {
    let schema = kind.schema();
    let root = schema.as_value();
    let defs = root.get("$defs").cloned().unwrap_or(Value::Null);
    object_fields(root, &defs, "", None, true)
}

/// The order fields are shown in: what names the item first, what describes it last. (The
/// schema's own order is alphabetical.)
const ORDER: [&str; 22] = [
    "title",
    "name",
    "handle",
    "display_name",
    "text",
    "statement",
    "full",
    "short",
    "abbreviated",
    "kind",
    "artists",
    "members",
    "creators",
    "cover",
    "image",
    "avatar",
    "files",
    "media",
    "date",
    "license",
    "description",
    "bio",
];

fn rank(name: &str) -> usize {
    match name {
        "tags" => ORDER.len() + 1,
        _ => ORDER.iter().position(|n| *n == name).unwrap_or(ORDER.len()),
    }
}

fn object_fields(
    obj: &Value,
    defs: &Value,
    prefix: &str,
    parent: Option<&str>,
    parent_required: bool,
) -> Vec<Field> {
    let required: Vec<&str> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = obj.get("properties").and_then(Value::as_object) else {
        return vec![];
    };
    let mut props: Vec<(&String, &Value)> = props.iter().collect();
    props.sort_by_key(|(name, _)| (rank(name), (*name).clone()));
    props
        .into_iter()
        .map(|(name, prop)| {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            let label = match parent {
                Some(p) if name == "full" => p.to_owned(),
                Some(p) if name == "short" => format!("{p}, short form"),
                Some(p) => format!("{p}, {}", name.replace('_', " ")),
                None => humanise(name),
            };
            let (shape, nullable) = resolve(prop, defs);
            let hint = prop
                .get("description")
                .or_else(|| shape.get("description"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            // The fields of an optional object are needed only once it is filled in.
            let is_required = parent_required && required.contains(&name.as_str()) && !nullable;
            let doc = is_doc(prop);
            let widget = if doc {
                Widget::Doc
            } else {
                widget(
                    name,
                    &shape,
                    hint.as_deref(),
                    defs,
                    &path,
                    &label,
                    is_required,
                )
            };
            Field {
                required: is_required,
                name: path,
                // "Doc" says nothing to a writer.
                label: if doc { "Document".to_owned() } else { label },
                // Shown to people: the schema's code marks are for the API document.
                hint: hint.map(|d| d.replace('`', "")),
                widget,
            }
        })
        .collect()
}

/// Whether a property is a rich-text document (a `$ref` to `Doc`, maybe optional).
fn is_doc(prop: &Value) -> bool {
    let is_ref = |v: &Value| {
        v.get("$ref")
            .and_then(Value::as_str)
            .is_some_and(|r| r.ends_with("/Doc"))
    };
    is_ref(prop)
        || prop
            .get("anyOf")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(is_ref))
}

/// The schema a property stands for, through `$ref` and `Option`'s `anyOf [T, null]`, and
/// whether it may be null.
fn resolve(prop: &Value, defs: &Value) -> (Value, bool) {
    if let Some(any) = prop.get("anyOf").and_then(Value::as_array) {
        let non_null: Vec<&Value> = any
            .iter()
            .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if let [one] = non_null.as_slice() {
            let (v, _) = resolve(one, defs);
            return (v, true);
        }
    }
    if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        if let Some(def) = defs.get(name) {
            let (mut v, n) = resolve(def, defs);
            if let (Some(d), Value::Object(m)) = (prop.get("description"), &mut v) {
                m.insert("description".into(), d.clone());
            }
            return (v, n);
        }
    }
    match prop.get("type") {
        Some(Value::Array(types)) => {
            let nullable = types.iter().any(|t| t == "null");
            let first = types.iter().find(|t| *t != "null").cloned();
            let mut v = prop.clone();
            if let (Some(t), Value::Object(m)) = (first, &mut v) {
                m.insert("type".into(), t);
            }
            (v, nullable)
        }
        _ => (prop.clone(), false),
    }
}

fn is_link(shape: &Value) -> bool {
    shape
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.len() == 1 && p.contains_key("/"))
}

fn is_file_data(shape: &Value) -> bool {
    shape
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.contains_key("blob") && p.contains_key("media_type"))
}

/// The registered kinds a description names in backticks: "`art.artist` or `art.artist_group`".
fn kinds_named(description: Option<&str>) -> Vec<&'static str> {
    let Some(d) = description else { return vec![] };
    d.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|k| registry::lookup(k).map(|info| info.name))
        .collect()
}

fn enum_values(shape: &Value) -> Option<Vec<String>> {
    if let Some(e) = shape.get("enum").and_then(Value::as_array) {
        return e.iter().map(|v| v.as_str().map(str::to_owned)).collect();
    }
    shape
        .get("oneOf")
        .and_then(Value::as_array)
        .and_then(|alts| {
            alts.iter()
                .map(|a| {
                    a.get("const")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .or_else(|| {
                            a.get("enum")
                                .and_then(Value::as_array)
                                .and_then(|e| e.first())
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        })
                })
                .collect()
        })
}

fn widget(
    name: &str,
    shape: &Value,
    description: Option<&str>,
    defs: &Value,
    path: &str,
    label: &str,
    required: bool,
) -> Widget {
    if is_link(shape) {
        let kinds = kinds_named(description);
        return if kinds.is_empty() {
            Widget::Cid
        } else {
            Widget::Link { kinds, many: false }
        };
    }
    if is_file_data(shape) {
        return Widget::File;
    }
    if let Some(values) = enum_values(shape) {
        return Widget::Select(values);
    }
    match shape.get("type").and_then(Value::as_str) {
        Some("string") => Widget::Text {
            long: LONG.contains(&name),
        },
        Some("integer" | "number") => Widget::Number,
        Some("boolean") => Widget::Checkbox,
        Some("array") => {
            let (items, _) = resolve(shape.get("items").unwrap_or(&Value::Null), defs);
            if is_link(&items) {
                let kinds = kinds_named(description);
                if kinds.is_empty() {
                    Widget::Json
                } else {
                    Widget::Link { kinds, many: true }
                }
            } else if items.get("type").and_then(Value::as_str) == Some("string")
                && enum_values(&items).is_none()
            {
                Widget::Tags
            } else {
                Widget::Json
            }
        }
        Some("object") if shape.get("properties").is_some() => {
            let fields = object_fields(shape, defs, path, Some(label), required);
            let simple = fields.iter().all(|f| {
                matches!(
                    f.widget,
                    Widget::Text { .. }
                        | Widget::Number
                        | Widget::Checkbox
                        | Widget::Select(_)
                        | Widget::Link { .. }
                        | Widget::Cid
                        | Widget::Tags
                )
            });
            if simple {
                Widget::Group(fields)
            } else {
                Widget::Json
            }
        }
        _ => Widget::Json,
    }
}

/// What a form holds: the values typed (several for a multiple choice) and the errors found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Values {
    pub(crate) values: HashMap<String, Vec<String>>,
    pub(crate) errors: HashMap<String, String>,
}

impl Values {
    /// From submitted pairs.
    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in pairs {
            values.entry(k).or_default().push(v);
        }
        Self {
            values,
            errors: HashMap::new(),
        }
    }

    pub(crate) fn first(&self, name: &str) -> &str {
        self.values
            .get(name)
            .and_then(|v| v.first())
            .map_or("", String::as_str)
    }

    fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn push(&mut self, name: &str, value: String) {
        self.values.entry(name.to_owned()).or_default().push(value);
    }

    /// The values of an existing body, for its edit form.
    pub(crate) fn from_body(fields: &[Field], body: &Value) -> Self {
        let mut out = Self::default();
        fill(&mut out, fields, body);
        out
    }
}

fn link_text(v: &Value) -> Option<String> {
    v.get("/").and_then(Value::as_str).map(str::to_owned)
}

fn fill(out: &mut Values, fields: &[Field], body: &Value) {
    for f in fields {
        let key = f.name.rsplit('.').next().unwrap_or(&f.name);
        let Some(v) = body.get(key) else { continue };
        let texts: Vec<String> = match &f.widget {
            Widget::Group(inner) => {
                fill(out, inner, v);
                continue;
            }
            Widget::File => continue,
            Widget::Text { .. } | Widget::Select(_) => {
                v.as_str().map(str::to_owned).into_iter().collect()
            }
            Widget::Number => v.as_u64().map(|n| n.to_string()).into_iter().collect(),
            Widget::Checkbox => (v.as_bool() == Some(true))
                .then(|| "on".to_owned())
                .into_iter()
                .collect(),
            Widget::Link { many: false, .. } | Widget::Cid => link_text(v).into_iter().collect(),
            Widget::Link { many: true, .. } => v
                .as_array()
                .map(|a| a.iter().filter_map(link_text).collect())
                .unwrap_or_default(),
            Widget::Tags => vec![
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
            ],
            Widget::Doc => match serde_json::from_value::<Doc>(v.clone()) {
                Ok(d) => vec![d.to_markdown()],
                Err(_) => vec![],
            },
            Widget::Json => vec![serde_json::to_string_pretty(v).unwrap_or_default()],
        };
        out.values.insert(f.name.clone(), texts);
    }
}

/// The body the form describes, on top of `base` (the current body when editing, so fields
/// the form does not show are kept), checked against the kind. Errors are keyed by field name.
pub(crate) fn body(
    kind: &KindInfo,
    fields: &[Field],
    form: &mut Values,
    base: Option<&Value>,
) -> Option<Ipld> {
    let mut map = base.and_then(Value::as_object).cloned().unwrap_or_default();
    build(fields, form, &mut map);
    if !form.errors.is_empty() {
        return None;
    }
    let ipld = match mnode_dag::json::from_json_value(&Value::Object(map)) {
        Ok(i) => i,
        Err(e) => {
            form.errors.insert(String::new(), e.to_string());
            return None;
        }
    };
    match kind.validate(&ipld, Strictness::Create) {
        Ok(_) => Some(ipld),
        Err(e) => {
            let field = field_of(fields, &e);
            form.errors.insert(field, e.message);
            None
        }
    }
}

/// The input a schema error is about: its path without list positions, or the nearest
/// enclosing field shown.
fn field_of(fields: &[Field], e: &SchemaError) -> String {
    let mut path: String = e.path.split('[').next().unwrap_or_default().to_owned();
    let names = all_names(fields);
    loop {
        if names.contains(&path) {
            return path;
        }
        match path.rsplit_once('.') {
            Some((head, _)) => path = head.to_owned(),
            None => return String::new(),
        }
    }
}

fn all_names(fields: &[Field]) -> Vec<String> {
    fields
        .iter()
        .flat_map(|f| match &f.widget {
            Widget::Group(inner) => {
                let mut v = all_names(inner);
                v.push(f.name.clone());
                v
            }
            _ => vec![f.name.clone()],
        })
        .collect()
}

fn build(fields: &[Field], form: &mut Values, map: &mut Map<String, Value>) {
    for f in fields {
        let key = f.name.rsplit('.').next().unwrap_or(&f.name).to_owned();
        let first = form.first(&f.name).to_owned();
        let value: Option<Value> = match &f.widget {
            Widget::File => continue,
            Widget::Group(inner) => {
                let mut sub = map
                    .get(&key)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                build(inner, form, &mut sub);
                (!sub.is_empty() || f.required).then_some(Value::Object(sub))
            }
            Widget::Text { .. } | Widget::Select(_) => {
                if first.trim().is_empty() {
                    f.required.then(|| json!(""))
                } else if matches!(f.widget, Widget::Text { long: true }) {
                    Some(json!(first.replace("\r\n", "\n")))
                } else {
                    Some(json!(first.trim()))
                }
            }
            Widget::Number => match first.trim() {
                "" => None,
                n => match n.parse::<u64>() {
                    Ok(n) => Some(json!(n)),
                    Err(_) => {
                        form.errors
                            .insert(f.name.clone(), "a whole number, like 3".to_owned());
                        continue;
                    }
                },
            },
            Widget::Checkbox => Some(json!(!first.is_empty())),
            // An upload for the field comes after its picker: the last value chosen wins.
            Widget::Link { many: false, .. } | Widget::Cid => match form
                .all(&f.name)
                .iter()
                .rev()
                .map(|v| v.trim())
                .find(|v| !v.is_empty())
                .unwrap_or_default()
            {
                "" => None,
                cid => match mnode_dag::cids::parse(cid) {
                    Ok(c) => Some(json!({ "/": c.to_string() })),
                    Err(_) => {
                        form.errors
                            .insert(f.name.clone(), format!("{cid:?} is not a CID"));
                        continue;
                    }
                },
            },
            Widget::Link { many: true, .. } => {
                let mut seen = Vec::new();
                for v in form.all(&f.name) {
                    let v = v.trim();
                    if !v.is_empty() && !seen.iter().any(|s: &String| s == v) {
                        seen.push(v.to_owned());
                    }
                }
                if let Some(bad) = seen.iter().find(|c| mnode_dag::cids::parse(c).is_err()) {
                    form.errors
                        .insert(f.name.clone(), format!("{bad:?} is not a CID"));
                    continue;
                }
                Some(Value::Array(
                    seen.into_iter().map(|c| json!({ "/": c })).collect(),
                ))
            }
            Widget::Tags => Some(Value::Array(
                first
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| json!(t))
                    .collect(),
            )),
            Widget::Doc => match first.trim() {
                "" if f.required => {
                    form.errors
                        .insert(f.name.clone(), "write something first".to_owned());
                    continue;
                }
                "" => None,
                _ => match serde_json::to_value(Doc::from_markdown(&first.replace("\r\n", "\n"))) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        form.errors.insert(f.name.clone(), e.to_string());
                        continue;
                    }
                },
            },
            Widget::Json => match first.trim() {
                "" => None,
                text => match serde_json::from_str::<Value>(text) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        form.errors
                            .insert(f.name.clone(), format!("not valid JSON: {e}"));
                        continue;
                    }
                },
            },
        };
        match value {
            Some(v) => {
                map.insert(key, v);
            }
            None => {
                map.remove(&key);
            }
        }
    }
}

/// The records a link field may pick from: `(id, what to call it)` per field name.
pub(crate) type Options = HashMap<String, Vec<(String, String)>>;

/// The controls of `fields`, filled from `form`.
pub(crate) fn controls(fields: &[Field], form: &Values, options: &Options) -> Markup {
    html! {
        @if let Some(e) = form.errors.get("") {
            p.error role="alert" { (e) }
        }
        @for f in fields {
            (control(f, form, options))
        }
    }
}

fn accept(kinds: &[&str]) -> String {
    kinds
        .iter()
        .filter_map(|k| match *k {
            "art.image" => Some("image/*"),
            "art.audio" => Some("audio/*"),
            "art.video" => Some("video/*"),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn control(f: &Field, form: &Values, options: &Options) -> Markup {
    let id = f.id();
    let error = form.errors.get(&f.name);
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described = match (error.is_some(), f.hint.is_some()) {
        (true, true) => Some(format!("{error_id} {hint_id}")),
        (true, false) => Some(error_id.clone()),
        (false, true) => Some(hint_id.clone()),
        (false, false) => None,
    };
    let invalid = error.map(|_| "true");
    let value = form.first(&f.name);
    let hint = html! {
        @if let Some(h) = &f.hint { small id=(hint_id) { (h) } }
        @if let Some(e) = error { small.error id=(error_id) role="alert" { (e) } }
    };
    // A widget that says how to type into it: that and the field's hint in one line under the
    // control (a second `small` would sit apart from it, unstyled), which the control names.
    let typed_described = match error {
        Some(_) => format!("{error_id} {hint_id}"),
        None => hint_id.clone(),
    };
    let typed_hint = |how: &str| {
        html! {
            small id=(hint_id) { @if let Some(h) = &f.hint { (h) " " } (how) }
            @if let Some(e) = error { small.error id=(error_id) role="alert" { (e) } }
        }
    };
    let label = html! { (f.label) @if f.required { " " span.req aria-hidden="true" { "*" } } };
    match &f.widget {
        Widget::Text { long: true } => html! {
            label for=(id) { (label) }
            textarea id=(id) name=(f.name) rows="6" required[f.required]
                aria-invalid=[invalid] aria-describedby=[described] { (value) }
            (hint)
        },
        Widget::Text { long: false } | Widget::Cid => html! {
            label for=(id) { (label) }
            input id=(id) name=(f.name) type="text" value=(value) required[f.required]
                aria-invalid=[invalid] aria-describedby=[described];
            (hint)
        },
        Widget::Number => html! {
            label for=(id) { (label) }
            input id=(id) name=(f.name) type="number" min="0" value=(value) required[f.required]
                aria-invalid=[invalid] aria-describedby=[described];
            (hint)
        },
        Widget::Checkbox => html! {
            label for=(id) {
                input id=(id) name=(f.name) type="checkbox" checked[!value.is_empty()]
                    aria-describedby=[described];
                " " (f.label)
            }
            (hint)
        },
        Widget::Select(choices) => html! {
            label for=(id) { (label) }
            select id=(id) name=(f.name) aria-invalid=[invalid] aria-describedby=[described] {
                @if !f.required { option value="" { "—" } }
                @for c in choices {
                    option value=(c) selected[value == c] { (humanise(c)) }
                }
            }
            (hint)
        },
        Widget::Tags => html! {
            label for=(id) { (label) }
            input id=(id) name=(f.name) type="text" value=(value) placeholder="music/folk, live"
                aria-invalid=[invalid] aria-describedby=(typed_described);
            (typed_hint("Separated by commas; a slash makes a sub-tag (music/folk)."))
        },
        Widget::Doc => html! {
            label for=(id) { (label) }
            textarea id=(id) name=(f.name) rows="12" data-editor required[f.required]
                aria-invalid=[invalid] aria-describedby=(typed_described) { (value) }
            (typed_hint("Markdown: # Heading, **bold**, _italic_, [a link](https://…), - a list."))
        },
        Widget::Json => html! {
            label for=(id) { (label) " (DAG-JSON)" }
            textarea.mono id=(id) name=(f.name) rows="4" aria-invalid=[invalid] aria-describedby=[described] { (value) }
            (hint)
        },
        Widget::File => html! {
            label for=(id) { (label) }
            input id=(id) name="file" type="file" required aria-describedby=[described];
            (hint)
        },
        Widget::Group(inner) => html! {
            @for g in inner { (control(g, form, options)) }
        },
        Widget::Link { kinds, many } => {
            let opts = options.get(&f.name).map_or(&[][..], Vec::as_slice);
            let chosen = form.all(&f.name);
            let extra: Vec<&String> = chosen
                .iter()
                .filter(|c| !opts.iter().any(|(o, _)| o == *c))
                .collect();
            let files = kinds.iter().any(|k| MEDIA_KINDS.contains(k));
            let upload_id = format!("{id}-upload");
            let new_id = format!("{id}-new");
            html! {
                @if *many {
                    fieldset.choices aria-describedby=[described] {
                        legend { (label) }
                        @if opts.is_empty() && extra.is_empty() {
                            small { "None on this node yet." }
                        }
                        @for (i, (cid, name)) in opts.iter().enumerate() {
                            label for={ (id) "-" (i) } {
                                input id={ (id) "-" (i) } type="checkbox" name=(f.name) value=(cid)
                                    checked[chosen.contains(cid)];
                                " " (name)
                            }
                        }
                        @for (i, cid) in extra.iter().enumerate() {
                            label for={ (id) "-x" (i) } {
                                input id={ (id) "-x" (i) } type="checkbox" name=(f.name) value=(cid) checked;
                                " " (crate::fmt::short(cid))
                            }
                        }
                    }
                } @else {
                    label for=(id) { (label) }
                    select id=(id) name=(f.name) aria-invalid=[invalid] aria-describedby=[described] {
                        option value="" { "— none —" }
                        @for (cid, name) in opts {
                            option value=(cid) selected[value == cid] { (name) }
                        }
                        @for cid in &extra {
                            option value=(cid) selected { (crate::fmt::short(cid)) }
                        }
                    }
                }
                @if files {
                    label for=(upload_id) { "Upload " (f.label.to_lowercase()) }
                    input id=(upload_id) type="file" name=(f.name) multiple[*many] accept=(accept(kinds));
                }
                @if f.takes_new_artist() {
                    label for=(new_id) { "New artist" }
                    input id=(new_id) type="text" name={ (f.name) "__new" }
                        placeholder="A name, to add an artist with it";
                }
                (hint)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> &'static KindInfo {
        registry::lookup(name).expect("a registered kind")
    }

    fn field<'a>(fields: &'a [Field], name: &str) -> &'a Field {
        fields
            .iter()
            .flat_map(|f| match &f.widget {
                Widget::Group(inner) => inner.iter().collect::<Vec<_>>(),
                _ => vec![f],
            })
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no field {name}"))
    }

    #[test]
    fn a_release_form_comes_from_its_schema() {
        let fields = fields(kind("art.release"));
        let title = field(&fields, "title.full");
        assert_eq!(title.label, "Title");
        assert!(title.required);
        assert_eq!(field(&fields, "title.short").label, "Title, short form");
        assert_eq!(
            field(&fields, "artists").widget,
            Widget::Link {
                kinds: vec!["art.artist", "art.artist_group"],
                many: true
            }
        );
        assert!(field(&fields, "files").takes_files());
        assert!(field(&fields, "artists").takes_new_artist());
        assert!(matches!(
            field(&fields, "cover").widget,
            Widget::Link { many: false, .. }
        ));
        assert!(
            matches!(&field(&fields, "kind").widget, Widget::Select(v) if v.contains(&"album".to_owned()))
        );
        assert_eq!(field(&fields, "tags").widget, Widget::Tags);
        assert_eq!(
            field(&fields, "description").widget,
            Widget::Text { long: true }
        );
    }

    #[test]
    fn every_kind_has_a_form() {
        for k in registry::KINDS {
            assert!(!fields(k).is_empty(), "{} has no fields", k.name);
        }
    }

    #[test]
    fn what_is_typed_becomes_a_valid_body_or_an_error_at_its_field() {
        let k = kind("art.artist");
        let fields = fields(k);
        let mut form = Values::from_pairs(vec![
            ("name.full".into(), "  The Kitchen Band ".into()),
            ("name.short".into(), String::new()),
            ("bio".into(), "Folk\r\nfrom a kitchen".into()),
            ("tags".into(), "music/folk, , live".into()),
        ]);
        let body = body(k, &fields, &mut form, None).expect("valid");
        let json = mnode_dag::json::to_json_value(&body).expect("json");
        assert_eq!(json["name"], json!({ "full": "The Kitchen Band" }));
        assert_eq!(json["bio"], json!("Folk\nfrom a kitchen"));
        assert_eq!(json["tags"], json!(["music/folk", "live"]));

        let mut empty = Values::from_pairs(vec![("name.full".into(), " ".into())]);
        assert!(super::body(k, &fields, &mut empty, None).is_none());
        assert!(empty.errors.contains_key("name.full"), "{:?}", empty.errors);

        let mut uploaded = Values::from_pairs(vec![
            ("name.full".into(), "A".into()),
            ("image".into(), String::new()),
            (
                "image".into(),
                mnode_dag::cids::record_cid(b"x").to_string(),
            ),
        ]);
        let body = super::body(k, &fields, &mut uploaded, None).expect("valid");
        let json = mnode_dag::json::to_json_value(&body).expect("json");
        assert!(
            json["image"]["/"].is_string(),
            "the upload after the empty picker counts"
        );

        let mut bad = Values::from_pairs(vec![
            ("name.full".into(), "A".into()),
            ("image".into(), "not-a-cid".into()),
        ]);
        assert!(super::body(k, &fields, &mut bad, None).is_none());
        assert!(bad.errors["image"].contains("not a CID"));
    }

    #[test]
    fn an_edit_keeps_what_the_form_does_not_show() {
        let k = kind("art.image");
        let fields = fields(k);
        let blob = mnode_dag::cids::blob_cid([7; 32]).to_string();
        let base = json!({
            "file": { "blob": { "/": blob },
                      "name": "a.png", "media_type": "image/png", "size": 3 },
            "width": 1
        });
        let mut form = Values::from_body(&fields, &base);
        assert_eq!(form.first("width"), "1");
        form.values
            .insert("alt".into(), vec!["A red square".into()]);
        let body = body(k, &fields, &mut form, Some(&base));
        let body = body.unwrap_or_else(|| panic!("invalid: {:?}", form.errors));
        let json = mnode_dag::json::to_json_value(&body).expect("json");
        assert_eq!(json["file"]["name"], "a.png");
        assert_eq!(json["alt"], "A red square");
    }
}
