//! Environments: named sets of `{{variables}}` per workspace, some of them secret.
//!
//! `GET/POST /api/workspaces/{id}/environments`, `GET/PUT/PATCH/DELETE /api/environments/{id}`,
//! `POST /api/environments/{id}/reveal`.
//!
//! Secrets: a variable with `secret: true` is stored encrypted ([`crate::crypto::SecretBox`],
//! `enc:v1:…`) and answered masked — `"value": null, "masked": true` — everywhere except the
//! reveal action, which needs the editor role. Saving a secret with `value` null or omitted keeps
//! its stored value (matched by `key`), so a client can save an environment it was only shown
//! masked. Environments are never written to logs: they hold secrets once decrypted.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prism_domain::environment::{Environment, Variable};
use prism_domain::{EnvironmentId, WorkspaceId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{self, Action};
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, PathId};
use super::{name, time};
use crate::SoulState;
use crate::crypto::SecretBox;

/// The longest variable key.
pub const MAX_KEY: usize = 128;

pub fn routes() -> OpenApiRouter<SoulState> {
    OpenApiRouter::new()
        .routes(routes!(list_environments, create_environment))
        .routes(routes!(
            get_environment,
            replace_environment,
            update_environment,
            delete_environment
        ))
        .routes(routes!(reveal_environment))
}

/// An environment; secret values are masked unless revealed.
#[derive(Serialize, ToSchema)]
pub struct EnvironmentView {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    /// In the order they were saved.
    pub variables: Vec<VariableView>,
    pub created_at: String,
    pub updated_at: String,
}

/// One variable as answered. A secret's `value` is `null` with `masked: true` unless revealed
/// (`POST /api/environments/{id}/reveal`); every other value is shown with `masked: false`.
#[derive(Serialize, ToSchema)]
pub struct VariableView {
    pub key: String,
    pub value: Option<String>,
    pub secret: bool,
    pub enabled: bool,
    /// Whether `value` is withheld.
    pub masked: bool,
}

/// An environment to save.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentInput {
    /// 1–200 characters.
    pub name: String,
    #[serde(default)]
    pub variables: Vec<VariableInput>,
}

/// Rename and/or replace the variables. Omitted fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentPatch {
    pub name: Option<String>,
    pub variables: Option<Vec<VariableInput>>,
}

/// One variable to save.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariableInput {
    /// 1–128 characters of `A–Z a–z 0–9 _ . -`, unique within the environment (`name` is
    /// accepted too).
    #[serde(alias = "name")]
    pub key: String,
    /// `null` or omitted keeps the stored value of the variable with this key (how a masked
    /// secret is saved unchanged); required for a new key.
    #[serde(default)]
    pub value: Option<String>,
    /// Stored encrypted and answered masked.
    #[serde(default)]
    pub secret: bool,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Ignored: accepted so a variable read from the API can be sent back as it is.
    #[serde(default)]
    #[schema(ignore)]
    pub masked: Option<bool>,
}

fn enabled_by_default() -> bool {
    true
}

fn check_key(field: &str, key: &str) -> ApiResult<()> {
    let valid = !key.is_empty()
        && key.chars().count() <= MAX_KEY
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            format!("1 to {MAX_KEY} characters of A-Z, a-z, 0-9, '_', '.', '-'"),
        ))
    }
}

fn undecryptable(index: usize, key: &str) -> ApiError {
    ApiError::conflict(
        "secret_undecryptable",
        format!(
            "the secret {key:?} cannot be decrypted with this instance's secret key (was the key \
             changed?); set its value again"
        ),
    )
    .with_field(format!("variables[{index}].value"))
}

/// The variables to store: keys checked, secrets encrypted, and values left `null` taken from
/// `previous` (by key).
fn seal(
    secrets: &SecretBox,
    inputs: Vec<VariableInput>,
    previous: &[Variable],
) -> ApiResult<Vec<Variable>> {
    let mut seen = HashSet::new();
    let mut sealed = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let key_field = format!("variables[{index}].key");
        check_key(&key_field, &input.key)?;
        if !seen.insert(input.key.clone()) {
            return Err(ApiError::invalid_field(
                key_field,
                "is the key of an earlier variable; keys are unique within an environment",
            ));
        }
        let value = match input.value {
            Some(plain) if input.secret => secrets.encrypt(&plain),
            Some(plain) => plain,
            None => {
                let old = previous
                    .iter()
                    .find(|v| v.name == input.key)
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            format!("variables[{index}].value"),
                            "is required for a new variable (null keeps a stored value)",
                        )
                    })?;
                match (
                    old.secret && SecretBox::is_encrypted(&old.value),
                    input.secret,
                ) {
                    (true, true) => old.value.clone(),
                    (true, false) => secrets
                        .decrypt(&old.value)
                        .map_err(|_| undecryptable(index, &input.key))?,
                    (false, true) => secrets.encrypt(&old.value),
                    (false, false) => old.value.clone(),
                }
            }
        };
        sealed.push(Variable {
            name: input.key,
            value,
            secret: input.secret,
            enabled: input.enabled,
        });
    }
    Ok(sealed)
}

/// The answer for `environment`: secrets masked, or decrypted when `reveal` holds the key.
fn view(environment: &Environment, reveal: Option<&SecretBox>) -> ApiResult<EnvironmentView> {
    let variables = environment
        .variables
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let value = match (v.secret, reveal) {
                (false, _) => Some(v.value.clone()),
                (true, None) => None,
                (true, Some(secrets)) => Some(
                    secrets
                        .decrypt(&v.value)
                        .map_err(|_| undecryptable(index, &v.name))?,
                ),
            };
            Ok(VariableView {
                key: v.name.clone(),
                masked: value.is_none(),
                value,
                secret: v.secret,
                enabled: v.enabled,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(EnvironmentView {
        id: environment.id.to_string(),
        workspace_id: environment.workspace_id.to_string(),
        name: environment.name.clone(),
        variables,
        created_at: time(environment.created_at),
        updated_at: time(environment.updated_at),
    })
}

/// The workspace's environments by name, secrets masked.
#[utoipa::path(get, path = "/api/workspaces/{id}/environments", tag = "environments",
    params(("id" = String, Path, description = "workspace id")),
    responses((status = 200, body = Vec<EnvironmentView>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn list_environments(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
) -> ApiResult<axum::Json<Vec<EnvironmentView>>> {
    access::workspace(&state, &caller, id, Action::Read).await?;
    let environments = state.store.list_environments(id).await?;
    let views = environments
        .iter()
        .map(|e| view(e, None))
        .collect::<ApiResult<_>>()?;
    Ok(axum::Json(views))
}

/// Creates an environment (editor). Every variable needs a `value`.
#[utoipa::path(post, path = "/api/workspaces/{id}/environments", tag = "environments",
    request_body = EnvironmentInput,
    params(("id" = String, Path, description = "workspace id")),
    responses((status = 201, body = EnvironmentView), (status = 404, body = ErrorBody),
        (status = 422, description = "`invalid_field` naming e.g. `variables[3].key`", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn create_environment(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
    Json(input): Json<EnvironmentInput>,
) -> ApiResult<Response> {
    access::workspace(&state, &caller, id, Action::Edit).await?;
    let new_name = name("name", &input.name)?;
    let variables = seal(&state.secrets, input.variables, &[])?;
    let now = state.clock.now();
    let environment = Environment {
        id: EnvironmentId::new(),
        workspace_id: id,
        name: new_name,
        variables,
        created_at: now,
        updated_at: now,
    };
    state.store.insert_environment(&environment).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&environment, None)?)).into_response())
}

/// An environment, secrets masked.
#[utoipa::path(get, path = "/api/environments/{id}", tag = "environments",
    params(("id" = String, Path)),
    responses((status = 200, body = EnvironmentView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn get_environment(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<EnvironmentId>,
) -> ApiResult<axum::Json<EnvironmentView>> {
    let (environment, _) = access::environment(&state, &caller, id, Action::Read).await?;
    Ok(axum::Json(view(&environment, None)?))
}

/// The environment with its secrets decrypted (editor). A secret that cannot be decrypted (the
/// instance's secret key changed) is `409 secret_undecryptable` naming it.
#[utoipa::path(post, path = "/api/environments/{id}/reveal", tag = "environments",
    params(("id" = String, Path)),
    responses((status = 200, body = EnvironmentView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`secret_undecryptable`", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn reveal_environment(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<EnvironmentId>,
) -> ApiResult<axum::Json<EnvironmentView>> {
    let (environment, _) = access::environment(&state, &caller, id, Action::Edit).await?;
    Ok(axum::Json(view(&environment, Some(&state.secrets))?))
}

/// Replaces name and variables (editor). A variable whose `value` is null keeps its stored value.
#[utoipa::path(put, path = "/api/environments/{id}", tag = "environments",
    request_body = EnvironmentInput,
    params(("id" = String, Path)),
    responses((status = 200, body = EnvironmentView), (status = 404, body = ErrorBody),
        (status = 409, description = "`secret_undecryptable` when un-secreting a value that cannot be decrypted", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn replace_environment(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<EnvironmentId>,
    Json(input): Json<EnvironmentInput>,
) -> ApiResult<axum::Json<EnvironmentView>> {
    let (current, _) = access::environment(&state, &caller, id, Action::Edit).await?;
    let new_name = name("name", &input.name)?;
    let variables = seal(&state.secrets, input.variables, &current.variables)?;
    let updated = state
        .store
        .update_environment(id, &new_name, &variables, state.clock.now())
        .await?;
    Ok(axum::Json(view(&updated, None)?))
}

/// Renames and/or replaces the variables (editor); omitted fields stay as they are.
#[utoipa::path(patch, path = "/api/environments/{id}", tag = "environments",
    request_body = EnvironmentPatch,
    params(("id" = String, Path)),
    responses((status = 200, body = EnvironmentView), (status = 404, body = ErrorBody),
        (status = 409, description = "`secret_undecryptable`", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn update_environment(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<EnvironmentId>,
    Json(input): Json<EnvironmentPatch>,
) -> ApiResult<axum::Json<EnvironmentView>> {
    let (current, _) = access::environment(&state, &caller, id, Action::Edit).await?;
    let new_name = match input.name {
        Some(given) => name("name", &given)?,
        None => current.name.clone(),
    };
    let variables = match input.variables {
        Some(given) => seal(&state.secrets, given, &current.variables)?,
        None => current.variables.clone(),
    };
    let updated = state
        .store
        .update_environment(id, &new_name, &variables, state.clock.now())
        .await?;
    Ok(axum::Json(view(&updated, None)?))
}

#[utoipa::path(delete, path = "/api/environments/{id}", tag = "environments",
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn delete_environment(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<EnvironmentId>,
) -> ApiResult<StatusCode> {
    access::environment(&state, &caller, id, Action::Edit).await?;
    state.store.delete_environment(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(key: &str, value: Option<&str>, secret: bool) -> VariableInput {
        VariableInput {
            key: key.into(),
            value: value.map(Into::into),
            secret,
            enabled: true,
            masked: None,
        }
    }

    #[test]
    fn keys_follow_the_rule() {
        for good in ["a", "API_KEY", "base.url", "x-1", &"k".repeat(MAX_KEY)] {
            assert!(check_key("k", good).is_ok(), "{good}");
        }
        for bad in ["", "has space", "ünï", "a{b}", &"k".repeat(MAX_KEY + 1)] {
            assert!(check_key("k", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn null_values_keep_stored_ones_across_secret_changes() {
        let secrets = SecretBox::new("k");
        let stored = seal(
            &secrets,
            vec![
                input("token", Some("s3cret"), true),
                input("host", Some("h"), false),
            ],
            &[],
        )
        .unwrap();
        assert!(SecretBox::is_encrypted(&stored[0].value));
        assert_eq!(stored[1].value, "h");
        // Kept as it was; then turned into a plain value; then made secret again.
        let kept = seal(&secrets, vec![input("token", None, true)], &stored).unwrap();
        assert_eq!(kept[0].value, stored[0].value);
        let plain = seal(&secrets, vec![input("token", None, false)], &stored).unwrap();
        assert_eq!(plain[0].value, "s3cret");
        let hidden = seal(&secrets, vec![input("host", None, true)], &stored).unwrap();
        assert_eq!(secrets.decrypt(&hidden[0].value).unwrap(), "h");
        let err = seal(&secrets, vec![input("new", None, true)], &stored).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("variables[0].value"));
        let err = seal(
            &SecretBox::new("other"),
            vec![input("host", Some("h"), false), input("token", None, false)],
            &stored,
        )
        .unwrap_err();
        assert_eq!(
            (err.code.as_ref(), err.field.as_deref()),
            ("secret_undecryptable", Some("variables[1].value"))
        );
    }
}
