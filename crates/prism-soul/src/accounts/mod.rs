//! Accounts: creating users and checking their passwords.

pub mod password;

use prism_domain::user::{Email, InvalidEmail, User};
use prism_domain::{Clock, UserId};
use prism_store::{Conflict, Store, StoreError};

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error(transparent)]
    Email(#[from] InvalidEmail),
    #[error(transparent)]
    Password(#[from] password::WeakPassword),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Store(StoreError),
}

/// Creates an account with an argon2id-hashed password. The first account on an instance is an
/// instance admin whatever `admin` says (the store decides that atomically).
pub async fn create_user(
    store: &dyn Store,
    clock: &dyn Clock,
    email: &str,
    name: &str,
    password: &str,
    admin: bool,
) -> Result<User, CreateUserError> {
    let email = Email::parse(email)?;
    password::check_strength(password)?;
    let hash = {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .map_err(|e| CreateUserError::Store(StoreError::Database(e.to_string())))?
    };
    let now = clock.now();
    let name = if name.trim().is_empty() {
        email
            .as_str()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned()
    } else {
        name.trim().to_owned()
    };
    let user = User {
        id: UserId::new(),
        email,
        name,
        password_hash: hash,
        is_admin: admin,
        created_at: now,
        updated_at: now,
    };
    store.insert_user(&user).await.map_err(|err| match err {
        StoreError::Conflict(Conflict::EmailTaken) => CreateUserError::EmailTaken,
        other => CreateUserError::Store(other),
    })
}
