//! PostgresStore: the [`crate::CatalogData`] methods.

use super::*;

#[async_trait::async_trait]
impl crate::CatalogData for PostgresStore {
    async fn list_blueprints(&self) -> Result<Vec<Blueprint>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT data FROM blueprints ORDER BY identifier")
            .await
            .map_err(pg)?;
        c.query(&stmt, &[])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| serde_json::from_value(r.try_get(0).map_err(pg)?).map_err(db))
            .collect()
    }

    async fn get_blueprint(&self, identifier: &str) -> Result<Option<Blueprint>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT data FROM blueprints WHERE identifier = $1")
            .await
            .map_err(pg)?;
        c.query_opt(&stmt, &[&identifier])
            .await
            .map_err(pg)?
            .map(|r| serde_json::from_value(r.try_get(0).map_err(pg)?).map_err(db))
            .transpose()
    }

    async fn put_blueprint(&self, bp: Blueprint, write: Write, audit: AuditRecord) -> Result<()> {
        let data = serde_json::to_value(&bp).map_err(db)?;
        let sql = match write {
            Write::Create => "INSERT INTO blueprints (identifier, data) VALUES ($1, $2)",
            Write::Replace => {
                "INSERT INTO blueprints (identifier, data) VALUES ($1, $2) \
                 ON CONFLICT (identifier) DO UPDATE SET data = EXCLUDED.data"
            }
        };
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let stmt = tx.prepare_cached(sql).await.map_err(pg)?;
        tx.execute(&stmt, &[&bp.identifier, &data])
            .await
            .map_err(|e| conflict_or(e, || format!("blueprint `{}`", bp.identifier)))?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn delete_blueprint(
        &self,
        identifier: &str,
        with_entities: bool,
        audit: AuditRecord,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let count: i64 = tx
            .query_one(
                "SELECT count(*) FROM entities WHERE blueprint = $1",
                &[&identifier],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        if count > 0 && !with_entities {
            return Err(StoreError::InUse(format!(
                "blueprint `{identifier}` has {count} entities; delete them first or pass \
                 ?delete_entities=true"
            )));
        }
        tx.execute(
            "DELETE FROM entity_relations WHERE blueprint = $1",
            &[&identifier],
        )
        .await
        .map_err(pg)?;
        tx.execute("DELETE FROM entities WHERE blueprint = $1", &[&identifier])
            .await
            .map_err(pg)?;
        let deleted = tx
            .execute(
                "DELETE FROM blueprints WHERE identifier = $1",
                &[&identifier],
            )
            .await
            .map_err(pg)?;
        if deleted > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted > 0)
    }

    async fn get_entity(&self, blueprint: &str, identifier: &str) -> Result<Option<Entity>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {ENTITY_COLUMNS} FROM entities e \
                 WHERE e.blueprint = $1 AND e.identifier = $2"
            ))
            .await
            .map_err(pg)?;
        c.query_opt(&stmt, &[&blueprint, &identifier])
            .await
            .map_err(pg)?
            .as_ref()
            .map(entity)
            .transpose()
    }

    async fn put_entity(
        &self,
        e: Entity,
        relations: Vec<Relation>,
        write: Write,
        audit: AuditRecord,
    ) -> Result<()> {
        let on_conflict = match write {
            Write::Create => "",
            Write::Replace => {
                " ON CONFLICT (blueprint, identifier) DO UPDATE SET title = EXCLUDED.title, \
                 icon = EXCLUDED.icon, team = EXCLUDED.team, properties = EXCLUDED.properties, \
                 relations = EXCLUDED.relations, created_at = EXCLUDED.created_at, \
                 created_by = EXCLUDED.created_by, updated_at = EXCLUDED.updated_at, \
                 updated_by = EXCLUDED.updated_by"
            }
        };
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO entities (blueprint, identifier, title, icon, team, properties, \
                 relations, created_at, created_by, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11){on_conflict}"
            ))
            .await
            .map_err(pg)?;
        tx.execute(
            &insert,
            &[
                &e.blueprint,
                &e.identifier,
                &e.title,
                &e.icon,
                &Json(&e.team),
                &e.properties,
                &e.relations,
                &ms(e.created_at),
                &e.created_by,
                &ms(e.updated_at),
                &e.updated_by,
            ],
        )
        .await
        .map_err(|err| {
            conflict_or(err, || {
                format!("entity `{}` of blueprint `{}`", e.identifier, e.blueprint)
            })
        })?;
        let clear = tx
            .prepare_cached("DELETE FROM entity_relations WHERE blueprint = $1 AND identifier = $2")
            .await
            .map_err(pg)?;
        tx.execute(&clear, &[&e.blueprint, &e.identifier])
            .await
            .map_err(pg)?;
        let edge = tx
            .prepare_cached(
                "INSERT INTO entity_relations (blueprint, identifier, relation, \
                 target_blueprint, target_identifier) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(pg)?;
        for r in &relations {
            tx.execute(
                &edge,
                &[
                    &e.blueprint,
                    &e.identifier,
                    &r.name,
                    &r.target.blueprint,
                    &r.target.identifier,
                ],
            )
            .await
            .map_err(pg)?;
        }
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn delete_entities(
        &self,
        entities: Vec<EntityRef>,
        audit: Vec<AuditRecord>,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let edges = tx
            .prepare_cached("DELETE FROM entity_relations WHERE blueprint = $1 AND identifier = $2")
            .await
            .map_err(pg)?;
        let rows = tx
            .prepare_cached("DELETE FROM entities WHERE blueprint = $1 AND identifier = $2")
            .await
            .map_err(pg)?;
        for e in &entities {
            tx.execute(&edges, &[&e.blueprint, &e.identifier])
                .await
                .map_err(pg)?;
            tx.execute(&rows, &[&e.blueprint, &e.identifier])
                .await
                .map_err(pg)?;
        }
        for a in &audit {
            insert_audit(&tx, a).await?;
        }
        tx.commit().await.map_err(pg)
    }

    async fn dependents(&self, target: &EntityRef) -> Result<Vec<EntityRef>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT DISTINCT blueprint, identifier FROM entity_relations \
                 WHERE target_blueprint = $1 AND target_identifier = $2 ORDER BY 1, 2",
            )
            .await
            .map_err(pg)?;
        c.query(&stmt, &[&target.blueprint, &target.identifier])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| {
                Ok(EntityRef {
                    blueprint: r.try_get(0).map_err(pg)?,
                    identifier: r.try_get(1).map_err(pg)?,
                })
            })
            .collect()
    }

    async fn search(
        &self,
        q: &Query,
        limit: usize,
        after: Option<EntityRef>,
    ) -> Result<Vec<Entity>> {
        let mut sql = query::compile(q, Dialect::Postgres)?;
        if let Some(after) = after {
            let n = sql.params.len();
            sql.text = format!(
                "({}) AND (e.blueprint, e.identifier) > (${}, ${})",
                sql.text,
                n + 1,
                n + 2
            );
            sql.params.push(Param::Text(after.blueprint));
            sql.params.push(Param::Text(after.identifier));
        }
        // Not a cached prepared statement: every query has its own text, and the pool's
        // statement caches never forget one.
        let text = format!(
            "SELECT {ENTITY_COLUMNS} FROM entities e WHERE {} \
             ORDER BY e.blueprint, e.identifier LIMIT {}",
            sql.text,
            sql_limit(limit)
        );
        let params: Vec<_> = sql.params.iter().map(bind).collect();
        let c = self.client().await?;
        c.query_typed(&text, &params)
            .await
            .map_err(pg)?
            .iter()
            .map(entity)
            .collect()
    }

    async fn count_entities(&self, blueprint: &str) -> Result<u64> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT count(*) FROM entities WHERE blueprint = $1")
            .await
            .map_err(pg)?;
        let n: i64 = c
            .query_one(&stmt, &[&blueprint])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        Ok(n as u64)
    }
}
