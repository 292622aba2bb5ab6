//! Administration commands that work directly on the database (like `user add`): creating
//! workspaces, API tokens and ingest keys from a shell, for set-up scripts, CI and benchmarks.
//! Secrets are printed once and only their hashes are stored.

use std::future::Future;
use std::sync::Arc;

use prism_domain::session::{
    ApiToken, IngestKey, SecretKind, generate_secret, hash_secret, secret_display_prefix,
};
use prism_domain::user::Email;
use prism_domain::workspace::{Workspace, validate_name};
use prism_domain::{ApiTokenId, Clock, IngestKeyId, SystemClock, WorkspaceId};
use prism_store::{Store, StoreError};

use crate::Failure;
use crate::config::Config;
use crate::serve;

/// Opens the store, runs `work`, closes the store whatever happened.
pub async fn with_store<F, Fut>(config: &Config, work: F) -> Result<(), Failure>
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let opened = serve::open_store(config).await?;
    let result = work(opened.store.clone()).await;
    opened.store.close().await;
    result
}

fn store_failure(what: &str, err: StoreError) -> Failure {
    Failure::failed(format!("{what}: {err}"))
}

async fn user_by_email(
    store: &dyn Store,
    email: &str,
) -> Result<prism_domain::user::User, Failure> {
    let parsed = Email::parse(email).map_err(|e| Failure::failed(format!("--email: {e}")))?;
    store
        .find_user_by_email(&parsed)
        .await
        .map_err(|e| store_failure("looking up the user", e))?
        .ok_or_else(|| Failure::failed(format!("no user with email {parsed}")))
}

pub async fn workspace_create(
    store: Arc<dyn Store>,
    name: String,
    owner: String,
) -> Result<(), Failure> {
    let name = validate_name(&name).map_err(|e| Failure::failed(format!("--name: {e}")))?;
    let owner = user_by_email(store.as_ref(), &owner).await?;
    let now = SystemClock.now();
    let workspace = Workspace {
        id: WorkspaceId::new(),
        name,
        created_by: Some(owner.id),
        created_at: now,
        updated_at: now,
    };
    store
        .insert_workspace(&workspace, owner.id)
        .await
        .map_err(|e| store_failure("workspace create", e))?;
    println!("{}", workspace.id);
    Ok(())
}

pub async fn token_create(
    store: Arc<dyn Store>,
    email: String,
    name: String,
    expires_in_days: Option<u32>,
) -> Result<(), Failure> {
    let user = user_by_email(store.as_ref(), &email).await?;
    let secret = generate_secret(SecretKind::ApiToken);
    let now = SystemClock.now();
    let token = ApiToken {
        id: ApiTokenId::new(),
        user_id: user.id,
        name,
        prefix: secret_display_prefix(&secret),
        token_hash: hash_secret(&secret),
        created_at: now,
        last_used_at: None,
        expires_at: expires_in_days.map(|d| now.plus_secs(i64::from(d) * 86_400)),
        revoked_at: None,
    };
    store
        .insert_api_token(&token)
        .await
        .map_err(|e| store_failure("token create", e))?;
    println!("{secret}");
    Ok(())
}

pub async fn ingest_key_create(
    store: Arc<dyn Store>,
    workspace: String,
    name: String,
) -> Result<(), Failure> {
    let workspace: WorkspaceId = workspace.trim().parse().map_err(|_| {
        Failure::failed(format!("--workspace: {workspace:?} is not a workspace id"))
    })?;
    store.get_workspace(workspace).await.map_err(|e| match e {
        StoreError::NotFound(_) => Failure::failed(format!("no workspace {workspace}")),
        other => store_failure("looking up the workspace", other),
    })?;
    let secret = generate_secret(SecretKind::IngestKey);
    let key = IngestKey {
        id: IngestKeyId::new(),
        workspace_id: workspace,
        name,
        prefix: secret_display_prefix(&secret),
        key_hash: hash_secret(&secret),
        created_by: None,
        created_at: SystemClock.now(),
        last_used_at: None,
        revoked_at: None,
    };
    store
        .insert_ingest_key(&key)
        .await
        .map_err(|e| store_failure("ingest-key create", e))?;
    println!("{secret}");
    Ok(())
}
