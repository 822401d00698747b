//! `/api/v1/scaling`: the tenant's capacity, policy, events and simulations; and
//! `/api/v1/admin/scaling` for platform operators.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    app::AppState,
    auth::granted::Granted,
    client_address::ClientInfo,
    error::{AppError, AppResult, FieldError, Problem},
    http::{
        extract::{AppJson, AppQuery},
        pagination::{PageParams, Paginated},
    },
    rbac::needs,
    services::scaling::{
        self, Decision, Policy, PolicyInput, Sample, ScalingEvent, ScalingStatus, TenantCapacity,
    },
};

/// Most samples one simulation takes.
pub const MAX_SAMPLES: usize = 10_000;
/// Highest capacity a simulation may start from.
const MAX_START_CAPACITY: i32 = 1_000;
/// Highest load a sample may carry (requests/s).
const MAX_RPS: f64 = 1e9;

/// The tenant's capacity, policy and last evaluation.
#[utoipa::path(get, path = "/api/v1/scaling", tag = "scaling",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Capacity and policy", body = ScalingStatus),
        (status = 404, description = "The tenant has no scaling policy", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn status(
    State(app): State<AppState>,
    principal: Granted<needs::ScalingRead>,
) -> AppResult<Json<ScalingStatus>> {
    let plan = principal.tenant.plan;
    Ok(Json(
        scaling::status(&app.db, principal.tenant_id(), plan).await?,
    ))
}

/// Replace the tenant's scaling policy. `min_capacity` and `max_capacity` must lie within
/// the plan's bounds (free 1–2, standard 1–10, premium 2–50): outside them the answer is
/// 422 naming the field and the allowed range. A capacity outside the new bounds moves
/// into them at once, with an event.
#[utoipa::path(put, path = "/api/v1/scaling/policy", tag = "scaling", request_body = PolicyInput,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The policy now in force", body = ScalingStatus),
        (status = 422, description = "Invalid fields, or bounds outside the plan's", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_policy(
    State(app): State<AppState>,
    principal: Granted<needs::ScalingManage>,
    client: ClientInfo,
    AppJson(body): AppJson<PolicyInput>,
) -> AppResult<Json<ScalingStatus>> {
    let plan = principal.tenant.plan;
    let policy = body.validate(plan, "").map_err(AppError::validation)?;
    let status = scaling::update_policy(&app.db, &principal, &client, policy).await?;
    Ok(Json(status))
}

/// The tenant's capacity changes, newest first.
#[utoipa::path(get, path = "/api/v1/scaling/events", tag = "scaling", params(PageParams),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Events", body = Paginated<ScalingEvent>)))]
pub async fn events(
    State(app): State<AppState>,
    principal: Granted<needs::ScalingRead>,
    AppQuery(params): AppQuery<PageParams>,
) -> AppResult<Json<Paginated<ScalingEvent>>> {
    let page = params.page()?;
    let rows = scaling::events(&app.db, principal.tenant_id(), page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |e| e.id)))
}

/// One load measurement.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub struct SampleInput {
    /// Seconds from any origin; not less than the previous sample's.
    #[schema(minimum = 0)]
    pub t: f64,
    /// Requests per second; 0 to 1e9.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub rps: f64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SimulateRequest {
    /// The policy to try (same rules as `PUT /api/v1/scaling/policy`, within the plan's
    /// bounds); the tenant's own when absent.
    pub policy: Option<PolicyInput>,
    /// The capacity before the first sample; 0 to 1000.
    #[schema(minimum = 0, maximum = 1000)]
    pub current_capacity: i32,
    /// 1 to 10,000 samples, in time order.
    #[schema(min_items = 1, max_items = 10000)]
    pub samples: Vec<SampleInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SimulateResponse {
    /// The policy the simulation applied.
    pub policy: Policy,
    /// One decision per sample, in order.
    pub decisions: Vec<Decision>,
}

fn samples(input: &[SampleInput]) -> Result<Vec<Sample>, Vec<FieldError>> {
    let mut errors = Vec::new();
    if input.is_empty() || input.len() > MAX_SAMPLES {
        errors.push(FieldError::new(
            "samples",
            format!("must hold 1 to {MAX_SAMPLES} samples"),
        ));
        return Err(errors);
    }
    let mut previous = 0.0;
    for (i, s) in input.iter().enumerate() {
        if !(s.t.is_finite() && s.t >= 0.0) {
            errors.push(FieldError::new(
                format!("samples[{i}].t"),
                "must be at least 0",
            ));
        } else if s.t < previous {
            errors.push(FieldError::new(
                format!("samples[{i}].t"),
                "must not be less than the previous sample's",
            ));
        } else {
            previous = s.t;
        }
        if !(s.rps.is_finite() && (0.0..=MAX_RPS).contains(&s.rps)) {
            errors.push(FieldError::new(
                format!("samples[{i}].rps"),
                "must be between 0 and 1e9",
            ));
        }
        // A client that sent garbage learns enough from the first few.
        if errors.len() >= 10 {
            break;
        }
    }
    if errors.is_empty() {
        Ok(input
            .iter()
            .map(|s| Sample { t: s.t, rps: s.rps })
            .collect())
    } else {
        Err(errors)
    }
}

/// Apply the decision function the evaluator uses to each sample in order, starting from
/// `current_capacity` with a fresh history (no earlier scale-up, an empty stabilization
/// window). Nothing is stored.
#[utoipa::path(post, path = "/api/v1/scaling/simulate", tag = "scaling", request_body = SimulateRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One decision per sample", body = SimulateResponse),
        (status = 422, description = "Invalid policy, capacity or samples", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn simulate(
    State(app): State<AppState>,
    principal: Granted<needs::ScalingRead>,
    AppJson(body): AppJson<SimulateRequest>,
) -> AppResult<Json<SimulateResponse>> {
    let plan = principal.tenant.plan;
    let mut errors = Vec::new();
    if !(0..=MAX_START_CAPACITY).contains(&body.current_capacity) {
        errors.push(FieldError::new(
            "current_capacity",
            format!("must be between 0 and {MAX_START_CAPACITY}"),
        ));
    }
    let samples = samples(&body.samples).map_err(|e| errors.extend(e)).ok();
    let policy = body.policy.and_then(|input| {
        input
            .validate(plan, "policy.")
            .map_err(|e| errors.extend(e))
            .ok()
    });
    let Some(samples) = samples.filter(|_| errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let policy = match policy {
        Some(policy) => policy,
        None => {
            scaling::policy_of(&app.db, principal.tenant_id(), plan)
                .await?
                .0
        }
    };
    let decisions = scaling::simulate(&policy, body.current_capacity, &samples);
    Ok(Json(SimulateResponse { policy, decisions }))
}

/// Every tenant's capacity (platform operators), newest tenant first.
#[utoipa::path(get, path = "/api/v1/admin/scaling", tag = "platform", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Capacities", body = Paginated<TenantCapacity>),
        (status = 403, description = "Not a platform operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn admin_list(
    State(app): State<AppState>,
    AppQuery(params): AppQuery<PageParams>,
) -> AppResult<Json<Paginated<TenantCapacity>>> {
    let page = params.page()?;
    let rows = scaling::capacities(&app.db, page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |c| c.tenant_id)))
}
