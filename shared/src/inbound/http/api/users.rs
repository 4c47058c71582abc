//! `/v1/users`: a household's people.

#[allow(unused_imports)]
use super::*;

impl ApiService {
    pub(super) async fn list_users(&self) -> ApiResult {
        let users = self.store.list_users().await.map_err(store_err)?;
        Ok(json_reply(StatusCode::OK, &json!({"users": users})))
    }

    pub(super) async fn put_user(&self, user: &str) -> ApiResult {
        check_name("user", user)?;
        let (u, created) = self
            .store
            .put_user(user, Utc::now())
            .await
            .map_err(store_err)?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(json_reply(status, &u))
    }

    pub(super) async fn get_user(&self, user: &str) -> ApiResult {
        match self.store.get_user(user).await.map_err(store_err)? {
            Some(u) => Ok(json_reply(StatusCode::OK, &u)),
            None => Err(not_found(format!("no user '{user}'"))),
        }
    }

    pub(super) async fn require_user(&self, user: &str) -> Result<(), Reply> {
        check_name("user", user)?;
        match self.store.get_user(user).await.map_err(store_err)? {
            Some(_) => Ok(()),
            None => Err(not_found(format!(
                "no user '{user}'; create it with PUT /v1/users/{user}"
            ))),
        }
    }
}
