//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and the wire types'
//! schemas (person-core's `openapi` feature), and the Swagger UI that shows it.
//!
//! The UI's assets are compiled into the binary (utoipa-swagger-ui `vendored`): it works without internet
//! access and loads nothing from a CDN.
//!
//! Security is added from the permission table (`crate::permissions::RULES`), not written per handler: every
//! operation with a rule gets the `bearerAuth` requirement, its required permission at the end of its
//! description, and 401 / 403 / 429 responses. The public operations (health, this document) get none.

use http::Method;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, SecurityRequirement};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::permissions::rule_for;
use crate::routes::{admin, audit, documents, events, health, persons, references, reporting, search};

/// The name of the bearer token security scheme.
pub(crate) const BEARER_AUTH: &str = "bearerAuth";

/// Where the OpenAPI document is served (Hackney's path).
pub(crate) const OPENAPI_PATH: &str = "/swagger/v1/swagger.json";

/// Where the Swagger UI is served.
pub(crate) const SWAGGER_UI_PATH: &str = "/swagger";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Person API",
        description = "The council's register of people: residents, tenants, leaseholders, household members and \
                       staff contacts. Errors are RFC 9457 `application/problem+json`; versions travel as `ETag` / \
                       `If-Match`; `x-correlation-id` is accepted or generated and echoed on every response. Every \
                       endpoint but health and this document needs `Authorization: Bearer <JWT>` (HS256, RS256 or \
                       ES256) and the permission named in its description; `x-purpose` (optional) is recorded in \
                       the audit trail.",
    ),
    paths(
        search::search_persons,
        search::housing_search,
        search::match_person,
        persons::create_v1,
        persons::create_v2,
        persons::get_person,
        persons::update_person,
        persons::delete_person,
        persons::history,
        persons::set_restriction,
        persons::merge,
        references::list,
        references::add,
        references::remove,
        documents::get_equality,
        documents::put_equality,
        documents::get_extended,
        documents::put_extended,
        documents::delete_extended,
        audit::access_log,
        audit::subject_access,
        events::feed,
        reporting::persons,
        reporting::person_tenures,
        reporting::person_references,
        admin::queries,
        health::ping,
        health::livez,
        health::readyz,
        health::metrics,
    ),
    components(schemas(person_core::api::ProblemDetails, person_core::FieldError)),
    tags(
        (name = "search", description = "Ranked, typo-tolerant search; Hackney's housing-search compatible person search; matching"),
        (name = "persons", description = "Create (with duplicate prevention), read, change, delete and merge persons; their history; restriction of processing"),
        (name = "references", description = "Cross-references: which records in other systems belong to a person (one owner per record); `GET /api/v1/persons?reference=system:id` finds the owner"),
        (name = "equality", description = "Equality data (special category): equality:read / equality:write only"),
        (name = "extended", description = "Per-service-area extended data: extended:<area>:read / extended:<area>:write only"),
        (name = "audit", description = "Access logs and subject-access exports (audit:read)"),
        (name = "events", description = "The change feed (outbox), in commit order"),
        (name = "reporting", description = "Flat tables for Qlik and other reporting tools: paged JSON or streamed CSV, incremental with `modifiedSince` (reporting:read)"),
        (name = "admin", description = "Support: the query catalogue with live statistics (admin)"),
        (name = "health", description = "Liveness, readiness and Hackney's ping"),
    )
)]
struct ApiDoc;

/// The OpenAPI 3.1 document of the API (what `GET /swagger/v1/swagger.json` serves, without `servers`).
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    secure(&mut doc);
    describe_common(&mut doc);
    constrain_bodies(&mut doc);
    doc
}

/// Adds the bearer scheme, and to every operation in the permission table its security requirement, required
/// permission and 401 / 403 / 429 responses.
fn secure(doc: &mut utoipa::openapi::OpenApi) {
    let scheme = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(Some(
            "A JWT signed with HS256 (shared secret) or RS256 / ES256 (configured public key). Claims: `sub`, \
             `name`, `email`, `groups` / `cognito:groups` (mapped to permissions by configuration), or \
             `consumerName` for a service token; `exp` required, `nbf` checked, 30 s leeway.",
        ))
        .build();
    doc.components.get_or_insert_with(Default::default).add_security_scheme(BEARER_AUTH, SecurityScheme::Http(scheme));
    for (path, item) in &mut doc.paths.paths {
        for (method, operation) in operations_of(item) {
            let (Some(operation), Some(rule)) = (operation, rule_for(&method, path)) else { continue };
            operation.security = Some(vec![SecurityRequirement::new(BEARER_AUTH, Vec::<String>::new())]);
            let needs = format!("**Required permission:** `{}` (or `admin`).", rule.needs.describe());
            operation.description = Some(match operation.description.take() {
                Some(text) if !text.is_empty() => format!("{text}\n\n{needs}"),
                _ => needs,
            });
            let responses = &mut operation.responses.responses;
            responses.entry("401".to_owned()).or_insert_with(|| {
                problem("No bearer token, or one that is malformed, badly signed, expired or not yet valid").into()
            });
            responses.entry("403".to_owned()).or_insert_with(|| {
                problem("The token's groups lack the required permission, or the person's processing is restricted")
                    .into()
            });
            responses.entry("429".to_owned()).or_insert_with(|| {
                problem("The caller is over its rate limit (when one is configured); `Retry-After` says when to retry")
                    .into()
            });
        }
    }
}

/// What every handler shares, written once rather than per annotation (so that the document cannot forget it on
/// one operation): the shape of `If-Match` and of an area name; 400 on every operation that reads a parameter or
/// a body; 413 and 415 on every operation with a body; and on every secured operation the answers any request
/// can get from the server itself: 500 (a bug; never expected), 503 (the store is unavailable, with
/// `Retry-After`) and 504 (the request timeout elapsed).
fn describe_common(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in &mut doc.paths.paths {
        for (method, operation) in operations_of(item) {
            let Some(operation) = operation else { continue };
            let mut reads_input = operation.request_body.is_some();
            for parameter in operation.parameters.iter_mut().flatten() {
                reads_input = true;
                let RefOr::T(parameter) = parameter else { continue };
                let (pattern, max_length) = match (&parameter.parameter_in, parameter.name.as_str()) {
                    (ParameterIn::Header, "If-Match") => (IF_MATCH_PATTERN, None),
                    (ParameterIn::Header, "Idempotency-Key") => (IDEMPOTENCY_KEY_PATTERN, Some(255)),
                    (ParameterIn::Path, "area") => (AREA_PATTERN, Some(64)),
                    (ParameterIn::Query, "reason") => (FREE_TEXT_PATTERN, None),
                    (ParameterIn::Query, "system") => (REFERENCE_SYSTEM_PATTERN, None),
                    (ParameterIn::Query, "id") => (REFERENCE_ID_PATTERN, None),
                    _ => continue,
                };
                let schema =
                    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).max_length(max_length);
                parameter.schema = Some(schema.build().into());
            }
            let responses = &mut operation.responses.responses;
            // A 409 documented with a richer problem (a duplicate person with its candidates, a reference with
            // its owner) is also, on the same operation, a plain problem: a stale If-Match or a merged person.
            if let Some(RefOr::T(conflict)) = responses.get_mut("409") {
                for content in conflict.content.values_mut() {
                    let RefOr::T(content) = content else { continue };
                    let Some(RefOr::Ref(reference)) = &content.schema else { continue };
                    if reference.ref_location.ends_with("/ProblemDetails") {
                        continue;
                    }
                    let either =
                        AnyOfBuilder::new().item(reference.clone()).item(Ref::from_schema_name("ProblemDetails"));
                    content.schema = Some(RefOr::T(either.into()));
                }
            }
            if reads_input {
                responses.entry("400".to_owned()).or_insert_with(|| {
                    problem("A parameter or header that is missing, malformed or out of range (`errors` names it)")
                        .into()
                });
            }
            if operation.request_body.is_some() {
                responses.entry("413".to_owned()).or_insert_with(|| problem("The body is over the size limit").into());
                responses
                    .entry("415".to_owned())
                    .or_insert_with(|| problem("The body is not of the documented content type").into());
            }
            if rule_for(&method, path).is_some() {
                responses.entry("500".to_owned()).or_insert_with(|| {
                    problem("An unexpected error (a bug): logged with the correlation id; nothing was changed").into()
                });
                responses.entry("503".to_owned()).or_insert_with(|| {
                    problem("The store is unavailable; `Retry-After` says when to retry; nothing was changed").into()
                });
                responses.entry("504".to_owned()).or_insert_with(|| {
                    problem("The request timeout elapsed; a write may or may not have been applied (read it back)")
                        .into()
                });
            }
        }
    }
}

/// The patterns of body members that share a rule with a parameter (utoipa's attributes take only literals, so
/// they are set here from the one definition).
fn constrain_bodies(doc: &mut utoipa::openapi::OpenApi) {
    let members = [
        ("AddReferenceBody", "system", REFERENCE_SYSTEM_PATTERN),
        ("AddReferenceBody", "id", REFERENCE_ID_PATTERN),
        ("AddReferenceBody", "reason", FREE_TEXT_PATTERN),
        ("MergeRequest", "reason", FREE_TEXT_PATTERN),
        ("RestrictionRequest", "reason", FREE_TEXT_PATTERN),
    ];
    let Some(components) = doc.components.as_mut() else { return };
    // A PATCH body is a draft without `id` (an id in a patch is refused as read-only).
    if let Some(RefOr::T(Schema::Object(draft))) = components.schemas.get("PersonDraft") {
        let mut patch = draft.clone();
        patch.properties.remove("id");
        patch.description =
            Some("A JSON merge patch of a person: the draft's members (all optional), without `id`.".to_owned());
        components.schemas.insert(PERSON_PATCH.to_owned(), RefOr::T(Schema::Object(patch)));
        if let Some(operation) = doc.paths.paths.get_mut("/api/v1/persons/{id}").and_then(|item| item.patch.as_mut())
            && let Some(RefOr::T(body)) = operation.request_body.as_mut()
        {
            for content in body.content.values_mut() {
                let RefOr::T(content) = content else { continue };
                content.schema = Some(RefOr::Ref(Ref::from_schema_name(PERSON_PATCH)));
            }
        }
    }
    for (schema, member, pattern) in members {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else { continue };
        if let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(member) {
            property.pattern = Some(pattern.to_owned());
        }
    }
}

/// The schema of a PATCH body.
const PERSON_PATCH: &str = "PersonPatch";

/// An `If-Match` value the API accepts: one version, as `"3"`, `3` or `W/"3"`.
const IF_MATCH_PATTERN: &str = r#"^[ \t]*(W/)?("[0-9]{1,19}"|[0-9]{1,19})[ \t]*$"#;

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters (spaces inside only).
const IDEMPOTENCY_KEY_PATTERN: &str = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$";

// The patterns below describe what the validation rules accept, for clients and for schemathesis (which
// generates values from them). They are JSON Schema (ECMA-262) regular expressions. Where a rule trims its
// input, the padding they allow is ASCII space, tab, CR and LF only: `\s` differs between regex dialects.

/// Free text (`reason`): no control characters but tab and line breaks, no markup (`<` before a letter, `!`,
/// `/` or `?`; `&#`), as `person_core::validate::optional_text` checks; at most 500 characters after trimming.
const FREE_TEXT_PATTERN: &str =
    r"^(?:[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f<&]|<(?=[ -\x20\x22-\x2e0-9:-\x3e@\x5b-\x60\x7b-\x7e]|$)|&(?!#))*$";

/// A cross-reference system: 1 to 64 lowercase letters, digits, `-`, `_`, `.`, starting with a letter.
const REFERENCE_SYSTEM_PATTERN: &str = r"^[a-z][a-z0-9._-]{0,63}$";

/// A cross-reference id: 1 to 200 characters, no surrounding spaces, no control characters.
const REFERENCE_ID_PATTERN: &str = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]{0,198}[^\s\x00-\x1f\x7f-\x9f])?$";

/// A service area name: 1 to 64 lowercase letters, digits and single hyphens, starting with a letter.
const AREA_PATTERN: &str = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$";

/// The operations of a path, with their methods (absent ones as `None`).
fn operations_of(item: &mut PathItem) -> [(Method, Option<&mut Operation>); 5] {
    [
        (Method::GET, item.get.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
    ]
}

fn problem(description: &str) -> ResponseBuilder {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ProblemDetails"))).build();
    ResponseBuilder::new().description(description).content(crate::error::PROBLEM_JSON, content)
}

/// The Swagger UI at `/swagger` and the document at `/swagger/v1/swagger.json`.
pub(crate) fn swagger_ui(public_base_url: &str) -> SwaggerUi {
    let mut doc = openapi();
    if !public_base_url.is_empty() {
        doc.servers = Some(vec![Server::new(public_base_url)]);
    }
    // validator_url "none": Swagger UI would otherwise send the document to swagger.io's online validator.
    SwaggerUi::new(SWAGGER_UI_PATH).url(OPENAPI_PATH, doc).config(Config::default().validator_url("none"))
}
