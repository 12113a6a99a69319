//! The OpenAPI document of `/api/v1`, generated from the code and served at
//! `GET /api/v1/openapi.json`.
//!
//! Each module registers its handlers with `utoipa_axum::routes!`, which puts a handler in the
//! router and its `#[utoipa::path]` in the document at once, so the two cannot drift apart.
//! Record bodies come from the kind registry: every kind's JSON Schema is added as
//! `components.schemas["kind.<name>"]`, with the definitions it uses hoisted beside it, and
//! the record routes' `kind` and `body` fields name those.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
    sync::OnceLock,
};

use axum::{
    body::Bytes,
    http::header,
    response::{IntoResponse, Response},
};
use mnode_dag::registry;
use serde_json::{Map, Value, json};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        ComponentsBuilder, InfoBuilder, LicenseBuilder, ObjectBuilder, OneOfBuilder, OpenApi,
        OpenApiBuilder, Ref, RefOr, Schema, Type,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        tag::TagBuilder,
    },
};

/// The prefix of the kinds' body schemas in `components.schemas`.
pub(crate) const KIND_SCHEMA: &str = "kind.";
/// The prefix of the definitions the kinds' schemas share.
const SHARED_SCHEMA: &str = "dag.";

const DESCRIPTION: &str = "\
The HTTP API of an mnode node: a peer-to-peer, content-addressed store of signed records and \
files.

Requests that need someone send `Authorization: Bearer <token>`: a session token from \
`POST /api/v1/sessions`, or the node's admin token (`<repo>/api.token`), which acts as the \
node's owner with admin rights. Routes marked *admin only* also need the caller to be an admin.

Errors answer `{\"error\": {\"code\", \"message\"}}` (the `Error` schema) with the status; a \
JSON request body that does not parse or does not fit its schema is refused by the framework \
with 400, 415 or 422 and a plain-text message.

Record bodies are typed by kind: `components.schemas[\"kind.<name>\"]` holds each registered \
kind's body schema. The gateway (`GET /ipfs/{cid}`) and `GET /metrics` are outside `/api/v1` and \
not described here.";

/// The tags that group the operations, with what each covers.
const TAGS: &[(&str, &str)] = &[
    (
        "node",
        "The node itself: identity, peers and node-level follows (admin).",
    ),
    (
        "records",
        "Signed records of every registered kind: create, read, update, delete.",
    ),
    ("accounts", "Accounts and login sessions."),
    (
        "files",
        "Uploads, file facts, fetching from peers, import and export.",
    ),
    (
        "social",
        "Follows, timelines, feeds, tags, widget queries and facts.",
    ),
    (
        "forums",
        "Forums, branches and threads: reading, replying, forking.",
    ),
    ("events", "New records as Server-Sent Events."),
    ("pins", "What garbage collection keeps (admin)."),
    (
        "repo",
        "Repo maintenance (admin): stats, garbage collection, verification.",
    ),
    ("dag", "CAR files and blocks: export, import, put, read."),
    ("meta", "This document."),
];

/// The document before the routes are added: info, tags and the `bearer` security scheme.
pub(crate) fn base() -> OpenApi {
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some(
            "A session token from `POST /api/v1/sessions`, or the node's admin token \
             (`<repo>/api.token`).",
        ))
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("mnode")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION))
                .license(Some(
                    LicenseBuilder::new()
                        .name("MIT OR Apache-2.0")
                        .identifier(Some("MIT OR Apache-2.0"))
                        .build(),
                ))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme("bearer", SecurityScheme::Http(bearer))
                .build(),
        ))
        .tags(Some(TAGS.iter().map(|(name, description)| {
            TagBuilder::new()
                .name(*name)
                .description(Some(*description))
                .build()
        })))
        .build()
}

/// The finished document, as JSON and as the bytes served.
struct Document {
    json: Value,
    bytes: Bytes,
}

/// The same for every node (it depends only on the code), so it is built once per process.
static DOCUMENT: OnceLock<Document> = OnceLock::new();

/// Finishes `api`, the document the routes made, unless a router built it already.
pub(crate) fn init(api: OpenApi) {
    document_or(|| api);
}

fn document_or(api: impl FnOnce() -> OpenApi) -> &'static Document {
    DOCUMENT.get_or_init(|| {
        let json = finish(api());
        let bytes = Bytes::from(serde_json::to_vec(&json).unwrap_or_default());
        Document { json, bytes }
    })
}

/// The finished document.
pub(crate) fn document() -> &'static Value {
    &document_or(|| crate::routes::api().into_openapi()).json
}

/// This document: the OpenAPI 3.1 description of `/api/v1`, generated from the code.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", body = Object)),
)]
pub(crate) async fn openapi_json() -> Response {
    let doc = document_or(|| crate::routes::api().into_openapi());
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.bytes.clone(),
    )
        .into_response()
}

/// The name of a registered kind, like `art.release`.
pub(crate) struct KindName;

impl PartialSchema for KindName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A registered kind; its body schema is `components.schemas[\"kind.<name>\"]`.",
            ))
            .enum_values(Some(registry::KINDS.iter().map(|k| k.name)))
            .into()
    }
}

impl ToSchema for KindName {
    fn name() -> Cow<'static, str> {
        "KindName".into()
    }
}

/// A record body: one of the registered kinds' bodies, the one `kind` names.
pub(crate) struct KindBody;

impl PartialSchema for KindBody {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new().description(Some(
            "The body of the kind the record names (links as DAG-JSON `{\"/\": \"bafy…\"}`).",
        ));
        for kind in registry::KINDS {
            one_of = one_of.item(Ref::from_schema_name(format!("{KIND_SCHEMA}{}", kind.name)));
        }
        Schema::OneOf(one_of.build()).into()
    }
}

impl ToSchema for KindBody {
    fn name() -> Cow<'static, str> {
        "KindBody".into()
    }
}

/// The document the routes made, with axum's wildcard paths in OpenAPI's form and the kinds'
/// schemas added.
fn finish(api: OpenApi) -> Value {
    let mut doc = serde_json::to_value(&api).unwrap_or_else(|e| {
        tracing::error!("the OpenAPI document does not serialize: {e}");
        json!({})
    });
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        *paths = std::mem::take(paths)
            .into_iter()
            .map(|(path, item)| (path.replace("{*", "{"), item))
            .collect();
    }
    let components = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
        .map(|c| c.entry("schemas").or_insert_with(|| json!({})));
    if let Some(Value::Object(schemas)) = components {
        schemas.extend(kind_schemas());
    }
    doc
}

/// Every registered kind's body schema as `kind.<name>`, and the definitions they use: as
/// `dag.<Def>` where every kind that uses a definition agrees on it, else as
/// `kind.<name>.<Def>`.
fn kind_schemas() -> BTreeMap<String, Value> {
    struct Kind {
        name: &'static str,
        schema: Value,
        defs: Map<String, Value>,
    }
    let kinds: Vec<Kind> = registry::KINDS
        .iter()
        .map(|k| {
            let mut schema = serde_json::to_value(k.schema()).unwrap_or_else(|_| json!({}));
            let mut defs = Map::new();
            if let Value::Object(o) = &mut schema {
                o.remove("$schema");
                for key in ["$defs", "definitions"] {
                    if let Some(Value::Object(d)) = o.remove(key) {
                        defs.extend(d);
                    }
                }
            }
            Kind {
                name: k.name,
                schema,
                defs,
            }
        })
        .collect();
    let mut seen: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for kind in &kinds {
        for (name, def) in &kind.defs {
            seen.entry(name).or_default().push(def);
        }
    }
    let shared: BTreeSet<String> = seen
        .into_iter()
        .filter(|(_, v)| v.windows(2).all(|w| w[0] == w[1]))
        .map(|(name, _)| name.to_owned())
        .collect();
    let shared = |def: &str| shared.contains(def);

    let mut out = BTreeMap::new();
    for kind in kinds {
        let own = format!("{KIND_SCHEMA}{}", kind.name);
        let target = |def: &str| {
            if shared(def) {
                format!("{SHARED_SCHEMA}{}", component_name(def))
            } else {
                format!("{own}.{}", component_name(def))
            }
        };
        let rewrite = |reference: &str| match reference {
            "#" => Some(own.clone()),
            r => r
                .strip_prefix("#/$defs/")
                .or_else(|| r.strip_prefix("#/definitions/"))
                .map(|def| target(&unescape_pointer(def))),
        };
        for (def, mut schema) in kind.defs {
            rewrite_refs(&mut schema, &rewrite);
            out.insert(target(&def), schema);
        }
        let mut schema = kind.schema;
        rewrite_refs(&mut schema, &rewrite);
        out.insert(own.clone(), schema);
    }
    out
}

/// `name` with only the characters OpenAPI allows in a component name.
fn component_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A JSON pointer segment as the name it escapes.
fn unescape_pointer(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Points every `$ref` that `rewrite` maps at the component it names.
fn rewrite_refs(v: &mut Value, rewrite: &impl Fn(&str) -> Option<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("$ref")
                && let Some(name) = rewrite(r)
            {
                *r = format!("#/components/schemas/{name}");
            }
            o.values_mut().for_each(|x| rewrite_refs(x, rewrite));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite_refs(x, rewrite)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_schemas_are_self_contained() {
        let schemas = kind_schemas();
        for kind in registry::KINDS {
            assert!(schemas.contains_key(&format!("kind.{}", kind.name)));
        }
        let mut refs = Vec::new();
        fn collect(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(r)) = o.get("$ref") {
                        out.push(r.clone());
                    }
                    o.values().for_each(|x| collect(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
                _ => {}
            }
        }
        for schema in schemas.values() {
            assert!(schema.get("$defs").is_none());
            collect(schema, &mut refs);
        }
        assert!(
            !refs.is_empty(),
            "the kinds share definitions such as links"
        );
        for r in refs {
            let name = r.strip_prefix("#/components/schemas/");
            assert!(
                name.is_some_and(|n| schemas.contains_key(n)),
                "{r} does not resolve"
            );
        }
    }

    #[test]
    fn wildcard_paths_take_openapi_form() {
        let doc = finish(
            OpenApiBuilder::new()
                .paths(utoipa::openapi::PathsBuilder::new().path(
                    "/api/v1/tags/{*tag}",
                    utoipa::openapi::PathItem::new(
                        utoipa::openapi::HttpMethod::Get,
                        utoipa::openapi::path::OperationBuilder::new(),
                    ),
                ))
                .build(),
        );
        assert!(doc["paths"].get("/api/v1/tags/{tag}").is_some());
    }
}
