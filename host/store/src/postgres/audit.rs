//! PostgresStore: the [`crate::AuditTrail`] methods.

use super::*;

#[async_trait::async_trait]
impl crate::AuditTrail for PostgresStore {
    async fn record(&self, audit: AuditRecord) -> Result<()> {
        // One statement: it is its own transaction.
        insert_audit(&self.client().await?, &audit).await
    }

    async fn audit_log(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut conditions = vec!["1=1".to_owned()];
        let mut params: Vec<Param> = Vec::new();
        let mut add = |condition: &str, value: Param| {
            params.push(value);
            conditions.push(condition.replace('?', &format!("${}", params.len())));
        };
        if let Some(v) = &f.resource_type {
            add("resource_type = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &f.resource_id {
            add("resource_id = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &f.actor {
            add("actor = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &f.run_id {
            add("run_id = ?", Param::Text(v.clone()));
        }
        if let Some(v) = f.from {
            add("at >= ?", Param::Int(ms(v)));
        }
        if let Some(v) = f.to {
            add("at < ?", Param::Int(ms(v)));
        }
        if let Some(v) = f.before_id {
            add("id < ?", Param::Int(v));
        }
        if let Some(v) = &f.visible_to {
            add(
                "(resource_type IN ('blueprint', 'entity') OR actor = ?)",
                Param::Text(v.clone()),
            );
        }
        let sql = format!(
            "SELECT id, at, actor, operation, resource_type, resource_id, blueprint, run_id, \
             before, after, status, reason, origin FROM audit_log WHERE {} \
             ORDER BY id DESC LIMIT {}",
            conditions.join(" AND "),
            sql_limit(f.limit)
        );
        let params: Vec<_> = params.iter().map(bind).collect();
        let c = self.client().await?;
        c.query_typed(&sql, &params)
            .await
            .map_err(pg)?
            .iter()
            .map(audit_record)
            .collect()
    }
}
