//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and the wire types'
//! schemas (person-core's `openapi` feature), and the Swagger UI that shows it.
//!
//! The UI's assets are compiled into the binary (utoipa-swagger-ui `vendored`): it works without internet
//! access and loads nothing from a CDN.

use utoipa::OpenApi;
use utoipa::openapi::server::Server;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::routes::{events, health, persons};

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
                       `If-Match`; `x-correlation-id` is accepted or generated and echoed on every response.",
    ),
    paths(
        persons::create_v1,
        persons::create_v2,
        persons::get_person,
        persons::update_person,
        persons::delete_person,
        persons::history,
        events::feed,
        health::ping,
        health::livez,
        health::readyz,
    ),
    components(schemas(person_core::api::ProblemDetails, person_core::FieldError)),
    tags(
        (name = "persons", description = "Create, read, change and delete persons; their history"),
        (name = "events", description = "The change feed (outbox), in commit order"),
        (name = "health", description = "Liveness, readiness and Hackney's ping"),
    )
)]
struct ApiDoc;

/// The OpenAPI 3.1 document of the API (what `GET /swagger/v1/swagger.json` serves, without `servers`).
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
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
