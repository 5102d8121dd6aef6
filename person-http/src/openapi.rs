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
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, SecurityRequirement};
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
        let operations = [
            (Method::GET, item.get.as_mut()),
            (Method::POST, item.post.as_mut()),
            (Method::PUT, item.put.as_mut()),
            (Method::PATCH, item.patch.as_mut()),
            (Method::DELETE, item.delete.as_mut()),
        ];
        for (method, operation) in operations {
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
