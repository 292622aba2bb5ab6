//! Accounts: creating users and checking their passwords.

pub mod password;
pub mod session;

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
    /// Sign-up is closed and the instance already has an account.
    #[error("sign-up is closed on this instance")]
    SignupClosed,
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
    create(store, clock, email, name, password, admin, true).await
}

/// Self-service sign-up. With sign-up closed only the instance's first account may be created;
/// that is decided atomically with the insert, so two racing first sign-ups cannot both get in.
pub async fn sign_up(
    store: &dyn Store,
    clock: &dyn Clock,
    email: &str,
    name: &str,
    password: &str,
    signup_open: bool,
) -> Result<User, CreateUserError> {
    create(store, clock, email, name, password, false, signup_open).await
}

async fn create(
    store: &dyn Store,
    clock: &dyn Clock,
    email: &str,
    name: &str,
    password: &str,
    admin: bool,
    open: bool,
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
    let stored = if open {
        store.insert_user(&user).await.map(Some)
    } else {
        store.insert_first_user(&user).await
    };
    match stored {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(CreateUserError::SignupClosed),
        Err(StoreError::Conflict(Conflict::EmailTaken)) => Err(CreateUserError::EmailTaken),
        Err(other) => Err(CreateUserError::Store(other)),
    }
}
