//! SqliteStore: the [`crate::AuditTrail`] methods.

use super::*;

#[async_trait::async_trait]
impl crate::AuditTrail for SqliteStore {
    async fn record(&self, audit: AuditRecord) -> Result<()> {
        self.write(move |c| insert_audit(c, &audit)).await
    }

    async fn audit_log(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut conditions = vec!["1=1".to_owned()];
        let mut params: Vec<rusqlite::types::Value> = Vec::new();
        let mut add = |condition: &str, value: rusqlite::types::Value| {
            params.push(value);
            conditions.push(condition.replace('?', &format!("?{}", params.len())));
        };
        use rusqlite::types::Value as V;
        if let Some(v) = &f.resource_type {
            add("resource_type = ?", V::Text(v.clone()));
        }
        if let Some(v) = &f.resource_id {
            add("resource_id = ?", V::Text(v.clone()));
        }
        if let Some(v) = &f.actor {
            add("actor = ?", V::Text(v.clone()));
        }
        if let Some(v) = &f.run_id {
            add("run_id = ?", V::Text(v.clone()));
        }
        if let Some(v) = f.from {
            add("at >= ?", V::Integer(ms(v)));
        }
        if let Some(v) = f.to {
            add("at < ?", V::Integer(ms(v)));
        }
        if let Some(v) = f.before_id {
            add("id < ?", V::Integer(v));
        }
        if let Some(v) = &f.visible_to {
            add(
                "(resource_type IN ('blueprint', 'entity') OR actor = ?)",
                V::Text(v.clone()),
            );
        }
        let sql = format!(
            "SELECT id, at, actor, operation, resource_type, resource_id, blueprint, run_id, \
             before, after, status, reason, origin FROM audit_log WHERE {} ORDER BY id DESC LIMIT {}",
            conditions.join(" AND "),
            f.limit
        );
        self.read(move |c| {
            let mut stmt = c.prepare(&sql).map_err(db)?;
            let rows = stmt
                .query_map(params_from_iter(params.iter()), |r| {
                    Ok(AuditRecord {
                        id: r.get(0)?,
                        at: at(r.get(1)?),
                        actor: r.get(2)?,
                        operation: r.get(3)?,
                        resource_type: r.get(4)?,
                        resource_id: r.get(5)?,
                        blueprint: r.get(6)?,
                        run_id: r.get(7)?,
                        before: r.get::<_, Option<String>>(8)?.map(json),
                        after: r.get::<_, Option<String>>(9)?.map(json),
                        status: if r.get::<_, String>(10)? == "SUCCESS" {
                            AuditStatus::Success
                        } else {
                            AuditStatus::Failure
                        },
                        reason: r.get(11)?,
                        origin: r.get(12)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }
}
