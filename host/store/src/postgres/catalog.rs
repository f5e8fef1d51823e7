//! [`CatalogData`] on Postgres.

use super::audit::insert_audit;
use super::outbox::insert_events;
use super::{PostgresStore, bind, conflict_or, pg};
use crate::query::Dialect;
use crate::rows::{self, ms};
use crate::sql;
use crate::{
    AuditRecord, Blueprint, CatalogData, Entity, EntityRef, Query, Relation, Result, Write, db,
};
use tokio_postgres::types::Json;

#[async_trait::async_trait]
impl CatalogData for PostgresStore {
    async fn list_blueprints(&self) -> Result<Vec<Blueprint>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(sql::LIST_BLUEPRINTS.postgres())
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
            .prepare_cached(sql::GET_BLUEPRINT.postgres())
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
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let stmt = tx
            .prepare_cached(sql::put_blueprint(write).postgres())
            .await
            .map_err(pg)?;
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
            .query_one(sql::COUNT_ENTITIES.postgres(), &[&identifier])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        if count > 0 && !with_entities {
            return Err(crate::blueprint_in_use(identifier, count));
        }
        tx.execute(sql::DELETE_BLUEPRINT_EDGES.postgres(), &[&identifier])
            .await
            .map_err(pg)?;
        tx.execute(sql::DELETE_BLUEPRINT_ENTITIES.postgres(), &[&identifier])
            .await
            .map_err(pg)?;
        let deleted = tx
            .execute(sql::DELETE_BLUEPRINT.postgres(), &[&identifier])
            .await
            .map_err(pg)?;
        if deleted > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted > 0)
    }

    async fn get_entity(&self, blueprint: &str, identifier: &str) -> Result<Option<Entity>> {
        self.one(&sql::GET_ENTITY, &[&blueprint, &identifier], rows::entity)
            .await
    }

    async fn put_entity(
        &self,
        e: Entity,
        relations: Vec<Relation>,
        write: Write,
        audit: AuditRecord,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let insert = tx
            .prepare_cached(sql::put_entity(write).postgres())
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
            .prepare_cached(sql::DELETE_EDGES.postgres())
            .await
            .map_err(pg)?;
        tx.execute(&clear, &[&e.blueprint, &e.identifier])
            .await
            .map_err(pg)?;
        let edge = tx
            .prepare_cached(sql::INSERT_EDGE.postgres())
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
        let events: Vec<_> = crate::entity_event(&audit).into_iter().collect();
        insert_events(&tx, &events).await?;
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
            .prepare_cached(sql::DELETE_EDGES.postgres())
            .await
            .map_err(pg)?;
        let rows = tx
            .prepare_cached(sql::DELETE_ENTITY.postgres())
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
        let events: Vec<_> = audit.iter().filter_map(crate::entity_event).collect();
        insert_events(&tx, &events).await?;
        tx.commit().await.map_err(pg)
    }

    async fn dependents(&self, target: &EntityRef) -> Result<Vec<EntityRef>> {
        let key = &[&target.blueprint as _, &target.identifier as _];
        self.all(&sql::DEPENDENTS, key, rows::entity_ref).await
    }

    async fn search(
        &self,
        q: &Query,
        limit: usize,
        after: Option<EntityRef>,
    ) -> Result<Vec<Entity>> {
        let (text, params) = sql::search(q, limit, after, Dialect::Postgres)?;
        // Not a cached prepared statement: every query has its own text, and the pool's
        // statement caches never forget one.
        let params: Vec<_> = params.iter().map(bind).collect();
        let c = self.client().await?;
        c.query_typed(&text, &params)
            .await
            .map_err(pg)?
            .iter()
            .map(rows::entity)
            .collect()
    }

    async fn count_entities(&self, blueprint: &str) -> Result<u64> {
        self.count(&sql::COUNT_ENTITIES, &[&blueprint]).await
    }
}
