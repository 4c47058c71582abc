//! Users and backends: the backend record, its token index copy (without the media
//! server token) and their removal.

#[allow(unused_imports)]
use super::*;

impl DynamoStore {
    pub(super) async fn load_backend_hash(&self, user: &str, name: &str) -> Result<Option<String>> {
        self.get(key(backend_pk(user), backend_sk(name)))
            .await?
            .map(|r| get_s(&r, "token_hash").map(str::to_string))
            .transpose()
    }

    pub(super) async fn put_user(&self, name: &str, now: DateTime<Utc>) -> Result<(User, bool)> {
        let mut expr = Expr::new("SET #c = if_not_exists(#c, :now)")
            .name("#c", "created_at")
            .value(":now", s(now.to_rfc3339()));
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(USERS, name)))
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .update_expression(expr.text)
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable("UpdateItem", e))?;
        match out.attributes.filter(|a| a.contains_key("created_at")) {
            Some(old) => Ok((
                User {
                    name: name.to_string(),
                    created_at: parse_time(&old, "created_at")?,
                },
                false,
            )),
            None => Ok((
                User {
                    name: name.to_string(),
                    created_at: now,
                },
                true,
            )),
        }
    }

    pub(super) async fn get_user(&self, name: &str) -> Result<Option<User>> {
        self.get(key(USERS, name))
            .await?
            .map(|r| {
                Ok(User {
                    name: name.to_string(),
                    created_at: parse_time(&r, "created_at")?,
                })
            })
            .transpose()
    }

    pub(super) async fn list_users(&self) -> Result<Vec<User>> {
        self.query(USERS, None, true, None, None)
            .await?
            .iter()
            .map(|r| {
                Ok(User {
                    name: get_s(r, "sk")?.to_string(),
                    created_at: parse_time(r, "created_at")?,
                })
            })
            .collect()
    }

    pub(super) async fn put_backend(&self, backend: &Backend) -> Result<()> {
        let data = to_json(backend)?;
        // The webhook path never needs the media server token: only the backend
        // record holds it.
        let index_data = to_json(&Backend {
            token: String::new(),
            ..backend.clone()
        })?;
        let hash = backend.webhook_token_hash.as_str();
        for _ in 0..BACKEND_ATTEMPTS {
            let old = self.load_backend_hash(&backend.user, &backend.name).await?;
            let mut rec = key(backend_pk(&backend.user), backend_sk(&backend.name));
            rec.insert("data".into(), s(data.clone()));
            rec.insert("token_hash".into(), s(hash));
            let cond = match &old {
                None => absent(),
                Some(h) => Expr::new("#th = :old")
                    .name("#th", "token_hash")
                    .value(":old", s(h.clone())),
            };
            let mut index = key(token_pk(hash), "H");
            index.insert("data".into(), s(index_data.clone()));
            index.insert("user".into(), s(backend.user.clone()));
            index.insert("name".into(), s(backend.name.clone()));
            let mut ops = vec![
                self.put(rec, Some(cond))?,
                self.put(index, Some(absent_or_of(&backend.user, &backend.name)))?,
            ];
            if let Some(h) = old.as_deref().filter(|h| *h != hash) {
                ops.push(self.delete(
                    key(token_pk(h), "H"),
                    Some(absent_or_of(&backend.user, &backend.name)),
                )?);
            }
            match self.transact("TransactWriteItems", ops).await? {
                Tx::Done => return Ok(()),
                Tx::Cancelled(codes) if !Tx::conflicted(&codes) => {
                    return Err(StoreError::Unavailable(format!(
                        "DynamoDB TransactWriteItems cancelled: {codes:?}"
                    )));
                }
                Tx::Cancelled(codes) => {
                    if codes.get(1).and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed") {
                        return Err(StoreError::Unavailable(
                            "webhook token hash already belongs to another backend".into(),
                        ));
                    }
                    tracing::debug!(user = %backend.user, backend = %backend.name, "backend changed meanwhile; again");
                }
            }
        }
        Err(StoreError::Unavailable(
            "backend keeps changing concurrently; try again".into(),
        ))
    }

    pub(super) async fn get_backend(&self, user: &str, name: &str) -> Result<Option<Backend>> {
        self.get(key(backend_pk(user), backend_sk(name)))
            .await?
            .map(|r| from_json(&r, "data"))
            .transpose()
    }

    pub(super) async fn list_backends(&self, user: &str) -> Result<Vec<Backend>> {
        self.query(&backend_pk(user), None, true, None, None)
            .await?
            .iter()
            .filter(|r| get_s(r, "sk").is_ok_and(|sk| sk.starts_with("B#")))
            .map(|r| from_json(r, "data"))
            .collect()
    }

    pub(super) async fn delete_backend(&self, user: &str, name: &str) -> Result<bool> {
        for _ in 0..BACKEND_ATTEMPTS {
            let Some(hash) = self.load_backend_hash(user, name).await? else {
                return Ok(false);
            };
            let ops = vec![
                self.delete(
                    key(backend_pk(user), backend_sk(name)),
                    Some(
                        Expr::new("#th = :h")
                            .name("#th", "token_hash")
                            .value(":h", s(hash.clone())),
                    ),
                )?,
                self.delete(key(token_pk(&hash), "H"), Some(absent_or_of(user, name)))?,
            ];
            match self.transact("TransactWriteItems", ops).await? {
                Tx::Done => return Ok(true),
                Tx::Cancelled(codes) if Tx::conflicted(&codes) => {
                    tracing::debug!(user, backend = name, "backend changed meanwhile; again");
                }
                Tx::Cancelled(codes) => {
                    return Err(StoreError::Unavailable(format!(
                        "DynamoDB TransactWriteItems cancelled: {codes:?}"
                    )))
                }
            }
        }
        Err(StoreError::Unavailable(
            "backend keeps changing concurrently; try again".into(),
        ))
    }

    pub(super) async fn backend_by_token_hash(&self, hash: &str) -> Result<Option<Backend>> {
        let Some(r) = self.get(key(token_pk(hash), "H")).await? else {
            return Ok(None);
        };
        let backend: Backend = from_json(&r, "data")?;
        if backend.webhook_token_hash != hash {
            return Err(corrupt(format!(
                "token index {} holds another backend's copy",
                describe(&r)
            )));
        }
        Ok(Some(backend))
    }
}
