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
        OpenApiBuilder, Ref, RefOr, Schema, SchemaFormat, Type,
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
        "Signed records of every registered kind: create, read, update, delete. Key logs \
         (`core.keys`) are read here but written only by the accounts' key rotation routes.",
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
    (
        "groups",
        "Groups whose members co-edit the items the group owns: members and roles.",
    ),
    (
        "messages",
        "Direct messages: `social.message` records sealed for the people they are for.",
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
                // Listings' `kind` parameter names it (parameters register no components).
                .schema_from::<KindName>()
                .schema_from::<CidText>()
                .schema_from::<FileCidText>()
                .schema_from::<BlockCidText>()
                .schema_from::<DidText>()
                .schema_from::<FeedIdText>()
                .schema_from::<SessionIdText>()
                .schema_from::<TopicText>()
                .schema_from::<HandleText>()
                .schema_from::<PeopleText>()
                .schema_from::<EmailText>()
                .schema_from::<PasswordText>()
                .schema_from::<RecoveryKeyText>()
                .schema_from::<PeerIdText>()
                .schema_from::<MultiaddrText>()
                .schema_from::<CursorText>()
                .schema_from::<WidgetQueryText>()
                .schema_from::<DagJsonText>()
                .schema_from::<NodePathText>()
                .schema_from::<CarPathText>()
                .schema_from::<FilePathText>()
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
        let json = finish(crate::limits::documented(api()));
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

/// Whether `op` takes `as` (act as another account) as a query parameter or a field of its
/// JSON body.
fn takes_as(op: &Map<String, Value>, schemas: &Value) -> bool {
    let param = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| p.iter().any(|p| p["in"] == "query" && p["name"] == "as"));
    let body = op
        .get("requestBody")
        .and_then(|b| b["content"]["application/json"]["schema"]["$ref"].as_str())
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .is_some_and(|name| schemas[name]["properties"].get("as").is_some());
    param || body
}

/// Declares a string schema named `$name` (a component) for a Rust marker type: what a
/// parameter or field of that kind of text must look like. `format` names the kind of text
/// (schema testers can be given a generator for it); `pattern`, where there is one, is exact:
/// every text it matches is valid. Texts whose validity a regular expression cannot say (a
/// `did:key` must be a point on the curve; a query must parse) have none, and their
/// descriptions say what they look like.
macro_rules! text_schema {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $format:literal, $pattern:expr, $description:literal $(, min = $min:literal)? $(, max = $max:literal)?) => {
        $(#[$doc])*
        pub(crate) struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::Custom($format.into())))
                    .pattern($pattern as Option<&str>)
                    $(.min_length(Some($min)))?
                    $(.max_length(Some($max)))?
                    .description(Some($description))
                    .into()
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                $name.into()
            }
        }
    };
}

/// A CIDv1 in base32 whose codec and hash the node uses (dag-cbor, raw or dag-pb; sha2-256 or
/// blake3): the prefix fixes the first bits of the digest's first character, and the last
/// character carries 3 bits of digest and 2 zero bits. Or a CIDv0 (`Qm…`).
pub(crate) const CID_PATTERN: &str = "^(?:ba(?:fy(?:rei|r4i|bei)|fk(?:rei|r4i))[a-h][a-z2-7]{50}\
                                      [aeimquy4]|Qm[1-9A-HJ-NP-Za-km-z]{44})$";
/// A cursor: `created` (a u64 of at most 19 digits, so that it always fits) and an item id.
const CURSOR_PATTERN: &str = "^[0-9]{1,19}-bafyrei[a-h][a-z2-7]{50}[aeimquy4]$";

text_schema!(
    /// A record's, block's or file's CID.
    CidText,
    "Cid",
    "cid",
    Some(CID_PATTERN),
    "A CID: `bafyrei…` (records and blocks), `bafkr4i…` (files), or another CIDv1 in base32 \
     with those codecs and hashes, or a CIDv0 `Qm…`."
);
text_schema!(
    /// A file's CID.
    FileCidText,
    "FileCid",
    "file-cid",
    Some("^bafkr4i[a-h][a-z2-7]{50}[aeimquy4]$"),
    "A file's CID: raw codec and a BLAKE3 hash, `bafkr4i…`."
);
text_schema!(
    /// A block's CID in the record store.
    BlockCidText,
    "BlockCid",
    "block-cid",
    Some("^bafy(?:rei|r4i|bei)[a-h][a-z2-7]{50}[aeimquy4]$"),
    "A block's CID: DAG-CBOR or DAG-PB with SHA-256 or BLAKE3 (`bafyrei…`); files (`bafkr4i…`) \
     are read with `GET /api/v1/files/{cid}` instead."
);
text_schema!(
    /// An email address.
    EmailText,
    "Email",
    "mnode-email",
    Some(
        "^[^\\s\\x00-\\x1f\\x7f-\\x9f@]+@[^\\s\\x00-\\x1f\\x7f-\\x9f@.]\
         (?:[^\\s\\x00-\\x1f\\x7f-\\x9f@]*[^\\s\\x00-\\x1f\\x7f-\\x9f@.])?$"
    ),
    "An email address: a local part, `@` and a domain that neither starts nor ends with `.`; \
     no spaces or control characters; at most 254 bytes.",
    max = 254
);
text_schema!(
    /// A phone number in international form.
    PhoneText,
    "Phone",
    "mnode-phone",
    Some("^(?:tel:)?\\+[0-9][0-9 ().-]*$"),
    "A phone number with `+` and its country code (`+49 30 1234567`, `+1 (201) 555-0123`), \
     stored in E.164 form (`+49 30 1234567` is kept as `+49301234567`). One that no country's \
     numbering plan has is refused with 400.",
    max = 40
);
text_schema!(
    /// A new password.
    PasswordText,
    "Password",
    "strong-password",
    None,
    "At least 10 characters that are hard to guess: the node refuses (422 `weak_password`) \
     what the zxcvbn estimate scores below 3 of 4.",
    min = 10
);
text_schema!(
    /// DAG-JSON text.
    DagJsonText,
    "DagJson",
    "dag-json",
    None,
    "A DAG-JSON document: JSON with links as `{\"/\": \"<cid>\"}` and bytes as \
     `{\"/\": {\"bytes\": \"<base64>\"}}`."
);
text_schema!(
    /// A CAR file on the node's disk.
    CarPathText,
    "CarPath",
    "car-path",
    None,
    "The absolute path of a CAR v1 file on the node's own disk."
);
text_schema!(
    /// A file on the node's disk to import.
    FilePathText,
    "FilePath",
    "file-path",
    None,
    "The absolute path of a file (not a folder) on the node's own disk."
);
text_schema!(
    /// An author's `did:key`.
    DidText,
    "Did",
    "did-key",
    None,
    "An author's Ed25519 key, `did:key:z6Mk` and 44 base58btc characters (a multicodec \
     `0xed01` and 32 bytes); the key must be a point on the curve, which no pattern can say.",
    min = 56,
    max = 56
);
text_schema!(
    /// A group member: a handle on this node or a `did:key`.
    MemberText,
    "Member",
    "mnode-member",
    None,
    "A handle of an account on this node (`@` before it is allowed) or anyone's `did:key`."
);
text_schema!(
    /// An author's `did:key`, or a `social.feed` record's CID.
    FeedIdText,
    "FeedId",
    "mnode-feed-id",
    None,
    "An author's `did:key:z6Mk…` (their feed), or a `social.feed` record's CID."
);
text_schema!(
    /// A login session's id.
    SessionIdText,
    "SessionId",
    "session-id",
    Some("^[0-9a-f]{64}$"),
    "A session's id: the hex SHA-256 of its token, as `GET /sessions` lists it."
);
text_schema!(
    /// A gossip topic, or a bare `did:key` for an author's feed.
    TopicText,
    "TopicName",
    "mnode-topic",
    None,
    "A topic: `/mnode/1/author/<did>`, `/mnode/1/forum/<cid>`, `/mnode/1/branch/<cid>`, \
     `/mnode/1/thread/<cid>` or `/mnode/1/about/<cid>`, or a bare `did:key:…` for an author's \
     feed."
);
text_schema!(
    /// A recovery key's secret.
    RecoveryKeyText,
    "RecoveryKey",
    "mnode-recovery-key",
    Some("^mnode-recovery-1:[0-9a-f]{64}$"),
    "A recovery key as the node showed it once (at sign-up, or at the first key rotation): \
     `mnode-recovery-1:` and its 32-byte Ed25519 secret in lower-case hex. Whoever holds it may \
     take the identity over: keep it offline."
);
text_schema!(
    /// People, separated by commas.
    PeopleText,
    "People",
    "mnode-people",
    Some("^[^,]+(,[^,]+)*$"),
    "People, separated by commas: handles of accounts on this node (`@` allowed) or \
     `did:key`s; for more readers than fit, name a group.",
    max = 4000
);
text_schema!(
    /// An account's handle.
    HandleText,
    "Handle",
    "handle",
    Some("^[a-z0-9][a-z0-9_.-]{0,31}$"),
    "A handle: 1 to 32 of `a-z`, `0-9`, `_`, `-`, `.`, starting with a letter or digit.",
    max = 32
);
text_schema!(
    /// A libp2p peer id.
    PeerIdText,
    "PeerId",
    "peer-id",
    None,
    "A libp2p peer id: `12D3KooW…` (Ed25519) or `Qm…` (a SHA-256 multihash)."
);
text_schema!(
    /// A multiaddr to dial.
    MultiaddrText,
    "Multiaddr",
    "multiaddr",
    None,
    "A multiaddr this node can dial: an IP or DNS address with a TCP port or a UDP port and \
     `quic-v1`, optionally ending in `/p2p/<peer id>`; or a relay's such address with \
     `/p2p-circuit/p2p/<peer id>` after it (a node behind a router, reached through its relay)."
);
text_schema!(
    /// Where a listing goes on.
    CursorText,
    "Cursor",
    "mnode-cursor",
    Some(CURSOR_PATTERN),
    "The `cursor` of a previous page: `<created>-<id>`."
);
text_schema!(
    /// A query in the widget language.
    WidgetQueryText,
    "WidgetQuery",
    "widget-query",
    None,
    "A widget query, as in `art.artists.list()`: a namespace, a function and its arguments."
);
text_schema!(
    /// An absolute path on the node's disk.
    NodePathText,
    "NodePath",
    "node-path",
    None,
    "An absolute path on the node's own disk that does not exist yet."
);

/// The name of a registered kind, like `art.release`: any kind, as listings filter by.
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

/// The kinds the record routes make: every registered kind but those the node writes itself
/// ([`crate::ops::SYSTEM_KINDS`]).
pub(crate) fn new_kinds() -> impl Iterator<Item = &'static str> {
    registry::KINDS
        .iter()
        .map(|k| k.name)
        .filter(|k| !crate::ops::SYSTEM_KINDS.contains(k))
}

/// The name of a kind `POST /records` makes, like `art.release`: every registered kind but
/// `core.keys`, which only the key rotation routes write.
pub(crate) struct NewKindName;

impl PartialSchema for NewKindName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A registered kind to create; its body schema is \
                 `components.schemas[\"kind.<name>\"]`. Not `core.keys` (an account's key log): \
                 `POST /accounts/{handle}/keys/rotate` and `…/keys/recover` write it.",
            ))
            .enum_values(Some(new_kinds()))
            .into()
    }
}

impl ToSchema for NewKindName {
    fn name() -> Cow<'static, str> {
        "NewKindName".into()
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
    if let Some(link) = doc.pointer_mut("/components/schemas/dag.Link/properties/~1") {
        link["format"] = json!("cid");
        link["pattern"] = json!(CID_PATTERN);
    }
    add_framework_refusals(&mut doc);
    add_disk_full(&mut doc);
    unsigned_integers(&mut doc);
    doc
}

/// The operations that write (every `POST`, `PUT`, `PATCH` and `DELETE`, as for the 429 of the
/// limits) can find the disk full: 507 `disk_full` ([`crate::ApiError::disk_full`]).
fn add_disk_full(doc: &mut Value) {
    let response = json!({
        "description": "The disk that holds the repo is full (`disk_full`): nothing was \
                        written. Reads still work, and writes work again by themselves once \
                        there is room",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    });
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for (method, op) in item.iter_mut() {
            if !matches!(method.as_str(), "post" | "put" | "patch" | "delete") {
                continue;
            }
            if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                responses.entry("507").or_insert_with(|| response.clone());
            }
        }
    }
}

/// States the range of every unsigned integer as it is: a `u64` or `usize` (`minimum: 0` with
/// `format: int64` or no format) up to `u64::MAX`, not `i64::MAX` as `int64` alone would say
/// nor unbounded; a `u32` (`int32`) up to `u32::MAX`.
fn unsigned_integers(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.get("type") == Some(&json!("integer"))
                && o.get("minimum") == Some(&json!(0))
                && o.get("maximum").is_none()
            {
                let (format, max) = match o.get("format").and_then(Value::as_str) {
                    None | Some("int64") => ("uint64", json!(u64::MAX)),
                    Some("int32") => ("uint32", json!(u32::MAX)),
                    Some(_) => ("", Value::Null),
                };
                if !max.is_null() {
                    o.insert("format".into(), json!(format));
                    o.insert("maximum".into(), max);
                }
            }
            o.values_mut().for_each(unsigned_integers);
        }
        Value::Array(a) => a.iter_mut().for_each(unsigned_integers),
        _ => {}
    }
}

/// The refusals every handler can give before it runs, because its extractors give them: a
/// JSON body that is not JSON (400), not sent as `application/json` (415) or not of its
/// schema (422); a path or query parameter that does not parse (400); and, where a request
/// may act as another account (`as`), 404 when no account has that handle. Added to each
/// operation that takes such a body or parameter and does not say it already.
fn add_framework_refusals(doc: &mut Value) {
    let error =
        json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } });
    let schemas = doc["components"]["schemas"].clone();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(Value::as_object_mut)
    {
        // A form's part names go into part headers, where control characters, `"` and `\`
        // cannot be (the parser refuses the form).
        if let Some(form) = op.get_mut("requestBody").and_then(|b| {
            b.pointer_mut("/content/multipart~1form-data/schema")
                .and_then(Value::as_object_mut)
        }) {
            form.insert(
                "propertyNames".into(),
                json!({ "pattern": "^[^\\x00-\\x1f\\x7f\"\\\\]*$" }),
            );
        }
        let json_body = op
            .get("requestBody")
            .and_then(|b| b.get("content"))
            .is_some_and(|c| c.get("application/json").is_some());
        let params = op
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(|p| p["in"] == "path" || p["in"] == "query"));
        let mut refusals = Vec::new();
        if json_body {
            refusals.extend([
                ("400", "The body is not JSON, or a value in it is malformed"),
                (
                    "415",
                    "The body is not sent as `Content-Type: application/json`",
                ),
                ("422", "The body does not fit its schema"),
            ]);
        } else if params {
            refusals.push(("400", "A parameter is malformed"));
        }
        if json_body && params {
            refusals.push(("400", "A parameter or the body is malformed"));
        }
        if takes_as(op, &schemas) {
            refusals.push(("404", "No account has the handle `as` names"));
        }
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (status, description) in refusals {
            responses
                .entry(status)
                .or_insert_with(|| json!({ "description": description, "content": error.clone() }));
        }
    }
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
            closed(&mut schema);
            out.insert(target(&def), schema);
        }
        let mut schema = kind.schema;
        rewrite_refs(&mut schema, &rewrite);
        closed(&mut schema);
        out.insert(own.clone(), schema);
    }
    out
}

/// Says of every object with named properties in `v` that it has no others: a kind's body is
/// read strictly, and an unknown field is refused (422 `invalid_record`).
fn closed(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.contains_key("properties") && !o.contains_key("additionalProperties") {
                o.insert("additionalProperties".into(), json!(false));
            }
            o.values_mut().for_each(closed);
        }
        Value::Array(a) => a.iter_mut().for_each(closed),
        _ => {}
    }
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
    fn every_write_can_answer_disk_full() {
        let doc = document();
        let mut writes = 0;
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let disk_full = &op["responses"]["507"];
                if matches!(method.as_str(), "post" | "put" | "patch" | "delete") {
                    writes += 1;
                    assert_eq!(
                        disk_full["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{method} {path}"
                    );
                } else {
                    assert!(disk_full.is_null(), "{method} {path} does not write");
                }
            }
        }
        assert!(writes > 20, "{writes} writes");
        for (path, method) in [
            ("/api/v1/files", "put"),
            ("/api/v1/files", "post"),
            ("/api/v1/records/batch", "post"),
            ("/api/v1/accounts", "post"),
            ("/api/v1/pins", "post"),
            ("/api/v1/threads/{id}/replies", "post"),
            ("/api/v1/dag/import", "post"),
        ] {
            assert!(
                doc["paths"][path][method]["responses"]["507"].is_object(),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn records_are_made_of_every_kind_but_key_logs_which_stay_readable() {
        let doc = document();
        let names = |schema: &str| -> Vec<String> {
            doc["components"]["schemas"][schema]["enum"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        };
        let new = names("NewKindName");
        let all = names("KindName");
        assert!(new.iter().any(|k| k == "art.release"), "{new:?}");
        assert!(!new.iter().any(|k| k == "core.keys"), "{new:?}");
        assert!(all.iter().any(|k| k == "core.keys"), "{all:?}");
        assert_eq!(new.len() + 1, all.len());
        for (schema, path) in [
            ("CreateRecord", "/properties/kind/$ref"),
            ("BatchRecord", "/properties/kind/$ref"),
        ] {
            assert_eq!(
                doc["components"]["schemas"][schema].pointer(path),
                Some(&json!("#/components/schemas/NewKindName")),
                "{schema}"
            );
        }
        // Listings still filter by any kind, key logs among them.
        let list = &doc["paths"]["/api/v1/records"]["get"]["parameters"];
        let kind = list
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "kind");
        assert!(
            kind.is_some_and(
                |k| k.to_string().contains("KindName") && !k.to_string().contains("NewKindName")
            ),
            "{kind:?}"
        );
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
