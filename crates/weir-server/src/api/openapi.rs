//! The OpenAPI 3 document, generated from the handlers' annotations (utoipa) and served at
//! `/openapi.json`, so the document cannot drift from the code.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{images, metrics, overview, reports, routes};
use crate::http_error::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "weir HTTP API", description = "Ingest records and files, follow jobs, replay dead letters. Every endpoint but /healthz, /readyz and this document needs `Authorization: Bearer <token>` (`weir credentials` prints it); GET endpoints also take the dashboard's session cookie."),
    paths(
        routes::healthz,
        routes::readyz,
        routes::ingest,
        routes::put_file,
        routes::list_jobs,
        routes::get_job,
        routes::list_dlq,
        routes::replay_dlq,
        overview::overview,
        overview::error_preview,
        overview::job_summary,
        images::job_thumbnail,
        reports::list,
        reports::get_json,
        reports::get_html,
        metrics::metrics,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        routes::Health,
        routes::IngestPayload,
        routes::Ingested,
        routes::Stored,
        routes::JobDoc,
        routes::JobPage,
        routes::StatusParam,
        routes::DeadLetterView,
        routes::DeadLetters,
        routes::ReplayRequest,
        routes::Replayed,
        overview::Overview,
        overview::SeriesPoint,
        overview::Latency,
        overview::QueueNow,
        overview::QueuePoint,
        overview::AlarmView,
        overview::JobSummary,
        overview::ErrorPreview,
        overview::SummaryDoc,
        reports::ReportView,
        reports::ReportList,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document as JSON.
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serializes")
}
